"""DQN agent for Q-networks that return more than Q-values.

`MoEDQNAgent` is a drop-in `dopamine.tf.agents.dqn.dqn_agent.DQNAgent`: every
stock `DQNAgent.*` gin binding still applies. On top of it, the agent
- adds the network's auxiliary losses (e.g. MoE load balancing), already
  weighted by the layers that define them, to the TD loss;
- writes TensorBoard summaries of each loss part when a summary writer is set;
- keeps handles on the router probabilities and hidden activations of the
  replayed batch for the diagnostics;
- with `action_masks` (multi-task environments), never chooses an action the
  current task lacks: not greedily, not at random, not in the bootstrap max.
  The task id is read from the observation (`moe_dopamine.observation`);
- counts the seconds it spends in training (replay sampling, gradient steps,
  target syncs) and in diagnostics (measurement passes, ReDo), which the
  runner logs per iteration (`take_phase_seconds`).
"""

import enum
import inspect
import os
import random
import re
import time

from absl import logging
from dopamine.tf.agents.dqn import dqn_agent
import gin
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.agents import diagnostics as diagnostics_lib
from moe_dopamine.agents import replay
from moe_dopamine.metrics import dormant
from moe_dopamine.metrics import names
from moe_dopamine.networks import q_networks
from moe_dopamine.networks import types


@gin.constants_from_enum(module='moe_dopamine')
class ReplayAtSwitch(enum.Enum):
  """What the replay buffer does when the CRL task changes."""

  KEEP = 'keep'  # Dopamine's buffer: the old task's transitions stay until overwritten.
  CLEAR = 'clear'  # Emptied: the new task is learned from its own transitions only.


