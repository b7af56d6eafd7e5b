"""The plugin's agent and runner factories, and its Runner subclass.

Dopamine's `run_experiment.create_agent` is a fixed if/elif over names, so the
plugin has its own gin-configurable `moe_dopamine.create_agent` and
`moe_dopamine.create_runner`, as Dopamine's research labs do. Stock logging
(`logs/log_N`) and checkpointing are unchanged, so
`dopamine.colab.utils.read_experiment` reads the runs.
"""

import difflib
import random

from absl import logging
from dopamine.discrete_domains import run_experiment
from dopamine.tf.agents.dqn import dqn_agent
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine.agents import moe_dqn_agent

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
  return AGENTS[agent_name](
      sess, num_actions=environment.action_space.n, summary_writer=summary_writer
  )


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
  """Dopamine's Runner with seeding; the MoE and task logic live in hooks."""

  def __init__(self, base_dir, create_agent_fn=create_agent, seed=None, **kwargs):
    """Seeds Python, NumPy and TensorFlow's graph, then builds as Runner does.

    Args:
      base_dir: str, the run's folder.
      create_agent_fn: (sess, environment, summary_writer) -> agent.
      seed: None or int; with an int, the run is repeatable up to
        TensorFlow's nondeterministic CPU reductions.
      **kwargs: `Runner` arguments (and so `Runner.*` gin bindings).
    """
    self.seed = seed
    if seed is not None:
      random.seed(seed)
      np.random.seed(seed)
      tf.compat.v1.set_random_seed(seed)
    logging.info('\t seed: %s', seed)
    super().__init__(base_dir, create_agent_fn, **kwargs)
    if seed is not None and hasattr(self._environment, 'environment'):
      # gymnasium environments seed on reset; Dopamine's wrapper hides it.
      self._environment.environment.reset(seed=seed)

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
