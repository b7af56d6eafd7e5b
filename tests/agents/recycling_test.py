"""ReDo through MoEDQNAgent: what changes, what does not, and the neuron lives."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.metrics import dormant
from moe_dopamine.metrics import names
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
    assert layer_names == [
        'hidden_1/expert_0/hidden_0', 'hidden_1/expert_1/hidden_0',
        'hidden_0', 'hidden_1',
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
    for layer in ('hidden_0', 'hidden_1', 'hidden_1/expert_0/hidden_0'):
      assert f'dormant_fraction_tau0.025/{layer}' in stats
    assert len(stats['expert_usage_task/hidden_1']) == 2
    assert sum(stats['expert_usage_task/hidden_1']) == pytest.approx(1.0)
    assert stats['router_grad/hidden_1'] > 0
