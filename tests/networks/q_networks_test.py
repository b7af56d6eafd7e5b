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
  for name in ('hidden_0', 'hidden_1'):
    np.testing.assert_allclose(activations[name], hidden[name], rtol=1e-4, atol=1e-5)
  assert (activations['hidden_1'] < 0).any()  # No relu after the MoE.
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)
  assert 'hidden_1/expert_3/hidden_0' in activations


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
  # Dopamine's MoE networks use the MoE output as it is: negative values stay.
  assert plain.activations['hidden_1'].min() < 0.0
  with tf.Graph().as_default():
    relu = run_network(make('middle', relu_after_moe=True), states)
  assert relu.activations['hidden_1'].min() >= 0.0


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
