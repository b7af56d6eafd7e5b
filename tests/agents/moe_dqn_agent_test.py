"""MoEDQNAgent: the behaviours of a Dopamine DQNAgent, plus auxiliary losses."""

import collections
import os

from dopamine.utils import test_utils
import gin
import mock
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.networks import types

NUM_ACTIONS = 4
MIN_REPLAY = 6


def greedy_zero_network(stack_size, aux_weight=None):
  """A network that ignores its input and always prefers action 0.

  With `aux_weight`, it also owns a scalar `aux_var` that only enters an
  auxiliary loss aux_weight * aux_var^2.
  """

  class GreedyZeroNetwork(tf.keras.Model):

    def __init__(self, num_actions, name=None):
      super().__init__(name=name)
      # Column j of every row is num_actions - j: Q(action 0) is the largest.
      weights = np.tile(np.arange(num_actions, 0, -1), (stack_size, 1))
      self.head = tf.keras.layers.Dense(
          num_actions,
          kernel_initializer=tf.constant_initializer(weights),
          bias_initializer='ones',
      )
      if aux_weight is not None:
        self.aux_var = self.add_weight(
            'aux_var', shape=(), initializer=tf.constant_initializer(3.0)
        )

    def call(self, state):
      ones = tf.ones([tf.shape(state)[0], stack_size])
      q_values = self.head(ones)
      aux = {}
      if aux_weight is not None:
        aux = {'aux_term': aux_weight * tf.square(self.aux_var)}
      return types.make_output(q_values, aux_losses=aux)

  return GreedyZeroNetwork


@pytest.fixture(autouse=True)
def small_replay():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 100)


def make_agent(
    sess,
    observation_shape=(4, 4),
    dtype=tf.uint8,
    stack_size=1,
    aux_weight=None,
    **kwargs,
):
  agent = moe_dqn_agent.MoEDQNAgent(
      sess,
      num_actions=NUM_ACTIONS,
      network=greedy_zero_network(stack_size, aux_weight),
      observation_shape=observation_shape,
      observation_dtype=dtype,
      stack_size=stack_size,
      min_replay_history=MIN_REPLAY,
      epsilon_fn=lambda *unused: 0.0,
      update_period=2,
      target_update_period=4,
      epsilon_eval=0.0,
      **kwargs,
  )
  agent.eval_mode = True
  sess.run(tf.compat.v1.global_variables_initializer())
  return agent


def test_default_agent_runs_an_episode():
  with tf.compat.v1.Session() as sess:
    agent = moe_dqn_agent.MoEDQNAgent(sess, num_actions=NUM_ACTIONS)
    sess.run(tf.compat.v1.global_variables_initializer())
    observation = np.ones([84, 84, 1])
    assert 0 <= agent.begin_episode(observation) < NUM_ACTIONS
    assert 0 <= agent.step(reward=1, observation=observation) < NUM_ACTIONS
    agent.end_episode(reward=1)


def test_begin_episode_resets_state_and_trains_only_in_train_mode():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    agent.state.fill(9)
    assert agent.begin_episode(np.ones((4, 4, 1))) == 0
    expected = np.zeros((1, 4, 4, 1))
    expected[..., -1] = 1
    np.testing.assert_array_equal(agent.state, expected)
    assert agent.training_steps == 0

    agent.eval_mode = False
    agent._replay.memory.add_count = 0  # Below min_replay_history: no train op.
    agent.begin_episode(np.full((4, 4, 1), 2))
    expected[..., -1] = 2
    np.testing.assert_array_equal(agent.state, expected)
    assert agent.training_steps == 1


def run_steps(agent, sess, observation_shape, stack_size, num_steps=10):
  base = np.ones(observation_shape + (1,))
  agent._replay = test_utils.MockReplayBuffer()
  sess.run(tf.compat.v1.global_variables_initializer())
  agent.begin_episode(base)
  expected = np.zeros((1,) + observation_shape + (stack_size,))
  observation = base
  for step in range(1, num_steps + 1):
    last_observation, observation = observation, base * step
    assert agent.step(reward=1, observation=observation) == 0
    position = step - num_steps - 1
    if position >= -stack_size:
      expected[..., position] = step
    if not agent.eval_mode:
      assert agent._replay.add.call_count == step
      args, _ = agent._replay.add.call_args
      np.testing.assert_array_equal(args[0], last_observation[..., 0])
      assert (args[1], args[2], args[3]) == (0, 1, False)
  np.testing.assert_array_equal(agent.state, expected)
  np.testing.assert_array_equal(agent._observation, observation[..., 0])
  return observation