@gin.configurable
class MoEDQNAgent(dqn_agent.DQNAgent):
  """DQN whose loss is the Huber TD loss plus the network's auxiliary losses."""

  def __init__(
      self,
      sess,
      num_actions,
      task_names=None,
      task_id_in_observation=False,
      action_masks=None,
      network_kwargs=None,
      diagnostics_period=1000,
      diagnostics_batch_size=256,
      dormant_taus=dormant.DEFAULT_TAUS,
      redo_period=0,
      redo_tau=0.025,
      vectorized_replay=True,
      sparsity_anneal_steps=10000,
      resoften_on_task_switch=False,
      restart_epsilon_on_task_switch=False,
      replay_at_task_switch=ReplayAtSwitch.KEEP,
      time_limit_is_terminal=True,
      **kwargs,
  ):
    """Builds the agent; see DQNAgent for the arguments.

    Args:
      sess: `tf.compat.v1.Session` or None.
      num_actions: int, number of actions of the environment.
      task_names: names of the tasks by task id, for the statistics keys
        (default: one task called 'task').
      task_id_in_observation: bool, the observation's last element is the
        task id (moe_dopamine.observation): the agent reads it for the action
        masks and the per-task statistics, and the network receives
        task_id_in_observation=True and num_tasks=len(task_names). Needs
        DQNAgent.stack_size=1 (one frame per observation).
      action_masks: None, or bool array [num_tasks, num_actions]: the actions
        each task has (needs task_id_in_observation).
      network_kwargs: dict of extra arguments for the network constructor.
      diagnostics_period: int, training steps between two measurements of
        dormant neurons and expert usage (0: never).
      diagnostics_batch_size: int, states sampled from the replay buffer for
        each measurement.
      dormant_taus: thresholds tau of the dormant fractions.
      redo_period: int, gradient steps between two ReDo recyclings (0: off).
      redo_tau: float, neurons with score <= redo_tau are recycled.
      vectorized_replay: bool, sample the replay buffer with NumPy index
        arrays (agents/replay.py: the same storage, checkpoints and sampling
        distribution as Dopamine's buffer); False uses Dopamine's.
      sparsity_anneal_steps: int >= 1, training steps over which the
        soft-to-sparse routers' sparsity s rises linearly from 0 (soft) to 1
        (top-k), from the start or from the last task switch.
      resoften_on_task_switch: bool, s restarts from 0 at every task switch
        the runner reports (`on_task_switch`), so routing can reorganize.
      restart_epsilon_on_task_switch: bool, the training epsilon schedule
        (`epsilon_fn`, e.g. Dopamine's linearly_decaying_epsilon) restarts at
        every task switch: it is given the training steps since the last
        switch instead of since the start.
      replay_at_task_switch: ReplayAtSwitch (or 'keep' / 'clear'): at a task
        switch, keep the replay buffer's contents (Dopamine's behaviour) or
        empty it; an emptied buffer first collects min_replay_history
        transitions of the new task before training resumes.
      time_limit_is_terminal: bool. True (Dopamine's TF agent): an episode
        cut by a time limit is stored as terminal, so its last states get a
        target without bootstrap. False: it is stored as a non-terminal
        episode end (the replay then never samples an n-step window across
        it), so values bootstrap through time limits (Pardo et al., 2018,
        "Time Limits in Reinforcement Learning"). Needs a runner that passes
        the terminal flag (MoERunner does).
      **kwargs: passed to `DQNAgent.__init__` (and so configurable through
        `DQNAgent.*` gin bindings).
    """
    # Read by the graph-building methods that DQNAgent.__init__ calls.
    self.loss_parts = {}
    self.task_names = list(task_names or ['task'])
    self.task_id_in_observation = task_id_in_observation
    self.action_masks = None
    if action_masks is not None:
      if not task_id_in_observation:
        raise config.ConfigError(
            'action_masks need the task id in the observation: pass '
            'task_id_in_observation=True (MultiTaskEnvironment observations carry it).'
        )
      self.action_masks = np.asarray(action_masks, bool)
      if self.action_masks.shape[1] != num_actions or not self.action_masks.any(1).all():
        raise config.ConfigError(
            f'action_masks must have shape [num_tasks, {num_actions}] with at '
            f'least one legal action per task, got {self.action_masks.astype(int).tolist()}.'
        )
    self.network_kwargs = dict(network_kwargs or {})
    if task_id_in_observation:
      self.network_kwargs.update(
          task_id_in_observation=True, num_tasks=len(self.task_names)
      )
    self.diagnostics_period = diagnostics_period
    self.diagnostics_batch_size = diagnostics_batch_size
    self.dormant_taus = tuple(dormant_taus)
    self.redo_period = redo_period
    self.redo_tau = redo_tau
    self.vectorized_replay = vectorized_replay
    self.sparsity_anneal_steps = config.check_int(
        sparsity_anneal_steps, 'MoEDQNAgent.sparsity_anneal_steps', minimum=1
    )
    self.resoften_on_task_switch = resoften_on_task_switch
    self.restart_epsilon_on_task_switch = bool(restart_epsilon_on_task_switch)
    self.replay_at_task_switch = config.parse_choice(
        ReplayAtSwitch, replay_at_task_switch, 'MoEDQNAgent.replay_at_task_switch'
    )
    self.time_limit_is_terminal = bool(time_limit_is_terminal)
    self._anneal_start = 0  # Training step the sparsity schedule restarted at.
    self._epsilon_start = 0  # Training step the epsilon schedule restarted at.
    self.gradient_steps = 0
    self._last_measured_step = 0
    # Measurements not yet handed over by `collect_diagnostics`.
    self._pending_diagnostics = []
    self._phase_seconds = {names.TRAINING_SECONDS: 0.0, names.DIAGNOSTICS_SECONDS: 0.0}
    logging.info('Creating %s agent with the following parameters:', type(self).__name__)
    for name in (
        'diagnostics_period', 'diagnostics_batch_size', 'dormant_taus',
        'redo_period', 'redo_tau', 'task_names', 'task_id_in_observation',
        'vectorized_replay', 'sparsity_anneal_steps', 'resoften_on_task_switch',
        'restart_epsilon_on_task_switch', 'replay_at_task_switch', 'time_limit_is_terminal',
    ):
      logging.info('\t %s: %s', name, getattr(self, name))
    logging.info('\t action_masks: %s', None if action_masks is None else self.action_masks.tolist())
    logging.info('\t network_kwargs: %s', self.network_kwargs)
    super().__init__(sess, num_actions, **kwargs)
    self._build_diagnostics()
    # Callables skip Session.run's per-call fetch and feed analysis: they are
    # what acting and training run thousands of times per iteration.
    # Acting calls run in the calling thread (see feeding_callable).
    self._greedy_action = feeding_callable(
        self._sess, [self.state_ph], self._q_argmax, in_caller_thread=True
    )
    self._greedy_actions = None
    if self._batch_argmax is not None:
      self._greedy_actions = feeding_callable(
          self._sess, [self._batch_states_ph], self._batch_argmax, in_caller_thread=True
      )
    # The train op takes its batch fed from a Python call of the sampler
    # instead of the graph's py_func (the same function, without the
    # py_func's overhead); everything else about the step is Dopamine's.
    elements = self._replay.memory.get_transition_elements()
    train_on = feeding_callable(
        self._sess, [self._replay.transition[e.name] for e in elements], self._train_op
    )
    sample = self._replay.memory.sample_transition_batch
    self._run_train_op = lambda: train_on(*sample())
    self._run_sync = self._sess.make_callable(self._sync_qt_ops)
    self._build_sparsity_schedule()
    self.num_parameters = q_networks.count_parameters(self.online_convnet)
    logging.info(
        '\t online network: %s, %d parameters',
        type(self.online_convnet).__name__,
        self.num_parameters,
    )

  def _build_replay_buffer(self, use_staging):
    if not self.vectorized_replay:
      return super()._build_replay_buffer(use_staging)
    return replay.VectorizedWrappedReplayBuffer(
        observation_shape=self.observation_shape,
        stack_size=self.stack_size,
        use_staging=use_staging,
        update_horizon=self.update_horizon,
        gamma=self.gamma,
        observation_dtype=self.observation_dtype.as_numpy_dtype,
    )

  def _create_network(self, name):
    self._check_stack_size()
    return self.network(self.num_actions, name=name, **self.network_kwargs)

  def _check_stack_size(self):
    """Refuses stacked frames with the task id in the observation.

    The layout (moe_dopamine.observation) is one frame: features, then the
    task id last. Stacked, the networks' flatten would interleave the frames'
    features and ids, only the last frame's id would be taken out, and
    MinAtar's screens would be rebuilt from the wrong values.
    """
    if self.task_id_in_observation and self.stack_size != 1:
      raise config.ConfigError(
          f'DQNAgent.stack_size={self.stack_size} with the task id in the '
          'observation: the multi-task layout holds one frame (features, then '
          'the task id), which stacked frames would scramble. Fix: '
          'DQNAgent.stack_size=1.'
      )

  def _call_network(self, network, states, training, diagnostics=False):
    """Calls `network`, passing only the keyword arguments it accepts.

    Any network the stock DQNAgent accepts works: `training` and
    `diagnostics` go only to networks whose `call` takes them.
    """
    kwargs = {}
    accepted = _call_parameters(network)
    if 'training' in accepted:
      kwargs['training'] = training
    if diagnostics:
      kwargs['diagnostics'] = True
    return network(states, **kwargs)

  def _legal_actions_mask(self, states):
    """Bool [batch, num_actions] of the actions each state's task has."""
    return tf.gather(
        tf.constant(self.action_masks), observation.task_ids_of(states)
    )

  def _masked(self, q_values, states):
    """Q-values with illegal actions at the lowest float: never a max."""
    if self.action_masks is None:
      return q_values
    return tf.where(
        self._legal_actions_mask(states),
        q_values,
        tf.fill(tf.shape(q_values), q_values.dtype.min),
    )

  def _build_networks(self):
    """As DQNAgent, but the replayed batch is run with training=True.

    Router noise is a training-time regularizer: it is on for the batch the
    loss is computed on, off for acting and for the bootstrap target.
    """
    self.online_convnet = self._create_network(name='Online')
    self.target_convnet = self._create_network(name='Target')
    self._net_outputs = self._call_network(
        self.online_convnet, self.state_ph, training=False
    )
    self._q_argmax = tf.argmax(
        self._masked(self._net_outputs.q_values, self.state_ph), axis=1
    )[0]
    # Several states at once (side-by-side evaluation episodes), for this
    # package's networks; other networks may need a static batch size.
    self._batch_argmax = None
    if 'diagnostics' in _call_parameters(self.online_convnet):
      self._batch_states_ph = tf.compat.v1.placeholder(
          self.observation_dtype,
          (None,) + self.observation_shape + (self.stack_size,),
          name='batch_states_ph',
      )
      self._batch_argmax = tf.argmax(
          self._masked(
              self._call_network(
                  self.online_convnet, self._batch_states_ph, training=False
              ).q_values,
              self._batch_states_ph,
          ),
          axis=1,
      )
    self._replay_net_outputs = self._call_network(
        self.online_convnet, self._replay.states, training=True
    )
    self._replay_next_target_net_outputs = self._call_network(
        self.target_convnet, self._replay.next_states, training=False
    )

  def _build_sync_op(self):
    """Copies every online weight, trainable or not, to the target network.

    Frozen weights (a random router) must match too, or the target network
    would route differently from the online one.
    """
    online, target = self.online_convnet.weights, self.target_convnet.weights
    assert len(online) == len(target), (len(online), len(target))
    return [t.assign(o, use_locking=True) for o, t in zip(online, target)]

  def _build_target_q_op(self):
    """r + gamma^n * max over the next state's legal actions of Q_target."""
    next_q = self._masked(
        self._replay_next_target_net_outputs.q_values, self._replay.next_states
    )
    return self._replay.rewards + self.cumulative_gamma * tf.reduce_max(
        next_q, axis=1
    ) * (1.0 - tf.cast(self._replay.terminals, tf.float32))

  def _select_action(self):
    """Epsilon-greedy, where the random draw is among the legal actions."""
    if self.eval_mode:
      epsilon = self.epsilon_eval
    else:
      # All four arguments are passed, so gin has nothing to bind at call
      # time: skip its wrapper on this per-step call.
      epsilon_fn = getattr(self.epsilon_fn, '__wrapped__', self.epsilon_fn)
      epsilon = epsilon_fn(
          self.epsilon_decay_period,
          self.training_steps - self._epsilon_start,
          self.min_replay_history,
          self.epsilon_train,
      )
    if random.random() <= epsilon:
      if self.action_masks is None:
        return random.randint(0, self.num_actions - 1)
      legal = np.flatnonzero(
          self.action_masks[observation.task_id_of_state(self.state)]
      )
      return int(random.choice(legal))
    return self._greedy_action(self.state)

  @property
  def acts_in_batches(self):
    """Whether `select_actions` can serve side-by-side episodes."""
    return self._greedy_actions is not None and self.stack_size == 1

  def select_actions(self, observations):
    """Epsilon-greedy actions for a batch of observations, in eval mode.

    Args:
      observations: k observations, one per side-by-side episode (agents
        with stack_size 1), each of observation_shape or flat (as an
        environment returns them): [k, *observation_shape] or [k, size].

    Returns:
      int array [k]: the greedy action of each, or with probability
      epsilon_eval a random action among the legal ones.
    """
    if not self.acts_in_batches:
      raise ValueError(
          'select_actions needs stack_size 1 and a network that takes '
          'call(..., diagnostics=...).'
      )
    observations = np.asarray(observations)
    # The shape the placeholder declares, [k, *observation_shape, 1]: a
    # session callable would take any shape without a check.
    states = observations.reshape(
        (len(observations),) + tuple(self.observation_shape) + (self.stack_size,)
    )
    actions = np.asarray(self._greedy_actions(states))
    for i in range(len(actions)):
      if random.random() <= self.epsilon_eval:
        if self.action_masks is None:
          actions[i] = random.randint(0, self.num_actions - 1)
        else:
          legal = np.flatnonzero(
              self.action_masks[observation.task_id_of_state(states[i : i + 1])]
          )
          actions[i] = random.choice(legal)
    return actions

  def _build_td_loss(self):
    """Per-sample Huber loss between Q(s, a) and the bootstrapped target."""
    replay_action_one_hot = tf.one_hot(
        self._replay.actions, self.num_actions, 1.0, 0.0, name='action_one_hot'
    )
    replay_chosen_q = tf.reduce_sum(
        self._replay_net_outputs.q_values * replay_action_one_hot,
        axis=1,
        name='replay_chosen_q',
    )
    target = tf.stop_gradient(self._build_target_q_op())
    return tf.compat.v1.losses.huber_loss(
        target, replay_chosen_q, reduction=tf.compat.v1.losses.Reduction.NONE
    )

  def _build_train_op(self):
    """Minimizes mean TD loss + sum of the network's weighted aux losses."""
    td_loss = tf.reduce_mean(self._build_td_loss(), name='td_loss')
    aux_losses = types.extras(self._replay_net_outputs, 'aux_losses')
    total_loss = td_loss
    if aux_losses:
      total_loss = tf.add(
          td_loss, tf.add_n(list(aux_losses.values())), name='total_loss'
      )
    self.loss_parts = {'HuberLoss': td_loss, **aux_losses, 'TotalLoss': total_loss}
    if self.summary_writer is not None:
      with tf.compat.v1.variable_scope('Losses'):
        for name, value in self.loss_parts.items():
          tf.compat.v1.summary.scalar(name.replace('/', '_'), value)
    return self.optimizer.minimize(total_loss)


  def _build_diagnostics(self):
    """The diagnostics pass and ReDo's ops, for networks that support them
    (this package's); for any other network the agent runs as the stock
    DQNAgent, without them."""
    self._diagnostics = None
    if 'diagnostics' in _call_parameters(self.online_convnet):
      self._diagnostics = diagnostics_lib.Diagnostics(self)
      return
    logging.info(
        'Diagnostics off: %s.call takes no diagnostics argument.',
        type(self.online_convnet).__name__,
    )
    if self.redo_period:
      raise config.ConfigError(
          f'ReDo (MoEDQNAgent.redo_period={self.redo_period}) needs a network '
          'that reports its activations (call(..., diagnostics=True)) and '
          f'describes recyclable_layers(); {type(self.online_convnet).__name__} '
          'does not. Fix: MoEDQNAgent.redo_period=0.'
      )

  def _sample_states(self):
    """States [B, ...] sampled uniformly from the replay buffer."""
    batch = self._replay.memory.sample_transition_batch(
        batch_size=self.diagnostics_batch_size
    )
    return batch[0]

  def _train_step(self):
    """DQN's training step (Dopamine's rule), then ReDo and the diagnostics
    when they are due.

    As DQNAgent: once the replay holds more than min_replay_history
    transitions, a gradient step every update_period steps and a target sync
    every target_update_period steps.
    """
    if self._replay.memory.add_count > self.min_replay_history:
      start = time.perf_counter()
      diagnosing = self._phase_seconds[names.DIAGNOSTICS_SECONDS]
      if self.training_steps % self.update_period == 0:
        self._run_train_op()
        self.gradient_steps += 1
        if (
            self.summary_writer is not None
            and self.training_steps > 0
            and self.training_steps % self.summary_writing_frequency == 0
        ):
          summary = self._sess.run(self._merged_summaries)
          self.summary_writer.add_summary(summary, self.training_steps)
        self._after_gradient_step()
      if self.training_steps % self.target_update_period == 0:
        self._run_sync()
      diagnosed = self._phase_seconds[names.DIAGNOSTICS_SECONDS] - diagnosing
      self._phase_seconds[names.TRAINING_SECONDS] += time.perf_counter() - start - diagnosed
    self.training_steps += 1

  def _build_sparsity_schedule(self):
    """An op setting every soft-to-sparse layer's s (the target network gets
    it with the next sync, which copies every weight)."""
    layers = getattr(self.online_convnet, 'moe_layers', lambda: [])()
    variables = [l.sparsity for l in layers if getattr(l, 'sparsity', None) is not None]
    self._set_sparsity = None
    self._sparsity_value = 0.0
    if variables:
      value = tf.compat.v1.placeholder(tf.float32, (), name='sparsity_ph')
      self._set_sparsity = feeding_callable(
          self._sess, [value], tf.group(*[v.assign(value) for v in variables])
      )

  def ignored_bindings(self):
    """{'Configurable.parameter': why} of the parameters this agent and its
    network were given but do not use (see moe_dopamine.bindings)."""
    ignored = dict(getattr(self.online_convnet, 'ignored_bindings', dict)())
    if self._set_sparsity is None:
      why = "the network has no router='soft_to_sparse' MoE layer"
      ignored['MoEDQNAgent.sparsity_anneal_steps'] = why
      ignored['MoEDQNAgent.resoften_on_task_switch'] = why
    return ignored

  def sparsity(self):
    """The soft-to-sparse routers' s at the current training step."""
    done = (self.training_steps - self._anneal_start) / self.sparsity_anneal_steps
    return float(min(1.0, max(0.0, done)))

  def _update_sparsity(self):
    value = self.sparsity()
    # Steps of 1% keep the assignments rare; the end points are exact.
    if abs(value - self._sparsity_value) >= 0.01 or (value == 1.0) != (
        self._sparsity_value == 1.0
    ):
      self._set_sparsity(value)
      self._sparsity_value = value

  def end_episode(self, reward, terminal=True):
    """Stores the episode's last transition: terminal if the episode truly
    ended (or time_limit_is_terminal), else an episode end to bootstrap
    through (the runner passes terminal=False at a time limit)."""
    if self.eval_mode:
      return
    if terminal or self.time_limit_is_terminal:
      self._store_transition(self._observation, self.action, reward, True)
    else:
      self._replay.memory.add(self._observation, self.action, reward, False, episode_end=True)

  def on_task_switch(self):
    """Called by the runner when the trained task changes (CRL)."""
    if self.restart_epsilon_on_task_switch:
      self._epsilon_start = self.training_steps
    if self.replay_at_task_switch is ReplayAtSwitch.CLEAR:
      _empty(self._replay.memory)
    if self.resoften_on_task_switch and self._set_sparsity is not None:
      self._anneal_start = self.training_steps
      self._set_sparsity(0.0)
      self._sparsity_value = 0.0

  def _after_gradient_step(self):
    if self._set_sparsity is not None:
      self._update_sparsity()
    if self._diagnostics is None:
      return
    if self.redo_period and self.gradient_steps % self.redo_period == 0:
      self._diagnosing(self.recycle_dormant_neurons)
    if (
        self.diagnostics_period
        and self.training_steps - self._last_measured_step >= self.diagnostics_period
    ):
      self._last_measured_step = self.training_steps
      self._pending_diagnostics.append(self._diagnosing(self.measure))

  def _diagnosing(self, fn):
    """fn(), its seconds counted as diagnostics."""
    start = time.perf_counter()
    try:
      return fn()
    finally:
      self._phase_seconds[names.DIAGNOSTICS_SECONDS] += time.perf_counter() - start

  def take_phase_seconds(self):
    """{training_seconds, diagnostics_seconds} since the last call; resets."""
    taken = dict(self._phase_seconds)
    for key in self._phase_seconds:
      self._phase_seconds[key] = 0.0
    return taken

  def collect_diagnostics(self):
    """The measurements taken since the last call (a list of dicts)."""
    records, self._pending_diagnostics = self._pending_diagnostics, []
    return records

  def measure(self, states=None):
    """Dormant fractions and expert statistics on replayed states (see
    agents.diagnostics.Diagnostics.measure)."""
    return self._diagnostics.measure(self._sample_states() if states is None else states)

  def recycle_dormant_neurons(self, states=None):
    """ReDo: recycles the redo_tau-dormant neurons; returns how many."""
    states = self._sample_states() if states is None else states
    recycled = self._diagnostics.recycle(states, self.redo_tau)
    self._pending_diagnostics.append({names.REDO_RECYCLED: recycled})
    logging.info('ReDo recycled %d neurons at gradient step %d', recycled, self.gradient_steps)
    return recycled

  def _adopt_earlier_tf_checkpoints(self, checkpoint_dir, iteration_number):
    """Hands the saver the TensorFlow checkpoints already in the folder.

    A Saver deletes only the checkpoints it wrote itself; after a resume it
    would keep every older `tf_ckpt-N` for ever. Told about them once, it
    keeps `max_tf_checkpoints_to_keep` in all, as in an uninterrupted run.
    """
    if getattr(self, '_adopted_tf_checkpoints', False):
      return
    self._adopted_tf_checkpoints = True
    earlier = sorted(
        int(name[len('tf_ckpt-'):-len('.index')])
        for name in tf.io.gfile.listdir(checkpoint_dir)
        if re.fullmatch(r'tf_ckpt-\d+\.index', name)
        and int(name[len('tf_ckpt-'):-len('.index')]) < iteration_number
    )
    if earlier:
      self._saver.recover_last_checkpoints(
          [os.path.join(checkpoint_dir, f'tf_ckpt-{n}') for n in earlier]
      )

  def bundle_and_checkpoint(self, checkpoint_dir, iteration_number):
    if tf.io.gfile.exists(checkpoint_dir):
      self._adopt_earlier_tf_checkpoints(checkpoint_dir, iteration_number)
    bundle = super().bundle_and_checkpoint(checkpoint_dir, iteration_number)
    if bundle is not None:
      # Restored by DQNAgent.unbundle, which sets every bundled attribute.
      bundle['gradient_steps'] = self.gradient_steps
      bundle['_last_measured_step'] = self._last_measured_step
      bundle['_anneal_start'] = self._anneal_start
      bundle['_epsilon_start'] = self._epsilon_start
    return bundle


