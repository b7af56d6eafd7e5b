"""MinAtar placements and tokenizations: parameter counts, tokens, the conv, bad settings."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.environments import multitask
from moe_dopamine.networks import minatar_q_networks as mq
from moe_dopamine.networks import q_networks
from tests.networks import numpy_networks

C, A, N, H = 6, 6, 4, 128  # Breakout + SpaceInvaders + Asterix: 6 channels, 6 actions.
F = 16
WIDTH = 100 * C + 1  # Flattened screen and the task id.


def dense(fan_in, fan_out):
  return fan_in * fan_out + fan_out


def mlp(*widths):
  return sum(dense(a, b) for a, b in zip(widths[:-1], widths[1:]))


CONV = 3 * 3 * C * F + F  # 880.
BASELINE = CONV + dense(100 * F, H) + dense(H, A)


def test_the_minatar_baseline_has_the_parameters_counted_by_hand():
  # Breakout alone (4 channels, 6 actions): conv 3*3*4*16 + 16 = 592,
  # Dense(1600 -> 128) 204,928, Dense(128 -> 6) 774.
  network = mq.MinAtarQNetwork(6, task_id_in_observation=True)
  network(tf.zeros([1, 401, 1]))
  assert q_networks.count_parameters(network) == 592 + 204928 + 774 == 206294
  # Three games: the conv reads 6 channels, 3*3*6*16 + 16 = 880.
  network = mq.MinAtarQNetwork(A, task_id_in_observation=True, num_tasks=3)
  network(tf.zeros([1, WIDTH, 1]))
  assert q_networks.count_parameters(network) == BASELINE == 206582


# (placement, tokenization): parameters with softmoe routing; a SoftMoE router
# is Phi [d, n * p], p = ceil(m / n) slots per expert for m tokens of size d.
EXPECTED_PARAMETERS = {
    ('middle', 'per_pixel'): CONV + N * mlp(F, H, F) + F * (N * 25) + dense(1600, A),
    ('middle', 'per_feature_map'): CONV + N * mlp(100, H, 100) + 100 * (N * 4) + dense(1600, A),
    ('middle', 'per_sample'): CONV + N * mlp(1600, H, 1600) + 1600 * N + dense(1600, A),
    ('final', 'per_pixel'): CONV + dense(1600, H) + N * mlp(H, H, A) + H * N,
    ('all', 'per_pixel'): (CONV + N * mlp(F, H, F) + F * (N * 25)
                           + N * mlp(1600, H, A) + 1600 * N),
    ('all', 'per_sample'): (CONV + N * mlp(1600, H, 1600) + 1600 * N
                            + N * mlp(1600, H, A) + 1600 * N),
    ('big', 'per_pixel'): N * BASELINE + 100 * C * N,
    ('baseline_scaled', 'per_pixel'): CONV + dense(1600, N * H) + dense(N * H, A),
    ('separate', 'per_pixel'): 3 * BASELINE,  # One whole network per game, no router.
}


def make(placement, tokenization='per_pixel', **kwargs):
  kwargs.setdefault('num_experts', N)
  kwargs.setdefault('num_tasks', 3)
  return mq.MinAtarQNetwork(
      A, placement=placement, tokenization=tokenization, task_id_in_observation=True,
      **kwargs,
  )


@pytest.mark.parametrize('placement,tokenization', sorted(EXPECTED_PARAMETERS))
def test_parameter_count_matches_the_architecture(placement, tokenization):
  network = make(placement, tokenization)
  network(tf.zeros([2, WIDTH, 1]))
  assert q_networks.count_parameters(network) == EXPECTED_PARAMETERS[(placement, tokenization)]


@pytest.mark.parametrize(
    'tokenization,tokens,token_size',
    [('per_pixel', 100, 16), ('per_feature_map', 16, 100), ('per_sample', 1, 1600)],
)
def test_softmoe_sees_the_tokens_of_its_tokenization(tokenization, tokens, token_size):
  network = make('middle', tokenization)
  output = network(tf.zeros([3, WIDTH, 1]))
  layer = network.hidden
  assert output.router_probs['hidden_0'].shape.as_list() == [3, tokens, N]
  slots = -(-tokens // N)  # ceil(m / n), capacity factor 1.
  assert layer.phi.shape.as_list() == [token_size, N * slots]
  assert layer.experts.kernels[0][0].shape.as_list() == [token_size, H]
  assert layer.experts.kernels[-1][0].shape.as_list() == [H, token_size]


def test_tokens_are_pixels_feature_maps_or_the_whole_sample():
  maps = np.random.default_rng(0).normal(size=(2, 10, 10, 16)).astype(np.float32)
  with tf.compat.v1.Session() as sess:
    pixel, feature, sample = sess.run([
        mq.tokens_of(tf.constant(maps), t) for t in mq.Tokenization
    ])
  np.testing.assert_array_equal(pixel[1, 3 * 10 + 7], maps[1, 3, 7, :])  # Position (3, 7).
  np.testing.assert_array_equal(feature[1, 5], maps[1, :, :, 5].reshape(-1))  # Channel 5.
  np.testing.assert_array_equal(sample[1, 0], maps[1].reshape(-1))


def numpy_conv(screens, kernel, bias):
  """'same' zero-padded, stride-1 conv [N, h, w, c] * [k, k, c, f], then relu."""
  k = kernel.shape[0]
  padded = np.pad(screens, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  h, w = screens.shape[1:3]
  out = np.zeros(screens.shape[:3] + (kernel.shape[-1],))
  for i in range(h):
    for j in range(w):
      out[:, i, j] = np.einsum('nabc,abcf->nf', padded[:, i:i + k, j:j + k], kernel)
  return np.maximum(out + bias, 0.0)


def test_the_reference_patches_times_a_flattened_kernel_is_the_convolution():
  # The patch formulation the equivalence tests compare ConvExperts with.
  rng = np.random.default_rng(1)
  screens = rng.normal(size=(2, 10, 10, 3)).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
  with tf.compat.v1.Session() as sess:
    patches = sess.run(numpy_networks.conv_patches(tf.constant(screens), 3))
  np.testing.assert_allclose(
      np.maximum(patches @ kernel.reshape(27, 5), 0).reshape(2, 10, 10, 5),
      numpy_conv(screens, kernel, 0.0), rtol=1e-4, atol=1e-4,
  )


def minatar_states(count=5):
  """Real observations of the three games (all three game ids)."""
  env = multitask.MultiTaskEnvironment(
      task_names=['Breakout', 'SpaceInvaders', 'Asterix'], setting='mtrl', seed=0)
  env.begin_iteration(0)
  states, raws = [], []
  for _ in range(count):
    obs = env.reset()
    for _ in range(3):
      obs, _, done, _ = env.step(0)
      if done:
        break
    states.append(obs)
    raws.append(observation.pad_channels(env._envs[env.current_task].unwrapped._game.state(), C))
  return np.stack(states)[..., None], np.stack(raws).astype(np.float32)


def test_the_network_convolves_the_environments_screen():
  states, screens = minatar_states()
  network = make('baseline')
  output = network(tf.constant(states))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    maps, kernel, bias = sess.run(
        [output.activations['conv_0'], network.conv.kernel, network.conv.bias])
  assert maps.shape == (5, 10, 10, F)
  # A wrong reshape (channel-major, or the task id read as a pixel) fails here.
  np.testing.assert_allclose(maps, numpy_conv(screens, kernel, bias), rtol=1e-4, atol=1e-5)


def test_each_separate_expert_is_a_whole_baseline_network():
  states, screens = minatar_states()
  network = make('separate')
  output = network(tf.constant(states))
  experts = network.big_moe.experts
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    q_values, kernels, biases = sess.run([output.q_values, experts.kernels, experts.biases])
  for i, task in enumerate(states[:, -1, 0].astype(int)):
    conv = numpy_conv(screens[i:i + 1], kernels[0][task].reshape(3, 3, C, F), biases[0][task])
    hidden = np.maximum(conv.reshape(1, -1) @ kernels[1][task] + biases[1][task], 0)
    expected = hidden @ kernels[2][task] + biases[2][task]
    np.testing.assert_allclose(q_values[i], expected[0], rtol=1e-4, atol=1e-4)


def test_big_conv_experts_start_as_keras_initialises_a_conv():
  network = make('big')
  network(tf.zeros([1, WIDTH, 1]))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    kernel = sess.run(network.big_moe.experts.kernels[0][0])
  # Glorot-uniform with Conv2D's fans: 3*3*6 in, 3*3*16 out.
  limit = np.sqrt(6.0 / (9 * C + 9 * F))
  assert kernel.shape == (9 * C, F)
  assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


@pytest.mark.parametrize('placement', [p.value for p in q_networks.Placement])
@pytest.mark.parametrize('router', ['softmoe', 'topk', 'soft_to_sparse'])
def test_every_placement_gives_finite_q_values_for_every_action(placement, router):
  # Against a NumPy forward pass (conv, tokens, experts, routers), with every
  # weight random.
  gin.bind_parameter('MoE.router', router)
  gin.bind_parameter('MoE.k', 2)
  states, _ = minatar_states(4)
  network = make(placement, filters=4, hidden_units=16, expert_hidden_units=8)
  sess, q_values, _ = numpy_networks.run(network, states)
  with sess:
    expected = numpy_networks.minatar_forward(network, sess, states)
  assert q_values.shape == (4, A) and np.all(np.isfinite(q_values))
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('tokenization', ['per_pixel', 'per_feature_map', 'per_sample'])
@pytest.mark.parametrize('router', ['softmoe', 'topk'])
def test_each_tokenization_feeds_the_moe_the_documented_tokens(tokenization, router):
  gin.bind_parameter('MoE.router', router)
  states, _ = minatar_states(3)
  network = make('middle', tokenization, filters=4, hidden_units=16, expert_hidden_units=8)
  sess, q_values, _ = numpy_networks.run(network, states)
  with sess:
    expected = numpy_networks.minatar_forward(network, sess, states)
  np.testing.assert_allclose(q_values, expected, rtol=1e-4, atol=1e-5)


def test_recyclable_layers_are_the_filters_and_the_dense_hidden_layers():
  network = make('baseline')
  network(tf.zeros([1, WIDTH, 1]))
  layers = network.recyclable_layers()
  assert [(l.name, l.units) for l in layers] == [('conv_0', F), ('hidden_0', H)]
  # A filter feeds the dense layer at each of the 100 positions.
  assert layers[0].outgoing == [(network.hidden.kernel, 0, 100)]
  big = make('big', num_experts=2)
  big(tf.zeros([1, WIDTH, 1]))
  # hidden_0 of a big expert is its conv, drawn with the conv's fans.
  assert [l.name for l in big.recyclable_layers()] == [
      'big/expert_0/hidden_0', 'big/expert_1/hidden_0',
      'big/expert_0/hidden_1', 'big/expert_1/hidden_1']
  assert big.recyclable_layers()[1].incoming[0][2] == (3 * 3 * C, 3 * 3 * F)
  pixel = make('middle', 'per_pixel')
  pixel(tf.zeros([1, WIDTH, 1]))
  pixel_names = [l.name for l in pixel.recyclable_layers()]
  assert 'hidden_0' not in pixel_names and pixel_names[0] == 'conv_0'
  # Per-pixel tokens: a filter is one feature of every token (no repeats).
  assert all(len(entry) == 2 for entry in pixel.recyclable_layers()[0].outgoing)
  per_map = make('middle', 'per_feature_map')
  per_map(tf.zeros([1, WIDTH, 1]))
  assert 'conv_0' not in [l.name for l in per_map.recyclable_layers()]  # A filter is a token.
  sample = make('middle', 'per_sample')
  sample(tf.zeros([1, WIDTH, 1]))
  # The MoE's linear output is not a neuron; behind a ReLU it is.
  assert 'hidden_0' not in [l.name for l in sample.recyclable_layers()]
  sample_relu = make('middle', 'per_sample', relu_after_moe=True)
  sample_relu(tf.zeros([1, WIDTH, 1]))
  assert [l.units for l in sample_relu.recyclable_layers() if l.name == 'hidden_0'] == [1600]


def test_a_parameter_matched_baseline_has_the_closest_width():
  reference = make('big')
  reference(tf.zeros([1, WIDTH, 1]))
  goal = q_networks.count_parameters(reference)
  matched = make('baseline', parameter_matched_to='big')
  matched(tf.zeros([1, WIDTH, 1]))
  width = matched.hidden_units
  count = q_networks.count_parameters(matched)
  assert count == CONV + dense(1600, width) + dense(width, A)
  for other in (width - 1, width + 1):
    other_count = CONV + dense(1600, other) + dense(other, A)
    assert abs(other_count - goal) >= abs(count - goal)


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'tokenization': 'per_pixle'},
         r"MinAtarQNetwork.tokenization='per_pixle' is not one of \['per_pixel', "
         r"'per_feature_map', 'per_sample'\]. Did you mean 'per_pixel'"),
        ({'placement': 'midle'}, r"placement='midle' is not one of .* Did you mean 'middle'"),
        ({'placement': 'big', 'parameter_matched_to': 'middle'}, "needs placement='baseline'"),
        ({'placement': 'middle', 'num_experts': 0}, 'num_experts=0 must be >= 1'),
        ({'filters': 'sixteen'}, "filters='sixteen' must be an integer"),
    ],
)
def test_bad_settings_fail_before_any_layer_is_built(kwargs, message):
  with pytest.raises(config.ConfigError, match=message):
    mq.MinAtarQNetwork(A, **kwargs)


def test_a_state_that_is_not_a_minatar_screen_is_refused():
  with pytest.raises(config.ConfigError, match='needs flattened 10 x 10 x C screens; got 5'):
    make('baseline')(tf.zeros([1, 6, 1]))


def test_hardcoded_routing_needs_an_expert_per_game():
  gin.bind_parameter('MoE.router', 'hardcoded')
  with pytest.raises(config.ConfigError, match='MinAtarQNetwork.num_experts >= 3'):
    make('big', num_experts=2)(tf.zeros([1, WIDTH, 1]))


# task_id_input (q_networks.TaskIdInput): the one-hot of the game id as
# constant input planes ('network') or in every router's input ('router').
T = 3  # The three games.
SMALL = dict(filters=4, hidden_units=8, expert_hidden_units=8)
IDS_A, IDS_B = [0, 1, 2, 0, 1], [1, 2, 0, 2, 0]


def test_network_task_input_is_one_constant_plane_per_game():
  # Fails for planes of another game's one-hot, planes holding the id's
  # value, planes at the wrong channels, or a torso that does not read them.
  states, screens = minatar_states()
  ids = states[:, -1, 0].astype(int)
  assert set(ids) == {0, 1, 2}
  network = make('baseline', task_id_input='network')
  output = network(tf.constant(states))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    maps, kernel, bias = sess.run(
        [output.activations['conv_0'], network.conv.kernel, network.conv.bias])
  assert kernel.shape == (3, 3, C + T, F)
  planes = np.broadcast_to(np.eye(T)[ids][:, None, None, :], (5, 10, 10, T))
  expected = numpy_conv(np.concatenate([screens, planes], axis=-1), kernel, bias)
  np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def outputs_by_task(network, task_id_batches, prepare=None):
  """The network's outputs on the same random screens with each batch of
  game ids, in one session; `prepare(sess)` runs first."""
  screens = np.random.default_rng(0).integers(0, 2, (len(task_id_batches[0]), 100 * C))
  state = tf.compat.v1.placeholder(tf.float32, (None, WIDTH, 1))
  output = network(state)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    if prepare is not None:
      prepare(sess)
    return [sess.run(output, {state: np.concatenate(
        [screens, np.asarray(ids)[:, None]], axis=1)[..., None]}) for ids in task_id_batches]


@pytest.mark.parametrize('placement,router', [
    ('baseline', 'softmoe'), ('middle', 'softmoe'), ('big', 'softmoe'), ('big', 'topk'),
])
def test_changing_only_the_game_id_changes_the_q_values_only_with_a_task_input(
    placement, router):
  # 'none' fails if the id leaks in (e.g. read as a pixel); 'network' if the
  # planes are lost.
  gin.bind_parameter('MoE.router', router)
  none = outputs_by_task(make(placement, task_id_input='none', **SMALL), [IDS_A, IDS_B])
  np.testing.assert_array_equal(none[0].q_values, none[1].q_values)
  with tf.Graph().as_default():
    told = outputs_by_task(make(placement, task_id_input='network', **SMALL), [IDS_A, IDS_B])
  assert np.abs(told[0].q_values - told[1].q_values).min() > 0


@pytest.mark.parametrize('placement,router', [
    ('middle', 'softmoe'), ('middle', 'topk'), ('all', 'softmoe'), ('big', 'softmoe'),
    ('big', 'topk'),
])
def test_router_task_input_reaches_the_routers_and_nothing_else(placement, router):
  # Fails if the one-hot reaches an expert or SoftMoE's slots (the Q-values
  # would change with the id although the routers' one-hot rows are 0, and
  # the experts' first kernels would be wider), or misses a router.
  gin.bind_parameter('MoE.router', router)
  told = outputs_by_task(make(placement, task_id_input='router', **SMALL), [IDS_A, IDS_B])
  for name in told[0].router_probs:
    assert not np.allclose(told[0].router_probs[name], told[1].router_probs[name])
  with tf.Graph().as_default():
    network = make(placement, task_id_input='router', **SMALL)

    def zero_context_rows(sess):
      for layer in network.moe_layers():
        for weights in layer.router_context_weights():
          sess.run(weights.assign(tf.zeros_like(weights)))

    blind = outputs_by_task(network, [IDS_A, IDS_B], prepare=zero_context_rows)
    with tf.Graph().as_default():
      reference = make(placement, task_id_input='none', **SMALL)
      reference(tf.zeros([1, WIDTH, 1]))
  np.testing.assert_allclose(blind[0].q_values, blind[1].q_values, rtol=1e-6, atol=1e-7)
  for layer, plain in zip(network.moe_layers(), reference.moe_layers()):
    assert ([k.shape.as_list() for k in layer.experts.kernels[0]]
            == [k.shape.as_list() for k in plain.experts.kernels[0]])
    columns = plain.router_weights()[0].shape.as_list()[1]
    assert [w.shape.as_list() for w in layer.router_context_weights()] == [[T, columns]]


def parameters(placement, task_id_input, tokenization='per_pixel'):
  network = make(placement, tokenization, task_id_input=task_id_input)
  network(tf.zeros([1, WIDTH, 1]))
  return q_networks.count_parameters(network)


@pytest.mark.parametrize('placement,router,task_id_input,tokenization,extra', [
    # 'network': T more input channels of the conv.
    ('baseline', 'softmoe', 'network', 'per_pixel', 3 * 3 * T * F),
    # Big: every expert's conv, and the router's token (100 T values more).
    ('big', 'softmoe', 'network', 'per_pixel', N * 3 * 3 * T * F + 100 * T * N),
    # 'router': T rows more per router, n * p columns (SoftMoE) or n (TopK).
    ('middle', 'softmoe', 'router', 'per_pixel', T * N * 25),  # 100 tokens, p = 25.
    ('middle', 'topk', 'router', 'per_pixel', T * N),
    ('all', 'softmoe', 'router', 'per_pixel', T * N * 25 + T * N),
    ('big', 'softmoe', 'router', 'per_pixel', T * N),
])
def test_task_inputs_add_num_tasks_weights_to_each_layer_that_reads_them(
    placement, router, task_id_input, tokenization, extra):
  gin.bind_parameter('MoE.router', router)
  assert parameters(placement, task_id_input, tokenization) - parameters(
      placement, 'none', tokenization) == extra


def test_a_parameter_matched_baseline_counts_the_task_planes():
  # Fails if the matched width is found for the screen's C channels, not C + T.
  reference = make('big', task_id_input='network')
  reference(tf.zeros([1, WIDTH, 1]))
  goal = q_networks.count_parameters(reference)
  matched = make('baseline', parameter_matched_to='big', task_id_input='network')
  matched(tf.zeros([1, WIDTH, 1]))
  width = matched.hidden_units
  conv = 3 * 3 * (C + T) * F + F

  def count(w):
    return conv + dense(1600, w) + dense(w, A)

  assert q_networks.count_parameters(matched) == count(width)
  for other in (width - 1, width + 1):
    assert abs(count(other) - goal) >= abs(count(width) - goal)


@pytest.mark.parametrize('placement,kwargs,message', [
    ('baseline', {'task_id_in_observation': False},
     "MinAtarQNetwork.task_id_input='network' needs the task id in the observation"),
    ('baseline', {'task_id_input': 'router'},
     "MinAtarQNetwork.task_id_input='router' gives the task id to the routers, and "
     "placement='baseline' has no learned router"),
    ('separate', {'task_id_input': 'router'}, "placement='separate' has no learned router"),
])
def test_task_inputs_that_make_no_sense_are_refused_naming_the_binding(
    placement, kwargs, message):
  kwargs = dict({'task_id_input': 'network', 'task_id_in_observation': True}, **kwargs)
  with pytest.raises(config.ConfigError, match=message):
    mq.MinAtarQNetwork(A, placement=placement, num_tasks=T, **kwargs)


def test_conv_experts_match_the_convolution_and_train_on_an_empty_group():
  # A routed expert can get no token; oneDNN's convolution gradients fail on
  # an empty batch, which the experts must avoid.
  rng = np.random.default_rng(3)
  experts = mq.ConvExperts(2, (10, 10, 3), filters=5, kernel_size=3, hidden_units=(4,),
                           output_units=2)
  screens = rng.normal(size=(6, 10, 10, 3)).astype(np.float32)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    experts.build(tf.TensorShape([None, 300]))
    flat = tf.constant(screens.reshape(6, 300))
    outputs, hiddens = experts.call_groups([flat, flat[:0]])
    loss = tf.reduce_sum(outputs[0]) + tf.reduce_sum(outputs[1])
    gradients = tf.gradients(loss, experts.kernels[0] + experts.biases[0])
    sess.run(tf.compat.v1.global_variables_initializer())
    maps, empty_out, grads, kernel, bias = sess.run(
        (hiddens[0][0], outputs[1], gradients, experts.kernels[0][0], experts.biases[0][0]))
  assert empty_out.shape == (0, 2)
  assert maps.shape == (6, 100, 5)
  np.testing.assert_allclose(maps.reshape(6, 10, 10, 5),
                             numpy_conv(screens, kernel.reshape(3, 3, 3, 5), bias),
                             rtol=1e-4, atol=1e-4)
  assert np.abs(grads[0]).max() > 0
  assert not np.any(grads[1]) and not np.any(grads[3])  # The empty expert learns nothing.
