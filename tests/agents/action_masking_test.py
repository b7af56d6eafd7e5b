"""Masked actions are never taken: greedy, at random, or in the target max."""

import random

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.environments import multitask
from moe_dopamine.networks import types

# CartPole (task 0) lacks action 2; MountainCar (task 1) has it.
MASKS = np.array([[True, True, False], [True, True, True]])
Q = [0.0, 1.0, 10.0]  # The illegal action looks best.
OBS_SHAPE = (5, 1)


class PrefersActionTwo(tf.keras.Model):

  def __init__(self, num_actions, name=None, num_tasks=1, task_id_in_observation=False):
    super().__init__(name=name)
    # What the agent tells a network when observations carry the task id.
    assert num_tasks == 2 and task_id_in_observation
    self.head = tf.keras.layers.Dense(
        num_actions,
        kernel_initializer='zeros',
        bias_initializer=tf.constant_initializer(Q),
    )

  def call(self, state, diagnostics=False):
    del diagnostics  # Nothing to report.
    return types.make_output(self.head(tf.zeros([tf.shape(state)[0], 1])))


@pytest.fixture(autouse=True)
def small_replay():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 1000)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 32)


def make_agent(sess, epsilon):
  agent = moe_dqn_agent.MoEDQNAgent(
      sess,
      num_actions=3,
      network=PrefersActionTwo,
      observation_shape=OBS_SHAPE,
      observation_dtype=tf.float32,
      stack_size=1,
      task_names=['CartPole', 'MountainCar'],
      task_id_in_observation=True,
      action_masks=MASKS,
      min_replay_history=10,
      epsilon_fn=lambda *unused: epsilon,
      epsilon_eval=epsilon,
  )
  sess.run(tf.compat.v1.global_variables_initializer())
  return agent


def observation(task):
  obs = np.zeros(OBS_SHAPE[0], np.float32)
  obs[-1] = task
  return obs


def test_masks_need_the_task_id_in_the_observation():
  with tf.compat.v1.Session() as sess:
    with pytest.raises(config.ConfigError, match='task_id_in_observation=True'):
      moe_dqn_agent.MoEDQNAgent(sess, num_actions=3, network=PrefersActionTwo,
                                observation_shape=OBS_SHAPE, action_masks=MASKS)


def test_greedy_action_is_the_best_legal_one():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, epsilon=0.0)
    agent.eval_mode = True
    assert agent.begin_episode(observation(0)) == 1
    assert agent.step(0.0, observation(1)) == 2
    assert agent.step(0.0, observation(0)) == 1


def test_random_actions_are_drawn_from_the_legal_ones_only():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, epsilon=1.0)
    agent.eval_mode = True
    agent.begin_episode(observation(0))
    assert {agent.step(0.0, observation(0)) for _ in range(300)} == {0, 1}
    assert {agent.step(0.0, observation(1)) for _ in range(300)} == {0, 1, 2}


def test_side_by_side_actions_are_greedy_and_legal():
  with tf.compat.v1.Session() as sess:
    greedy = make_agent(sess, epsilon=0.0)
    batch = np.stack([observation(t) for t in (0, 1, 1, 0)])[:, :, None]
    np.testing.assert_array_equal(greedy.select_actions(batch), [1, 2, 2, 1])
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    random_agent = make_agent(sess, epsilon=1.0)
    batch = np.stack([observation(0)] * 200 + [observation(1)] * 200)[:, :, None]
    actions = random_agent.select_actions(batch)
    assert set(actions[:200]) == {0, 1} and set(actions[200:]) == {0, 1, 2}


@pytest.mark.parametrize('task,best_legal_q', [(0, 1.0), (1, 10.0)])
def test_bootstrap_max_skips_illegal_actions(task, best_legal_q):
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, epsilon=0.0)
    for i in range(50):
      agent._replay.add(observation(task)[:, None], i % 2, float(i % 3), i % 7 == 0)
    target, rewards, terminals = sess.run(
        [agent._build_target_q_op(), agent._replay.rewards, agent._replay.terminals]
    )
    expected = rewards + 0.99 * best_legal_q * (1 - terminals)
    np.testing.assert_allclose(target, expected, rtol=1e-6)


def test_thousands_of_steps_in_the_multitask_environment_stay_legal():
  random.seed(0)  # The agent's exploration draws from Python's stream.
  env = multitask.MultiTaskEnvironment(
      task_names=['CartPole', 'MountainCar'], setting='mtrl', seed=1
  )
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, epsilon=0.5)
    agent.eval_mode = False
    env.begin_iteration(0)
    actions = {0: set(), 1: set()}
    steps = {0: 0, 1: 0}
    action = agent.begin_episode(env.reset())
    # CartPole episodes are short and MountainCar's last 200 steps, so run
    # until both tasks have had enough steps for every legal action to show.
    for _ in range(20000):
      if min(steps.values()) >= 300:
        break
      actions[env.current_task].add(action)
      steps[env.current_task] += 1
      obs, reward, terminal, _ = env.step(action)  # Raises if illegal.
      if env.game_over:  # A true end or a time limit.
        agent.end_episode(reward, terminal)
        action = agent.begin_episode(env.reset())
      else:
        action = agent.step(reward, obs)
    assert min(steps.values()) >= 300, steps
    assert actions == {0: {0, 1}, 1: {0, 1, 2}}


class ChecksItsInputRank(PrefersActionTwo):
  """Fails at run time unless the states it is fed have the placeholder's
  rank (a session callable does not check fed shapes)."""

  def call(self, state, diagnostics=False):
    def check(value):
      assert value.ndim == 2 + len(OBS_SHAPE), f'states of rank {value.ndim}'
      return np.float32(0.0)

    zero = tf.numpy_function(check, [state], tf.float32, stateful=True)
    output = super().call(state, diagnostics)
    return output._replace(q_values=output.q_values + zero)


@pytest.mark.parametrize('shape', ['flat', 'observation_shape'])
def test_side_by_side_states_have_the_placeholders_shape(shape):
  with tf.compat.v1.Session() as sess:
    agent = moe_dqn_agent.MoEDQNAgent(
        sess, num_actions=3, network=ChecksItsInputRank, observation_shape=OBS_SHAPE,
        observation_dtype=tf.float32, stack_size=1, task_names=['CartPole', 'MountainCar'],
        task_id_in_observation=True, action_masks=MASKS, epsilon_eval=0.0,
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    # As the runner passes them: the environment's flat observations [k, 5].
    batch = np.stack([observation(t) for t in (0, 1, 1)])
    if shape == 'observation_shape':
      batch = batch[:, :, None]
    np.testing.assert_array_equal(agent.select_actions(batch), [1, 2, 2])


def test_stacked_frames_with_the_task_id_are_refused():
  with tf.compat.v1.Session() as sess:
    with pytest.raises(config.ConfigError, match=r'DQNAgent.stack_size=4 with the task id in '
                       r'the observation: .* Fix: DQNAgent.stack_size=1\.'):
      moe_dqn_agent.MoEDQNAgent(
          sess, num_actions=3, network=PrefersActionTwo, observation_shape=OBS_SHAPE,
          stack_size=4, task_names=['CartPole', 'MountainCar'],
          task_id_in_observation=True, action_masks=MASKS,
      )
