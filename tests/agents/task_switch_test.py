"""What the agent does at a CRL task switch: the epsilon schedule and the replay."""

import random

from dopamine.tf.agents.dqn import dqn_agent
import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.networks import q_networks
from tests.agents import common

WARMUP = 10
DECAY = 100


@pytest.fixture(autouse=True)
def small_agent():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 500)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 8)
  gin.bind_parameter('DQNAgent.network', q_networks.ClassicControlQNetwork)
  gin.bind_parameter('DQNAgent.min_replay_history', WARMUP)
  gin.bind_parameter('DQNAgent.update_period', 1)
  gin.bind_parameter('DQNAgent.epsilon_fn', dqn_agent.linearly_decaying_epsilon)
  gin.bind_parameter('DQNAgent.epsilon_decay_period', DECAY)
  gin.bind_parameter('DQNAgent.epsilon_train', 0.01)
  gin.bind_parameter('ClassicControlQNetwork.hidden_units', 16)


def make_agent(**bindings):
  for key, value in bindings.items():
    gin.bind_parameter(f'MoEDQNAgent.{key}', value)
  return common.crl_agent()


def expected_epsilon(steps_since_start):
  """Dopamine's linear decay: 1 during the warm-up, then down to 0.01."""
  left = DECAY + WARMUP - steps_since_start
  bonus = np.clip((1.0 - 0.01) * left / DECAY, 0.0, 1.0 - 0.01)
  return 0.01 + bonus


def epsilon_now(agent):
  fn = agent.epsilon_fn
  return fn(agent.epsilon_decay_period, agent.training_steps - agent._epsilon_start,  # pylint: disable=protected-access
            agent.min_replay_history, agent.epsilon_train)


def marked(observation, value):
  """The observation with every feature set to `value`, the task id kept."""
  out = np.array(observation, copy=True)
  out.reshape(-1)[:-1] = value
  return out


def features(states):
  """The features of a batch of states (the task id, last, left out)."""
  return np.asarray(states).reshape(len(states), -1)[:, :-1]


def run_steps(agent, observation, steps):
  for _ in range(steps):
    agent.step(-1.0, observation)


@pytest.mark.parametrize('restart', [False, True])
def test_the_epsilon_schedule_restarts_at_a_task_switch_only_if_asked(restart, monkeypatch):
  agent, _, observation = make_agent(restart_epsilon_on_task_switch=restart)
  run_steps(agent, observation, 150)
  assert epsilon_now(agent) == pytest.approx(0.01)
  agent.on_task_switch()
  # The epsilon _select_action compares its draw with (always greedy here).
  monkeypatch.setattr(random, 'random', lambda: 2.0)
  seen = []
  original = agent.epsilon_fn

  def spy(decay, step, warmup, epsilon):
    value = original(decay, step, warmup, epsilon)
    seen.append(value)
    return value

  agent.epsilon_fn = spy
  for _ in range(30):
    agent.step(-1.0, observation)
  since = 30 if restart else 180  # Steps since the schedule's start.
  assert seen[-1] == pytest.approx(expected_epsilon(since))
  if restart:
    assert seen[0] == pytest.approx(1.0)
  else:
    assert max(seen) == pytest.approx(0.01)


def test_the_epsilon_restart_survives_a_checkpoint(tmp_path):
  agent, _, observation = make_agent(restart_epsilon_on_task_switch=True)
  run_steps(agent, observation, 25)
  agent.on_task_switch()
  start = agent._epsilon_start  # pylint: disable=protected-access
  bundle = agent.bundle_and_checkpoint(str(tmp_path), 0)
  agent._epsilon_start = 0  # pylint: disable=protected-access
  assert agent.unbundle(str(tmp_path), 0, bundle)
  # begin_episode is a training step too: 1 + 25.
  assert agent._epsilon_start == start == 26  # pylint: disable=protected-access


def test_a_cleared_replay_samples_only_what_came_after_the_switch():
  agent, _, observation = make_agent(replay_at_task_switch='clear')
  old = marked(observation, 7.0)
  for _ in range(60):
    agent.step(-1.0, old)
  memory = agent._replay.memory  # pylint: disable=protected-access
  assert memory.add_count > WARMUP
  trained = agent.gradient_steps
  agent.on_task_switch()
  assert memory.add_count == 0
  new = marked(observation, -3.0)
  agent.begin_episode(new)
  for _ in range(WARMUP):  # Refilling: no training on an empty buffer.
    agent.step(-1.0, new)
  assert agent.gradient_steps == trained
  for _ in range(30):
    agent.step(-1.0, new)
  assert agent.gradient_steps > trained
  states = memory.sample_transition_batch(batch_size=64)[0]
  assert np.all(features(states) == -3.0)


def test_a_kept_replay_still_holds_the_old_task():
  agent, _, observation = make_agent()
  assert agent.replay_at_task_switch is moe_dqn_agent.ReplayAtSwitch.KEEP
  old = marked(observation, 7.0)
  for _ in range(60):
    agent.step(-1.0, old)
  count = int(agent._replay.memory.add_count)  # pylint: disable=protected-access
  agent.on_task_switch()
  assert int(agent._replay.memory.add_count) == count  # pylint: disable=protected-access


def test_an_unknown_replay_choice_is_refused_with_the_choices():
  with pytest.raises(config.ConfigError, match=r"replay_at_task_switch='flush' is not one of \['keep', 'clear'\]"):
    make_agent(replay_at_task_switch='flush')
