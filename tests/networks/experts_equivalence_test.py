"""The experts' fast paths against the formulations they replace.

SoftMoE's experts (every expert on its own slots) once stacked every expert's
kernels into [n, d_in, d_out] and ran one batched matmul; each expert now runs
its own matmuls on its group of slots (`Experts.call_groups`), and the dense
layers add their biases with bias_add (so TensorFlow fuses MatMul, BiasAdd
and Relu). With one token per sample, SoftMoE runs each expert once on the
tokens (`MoE._soft_route_one_token`) and whole conv experts on the same
screens run one convolution (`ConvExperts.call_shared`).
Each test builds one network, calls it once with the package's experts and
once more, on the same variables and inputs, with the stacked formulation
patched in, and compares Q-values, every hidden activation, the auxiliary
losses and the gradients of every trainable variable, for every placement,
router and tokenization, with TopK's capacity dropping tokens and router noise
on (the noise is made deterministic, the same draw in both calls).
"""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.networks import minatar_q_networks as mq
from moe_dopamine.networks import moe
from moe_dopamine.networks import q_networks
from moe_dopamine.networks import routers
from tests.networks import numpy_networks


def stacked_dense(experts, x, start, hiddens):
  """Layers start.. of every expert as one batched matmul over the stacked
  kernels, x [n, s, d]; hiddens[j] is [n, s, h]."""
  for i in range(start, len(experts.kernels)):
    x = tf.matmul(x, tf.stack(experts.kernels[i])) + tf.stack(experts.biases[i])[:, None, :]
    if i < len(experts.kernels) - 1:
      x = tf.nn.relu(x)
      hiddens.append(x)
  return x, hiddens


def per_expert(hiddens, n):
  """[j][n, s, h] -> [e][j] [s, h]."""
  return [[h[e] for h in hiddens] for e in range(n)]


def stacked_groups(call_stacked, original):
  """call_groups running equal-size groups (SoftMoE's slots: nonempty) as
  one stacked computation call_stacked(self, [n, s, d]); routed groups as
  `original`."""
  def call_groups(self, groups, nonempty=False):
    if not nonempty:
      return original(self, groups, nonempty)
    out, hiddens = call_stacked(self, tf.stack(groups))
    return tf.unstack(out, num=self.num_experts), hiddens
  return call_groups


def stacked_call_all(self, x):
  out, hiddens = stacked_dense(self, x, 0, [])
  return out, per_expert(hiddens, self.num_experts)


def stacked_conv_call_all(self, x):
  n, positions = self.num_experts, self.screen_shape[0] * self.screen_shape[1]
  patches = numpy_networks.conv_patches(tf.reshape(x, [-1] + list(self.screen_shape)),
                                        self.kernel_size)
  patches = tf.reshape(patches, [n, -1, int(patches.shape[-1])])
  maps = tf.nn.relu(
      tf.matmul(patches, tf.stack(self.kernels[0])) + tf.stack(self.biases[0])[:, None, :]
  )
  maps = tf.reshape(maps, [n, -1, positions, self.filters])
  out, hiddens = stacked_dense(self, tf.reshape(maps, [n, -1, positions * self.filters]), 1,
                               [maps])
  return out, per_expert(hiddens, n)


def added_dense_one(self, e, x, start, hiddens):
  for i in range(start, len(self.kernels)):
    x = tf.matmul(x, self.kernels[i][e]) + self.biases[i][e]
    if i < len(self.kernels) - 1:
      x = tf.nn.relu(x)
      hiddens.append(x)
  return x, hiddens


def added_feature_maps(self, flat, kernel, bias, nonempty=False):  # pylint: disable=unused-argument
  patches = numpy_networks.conv_patches(tf.reshape(flat, [-1] + list(self.screen_shape)),
                                        self.kernel_size)
  return tf.nn.relu(tf.tensordot(patches, kernel, 1) + bias)


