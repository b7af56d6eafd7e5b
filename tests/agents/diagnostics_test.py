"""The agent's measurements on replayed multi-task states."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.metrics import names
from moe_dopamine.networks import q_networks


@pytest.fixture(autouse=True)
def small_agent():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 500)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 16)
  gin.bind_parameter('DQNAgent.network', q_networks.ClassicControlQNetwork)
  gin.bind_parameter('ClassicControlQNetwork.hidden_units', 32)
  gin.bind_parameter('MoEDQNAgent.diagnostics_batch_size', 64)


def agent_with_replayed(placement, tasks_played):
  """An agent whose replay holds real transitions of the given task ids."""
  gin.bind_parameter('ClassicControlQNetwork.placement', placement)
  env = multitask.MultiTaskEnvironment(setting='mtrl', seed=0)
  sess = tf.compat.v1.Session()
  agent = factory.create_agent(sess, env)
  sess.run(tf.compat.v1.global_variables_initializer())
  rng = np.random.RandomState(0)
  for task in tasks_played:
    env.set_eval_task(task)
    observation = env.reset()
    for _ in range(40):
      action = rng.choice(np.flatnonzero(env.action_masks[task]))
      next_observation, reward, done, _ = env.step(action)
      agent._replay.add(observation[:, None], action, reward, done)
      observation = env.reset() if done else next_observation
  return agent


def test_per_task_usage_of_task_id_routing_from_replayed_states():
  agent = agent_with_replayed('separate', tasks_played=[0, 1])
  stats = agent.measure()
  np.testing.assert_array_equal(stats[names.expert_usage('CartPole', 'big')], [1.0, 0.0])
  np.testing.assert_array_equal(stats[names.expert_usage('MountainCar', 'big')], [0.0, 1.0])
  assert stats[names.unused_experts('big')] == 0.0


def test_an_expert_no_state_reaches_is_unused_not_dormant():
  agent = agent_with_replayed('separate', tasks_played=[0])  # CartPole only.
  stats = agent.measure()
  assert stats[names.unused_experts('big')] == 0.5
  assert names.dormant_fraction(0.0, 'big/expert_0/hidden_0') in stats
  assert names.dormant_fraction(0.0, 'big/expert_1/hidden_0') not in stats
  assert names.expert_usage('MountainCar', 'big') not in stats


def test_target_sync_copies_a_frozen_random_router():
  gin.bind_parameter('MoE.router', 'random')
  agent = agent_with_replayed('big', tasks_played=[0])
  online = agent.online_convnet.big_moe.router_kernel
  target = agent.target_convnet.big_moe.router_kernel
  assert online not in agent.online_convnet.trainable_weights
  sess = agent._sess
  assert not np.allclose(*sess.run([online, target]))  # Separate random inits.
  agent._run_sync()
  np.testing.assert_array_equal(*sess.run([online, target]))
