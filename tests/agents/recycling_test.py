"""ReDo through MoEDQNAgent: what changes, what does not, and the neuron lives."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.metrics import dormant
from moe_dopamine.metrics import names
from moe_dopamine.agents import recycling
from moe_dopamine.networks import minatar_q_networks
from moe_dopamine.networks import q_networks

NEURON = 7  # The neuron of hidden_0 that is killed, then recycled.


@pytest.fixture(autouse=True)
def small_replay():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 1000)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 16)
  gin.bind_parameter('ClassicControlQNetwork.placement', 'middle')
  gin.bind_parameter('ClassicControlQNetwork.num_experts', 2)
  gin.bind_parameter('ClassicControlQNetwork.hidden_units', 32)
  gin.bind_parameter('ClassicControlQNetwork.expert_hidden_units', 16)


def make_agent(sess):
  tf.compat.v1.set_random_seed(0)  # Initial weights, replay sampling aside.
  agent = moe_dqn_agent.MoEDQNAgent(
      sess,
      num_actions=2,
      network=q_networks.ClassicControlQNetwork,
      observation_shape=(4, 1),
      observation_dtype=tf.float32,
      stack_size=1,
      min_replay_history=10,
      update_period=1,
      redo_period=1000,  # Only when the test calls it.
      redo_tau=0.0,
      diagnostics_batch_size=64,
      optimizer=tf.compat.v1.train.AdamOptimizer(1e-3),
  )
  sess.run(tf.compat.v1.global_variables_initializer())
  rng = np.random.RandomState(0)
  for i in range(200):
    agent._replay.add(rng.uniform(-1, 1, (4, 1)), i % 2, 1.0, False)
  for _ in range(5):  # Adam moments become non-zero everywhere.
    sess.run(agent._train_op)
  return agent


def test_recycling_a_dead_neuron_touches_only_its_weights_and_revives_it():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    net = agent.online_convnet
    dense0 = net.stack[0][1]
    first_kernels = [k for k in net.stack[1][1].experts.kernels[0]]
    phi = net.stack[1][1].phi
    # Kill the neuron: its pre-activation is negative for every input.
    kernel = sess.run(dense0.kernel)
    kernel[:, NEURON] = 0.0
    sess.run(dense0.kernel.assign(kernel))
    sess.run(dense0.bias[NEURON].assign(-5.0))
    states = agent._sample_states()
    before_acts = agent._diagnostics.run(states, agent._diagnostics.fetches['activations'])
    assert dormant.dormant_mask(before_acts['hidden_0'], 0.0)[NEURON]

    watched = [dense0.kernel, dense0.bias, phi] + first_kernels
    before = sess.run(watched)
    adam = agent.optimizer
    slots_before = sess.run(adam.get_slot(dense0.kernel, 'm'))
    masks = {'hidden_0': dormant.dormant_mask(before_acts['hidden_0'], 0.0)}
    assert masks['hidden_0'].sum() >= 1
    agent._diagnostics.recycler.recycle(sess, masks)
    after = sess.run(watched)
    recycled = np.flatnonzero(masks['hidden_0'])
    kept = np.flatnonzero(~masks['hidden_0'])

    # Incoming weights re-initialized, other columns untouched.
    assert np.abs(after[0][:, NEURON]).sum() > 0
    np.testing.assert_array_equal(after[0][:, kept], before[0][:, kept])
    # Bias zeroed.
    np.testing.assert_array_equal(after[1][recycled], 0.0)
    np.testing.assert_array_equal(after[1][kept], before[1][kept])
    # Outgoing weights zeroed: the router's row and every expert's first row.
    for new, old in zip(after[2:], before[2:]):
      np.testing.assert_array_equal(new[recycled], 0.0)
      np.testing.assert_array_equal(new[kept], old[kept])
    # Adam's moments of those weights reset, the others kept.
    slots_after = sess.run(adam.get_slot(dense0.kernel, 'm'))
    np.testing.assert_array_equal(slots_after[:, recycled], 0.0)
    np.testing.assert_array_equal(slots_after[:, kept], slots_before[:, kept])
    # The recycled neuron is active again.
    after_acts = agent._diagnostics.run(states, agent._diagnostics.fetches['activations'])
    assert dormant.neuron_scores(after_acts['hidden_0'])[NEURON] > 0.0


def test_expert_hidden_layers_are_recyclable_too():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    layer_names = [layer.name for layer in agent._diagnostics.recycler.layers]
    # Middle's hidden_1 is the MoE's linear output: not a neuron, not recycled.
    assert layer_names == [
        'hidden_1/expert_0/hidden_0', 'hidden_1/expert_1/hidden_0', 'hidden_0',
    ]
    # Kill two neurons of expert 1's hidden layer: exactly those are recycled.
    kernel = agent.online_convnet.stack[1][1].experts.kernels[0][1]
    bias = agent.online_convnet.stack[1][1].experts.biases[0][1]
    value = sess.run(kernel)
    value[:, [3, 9]] = 0.0
    sess.run([kernel.assign(value), bias[3].assign(-1.0), bias[9].assign(-1.0)])
    states = agent._sample_states()
    activations = agent._diagnostics.run(states, agent._diagnostics.fetches['activations'])
    expected = sum(
        int(dormant.dormant_mask(activations[layer.name], 0.0).sum())
        for layer in agent._diagnostics.recycler.layers
    )
    assert expected >= 2
    assert agent.recycle_dormant_neurons(states) == expected
    assert agent.collect_diagnostics() == [{names.REDO_RECYCLED: expected}]
    assert agent.collect_diagnostics() == []  # Handed over once.
    assert np.abs(sess.run(kernel)[:, [3, 9]]).sum() > 0


def test_every_recycling_draws_fresh_incoming_weights():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    dense0 = agent.online_convnet.stack[0][1]
    mask = np.zeros(32, bool)
    mask[NEURON] = True
    agent._diagnostics.recycler.recycle(sess, {'hidden_0': mask})
    first = sess.run(dense0.kernel)[:, NEURON]
    agent._diagnostics.recycler.recycle(sess, {'hidden_0': mask})
    second = sess.run(dense0.kernel)[:, NEURON]
    assert np.abs(first).sum() > 0 and np.abs(second).sum() > 0
    assert not np.allclose(first, second)
    limit = np.sqrt(6.0 / (4 + 32))  # Glorot uniform for a 4 x 32 kernel.
    assert np.abs(np.concatenate([first, second])).max() <= limit


def test_edits_of_one_variable_in_two_roles_all_land():
  # An expert's first kernel reads hidden_0 (rows) and feeds the expert's
  # hidden layer (columns): recycling both at once must do both.
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    moe_layer = agent.online_convnet.stack[1][1]
    kernel = moe_layer.experts.kernels[0][0]  # [32, 16]
    before = sess.run(kernel)
    rows = np.zeros(32, bool)
    rows[[1, 5]] = True
    columns = np.zeros(16, bool)
    columns[[2]] = True
    for _ in range(20):  # Separate assigns would race; repeat to catch it.
      sess.run(kernel.assign(before))
      agent._diagnostics.recycler.recycle(sess, {'hidden_0': rows, 'hidden_1/expert_0/hidden_0': columns})
      after = sess.run(kernel)
      np.testing.assert_array_equal(after[rows], 0.0)
      assert not np.allclose(after[~rows][:, columns], before[~rows][:, columns])
      np.testing.assert_array_equal(after[~rows][:, ~columns], before[~rows][:, ~columns])


def test_measure_reports_every_hidden_layer_and_the_router():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    stats = agent.measure()
    for layer in ('hidden_0', 'hidden_1/expert_0/hidden_0'):
      assert f'dormant_fraction_tau0.025/{layer}' in stats
    # The MoE's linear output is not scored; the units say what was.
    assert 'dormant_fraction_tau0.025/hidden_1' not in stats
    assert stats['dormant_units/hidden_0'] == 32
    assert stats['dormant_units/hidden_1/expert_0/hidden_0'] == 16
    assert stats['dormant_units'] == 32 + 2 * 16
    assert len(stats['expert_usage_task/hidden_1']) == 2
    assert sum(stats['expert_usage_task/hidden_1']) == pytest.approx(1.0)
    assert stats['router_grad/hidden_1'] > 0


FILTER = 5  # The conv filter that is killed, then recycled.
SCREEN = (10, 10, 4)  # One MinAtar game of 4 channels.


def make_minatar_agent(sess, placement, tokenization='per_pixel'):
  gin.bind_parameter('MinAtarQNetwork.placement', placement)
  gin.bind_parameter('MinAtarQNetwork.tokenization', tokenization)
  gin.bind_parameter('MinAtarQNetwork.num_experts', 2)
  gin.bind_parameter('MinAtarQNetwork.hidden_units', 32)
  gin.bind_parameter('MinAtarQNetwork.expert_hidden_units', 8)
  tf.compat.v1.set_random_seed(0)
  width = int(np.prod(SCREEN))
  agent = moe_dqn_agent.MoEDQNAgent(
      sess, num_actions=3, network=minatar_q_networks.MinAtarQNetwork,
      observation_shape=(width, 1), observation_dtype=tf.float32, stack_size=1,
      min_replay_history=10, update_period=1, redo_period=1000, redo_tau=0.0,
      diagnostics_batch_size=32, optimizer=tf.compat.v1.train.AdamOptimizer(1e-3),
  )
  sess.run(tf.compat.v1.global_variables_initializer())
  rng = np.random.RandomState(0)
  for i in range(100):
    agent._replay.add((rng.uniform(size=(width, 1)) < 0.3).astype(np.float32), i % 3, 1.0, False)
  for _ in range(5):  # Adam moments become non-zero everywhere.
    sess.run(agent._train_op)
  return agent


def conv_of(net, placement):
  """(layer name, kernel with filters on its last axis, bias, the dense
  kernel reading the flattened maps)."""
  if placement == 'big':
    experts = net.big_moe.experts
    return names.expert_hidden('big', 1, 0), experts.kernels[0][1], experts.biases[0][1], \
        experts.kernels[1][1]
  return 'conv_0', net.conv.kernel, net.conv.bias, net.hidden.kernel


@pytest.mark.parametrize('placement', ['baseline', 'big'])
def test_a_dead_filter_is_recycled_at_every_position_it_feeds(placement):
  with tf.compat.v1.Session() as sess:
    agent = make_minatar_agent(sess, placement)
    name, kernel, bias, reader = conv_of(agent.online_convnet, placement)
    value = sess.run(kernel)
    value[..., FILTER] = 0.0
    sess.run([kernel.assign(value), bias[FILTER].assign(-5.0)])
    states = agent._sample_states()
    acts = agent._diagnostics.run(states, agent._diagnostics.fetches['activations'])
    mask = dormant.dormant_mask(acts[name], 0.0)
    assert mask[FILTER] and mask.sum() == 1
    before = sess.run([kernel, bias, reader])
    slots_before = sess.run(agent.optimizer.get_slot(reader, 'm'))
    agent._diagnostics.recycler.recycle(sess, {name: mask})
    after = sess.run([kernel, bias, reader])
    kept = [f for f in range(before[0].shape[-1]) if f != FILTER]
    # Fresh incoming weights within the conv's Glorot limit; others untouched.
    k, c = 3, SCREEN[-1]
    limit = np.sqrt(6.0 / (k * k * c + k * k * 16))
    fresh = after[0][..., FILTER]
    assert np.abs(fresh).max() > 0 and np.abs(fresh).max() <= limit
    np.testing.assert_array_equal(after[0][..., kept], before[0][..., kept])
    assert after[1][FILTER] == 0.0
    np.testing.assert_array_equal(after[1][kept], before[1][kept])
    # Outgoing: row p * 16 + FILTER of the flattened maps, for all 100 p.
    rows = np.arange(100) * 16 + FILTER
    np.testing.assert_array_equal(after[2][rows], 0.0)
    others = np.setdiff1d(np.arange(1600), rows)
    np.testing.assert_array_equal(after[2][others], before[2][others])
    slots_after = sess.run(agent.optimizer.get_slot(reader, 'm'))
    np.testing.assert_array_equal(slots_after[rows], 0.0)
    np.testing.assert_array_equal(slots_after[others], slots_before[others])
    acts = agent._diagnostics.run(states, agent._diagnostics.fetches['activations'])
    assert dormant.neuron_scores(acts[name])[FILTER] > 0.0  # Alive again.


def test_a_recycled_filter_of_a_per_pixel_moe_loses_its_row_in_every_expert_and_the_router():
  with tf.compat.v1.Session() as sess:
    agent = make_minatar_agent(sess, 'middle', 'per_pixel')
    net = agent.online_convnet
    readers = list(net.hidden.experts.kernels[0]) + list(net.hidden.router_weights())
    assert readers[0].shape[0] == 16  # A token is one position's 16 channels.
    before = sess.run(readers)
    mask = np.zeros(16, bool)
    mask[FILTER] = True
    agent._diagnostics.recycler.recycle(sess, {'conv_0': mask})
    for new, old in zip(sess.run(readers), before):
      np.testing.assert_array_equal(new[FILTER], 0.0)
      np.testing.assert_array_equal(np.delete(new, FILTER, 0), np.delete(old, FILTER, 0))


def test_glorot_fans_count_a_conv_kernels_receptive_field():
  assert recycling.glorot_fans((512, 256)) == (512, 256)
  assert recycling.glorot_fans((3, 3, 4, 16)) == (36, 144)