def the_same_noise(layer, logits, training):
  """Router noise as a fixed function of the logits' shape: both calls draw
  the same values, and they are not zero."""
  if layer.noise_std > 0 and training:
    noise = tf.random.stateless_normal(tf.shape(logits), seed=[1, 2])
    logits += noise * (layer.noise_std / layer.num_experts)
  return logits


def outputs_and_gradients(network, state, diagnostics):
  output = network(state, training=True, diagnostics=diagnostics)
  weights = tf.constant(
      np.random.default_rng(1).normal(size=(1, network.num_actions)).astype(np.float32))
  loss = tf.reduce_sum(output.q_values * weights) + tf.add_n(
      [tf.constant(0.0)] + list(output.aux_losses.values()))
  variables = network.trainable_variables
  gradients = tf.gradients(loss, variables)
  return {
      'q_values': output.q_values,
      'activations': output.activations,
      'routed': output.routed_activations,
      'aux_losses': output.aux_losses,
      'gradients': {v.name: g for v, g in zip(variables, gradients) if g is not None},
  }


def _close(new, old, what):
  """Equal to 1e-5 of the array's scale: a gradient summed over a batch of
  products differs in its last bits with the summation order (oneDNN's
  kernels and Eigen's sum in different orders), by about 1e-6 of the
  summands' magnitude, which an element that nearly cancels shows as a
  large relative error."""
  old = np.asarray(old)
  scale = max(float(np.abs(old).max()) if old.size else 0.0, 1.0)
  np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


def compare_with_stacked(monkeypatch, network, states, diagnostics=False, sparsity=0.5):
  def stacked():
    monkeypatch.setattr(moe.Experts, 'call_groups',
                        stacked_groups(stacked_call_all, moe.Experts.call_groups))
    monkeypatch.setattr(moe.Experts, 'dense_one', added_dense_one)
    monkeypatch.setattr(mq.ConvExperts, 'call_groups',
                        stacked_groups(stacked_conv_call_all, mq.ConvExperts.call_groups))
    monkeypatch.setattr(mq.ConvExperts, '_feature_maps', added_feature_maps)
    for layer in network.moe_layers():  # The slot computation for every m.
      layer.general_soft_route = True
    monkeypatch.setattr(mq.ConvExperts, 'call_shared', moe.Experts.call_shared)

  return compare_paths(monkeypatch, network, states, stacked, diagnostics, sparsity=sparsity)


def _row_means(value):
  """An activation [rows, ...] as its per-unit mean over rows."""
  value = np.asarray(value)
  return value.reshape(value.shape[0], -1).mean(axis=0) if value.ndim > 1 else value


def compare_paths(monkeypatch, network, states, switch, diagnostics=False,
                  activation_means=False, sparsity=0.5):
  """The network's outputs, activations, losses and gradients, then the same
  after switch() (patches to the formulation compared), on the same
  variables and states: equal to 1e-5. `activation_means`: compare each
  activation's per-unit mean over its rows (a path that holds a slot's
  rows once rather than p times). `sparsity`: the soft-to-sparse layers' s."""
  monkeypatch.setattr(routers, 'noisy', the_same_noise)
  state = tf.compat.v1.placeholder(tf.float32, (None,) + states.shape[1:])
  new = outputs_and_gradients(network, state, diagnostics)
  switch()
  old = outputs_and_gradients(network, state, diagnostics)
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  numpy_networks.randomize(sess, network, sparsity=sparsity)
  new, old = sess.run((new, old), {state: states})
  assert new['gradients'].keys() == old['gradients'].keys()
  assert len(new['gradients']) == len(network.trainable_variables)
  for field in ('activations', 'routed', 'aux_losses', 'gradients'):
    assert new[field].keys() == old[field].keys(), field
    for name in new[field]:
      a, b = new[field][name], old[field][name]
      if activation_means and field != 'gradients':
        a, b = _row_means(a), _row_means(b)
      _close(a, b, f'{field} {name}')
  _close(new['q_values'], old['q_values'], 'q_values')
  assert np.abs(new['q_values']).max() > 0
  return new


