"""Placements: structure, parameter counts, forward passes, bad settings."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.networks import moe
from moe_dopamine.networks import q_networks
from tests.networks import numpy_networks

D, A, H, N = 4, 2, 512, 4


def dense(fan_in, fan_out):
  return fan_in * fan_out + fan_out


def mlp(*widths):
  return sum(dense(a, b) for a, b in zip(widths[:-1], widths[1:]))


# Parameter counts written from the architecture table (science.md section 2)
# with softmoe routing (router: d x n*p, p = 1 for one token).
EXPECTED_PARAMETERS = {
    'baseline': mlp(D, H, H, A),
    'middle': dense(D, H) + (N * mlp(H, H, H) + H * N) + dense(H, A),
    'final': mlp(D, H, H) + (N * mlp(H, H, A) + H * N),
    'all': (N * mlp(D, H, H) + D * N) + (N * mlp(H, H, H) + H * N) + (N * mlp(H, H, A) + H * N),
    'big': N * mlp(D, H, H, A) + D * N,
    'baseline_scaled': mlp(D, N * H, N * H, A),
}


def make(placement, **kwargs):
  kwargs.setdefault('num_experts', N)
  return q_networks.ClassicControlQNetwork(A, placement=placement, **kwargs)


@pytest.mark.parametrize('placement', sorted(EXPECTED_PARAMETERS))
def test_parameter_count_matches_the_architecture(placement):
  network = make(placement)
  network(tf.zeros([3, D, 1]))
  assert q_networks.count_parameters(network) == EXPECTED_PARAMETERS[placement]


def states_with_task_ids(count=7, seed=0):
  """[count, D + 1, 1]: features in [-1, 1], then task id 0 or 1."""
  rng = np.random.default_rng(seed)
  states = np.zeros((count, D + 1, 1), np.float32)
  states[:, :D, 0] = rng.uniform(-1, 1, (count, D))
  states[:, D, 0] = np.arange(count) % 2
  return states


@pytest.mark.parametrize('placement', [p.value for p in q_networks.Placement])
@pytest.mark.parametrize('router', ['softmoe', 'topk', 'soft_to_sparse'])
def test_every_placement_gives_q_values_for_every_action(placement, router):
  # Against a NumPy forward pass of the placement's architecture, with every
  # weight random: a layer left out, an MoE in the wrong place, a missing
  # relu or bias, a wrong router formula each change the Q-values.
  gin.bind_parameter('MoE.router', router)
  gin.bind_parameter('MoE.k', 2)
  network = make(placement, num_tasks=2, task_id_in_observation=True,
                 hidden_units=16, expert_hidden_units=8)
  states = states_with_task_ids()
  sess, q_values, _ = numpy_networks.run(network, states)
  with sess:
    expected, _ = numpy_networks.classic_forward(network, sess, states)
  assert q_values.shape == (7, A)
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)


def test_middle_moe_replaces_the_penultimate_layer():
  network = make('middle', hidden_units=16, expert_hidden_units=8)
  states = states_with_task_ids()[:, :D]
  sess, q_values, activations = numpy_networks.run(network, states)
  with sess:
    expected, hidden = numpy_networks.classic_forward(network, sess, states)
  # hidden_0 is Dense + relu, hidden_1 the MoE over it (no relu after, as
  # Dopamine's), the output a Dense over the MoE's output.
  np.testing.assert_allclose(activations['hidden_0'], hidden['hidden_0'], rtol=1e-4, atol=1e-5)
  assert (hidden['hidden_1'] < 0).any()  # No relu after the MoE.
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)
  assert 'hidden_1/expert_3/hidden_0' in activations
  # Dormant neurons: the MoE's linear output is not a neuron (its experts'
  # hidden layers are what is scored).
  assert 'hidden_1' not in activations


def test_big_experts_are_whole_networks():
  gin.bind_parameter('MoE.router', 'topk')
  network = make('big', hidden_units=16)
  states = states_with_task_ids()[:, :D]
  sess, q_values, activations = numpy_networks.run(network, states)
  with sess:
    layer = network.big_moe
    weights = sess.run((layer.experts.kernels, layer.experts.biases))
    gates = numpy_networks.softmax(states[:, :, 0] @ sess.run(layer.router_kernel))
  # Each expert is the baseline network D -> 16 -> 16 -> A (Glorot weights
  # replaced by random ones), and the top-1 expert's Q-values, times its gate,
  # are the network's.
  for b in range(len(states)):
    x = states[b:b + 1, :, 0]
    e = int(gates[b].argmax())
    h0 = numpy_networks.relu(x @ weights[0][0][e] + weights[1][0][e])
    h1 = numpy_networks.relu(h0 @ weights[0][1][e] + weights[1][1][e])
    q = h1 @ weights[0][2][e] + weights[1][2][e]
    np.testing.assert_allclose(q_values[b], gates[b, e] * q[0], rtol=1e-4, atol=1e-5)
  assert [w.shape for w in weights[0][0]][0] == (D, 16)
  assert {'big/expert_0/hidden_0', 'big/expert_0/hidden_1'} <= set(activations)


def test_rescaling_uses_the_task_bounds():
  features = np.array([[-2.4, 0.0, 1.0, 6.0]])
  scaled = observation.rescale_features(
      features, np.array([-2.4, -1.0, 0.0, 0.0]), np.array([2.4, 1.0, 2.0, 6.0])
  )
  np.testing.assert_allclose(scaled, [[-1.0, 0.0, 0.0, 1.0]])


def test_separate_networks_route_each_task_to_its_own_network():
  network = make('separate', num_tasks=3, task_id_in_observation=True)
  assert network.num_experts == 3
  state = np.zeros((3, D + 1, 1))
  state[:, -1, 0] = [0, 1, 2]
  output = network(tf.constant(state))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    probs = sess.run(output.router_probs['big'])
  np.testing.assert_array_equal(probs[:, 0], np.eye(3))


def test_tokens_are_consecutive_equal_slices_of_the_features():
  network = make('middle', num_tokens=4)
  features = np.arange(2 * 8, dtype=np.float32).reshape(2, 8)
  with tf.compat.v1.Session() as sess:
    tokens = sess.run(network._tokens(tf.constant(features)))
  np.testing.assert_array_equal(tokens[1], [[8, 9], [10, 11], [12, 13], [14, 15]])


@pytest.mark.parametrize('placement', ['middle', 'big'])
def test_tokens_split_the_features(placement):
  # Four tokens: middle's SoftMoE mixes the four 4-wide slices of hidden_0
  # into slots and back; big's splits the 4 features into four 1-feature
  # tokens and averages their Q-values.
  network = make(placement, num_tokens=4, hidden_units=16, expert_hidden_units=8)
  states = states_with_task_ids()[:, :D]
  state = tf.compat.v1.placeholder(tf.float32, (None, D, 1))
  output = network(state)
  assert output.router_probs[network.moe_layers()[0].name].shape.as_list() == [None, 4, N]
  sess, q_values, _ = numpy_networks.run(network, states)
  with sess:
    expected, _ = numpy_networks.classic_forward(network, sess, states)
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'placement': 'middle', 'num_tokens': 3}, 'num_tokens=3 does not divide the width 512'),
        ({'placement': 'all', 'num_tokens': 3}, 'num_tokens=3 does not divide'),
        ({'placement': 'middle', 'num_experts': 0}, 'num_experts=0 must be >= 1'),
        ({'placement': 'middle', 'num_experts': 'four'}, "num_experts='four' must be an integer"),
        ({'placement': 'middle', 'relu_after_moe': 'yes'}, "relu_after_moe='yes' must be True or False"),
        ({'placement': 'big', 'parameter_matched_to': 'middle'}, "needs placement='baseline'"),
        ({'placement': 'centre'}, r"placement='centre' is not one of \['baseline', 'middle'"),
        ({'placement': 'middle', 'num_tokens': 0}, 'num_tokens=0 must be >= 1'),
    ],
)
def test_bad_network_settings_fail_with_the_parameter_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    network = q_networks.ClassicControlQNetwork(A, **kwargs)
    network(tf.zeros([2, D, 1]))


def test_hardcoded_routing_needs_an_expert_per_task():
  gin.bind_parameter('MoE.router', 'hardcoded')
  with pytest.raises(config.ConfigError, match='num_experts=2 < num_tasks=3'):
    make('big', num_experts=2, num_tasks=3, task_id_in_observation=True)(
        tf.zeros([2, D + 1, 1])
    )


def test_placement_accepts_the_gin_enum_constant():
  network = make(q_networks.Placement.FINAL)
  assert network.placement == q_networks.Placement.FINAL
  assert config.parse_choice(moe.Router, 'TopK', 'MoE.router') == moe.Router.TOPK


def run_network(network, states, **call_kwargs):
  outputs = network(tf.constant(states, tf.float32), **call_kwargs)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    return sess.run(outputs)


def test_a_hidden_moe_output_has_no_relu_unless_asked():
  states = np.random.default_rng(0).uniform(-1, 1, (64, D, 1))
  plain = run_network(make('middle'), states)
  # Dopamine's MoE networks use the MoE output as it is: negative values
  # reach the output layer, and the linear units are not scored as neurons.
  assert 'hidden_1' not in plain.activations
  with tf.Graph().as_default():
    relu = run_network(make('middle', relu_after_moe=True), states)
  assert relu.activations['hidden_1'].min() >= 0.0
  with tf.Graph().as_default():
    network = make('middle')
    network(tf.zeros([2, D, 1]))
    assert 'hidden_1' not in [l.name for l in network.recyclable_layers()]
  with tf.Graph().as_default():
    network = make('middle', relu_after_moe=True)
    network(tf.zeros([2, D, 1]))
    assert 'hidden_1' in [l.name for l in network.recyclable_layers()]


def test_the_network_rescales_features_with_its_bounds():
  network = make('baseline', min_vals=[0.0, 0.0, 0.0, 0.0], max_vals=[2.0, 4.0, 1.0, 1.0])
  states = np.array([[[2.0], [0.0], [0.5], [1.0]]])
  outputs = network(tf.constant(states, tf.float32))
  hidden = network.stack[0][1]
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    h0, kernel, bias = sess.run([outputs.activations['hidden_0'], hidden.kernel, hidden.bias])
  # [2, 0, 0.5, 1] in [0, (2, 4, 1, 1)] -> [1, -1, 0, 1].
  np.testing.assert_allclose(h0, np.maximum(np.array([[1.0, -1.0, 0.0, 1.0]]) @ kernel + bias, 0),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('target', ['big', 'middle'])
def test_a_parameter_matched_baseline_has_the_closest_width(target):
  reference = make(target)
  reference(tf.zeros([1, D, 1]))
  goal = q_networks.count_parameters(reference)
  matched = make('baseline', parameter_matched_to=target)
  matched(tf.zeros([1, D, 1]))
  width = matched.hidden_units
  count = q_networks.count_parameters(matched)
  assert count == mlp(D, width, width, A)
  # No other width comes closer to the target.
  for other in (width - 1, width + 1):
    assert abs(mlp(D, other, other, A) - goal) >= abs(count - goal)
  assert abs(count - goal) / goal < 0.01


def test_diagnostics_run_every_topk_expert_on_the_whole_batch():
  gin.bind_parameter('MoE.router', 'topk')
  states = np.random.default_rng(1).uniform(-1, 1, (16, D, 1))
  out = run_network(make('big'), states, diagnostics=True)
  assert sum(out.routed_counts['big']) == 16  # k = 1: each state once.
  for e in range(N):
    assert out.activations[f'big/expert_{e}/hidden_0'].shape == (16, H)
    routed = out.routed_activations[f'big/expert_{e}/hidden_0']
    assert routed.shape == (out.routed_counts['big'][e], H)


# task_id_input: what of the task id reaches the network (module docstring).
T = 3  # Tasks.
SMALL = dict(hidden_units=32, expert_hidden_units=32)  # Widths do not matter here.
IDS_A, IDS_B = [0, 1, 2, 0, 1, 2], [1, 2, 0, 2, 0, 1]  # Every state's task changes.


def make_multitask(placement, task_id_input, **kwargs):
  return make(placement, num_tasks=T, task_id_in_observation=True,
              task_id_input=task_id_input, **kwargs)


def with_task_ids(features, task_ids):
  """States [B, D + 1, 1]: the features [B, D], then each state's task id."""
  return np.concatenate([features, np.asarray(task_ids, float)[:, None]], 1)[..., None]


