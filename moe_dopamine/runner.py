"""The plugin's Runner subclass and its factory, `moe_dopamine.create_runner`.

MoERunner is Dopamine's Runner with seeds, per-task evaluation by episodes,
the agent's diagnostics in the iteration statistics, random states in its
checkpoints, and where each iteration's wall time went (training, acting,
diagnostics, evaluation, checkpoint: metrics.names.PHASE_SECONDS). Stock logging (`logs/log_N`) and checkpointing are kept, so
`dopamine.colab.utils.read_experiment` reads the runs.
"""

import enum
import functools
import inspect
import random
import statistics as stats_lib
import time

from absl import logging
from dopamine.discrete_domains import iteration_statistics
from dopamine.discrete_domains import run_experiment
from dopamine.metrics import statistics_instance
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import resume
from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.metrics import collectors
from moe_dopamine.metrics import names

collectors.register()

@gin.constants_from_enum(module='moe_dopamine')
class Schedule(enum.Enum):
  CONTINUOUS_TRAIN_AND_EVAL = 'continuous_train_and_eval'


_SCHEDULE_BINDING = 'moe_dopamine.create_runner.schedule'


def average_statistics(records):
  """Mean of each key over a list of statistics dicts (lists elementwise)."""
  keys = dict.fromkeys(k for record in records for k in record)
  out = {}
  for key in keys:
    values = [record[key] for record in records if key in record]
    mean = np.mean(np.asarray(values, float), axis=0)
    out[key] = mean.tolist() if np.ndim(mean) else float(mean)
  return out


def check_choices():
  """Parses the agent and schedule bindings, before anything is built.

  Raises:
    config.ConfigError: naming the binding and the valid values.
  """
  for binding, enum_cls in (
      (factory.AGENT_BINDING, factory.AgentName),
      (_SCHEDULE_BINDING, Schedule),
  ):
    try:
      value = gin.query_parameter(binding)
    except ValueError:
      continue  # Not bound: the default.
    if not isinstance(value, gin.config.ConfigurableReference):
      config.parse_choice(enum_cls, value, binding)