def classic_states(count=16, seed=0):
  """[count, 5, 1]: four features in [-1, 1], then task id 0 or 1."""
  rng = np.random.default_rng(seed)
  states = np.zeros((count, 5, 1), np.float32)
  states[:, :4, 0] = rng.uniform(-1, 1, (count, 4))
  states[:, 4, 0] = np.arange(count) % 2
  return states


ROUTER_SETTINGS = {
    'softmoe': {},
    'softmoe_normalized_noisy': {'MoE.normalize_tokens': True, 'MoE.noise_std': 1.0},
    'topk': {'MoE.k': 2},
    'topk_dropping_noisy': {'MoE.k': 2, 'MoE.topk_capacity_factor': 0.5, 'MoE.noise_std': 1.0},
    'random': {'MoE.k': 1},
    'soft_to_sparse': {'MoE.k': 2},
}


def bind_router(setting):
  gin.bind_parameter('MoE.router', setting.split('_dropping')[0].split('_normalized')[0])
  for name, value in ROUTER_SETTINGS[setting].items():
    gin.bind_parameter(name, value)


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
@pytest.mark.parametrize('setting', sorted(ROUTER_SETTINGS))
def test_classic_control_experts_match_the_stacked_formulation(monkeypatch, placement, setting):
  bind_router(setting)
  network = q_networks.ClassicControlQNetwork(
      3, placement=placement, num_experts=4, hidden_units=16, expert_hidden_units=8,
      num_tokens=4 if placement == 'middle' else 1, num_tasks=2,
      task_id_in_observation=True)
  compare_with_stacked(monkeypatch, network, classic_states())


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
def test_hardcoded_and_diagnostics_match_the_stacked_formulation(monkeypatch, placement):
  # Diagnostics run every expert on every token (the sparse routers' path
  # through call_groups of the whole batch).
  gin.bind_parameter('MoE.router', 'hardcoded')
  network = q_networks.ClassicControlQNetwork(
      3, placement=placement, num_experts=2, hidden_units=16, expert_hidden_units=8,
      num_tasks=2, task_id_in_observation=True)
  new = compare_with_stacked(monkeypatch, network, classic_states(), diagnostics=True)
  assert new['routed']


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
def test_fully_sparse_soft_to_sparse_matches_the_stacked_formulation(monkeypatch, placement):
  # At s = 1 the router computes only the chosen experts (the routed path).
  bind_router('soft_to_sparse')
  network = q_networks.ClassicControlQNetwork(
      3, placement=placement, num_experts=4, hidden_units=16, expert_hidden_units=8,
      num_tokens=4 if placement == 'middle' else 1, num_tasks=2,
      task_id_in_observation=True)
  compare_with_stacked(monkeypatch, network, classic_states(), sparsity=1.0)


def test_topk_diagnostics_match_the_stacked_formulation(monkeypatch):
  bind_router('topk_dropping_noisy')
  network = q_networks.ClassicControlQNetwork(
      3, placement='all', num_experts=4, hidden_units=16, expert_hidden_units=8,
      num_tasks=2, task_id_in_observation=True)
  compare_with_stacked(monkeypatch, network, classic_states(), diagnostics=True)


def minatar_states(count=6, seed=0):
  """[count, 10 * 10 * 4 + 1, 1]: random binary screens, then a game id."""
  rng = np.random.default_rng(seed)
  screens = (rng.uniform(size=(count, 400)) < 0.3).astype(np.float32)
  ids = (np.arange(count) % 3).astype(np.float32)
  return np.concatenate([screens, ids[:, None]], axis=1)[..., None]


@pytest.mark.parametrize('placement,tokenization', [
    ('middle', 'per_pixel'), ('middle', 'per_feature_map'), ('middle', 'per_sample'),
    ('all', 'per_pixel'), ('all', 'per_feature_map'), ('all', 'per_sample'),
    ('final', 'per_pixel'), ('big', 'per_pixel'),
])
@pytest.mark.parametrize('setting', ['softmoe', 'topk_dropping_noisy', 'soft_to_sparse',
                                     'random'])
