"""The plugin's agent and runner factories, and its Runner subclass.

Dopamine's `run_experiment.create_agent` is a fixed if/elif over names, so the
plugin has its own gin-configurable `moe_dopamine.create_agent` and
`moe_dopamine.create_runner`, as Dopamine's research labs do. Stock logging
(`logs/log_N`) and checkpointing are unchanged, so
`dopamine.colab.utils.read_experiment` reads the runs.
"""

import difflib
import random
import statistics as stats_lib

from absl import logging
from dopamine.discrete_domains import run_experiment
from dopamine.metrics import statistics_instance
from dopamine.tf.agents.dqn import dqn_agent
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.environments import multitask

# Agent names `create_agent` accepts, and what they build.
AGENTS = {
    'moe_dqn': moe_dqn_agent.MoEDQNAgent,
    # Stock Dopamine DQN, for side-by-side comparisons.
    'dqn': dqn_agent.DQNAgent,
}
SCHEDULES = ('continuous_train_and_eval', 'continuous_train')


def check_choice(value, valid, what, binding):
  """Raises ValueError naming `binding`, the valid values and the closest."""
  if value in valid:
    return
  hint = difflib.get_close_matches(str(value), list(valid), n=1)
  raise ValueError(
      f'unknown {what} {value!r} (set by {binding}).'
      + (f" Did you mean '{hint[0]}'?" if hint else '')
      + f" Valid: {', '.join(sorted(valid))}."
  )


@gin.configurable(module='moe_dopamine')
def create_agent(
    sess, environment, agent_name='moe_dqn', summary_writer=None, debug_mode=False
):
  """Creates an agent for `environment`.

  Args:
    sess: `tf.compat.v1.Session`, or None for the agent to make one.
    environment: a Dopamine-style environment with a discrete action space.
    agent_name: str, one of AGENTS.
    summary_writer: a summary writer or a directory, used when debug_mode.
    debug_mode: bool, write the agent's TensorBoard summaries (losses).

  Returns:
    The agent.
  """
  check_choice(agent_name, AGENTS, 'agent', 'moe_dopamine.create_agent.agent_name')
  if not debug_mode:
    summary_writer = None
  kwargs = {}
  if agent_name == 'moe_dqn':
    kwargs['task_names'] = task_names_of(environment)
  if isinstance(environment, multitask.MultiTaskEnvironment):
    if agent_name != 'moe_dqn':
      raise ValueError(
          f"agent '{agent_name}' cannot mask the actions a task lacks; use "
          "moe_dopamine.create_agent.agent_name = 'moe_dqn' with a multi-task "
          'environment.'
      )
    # The environment is the one source of the observation layout.
    kwargs.update(
        observation_shape=environment.observation_shape,
        observation_dtype=tf.float32,
        stack_size=1,
        action_masks=environment.action_masks,
        network_kwargs=dict(
            num_tasks=environment.num_tasks, task_id_in_observation=True
        ),
    )
  return AGENTS[agent_name](
      sess,
      num_actions=environment.action_space.n,
      summary_writer=summary_writer,
      **kwargs,
  )


def task_names_of(environment):
  """Task names by task id: the multi-task list, or the gym task's name."""
  if isinstance(environment, multitask.MultiTaskEnvironment):
    return environment.task_names
  spec = getattr(getattr(environment, 'environment', None), 'spec', None)
  return [spec.name if spec is not None else 'task']


def average_statistics(records):
  """Mean of each key over a list of statistics dicts (lists elementwise)."""
  keys = dict.fromkeys(k for record in records for k in record)
  out = {}
  for key in keys:
    values = [record[key] for record in records if key in record]
    mean = np.mean(np.asarray(values, float), axis=0)
    out[key] = mean.tolist() if np.ndim(mean) else float(mean)
  return out


def configured_agent_name():
  """The agent name the parsed gin config asks for (default 'moe_dqn')."""
  try:
    return gin.query_parameter('moe_dopamine.create_agent.agent_name')
  except ValueError:
    return 'moe_dqn'


def check_config():
  """Fails fast, before any graph is built, on configured names."""
  check_choice(
      configured_agent_name(), AGENTS, 'agent', 'moe_dopamine.create_agent.agent_name'
  )
  try:
    schedule = gin.query_parameter('moe_dopamine.create_runner.schedule')
  except ValueError:
    schedule = SCHEDULES[0]
  check_choice(schedule, SCHEDULES, 'schedule', 'moe_dopamine.create_runner.schedule')