def test_step_in_eval_mode_neither_trains_nor_stores():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    run_steps(agent, sess, (4, 4), 1)
    assert agent.training_steps == 0
    assert agent._replay.add.call_count == 0


@pytest.mark.parametrize(
    'shape,dtype,stack_size',
    [
        ((1,), tf.uint8, 1),
        ((6, 1), tf.uint8, 1),
        ((1, 1, 6), tf.uint8, 1),
        ((4, 4), tf.float32, 1),
        ((4, 4), tf.int64, 1),
        ((4, 4), tf.uint8, 4),
        ((4,), tf.float64, 8),
    ],
)
def test_train_mode_trains_and_syncs_on_dopamines_schedule(shape, dtype, stack_size):
  # The real (vectorized) replay, with frame stacks and several dtypes: a
  # gradient step every update_period steps and a target sync every
  # target_update_period steps, once the replay holds more than
  # min_replay_history transitions.
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, shape, dtype, stack_size)
    agent.eval_mode = False
    trains, syncs, calls = [], [], []
    run_train, run_sync = agent._run_train_op, agent._run_sync
    agent._run_train_op = lambda: trains.append(agent.training_steps) or run_train()
    agent._run_sync = lambda: syncs.append(agent.training_steps) or run_sync()
    train_step = agent._train_step
    agent._train_step = lambda: calls.append(
        (agent.training_steps, int(agent._replay.memory.add_count))) or train_step()
    agent.begin_episode(np.ones(shape + (1,)))
    for step in range(1, 25):
      assert agent.step(reward=1.0, observation=np.full(shape + (1,), step)) == 0
    ready = [t for t, count in calls if count > MIN_REPLAY]
    assert trains == [t for t in ready if t % 2 == 0] and len(trains) > 3
    assert syncs == [t for t in ready if t % 4 == 0]
    assert agent.gradient_steps == len(trains)
    assert agent._replay.memory.add_count == 24 + stack_size - 1  # Dopamine pads stacks.


def test_observation_shape_must_be_a_tuple():
  with tf.compat.v1.Session() as sess, pytest.raises(AssertionError):
    make_agent(sess, observation_shape=84)


def test_epsilon_one_acts_uniformly_and_epsilon_zero_greedily():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    agent.eval_mode = False
    agent.epsilon_fn = lambda *unused: 1.0
    actions = {agent._select_action() for _ in range(200)}
    assert actions == set(range(NUM_ACTIONS))
    agent.epsilon_fn = lambda *unused: 0.0
    assert {agent._select_action() for _ in range(20)} == {0}


def test_bundle_returns_none_for_missing_directory():
  with tf.compat.v1.Session() as sess:
    assert make_agent(sess).bundle_and_checkpoint('/does/not/exist', 1) is None


def test_unbundle_fails_without_replay_files_or_bundle(tmp_path):
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    assert not agent.unbundle(str(tmp_path), 1729, {})
    agent._replay = mock.Mock()
    assert not agent.unbundle(str(tmp_path), 1729, None)


def test_partial_unbundle_is_allowed_when_asked(tmp_path):
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, allow_partial_reload=True)
    agent.bundle_and_checkpoint(str(tmp_path), 1729)
    assert agent.unbundle(str(tmp_path), 1729, None)


def test_bundle_round_trip_restores_python_and_tf_state(tmp_path):
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess)
    agent.state = 'state'
    agent.training_steps = 1234
    kernel = agent.online_convnet.head.kernel
    saved = sess.run(kernel)
    bundle = agent.bundle_and_checkpoint(str(tmp_path), 7)
    assert bundle['state'] == 'state' and bundle['training_steps'] == 1234
    assert os.path.exists(os.path.join(tmp_path, 'tf_ckpt-7.index'))
    sess.run(kernel.assign(saved + 1.0))
    agent.state, agent.training_steps = None, 0
    assert agent.unbundle(str(tmp_path), 7, bundle)
    assert agent.state == 'state' and agent.training_steps == 1234
    np.testing.assert_array_equal(sess.run(kernel), saved)


