"""The fast training path learns exactly what stock Dopamine's DQNAgent does.

From the same weights, replay contents and sampled indices, one training
step of MoEDQNAgent (vectorized replay, fed train op, callables) and one of
Dopamine's DQNAgent give the same weights, the same target sync and the same
greedy actions.
"""

from dopamine.tf.agents.dqn import dqn_agent
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.networks import q_networks

OBS = (4, 1)
INDICES = np.array([3, 17, 17, 40, 55, 8, 99, 120])


def build(agent_cls, seed):
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(seed)
    sess = tf.compat.v1.Session()
    agent = agent_cls(
        sess, num_actions=2, network=q_networks.ClassicControlQNetwork,
        observation_shape=OBS, observation_dtype=tf.float32, stack_size=1,
        min_replay_history=20, update_period=1, target_update_period=2,
        epsilon_fn=lambda *unused: 0.0, epsilon_eval=0.0,
        optimizer=tf.compat.v1.train.AdamOptimizer(1e-3, epsilon=3.125e-4),
    )
    sess.run(tf.compat.v1.global_variables_initializer())
  rng = np.random.RandomState(0)
  for i in range(150):
    agent._replay.add(rng.uniform(-1, 1, OBS).astype(np.float32), i % 2,
                      rng.normal(), i % 37 == 36)
  # Both sample these indices (Dopamine's sampler draws them itself).
  agent._replay.memory.sample_index_batch = lambda batch_size: INDICES[:batch_size]
  return graph, sess, agent


def weights(sess, agent):
  return sess.run(agent.online_convnet.weights), sess.run(agent.target_convnet.weights)


def test_one_training_step_matches_stock_dopamine():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 200)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 8)
  stock_graph, stock_sess, stock = build(dqn_agent.DQNAgent, seed=1)
  fast_graph, fast_sess, fast = build(moe_dqn_agent.MoEDQNAgent, seed=2)
  # Same starting weights: copy the stock agent's into ours.
  online, target = weights(stock_sess, stock)
  with fast_graph.as_default():
    for variable, value in zip(fast.online_convnet.weights + fast.target_convnet.weights,
                               online + target):
      variable.load(value, fast_sess)
  assert all(np.array_equal(a, b) for a, b in zip(weights(fast_sess, fast)[0], online))

  states = np.random.RandomState(3).uniform(-1, 1, (20, 1) + OBS + (1,)).astype(np.float32)
  for step in range(4):  # Training steps 0..3: trains every step, syncs at 0 and 2.
    stock.training_steps = fast.training_steps = step
    stock._train_step()
    fast._train_step()
    for name, a, b in zip(('online', 'target'), weights(stock_sess, stock),
                          weights(fast_sess, fast)):
      for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=f'{name} step {step}')
    assert not np.array_equal(weights(fast_sess, fast)[0][0], online[0])  # It learned.
    with stock_graph.as_default():
      stock_actions = [stock_sess.run(stock._q_argmax, {stock.state_ph: s}) for s in states]
    fast_actions = [fast._greedy_action(s) for s in states]
    assert stock_actions == fast_actions