@gin.configurable
class MoERunner(run_experiment.Runner):
  """Dopamine's Runner with seeding and, for multi-task environments, tasks.

  With a `MultiTaskEnvironment`, every iteration trains on the schedule's
  task(s), then evaluates every task for `evaluation_steps` steps each. The
  iteration statistics gain, for each task name T:
  `eval_average_return_T`, `eval_normalized_score_T`, `train_average_return_T`
  (when T was trained), and `train_task` (T in CRL, 'mixed' in MTRL).
  """

  def __init__(
      self,
      base_dir,
      create_agent_fn=create_agent,
      seed=None,
      intra_op_threads=0,
      **kwargs,
  ):
    """Seeds Python, NumPy and TensorFlow's graph, then builds as Runner does.

    Args:
      base_dir: str, the run's folder.
      create_agent_fn: (sess, environment, summary_writer) -> agent.
      seed: None or int; with an int, the run is repeatable up to
        TensorFlow's nondeterministic CPU reductions.
      intra_op_threads: int, TensorFlow threads per op (0: TensorFlow's
        default, all cores); a sweep running one process per core sets 1.
      **kwargs: `Runner` arguments (and so `Runner.*` gin bindings).
    """
    self.seed = seed
    if seed is not None:
      random.seed(seed)
      np.random.seed(seed)
      tf.compat.v1.set_random_seed(seed)
    logging.info('\t seed: %s', seed)
    self._episode_tasks = []
    if intra_op_threads:
      config = tf.compat.v1.ConfigProto(
          allow_soft_placement=True,
          intra_op_parallelism_threads=intra_op_threads,
          inter_op_parallelism_threads=intra_op_threads,
      )
      agent_fn = create_agent_fn

      def create_agent_fn(unused_sess, environment, summary_writer=None):
        return agent_fn(
            tf.compat.v1.Session(config=config), environment, summary_writer=summary_writer
        )

    super().__init__(base_dir, create_agent_fn, **kwargs)
    if seed is not None:
      if self.multitask:
        self._environment.seed = seed
      elif hasattr(self._environment, 'environment'):
        # gymnasium environments seed on reset; Dopamine's wrapper hides it.
        self._environment.environment.reset(seed=seed)
    self._use_schedule_length()

  def _use_schedule_length(self):
    """A CRL run lasts its schedule, unless Runner.num_iterations is bound."""
    schedule = getattr(self._environment, 'schedule_length', None)
    if not schedule:
      return
    try:
      bound = gin.query_parameter('Runner.num_iterations')
    except ValueError:
      bound = None
    if bound is None:
      logging.info('num_iterations: %d, the length of the task schedule', schedule)
      self._num_iterations = schedule
    elif bound != schedule:
      logging.warning(
          'Runner.num_iterations=%d differs from the CRL schedule length %d '
          '(tasks x iterations_per_task x num_cycles); the run stops at %d.',
          bound, schedule, bound,
      )

  @property
  def multitask(self):
    return isinstance(self._environment, multitask.MultiTaskEnvironment)

  def _run_one_iteration(self, iteration):
    if self.multitask:
      self._environment.begin_iteration(iteration)
      self._iteration = iteration
    statistics = super()._run_one_iteration(iteration)
    self._log_diagnostics(iteration, statistics)
    return statistics

  def _log_diagnostics(self, iteration, statistics):
    """Adds the agent's measurements of this iteration, averaged, to the
    iteration statistics and to TensorBoard."""
    records = getattr(self._agent, 'diagnostics_log', None)
    if not records:
      return
    self._agent.diagnostics_log = []
    averaged = average_statistics(records)
    if 'redo_recycled' in averaged:  # A count: the iteration's total.
      averaged['redo_recycled'] = float(
          sum(r.get('redo_recycled', 0) for r in records)
      )
    instances = []
    for key, value in averaged.items():
      # A per-expert statistic is its list of n floats; a scalar, [scalar].
      per_expert = isinstance(value, list)
      statistics[key] = value if per_expert else [value]
      names = [f'{key}/expert_{e}' for e in range(len(value))] if per_expert else [key]
      for name, v in zip(names, statistics[key]):
        instances.append(
            statistics_instance.StatisticsInstance(f'Diagnostics/{name}', v, iteration)
        )
    if self._has_collector_dispatcher:
      self._collector_dispatcher.write(instances, collector_allowlist=['tensorboard'])

  def _run_one_episode(self):
    length, episode_return = super()._run_one_episode()
    if self.multitask:
      # The environment resets only at the next episode: still this one's task.
      self._episode_tasks.append((self._environment.current_task, episode_return))
    return length, episode_return

  def _run_train_phase(self, statistics):
    self._episode_tasks = []
    result = super()._run_train_phase(statistics)
    if self.multitask:
      env = self._environment
      statistics.append({'train_task': env.train_task_name(self._iteration)})
      for task, name in enumerate(env.task_names):
        returns = [r for t, r in self._episode_tasks if t == task]
        if returns:
          statistics.append({f'train_average_return_{name}': stats_lib.mean(returns)})
    return result

  def _run_eval_phase(self, statistics):
    """Evaluates every task in turn (multi-task), else as Dopamine does."""
    if not self.multitask:
      return super()._run_eval_phase(statistics)
    env = self._environment
    self._agent.eval_mode = True
    total_return, total_episodes = 0.0, 0
    try:
      for task, name in enumerate(env.task_names):
        env.set_eval_task(task)
        _, sum_returns, num_episodes = self._run_one_phase(
            self._evaluation_steps, statistics, 'eval'
        )
        average = sum_returns / num_episodes if num_episodes else 0.0
        statistics.append({
            f'eval_average_return_{name}': average,
            f'eval_normalized_score_{name}': env.normalized_score(task, average),
        })
        logging.info('Average evaluation return on %s: %.2f', name, average)
        total_return += sum_returns
        total_episodes += num_episodes
    finally:
      env.set_eval_task(None)
    average_return = total_return / total_episodes if total_episodes else 0.0
    statistics.append({'eval_average_return': average_return})
    return total_episodes, average_return

  @property
  def agent(self):
    return self._agent

  @property
  def start_iteration(self):
    return self._start_iteration


@gin.configurable
class MoETrainRunner(MoERunner, run_experiment.TrainRunner):
  """Training only (no evaluation phase), like Dopamine's TrainRunner."""


@gin.configurable(module='moe_dopamine')
def create_runner(base_dir, schedule='continuous_train_and_eval'):
  """Creates the experiment runner.

  Args:
    base_dir: str, the run's folder.
    schedule: 'continuous_train_and_eval' (train then evaluate every
      iteration) or 'continuous_train'.

  Returns:
    A MoERunner.
  """
  check_choice(schedule, SCHEDULES, 'schedule', 'moe_dopamine.create_runner.schedule')
  if schedule == 'continuous_train':
    return MoETrainRunner(base_dir, create_agent)
  return MoERunner(base_dir, create_agent)
