"""The plugin's agent factory, `moe_dopamine.create_agent`.

Dopamine's `run_experiment.create_agent` is a fixed if/elif over names, so the
plugin has its own gin-configurable factory, as Dopamine's research labs do.
A multi-task environment is the one source of the observation layout, the
action masks and the task names the agent gets.
"""

import enum

from dopamine.tf.agents.dqn import dqn_agent
import gin
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.environments import multitask


@gin.constants_from_enum(module='moe_dopamine')
class AgentName(enum.Enum):
  MOE_DQN = 'moe_dqn'
  DQN = 'dqn'  # Stock Dopamine DQN, for side-by-side comparisons.


AGENTS = {
    AgentName.MOE_DQN: moe_dqn_agent.MoEDQNAgent,
    AgentName.DQN: dqn_agent.DQNAgent,
}
AGENT_BINDING = 'moe_dopamine.create_agent.agent_name'


@gin.configurable(module='moe_dopamine')
def create_agent(
    sess,
    environment,
    agent_name=AgentName.MOE_DQN,
    summary_writer=None,
    debug_mode=False,
):
  """Creates an agent for `environment`.

  Args:
    sess: `tf.compat.v1.Session`, or None for the agent to make one.
    environment: a Dopamine-style environment with a discrete action space.
    agent_name: AgentName or its value ('moe_dqn', or 'dqn': Dopamine's).
    summary_writer: a summary writer or a directory, used when debug_mode.
    debug_mode: bool, write the agent's TensorBoard summaries (losses).

  Returns:
    The agent.
  """
  agent_name = config.parse_choice(AgentName, agent_name, AGENT_BINDING)
  if not debug_mode:
    summary_writer = None
  kwargs = {}
  if isinstance(environment, multitask.MultiTaskEnvironment):
    if agent_name != AgentName.MOE_DQN and not environment.action_masks.all():
      raise config.ConfigError(
          f"agent '{agent_name.value}' cannot mask the actions a task lacks; use "
          "moe_dopamine.create_agent.agent_name = 'moe_dqn' with tasks of "
          'different action counts.'
      )
    # The environment is the one source of the observation layout.
    kwargs.update(
        observation_shape=environment.observation_shape,
        observation_dtype=tf.as_dtype(environment.observation_dtype),
        stack_size=1,
    )
    if agent_name == AgentName.MOE_DQN:
      kwargs.update(task_id_in_observation=True, action_masks=environment.action_masks)
  if agent_name == AgentName.MOE_DQN:
    kwargs['task_names'] = task_names_of(environment)
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