def test_sync_ops_copy_online_to_target_under_a_name_scope():
  with tf.compat.v1.Session() as sess:
    with tf.compat.v1.variable_scope('outer'), tf.name_scope('scope'):
      agent = make_agent(sess)
    online = agent.online_convnet.head.kernel
    sess.run(online.assign(tf.fill(online.shape, 5.0)))
    sess.run(agent._sync_qt_ops)
    np.testing.assert_array_equal(
        sess.run(agent.target_convnet.head.kernel), np.full((1, NUM_ACTIONS), 5.0)
    )


def fill_replay(agent, num_transitions=20):
  for i in range(num_transitions):
    agent._replay.add(np.full((4, 4), i % 5, np.uint8), i % NUM_ACTIONS, 1.0, False)


def test_total_loss_is_td_loss_plus_aux_losses():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, aux_weight=0.5)
    fill_replay(agent)
    parts = sess.run(agent.loss_parts)
    assert set(parts) == {'HuberLoss', 'aux_term', 'TotalLoss'}
    assert parts['aux_term'] == pytest.approx(0.5 * 9.0)
    assert parts['TotalLoss'] == pytest.approx(parts['HuberLoss'] + 4.5)


def test_aux_loss_gradient_reaches_its_variables():
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, aux_weight=1.0)
    fill_replay(agent)
    before = sess.run(agent.online_convnet.aux_var)
    for _ in range(5):
      sess.run(agent._train_op)
    assert abs(sess.run(agent.online_convnet.aux_var)) < abs(before)


class LinearQ(tf.keras.Model):
  """Q(s, a) = flatten(s) . W[:, a], W drawn per network: Q-values that
  depend on the state and differ between the online and target networks."""

  def __init__(self, num_actions, name=None):
    super().__init__(name=name)
    self.head = tf.keras.layers.Dense(
        num_actions, use_bias=False,
        kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0))

  def call(self, state):
    flat = tf.reshape(tf.cast(state, tf.float32), [tf.shape(state)[0], -1])
    return types.make_output(self.head(flat))