def outputs_by_task(network, task_id_batches, prepare=None, seed=0):
  """The network's outputs on the same random features with each batch of
  task ids, in one session (the same weights); `prepare(sess)` runs first."""
  features = np.random.default_rng(seed).uniform(-1, 1, (len(task_id_batches[0]), D))
  state = tf.compat.v1.placeholder(tf.float32, (None, D + 1, 1))
  output = network(state)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    if prepare is not None:
      prepare(sess)
    return [sess.run(output, {state: with_task_ids(features, ids)})
            for ids in task_id_batches]


def test_network_task_input_is_the_tasks_one_hot_after_the_rescaling():
  # Fails for the id fed as its index, another task's one-hot (an off-by-one),
  # the one-hot left out, or the rescaling not applied to the features.
  min_vals, max_vals = [-2.0, -1.0, 0.0, 0.0], [2.0, 1.0, 2.0, 6.0]
  network = make_multitask('baseline', 'network', min_vals=min_vals, max_vals=max_vals)
  ids = [0, 1, 2, 2, 1, 0]
  features = np.random.default_rng(3).uniform(0, 2, (6, D))
  output = network(tf.constant(with_task_ids(features, ids), tf.float32))
  hidden = network.stack[0][1]
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    h0, kernel, bias = sess.run([output.activations['hidden_0'], hidden.kernel, hidden.bias])
  assert kernel.shape == (D + T, H)
  rescaled = observation.rescale_features(features, np.array(min_vals), np.array(max_vals))
  inputs = np.concatenate([rescaled, np.eye(T)[ids]], axis=1)
  np.testing.assert_allclose(h0, np.maximum(inputs @ kernel + bias, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('placement,router', [
    ('baseline', 'softmoe'), ('middle', 'softmoe'), ('middle', 'topk'),
    ('final', 'softmoe'), ('final', 'topk'), ('all', 'softmoe'), ('all', 'topk'),
    ('big', 'softmoe'), ('big', 'topk'),
])
def test_changing_only_the_task_id_changes_the_q_values_only_with_a_task_input(
    placement, router):
  # 'none' fails if any of the id leaks into the network (the id read as a
  # feature, a one-hot built anyway); 'network' fails if the one-hot is lost.
  gin.bind_parameter('MoE.router', router)
  none = outputs_by_task(make_multitask(placement, 'none', **SMALL), [IDS_A, IDS_B])
  np.testing.assert_array_equal(none[0].q_values, none[1].q_values)
  with tf.Graph().as_default():
    told = outputs_by_task(make_multitask(placement, 'network', **SMALL), [IDS_A, IDS_B])
  assert np.abs(told[0].q_values - told[1].q_values).min() > 0


def zero_context_rows(network):
  """`prepare` that zeroes every router's weights for the one-hot's rows."""
  def prepare(sess):
    for layer in network.moe_layers():
      for weights in layer.router_context_weights():
        sess.run(weights.assign(tf.zeros_like(weights)))
  return prepare


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
@pytest.mark.parametrize('router', ['softmoe', 'topk'])
def test_router_task_input_reaches_the_routers_and_nothing_else(placement, router):
  # Fails if the one-hot reaches the experts (or SoftMoE's slots): with the
  # routers' one-hot rows at zero the Q-values would still change with the
  # id, and the experts' kernels would be wider; fails too if a router does
  # not read it (its probabilities would not change).
  gin.bind_parameter('MoE.router', router)
  network = make_multitask(placement, 'router', **SMALL)
  told = outputs_by_task(network, [IDS_A, IDS_B])
  for name in told[0].router_probs:
    assert not np.allclose(told[0].router_probs[name], told[1].router_probs[name])
  with tf.Graph().as_default():
    network = make_multitask(placement, 'router', **SMALL)
    blind = outputs_by_task(network, [IDS_A, IDS_B], prepare=zero_context_rows(network))
    with tf.Graph().as_default():
      reference = make_multitask(placement, 'none', **SMALL)
      reference(tf.zeros([1, D + 1, 1]))
  np.testing.assert_allclose(blind[0].q_values, blind[1].q_values, rtol=1e-6, atol=1e-7)
  for layer, plain in zip(network.moe_layers(), reference.moe_layers()):
    assert ([k.shape.as_list() for k in layer.experts.kernels[0]]
            == [k.shape.as_list() for k in plain.experts.kernels[0]])
    token_rows = layer.router_weights()[0].shape.as_list()
    assert token_rows == plain.router_weights()[0].shape.as_list()
    assert [w.shape.as_list() for w in layer.router_context_weights()] == [[T, token_rows[1]]]


def parameters(placement, task_id_input, **kwargs):
  network = make_multitask(placement, task_id_input, **kwargs)
  network(tf.zeros([1, D + 1, 1]))
  return q_networks.count_parameters(network)


@pytest.mark.parametrize('placement,router,task_id_input,kwargs,extra', [
    # 'network': the first Dense reads T more inputs.
    ('baseline', 'softmoe', 'network', {}, T * H),
    # Big: every expert's first layer and the router (d x n, p = 1).
    ('big', 'softmoe', 'network', {}, N * T * H + T * N),
    # 'router': T rows more per router, n * p columns (SoftMoE) or n (TopK).
    ('middle', 'softmoe', 'router', {}, T * N),
    ('middle', 'softmoe', 'router', {'num_tokens': 8}, T * N * 2),  # p = ceil(8 / 4).
    ('middle', 'topk', 'router', {'num_tokens': 8}, T * N),
    ('all', 'softmoe', 'router', {}, 3 * T * N),
    ('big', 'topk', 'router', {}, T * N),
])
def test_task_inputs_add_num_tasks_weights_to_each_layer_that_reads_them(
    placement, router, task_id_input, kwargs, extra):
  # Fails for a one-hot of the wrong width, or a router context counted once
  # per network instead of once per router, or n instead of n * p slots.
  gin.bind_parameter('MoE.router', router)
  assert parameters(placement, task_id_input, **kwargs) - parameters(
      placement, 'none', **kwargs) == extra


def test_a_parameter_matched_baseline_counts_the_task_one_hot_in_its_input():
  # Fails if the matched width is found for D inputs instead of D + T.
  reference = make_multitask('big', 'network')
  reference(tf.zeros([1, D + 1, 1]))
  goal = q_networks.count_parameters(reference)
  matched = make_multitask('baseline', 'network', parameter_matched_to='big')
  matched(tf.zeros([1, D + 1, 1]))
  width = matched.hidden_units
  assert q_networks.count_parameters(matched) == mlp(D + T, width, width, A)
  for other in (width - 1, width + 1):
    assert abs(mlp(D + T, other, other, A) - goal) >= abs(mlp(D + T, width, width, A) - goal)


@pytest.mark.parametrize('placement,kwargs,router,message', [
    ('baseline', {'task_id_input': 'network'}, None,
     "ClassicControlQNetwork.task_id_input='network' needs the task id in the observation"),
    ('middle', {'task_id_input': 'router'}, None,
     "ClassicControlQNetwork.task_id_input='router' needs the task id in the observation"),
    ('baseline', {'task_id_input': 'router', 'task_id_in_observation': True}, None,
     "ClassicControlQNetwork.task_id_input='router' gives the task id to the routers, and "
     "placement='baseline' has no learned router. Fix: ClassicControlQNetwork.task_id_input="
     "'network'"),
    ('baseline_scaled', {'task_id_input': 'router', 'task_id_in_observation': True}, None,
     "placement='baseline_scaled' has no learned router"),
    ('separate', {'task_id_input': 'router', 'task_id_in_observation': True}, None,
     "placement='separate' has no learned router"),
    ('big', {'task_id_input': 'router', 'task_id_in_observation': True}, 'hardcoded',
     "ClassicControlQNetwork.task_id_input='router' gives the task id to the routers, and "
     "MoE big has router='hardcoded', which learns nothing from its input"),
    ('middle', {'task_id_input': 'router', 'task_id_in_observation': True}, 'random',
     "MoE hidden_1 has router='random' \\(frozen\\)"),
    ('middle', {'task_id_input': 'netwrok'}, None,
     r"ClassicControlQNetwork.task_id_input='netwrok' is not one of \['none', 'network', "
     r"'router'\]. Did you mean 'network'"),
])
def test_task_inputs_that_make_no_sense_are_refused_naming_the_binding(
    placement, kwargs, router, message):
  if router is not None:
    gin.bind_parameter('MoE.router', router)
  with pytest.raises(config.ConfigError, match=message):
    make(placement, num_tasks=T, **kwargs)(tf.zeros([1, D + 1, 1]))


def test_a_frozen_router_is_refused_the_task_id():
  gin.bind_parameter('MoE.router_trainable', False)
  with pytest.raises(config.ConfigError, match=r"router='softmoe' \(frozen\)"):
    make_multitask('big', 'router')(tf.zeros([1, D + 1, 1]))


def test_task_id_input_accepts_the_gin_enum_constant():
  network = make_multitask('baseline', q_networks.TaskIdInput.NETWORK)
  assert network.task_id_input == q_networks.TaskIdInput.NETWORK