@gin.configurable
class MoERunner(run_experiment.Runner):
  """Dopamine's Runner with seeding, episode-based evaluation and tasks.

  With a `MultiTaskEnvironment`, every iteration trains on the schedule's
  task(s), then evaluates every task for `evaluation_episodes` episodes each
  (or, with evaluation_episodes=None, `evaluation_steps` steps each). The
  iteration statistics gain, for each task name T (see metrics.names):
  eval_average_return_T, eval_normalized_score_T, eval_episodes_T,
  train_average_return_T (when T was trained), and train_task (the trained
  task's id; names.MTRL_TRAIN_TASK in MTRL).
  """

  def __init__(
      self,
      base_dir,
      create_agent_fn=factory.create_agent,
      create_environment_fn=None,
      seed=None,
      num_iterations=None,
      evaluation_episodes=10,
      intra_op_threads=0,
      **kwargs,
  ):
    """Seeds Python, NumPy and TensorFlow's graph, then builds as Runner does.

    Args:
      base_dir: str, the run's folder.
      create_agent_fn: (sess, environment, summary_writer) -> agent.
      create_environment_fn: None (then `Runner.create_environment_fn`) or
        the environment factory; it receives `seed=seed` when it takes a seed
        argument (MultiTaskEnvironment does).
      seed: None (unseeded) or int, seeds Python, NumPy, TensorFlow's graph
        and the environment; with an int the run is repeatable up to
        TensorFlow's nondeterministic CPU reductions.
      num_iterations: None or int >= 1. None: a CRL environment's schedule
        length, else `Runner.num_iterations`.
      evaluation_episodes: None or int >= 1, episodes per task in each
        evaluation; None evaluates for `Runner.evaluation_steps` steps.
      intra_op_threads: int, TensorFlow threads per op (0: TensorFlow's
        default, all cores); a sweep running one process per core sets 1.
      **kwargs: `Runner` arguments (and so `Runner.*` gin bindings).
    """
    self.seed = None if seed is None else config.check_int(seed, 'MoERunner.seed', minimum=0)
    if evaluation_episodes is not None:
      evaluation_episodes = config.check_int(
          evaluation_episodes, 'MoERunner.evaluation_episodes', minimum=1
      )
    self.evaluation_episodes = evaluation_episodes
    if num_iterations is not None:
      num_iterations = config.check_int(
          num_iterations, 'MoERunner.num_iterations', minimum=1
      )
    if self.seed is not None:
      random.seed(self.seed)
      np.random.seed(self.seed)
      tf.compat.v1.set_random_seed(self.seed)
    logging.info('\t seed: %s', self.seed)
    logging.info('\t evaluation_episodes: %s', evaluation_episodes)
    self._episode_tasks = []
    if intra_op_threads:
      session_config = tf.compat.v1.ConfigProto(
          allow_soft_placement=True,
          intra_op_parallelism_threads=intra_op_threads,
          inter_op_parallelism_threads=intra_op_threads,
      )
      agent_fn = create_agent_fn

      def create_agent_fn(unused_sess, environment, summary_writer=None):
        return agent_fn(
            tf.compat.v1.Session(config=session_config),
            environment,
            summary_writer=summary_writer,
        )

    if create_environment_fn is not None:
      if self.seed is not None and 'seed' in _parameters(create_environment_fn):
        create_environment_fn = functools.partial(create_environment_fn, seed=self.seed)
      kwargs['create_environment_fn'] = create_environment_fn
    # Before Dopamine opens this attempt's TensorBoard writers.
    resume.keep_event_files(base_dir)
    super().__init__(base_dir, create_agent_fn, **kwargs)
    # Set here rather than passed to Runner, so that Runner.num_iterations
    # stays a binding the run reads (and MoERunner.num_iterations overrides).
    self._schedule_length = getattr(self._environment, 'schedule_length', None)
    self._cut_short = num_iterations is not None
    if num_iterations is not None:
      logging.info('num_iterations: %d (MoERunner.num_iterations)', num_iterations)
      self._num_iterations = num_iterations
    elif self._schedule_length:
      logging.info('num_iterations: %d, the length of the task schedule',
                   self._schedule_length)
      self._num_iterations = self._schedule_length
    if self._sess is not None:
      # Everything is built: an op created later (per iteration) would grow
      # the graph and slow every later iteration, so it fails loudly instead.
      self._sess.graph.finalize()

  @property
  def multitask(self):
    return isinstance(self._environment, multitask.MultiTaskEnvironment)

  @property
  def task_names(self):
    return factory.task_names_of(self._environment)

  @property
  def num_iterations(self):
    return self._num_iterations

  def ignored_bindings(self):
    """{'Configurable.parameter': why} of the parameters this run was given
    but does not use (see moe_dopamine.bindings): its own, its environment's
    and its agent's."""
    ignored = {}
    if self._schedule_length and not self._cut_short:
      ignored['Runner.num_iterations'] = (
          f'a CRL run lasts its task schedule ({self._schedule_length} '
          'iterations); bind MoERunner.num_iterations to stop it earlier'
      )
    for owner in (self._environment, self._agent):
      ignored.update(getattr(owner, 'ignored_bindings', dict)())
    return ignored

  @property
  def start_iteration(self):
    """The iteration the run starts (0) or resumes at."""
    return self._start_iteration

  def _initialize_checkpointer_and_maybe_resume(self, checkpoint_file_prefix):
    """As Dopamine, then drops every log of the iterations after the
    checkpoint (moe_dopamine.resume) and restores the random states saved
    with the checkpoint."""
    super()._initialize_checkpointer_and_maybe_resume(checkpoint_file_prefix)
    self.dropped_logs = resume.drop_after(self._base_dir, self._start_iteration - 1)
    resume.log_drop(self._base_dir, self._start_iteration - 1, self.dropped_logs)
    if self._start_iteration == 0:
      return
    data = self._checkpointer.load_checkpoint(self._start_iteration - 1)
    states = (data or {}).get(_RANDOM_STATES)
    if not states:
      return
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    if states.get('environment') is not None and hasattr(self._environment, 'set_state'):
      self._environment.set_state(states['environment'])

  def _checkpoint_experiment(self, iteration):
    """As Dopamine, with the Python, NumPy and environment random states;
    then adds the checkpoint's and the whole iteration's seconds to the
    iteration's logged statistics (and rewrites its log file)."""
    start = time.perf_counter()
    experiment_data = self._agent.bundle_and_checkpoint(self._checkpoint_dir, iteration)
    end = time.perf_counter()
    logged = self._record_seconds(iteration, {
        names.CHECKPOINT_SECONDS: end - start,
        names.ITERATION_SECONDS: end - getattr(self, '_iteration_start', start),
    })
    if experiment_data:
      experiment_data['current_iteration'] = iteration
      experiment_data['logs'] = self._logger.data
      get_state = getattr(self._environment, 'get_state', None)
      experiment_data[_RANDOM_STATES] = {
          'python': random.getstate(),
          'numpy': np.random.get_state(),
          'environment': get_state() if get_state else None,
      }
      self._checkpointer.save_checkpoint(iteration, experiment_data)
    if logged and iteration % self._log_every_n == 0:
      self._logger.log_to_file(self._logging_file_prefix, iteration)

  def _record_seconds(self, iteration, seconds):
    """Adds `seconds` to iteration's logged statistics; whether it was logged."""
    logger = getattr(self, '_logger', None)
    statistics = logger.data.get(f'iteration_{iteration}') if logger is not None else None
    if not isinstance(statistics, dict) or not self._use_legacy_logger:
      return False
    for key, value in seconds.items():
      statistics[key] = [value]
    return True

  def _run_one_iteration(self, iteration):
    self._iteration_start = time.perf_counter()
    if self.multitask:
      env = self._environment
      if iteration > 0 and env.train_task_id(iteration) != env.train_task_id(iteration - 1):
        switch = getattr(self._agent, 'on_task_switch', None)
        if switch is not None:
          switch()
      env.begin_iteration(iteration)
    self._iteration = iteration
    if self.multitask:
      statistics = self._run_tasks_iteration(iteration)
    else:
      statistics = super()._run_one_iteration(iteration)
    self._add_iteration_summaries(iteration, statistics)
    return statistics

  def _run_tasks_iteration(self, iteration):
    """Dopamine's iteration (train, then evaluate every task), whose summary
    for the collectors gives each task's returns and scores instead of one
    average over tasks whose returns are not on one scale."""
    statistics = iteration_statistics.IterationStatistics()
    logging.info('Starting iteration %d', iteration)
    num_train, _, steps_per_second = self._run_train_phase(statistics)
    num_eval, _ = self._run_eval_phase(statistics)
    data = statistics.data_lists
    if self._has_collector_dispatcher:
      def instance(name, value):
        return statistics_instance.StatisticsInstance(name, value, iteration)
      self._collector_dispatcher.write([
          instance('Train/NumEpisodes', num_train),
          instance('Train/AverageStepsPerSecond', steps_per_second),
          instance('Eval/NumEpisodes', num_eval),
      ])
      per_task = []
      for name in self.task_names:
        for key, tag in ((names.train_return(name), 'Train/AverageReturns'),
                         (names.eval_return(name), 'Eval/AverageReturns'),
                         (names.eval_score(name), 'Eval/NormalizedScore')):
          if key in data:
            per_task.append(instance(f'{tag}/{name}', float(data[key][0])))
      # TensorBoard has them already (_add_iteration_summaries).
      self._collector_dispatcher.write(per_task, collector_allowlist=['console', 'pickle'])
    return data

  def _add_iteration_summaries(self, iteration, statistics):
    """Adds the agent's diagnostics, averaged over the iteration, to the
    statistics, and writes the per-task and diagnostic scalars to the
    collectors (TensorBoard)."""
    collect = getattr(self._agent, 'collect_diagnostics', None)
    records = collect() if collect else []
    averaged = average_statistics(records) if records else {}
    if names.REDO_RECYCLED in averaged:  # A count: the iteration's total.
      averaged[names.REDO_RECYCLED] = float(
          sum(r.get(names.REDO_RECYCLED, 0) for r in records)
      )
    instances = []
    for key, value in averaged.items():
      # A per-expert statistic is its list of n floats; a scalar, [scalar].
      per_expert = isinstance(value, list)
      statistics[key] = value if per_expert else [value]
      tags = [f'{key}/expert_{e}' for e in range(len(value))] if per_expert else [key]
      for tag, v in zip(tags, statistics[key]):
        instances.append(
            statistics_instance.StatisticsInstance(f'Diagnostics/{tag}', v, iteration)
        )
    for name in self.task_names if self.multitask else []:
      for key, group in (
          (names.eval_return(name), 'Eval'),
          (names.eval_score(name), 'Eval'),
          (names.train_return(name), 'Train'),
      ):
        if key in statistics:
          instances.append(statistics_instance.StatisticsInstance(
              f'{group}/{key}', float(statistics[key][0]), iteration
          ))
    if instances and self._has_collector_dispatcher:
      self._collector_dispatcher.write(instances, collector_allowlist=['tensorboard'])

  def _end_episode(self, reward, terminal=True):
    """As Dopamine, but every agent that takes the terminal flag (MoEDQNAgent,
    Dopamine's JAX agents) is told whether the episode truly ended or was
    cut by a time limit."""
    if 'terminal' in _parameters(self._agent.end_episode):
      self._agent.end_episode(reward, terminal)
    else:
      super()._end_episode(reward, terminal)

  def _run_one_episode(self):
    length, episode_return = super()._run_one_episode()
    if self.multitask:
      # The environment resets only at the next episode: still this one's task.
      self._episode_tasks.append((self._environment.current_task, episode_return))
    return length, episode_return

  def _run_train_phase(self, statistics):
    self._episode_tasks = []
    take = getattr(self._agent, 'take_phase_seconds', None)
    if take is not None:
      take()  # Anything since the last iteration (a measurement from outside).
    start = time.perf_counter()
    result = super()._run_train_phase(statistics)
    seconds = time.perf_counter() - start
    if take is not None:
      spent = take()
      statistics.append(spent)
      seconds -= sum(spent.values())
    statistics.append({names.ACTING_SECONDS: seconds})
    if self.multitask:
      env = self._environment
      statistics.append({names.TRAIN_TASK: env.train_task_id(self._iteration)})
      for task, name in enumerate(env.task_names):
        returns = [r for t, r in self._episode_tasks if t == task]
        if returns:
          statistics.append({names.train_return(name): stats_lib.mean(returns)})
    return result

  def _side_by_side(self):
    """Whether evaluation episodes can run side by side (batched)."""
    return self.multitask and getattr(self._agent, 'acts_in_batches', False)

  def _run_side_by_side(self, task, statistics):
    """Runs evaluation_episodes episodes of `task` at once: one batched
    forward pass per step for all episodes still running."""
    env = self._environment
    seed = env.seed  # The run's seed, or the environment's random draw.
    envs, observations = env.evaluation_episodes(
        task, self.evaluation_episodes, seed=(seed * 100003 + self._iteration) * 101
    )
    returns = np.zeros(len(envs))
    lengths = np.zeros(len(envs), int)
    running = np.ones(len(envs), bool)
    while running.any():
      active = np.flatnonzero(running)
      actions = self._agent.select_actions(observations[active])
      for i, action in zip(active, actions):
        if not env.action_masks[task, action]:
          raise ValueError(f'action {action} is not an action of task {task}.')
        raw, reward, terminated, truncated, _ = envs[i].step(int(action))
        returns[i] += reward
        lengths[i] += 1
        observations[i] = env.encode(task, raw)
        if terminated or truncated or lengths[i] >= self._max_steps_per_episode:
          running[i] = False
    for length, episode_return in zip(lengths, returns):
      statistics.append({
          'eval_episode_lengths': int(length),
          'eval_episode_returns': float(episode_return),
      })
    return float(returns.sum()), len(envs)

  def _run_evaluation(self, statistics, task=None):
    """(sum of returns, episodes) of one evaluation of the current task."""
    if self.evaluation_episodes is not None and task is not None and self._side_by_side():
      return self._run_side_by_side(task, statistics)
    if self.evaluation_episodes is None:
      _, sum_returns, num_episodes = self._run_one_phase(
          self._evaluation_steps, statistics, 'eval'
      )
      return sum_returns, num_episodes
    sum_returns = 0.0
    for _ in range(self.evaluation_episodes):
      length, episode_return = self._run_one_episode()
      statistics.append({
          'eval_episode_lengths': length,
          'eval_episode_returns': episode_return,
      })
      sum_returns += episode_return
    return sum_returns, self.evaluation_episodes

  def _run_eval_phase(self, statistics):
    """Evaluates every task in turn (each for the same number of episodes)."""
    start = time.perf_counter()
    try:
      return self._evaluate_every_task(statistics)
    finally:
      statistics.append({names.EVAL_SECONDS: time.perf_counter() - start})

  def _evaluate_every_task(self, statistics):
    self._agent.eval_mode = True
    if not self.multitask:
      sum_returns, num_episodes = self._run_evaluation(statistics)
      average = sum_returns / num_episodes if num_episodes else 0.0
      statistics.append({names.EVAL_AVERAGE_RETURN: average})
      return num_episodes, average
    env = self._environment
    total_return, total_episodes = 0.0, 0
    try:
      for task, name in enumerate(env.task_names):
        env.set_eval_task(task)
        sum_returns, num_episodes = self._run_evaluation(statistics, task)
        average = sum_returns / num_episodes if num_episodes else 0.0
        statistics.append({
            names.eval_return(name): average,
            names.eval_score(name): env.normalized_score(task, average),
            names.eval_episodes(name): num_episodes,
        })
        logging.info('Average evaluation return on %s: %.2f (%d episodes)',
                     name, average, num_episodes)
        total_return += sum_returns
        total_episodes += num_episodes
    finally:
      env.set_eval_task(None)
    average_return = total_return / total_episodes if total_episodes else 0.0
    statistics.append({names.EVAL_AVERAGE_RETURN: average_return})
    return total_episodes, average_return

  @property
  def agent(self):
    return self._agent

  def close(self):
    """Releases the session and the collectors' files (a runner built only
    to check a configuration)."""
    if self._has_collector_dispatcher:
      self._collector_dispatcher.close()
    if self._sess is not None:
      self._sess.close()


_RANDOM_STATES = 'moe_dopamine_random_states'


def _parameters(fn):
  try:
    return set(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return set()


@gin.configurable(module='moe_dopamine')
def create_runner(base_dir, schedule=Schedule.CONTINUOUS_TRAIN_AND_EVAL):
  """Creates the experiment runner.

  Args:
    base_dir: str, the run's folder.
    schedule: Schedule or its value; 'continuous_train_and_eval' (train, then
      evaluate every task, every iteration).

  Returns:
    A MoERunner.
  """
  config.parse_choice(Schedule, schedule, _SCHEDULE_BINDING)
  return MoERunner(base_dir, factory.create_agent)