def test_the_td_loss_is_dqns_huber_loss_with_a_masked_free_target():
  # State-dependent Q-values, online != target, terminals, 3-step returns: a
  # target from the online network or the current states, gamma instead of
  # gamma^3, or terminals left out each give another loss.
  with tf.compat.v1.Session() as sess:
    agent = moe_dqn_agent.MoEDQNAgent(
        sess, num_actions=NUM_ACTIONS, network=LinearQ, observation_shape=(3,),
        observation_dtype=tf.float32, stack_size=1, min_replay_history=MIN_REPLAY,
        gamma=0.5, update_horizon=3,
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    rng = np.random.default_rng(0)
    for i in range(60):
      agent._replay.add(rng.normal(size=3).astype(np.float32), i % NUM_ACTIONS,
                        float(rng.normal()), i % 7 == 6)
    assert set(agent.loss_parts) == {'HuberLoss', 'TotalLoss'}
    batch = agent._replay.memory.sample_transition_batch()
    elements = [e.name for e in agent._replay.memory.get_transition_elements()]
    feed = dict(zip([agent._replay.transition[name] for name in elements], batch))
    huber = sess.run(agent.loss_parts['HuberLoss'], feed)
    online, target_weights = sess.run(
        [agent.online_convnet.head.kernel, agent.target_convnet.head.kernel])
  values = dict(zip(elements, batch))
  states = values['state'].reshape(len(values['state']), -1)
  next_states = values['next_state'].reshape(len(states), -1)
  terminals = values['terminal'].astype(np.float32)
  assert 0 < terminals.sum() < len(terminals)
  assert not np.allclose(online, target_weights)
  q = (states @ online)[np.arange(len(states)), values['action']]
  target = values['reward'] + 0.5 ** 3 * (next_states @ target_weights).max(1) * (1 - terminals)
  error = np.abs(target - q)
  expected = np.where(error <= 1.0, 0.5 * error ** 2, error - 0.5).mean()
  assert huber == pytest.approx(expected, rel=1e-5)


def test_replayed_batches_train_with_training_true_and_acting_uses_false():
  class ShowsTraining(tf.keras.Model):

    def __init__(self, num_actions, name=None):
      super().__init__(name=name)
      self.head = tf.keras.layers.Dense(num_actions, kernel_initializer='zeros')

    def call(self, state, training=None):
      q = self.head(tf.zeros([tf.shape(state)[0], 1]))
      return types.make_output(q + (100.0 if training else 0.0))

  with tf.compat.v1.Session() as sess:
    agent = moe_dqn_agent.MoEDQNAgent(
        sess, num_actions=2, network=ShowsTraining, observation_shape=(3,),
        observation_dtype=tf.float32, stack_size=1, min_replay_history=4,
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    for i in range(10):
      agent._replay.add(np.zeros(3, np.float32), 0, 0.0, False)
    acting = sess.run(agent._net_outputs.q_values, {agent.state_ph: np.zeros((1, 3, 1))})
    replayed, target = sess.run([agent._replay_net_outputs.q_values,
                                 agent._replay_next_target_net_outputs.q_values])
  assert acting.max() == 0.0 and target.max() == 0.0
  assert replayed.min() == 100.0


def test_loss_summaries_are_written_with_a_summary_writer(tmp_path):
  with tf.compat.v1.Session() as sess:
    agent = make_agent(sess, aux_weight=1.0, summary_writer=str(tmp_path))
    fill_replay(agent)
    summary = tf.compat.v1.Summary.FromString(sess.run(agent._merged_summaries))
    tags = {value.tag for value in summary.value}
    assert {'Losses/HuberLoss', 'Losses/aux_term', 'Losses/TotalLoss'} <= tags


class StaticBatchNetwork(tf.keras.Model):
  """A network stock DQNAgent accepts: call(state) only, a static batch size
  read from state.shape[0], and a plain namedtuple output."""

  def __init__(self, num_actions, name=None):
    super().__init__(name=name)
    self.head = tf.keras.layers.Dense(num_actions)

  def call(self, state):
    batch = state.shape[0]  # None would fail here.
    flat = tf.reshape(tf.cast(state, tf.float32), [batch, -1])
    return collections.namedtuple('Output', ['q_values'])(self.head(flat))


def test_any_network_stock_dqn_accepts_works_unchanged(tmp_path):
  with tf.compat.v1.Session() as sess:
    agent = moe_dqn_agent.MoEDQNAgent(
        sess, num_actions=NUM_ACTIONS, network=StaticBatchNetwork,
        observation_shape=(4, 4), observation_dtype=tf.uint8, stack_size=1,
        min_replay_history=MIN_REPLAY, update_period=1, target_update_period=2,
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    assert agent._diagnostics is None  # Diagnostics are skipped, not broken.
    observation = np.ones((4, 4, 1))
    agent.begin_episode(observation)
    before = sess.run(agent.online_convnet.trainable_variables)
    for _ in range(MIN_REPLAY + 3):
      assert 0 <= agent.step(reward=1.0, observation=observation) < NUM_ACTIONS
    after = sess.run(agent.online_convnet.trainable_variables)
    assert any(not np.allclose(a, b) for a, b in zip(after, before))  # It trained.
    assert agent.gradient_steps > 0
    agent._last_measured_step = 3
    bundle = agent.bundle_and_checkpoint(str(tmp_path), 0)
    steps, gradient_steps = agent.training_steps, agent.gradient_steps
    agent.training_steps = agent.gradient_steps = agent._last_measured_step = 0
    assert agent.unbundle(str(tmp_path), 0, bundle)
    assert agent.training_steps == steps and agent.gradient_steps == gradient_steps
    assert agent._last_measured_step == 3
    assert agent.collect_diagnostics() == []


@pytest.mark.parametrize('in_caller_thread', [False, True])
def test_feeding_callable_gives_session_runs_values(in_caller_thread):
  with tf.Graph().as_default():
    states = tf.compat.v1.placeholder(tf.float32, [None, 3])
    weights = tf.constant(np.arange(-3.0, 3.0, dtype=np.float32).reshape(3, 2))
    best = tf.argmax(tf.matmul(states, weights), axis=1)
    counter = tf.compat.v1.Variable(0.0)
    increment = tf.compat.v1.assign_add(counter, tf.reduce_sum(states)).op
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    values = np.random.default_rng(0).normal(size=(5, 3))
    expected = sess.run(best, {states: values})
    call = moe_dqn_agent.feeding_callable(sess, [states], best, in_caller_thread)
    np.testing.assert_array_equal(call(values), expected)
    run_op = moe_dqn_agent.feeding_callable(sess, [states], increment, in_caller_thread)
    assert run_op(values) is None
    np.testing.assert_allclose(sess.run(counter), values.sum(), rtol=1e-5)