def test_minatar_experts_match_the_stacked_formulation(
    monkeypatch, placement, tokenization, setting):
  bind_router(setting)
  network = mq.MinAtarQNetwork(
      6, placement=placement, tokenization=tokenization, num_experts=3, filters=4,
      hidden_units=16, expert_hidden_units=8, num_tasks=3, task_id_in_observation=True)
  compare_with_stacked(monkeypatch, network, minatar_states())


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
def test_minatar_hardcoded_matches_the_stacked_formulation(monkeypatch, placement):
  gin.bind_parameter('MoE.router', 'hardcoded')
  network = mq.MinAtarQNetwork(
      6, placement=placement, num_experts=3, filters=4, hidden_units=16,
      expert_hidden_units=8, num_tasks=3, task_id_in_observation=True)
  compare_with_stacked(monkeypatch, network, minatar_states(), diagnostics=True)


def general_soft_route(monkeypatch, network):
  """switch(): every MoE layer computes SoftMoE's slots for one token as for
  any m (dispatch product, then each expert on its own slots), each conv
  expert with its own convolution."""
  def switch():
    for layer in network.moe_layers():
      layer.general_soft_route = True
    monkeypatch.setattr(mq.ConvExperts, 'call_shared', moe.Experts.call_shared)
  return switch


@pytest.mark.parametrize('placement', ['middle', 'final', 'all', 'big'])
@pytest.mark.parametrize('setting', ['softmoe', 'softmoe_normalized_noisy'])
@pytest.mark.parametrize('capacity_factor', [1.0, 8.0])  # p = 1 and p = 2 slots per expert.
@pytest.mark.parametrize('task_id_input', ['none', 'router'])
def test_one_token_softmoe_matches_the_slot_computation_classic(
    monkeypatch, placement, setting, capacity_factor, task_id_input):
  bind_router(setting)
  gin.bind_parameter('MoE.capacity_factor', capacity_factor)
  network = q_networks.ClassicControlQNetwork(
      3, placement=placement, num_experts=4, hidden_units=16, expert_hidden_units=8,
      num_tokens=1, num_tasks=2, task_id_in_observation=True, task_id_input=task_id_input)
  compare_paths(monkeypatch, network, classic_states(), general_soft_route(monkeypatch, network),
                diagnostics=True, activation_means=capacity_factor > 1)


@pytest.mark.parametrize('placement,tokenization', [
    ('big', 'per_pixel'), ('middle', 'per_sample'), ('all', 'per_sample')])
@pytest.mark.parametrize('setting', ['softmoe', 'softmoe_normalized_noisy'])
@pytest.mark.parametrize('capacity_factor', [1.0, 6.0])
def test_one_token_softmoe_matches_the_slot_computation_minatar(
    monkeypatch, placement, tokenization, setting, capacity_factor):
  bind_router(setting)
  gin.bind_parameter('MoE.capacity_factor', capacity_factor)
  network = mq.MinAtarQNetwork(
      6, placement=placement, tokenization=tokenization, num_experts=3, filters=4,
      hidden_units=16, expert_hidden_units=8, num_tasks=3, task_id_in_observation=True)
  compare_paths(monkeypatch, network, minatar_states(), general_soft_route(monkeypatch, network),
                diagnostics=True, activation_means=capacity_factor > 1)


@pytest.mark.parametrize('router', ['topk', 'hardcoded'])
def test_conv_experts_on_shared_screens_match_one_convolution_each(monkeypatch, router):
  # The sparse routers' diagnostics run every expert on every screen.
  gin.bind_parameter('MoE.router', router)
  network = mq.MinAtarQNetwork(
      6, placement='big', num_experts=3, filters=4, hidden_units=16, num_tasks=3,
      task_id_in_observation=True)
  new = compare_paths(
      monkeypatch, network, minatar_states(),
      lambda: monkeypatch.setattr(mq.ConvExperts, 'call_shared', moe.Experts.call_shared),
      diagnostics=True)
  assert new['routed']
