"""Time limits: the environment tells them from true ends, and the agent
stores them as terminal (Dopamine) or as episode ends it bootstraps through."""

import gin
import numpy as np
import pytest

from moe_dopamine.environments import multitask
from moe_dopamine.networks import q_networks
from tests.agents import common


@pytest.fixture(autouse=True)
def small_agent():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 2000)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 8)
  gin.bind_parameter('DQNAgent.network', q_networks.ClassicControlQNetwork)
  gin.bind_parameter('DQNAgent.min_replay_history', 5000)  # No training here.
  gin.bind_parameter('DQNAgent.update_horizon', 3)
  gin.bind_parameter('ClassicControlQNetwork.hidden_units', 8)


def test_a_time_limit_ends_the_episode_without_being_terminal():
  env = multitask.MultiTaskEnvironment(task_names=['MountainCar'], setting='crl', seed=0)
  env.reset()
  flags = [env.step(0)[2] for _ in range(600)]  # Pushing left never reaches the flag.
  assert env.game_over and not any(flags)
  env = multitask.MultiTaskEnvironment(task_names=['CartPole'], setting='crl', seed=0)
  env.reset()
  steps = 0
  while not env.game_over:
    _, _, terminal, _ = env.step(0)  # Always left: the pole falls.
    steps += 1
  assert terminal and steps < 500


def episode(time_limit_is_terminal, terminal):
  gin.bind_parameter('MoEDQNAgent.time_limit_is_terminal', time_limit_is_terminal)
  agent, env, observation = common.crl_agent(task_names=['MountainCar'], seed=0)
  for _ in range(20):
    observation, reward, _, _ = env.step(agent.action)
    agent.step(reward, observation)
  agent.end_episode(-1.0, terminal)
  memory = agent._replay.memory  # pylint: disable=protected-access
  last = memory.cursor() - 1
  observation = env.reset()  # The next episode, so that the cut is not the newest.
  agent.begin_episode(observation)
  for _ in range(10):
    observation, reward, _, _ = env.step(agent.action)
    agent.step(reward, observation)
  return memory, last


@pytest.mark.parametrize('time_limit_is_terminal', [True, False])
def test_the_last_transition_of_a_cut_episode(time_limit_is_terminal):
  memory, last = episode(time_limit_is_terminal, terminal=False)
  assert bool(memory._store['terminal'][last]) == time_limit_is_terminal  # pylint: disable=protected-access
  assert last in memory.episode_end_indices
  valid = memory._valid(np.arange(last - 4, last + 3))  # pylint: disable=protected-access
  if time_limit_is_terminal:
    # Windows that reach the terminal stop there: all valid.
    assert valid.all()
  else:
    # No 3-step window across the cut is valid: its return would mix episodes.
    np.testing.assert_array_equal(valid, [True, True, False, False, False, True, True])


def test_a_true_end_is_terminal_either_way():
  memory, last = episode(False, terminal=True)
  assert bool(memory._store['terminal'][last])  # pylint: disable=protected-access