def _empty(memory):
  """Empties a Dopamine OutOfGraphReplayBuffer in place: nothing is sampled
  from before this call (its storage is overwritten from index 0 on)."""
  memory.add_count = np.array(0)
  memory.invalid_range = np.zeros(memory._stack_size)  # pylint: disable=protected-access
  if hasattr(memory, 'episode_end_indices'):
    memory.episode_end_indices = set()
  for name, array in memory._store.items():  # pylint: disable=protected-access
    array[...] = 0


def feeding_callable(sess, feeds, fetch, in_caller_thread=False):
  """fn(*values) -> sess.run(fetch, dict(zip(feeds, values))), cheaper.

  `Session.make_callable` with a feed list falls back to `Session.run`; a
  callable made from CallableOptions (as Keras' graph-mode functions do)
  takes the feeds directly. `fetch` is a tensor (its value is returned) or
  an op (run, None returned). `in_caller_thread`: the session runs the ops
  in the calling thread (RunOptions.inter_op_thread_pool = -1) instead of
  handing them to its inter-op pool and waiting: no thread hand-off per
  call, a large part of a one-state call's fixed cost. The values are the
  same; only graphs whose ops run one after the other anyway (one state, one
  thread) should take it.
  """
  options = config_pb2.CallableOptions()
  options.feed.extend(t.name for t in feeds)
  if in_caller_thread:
    options.run_options.inter_op_thread_pool = -1
  is_op = isinstance(fetch, tf.Operation)
  (options.target if is_op else options.fetch).append(fetch.name)
  run = sess._make_callable_from_options(options)  # pylint: disable=protected-access
  dtypes = [t.dtype.as_numpy_dtype for t in feeds]

  def call(*values):
    result = run(*[np.asarray(v, d) for v, d in zip(values, dtypes)])
    return None if is_op else result[0]

  return call


def _call_parameters(network):
  """Names of the parameters of a Keras network's `call`."""
  try:
    return set(inspect.signature(type(network).call).parameters)
  except (TypeError, ValueError):
    return set()
