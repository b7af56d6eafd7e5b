"""What the package knows about each task.

A `TaskSpec` is all a multi-task environment or a network needs: the
gymnasium id, observation size and bounds (for the [-1, 1] rescale), action
count, the episode limit, and the random and reference returns that define a
normalized score. Bounds come from Dopamine's gym_lib, so single-task runs
rescale exactly as stock Dopamine does.
"""

import dataclasses
import difflib
from typing import Optional, Tuple

from dopamine.discrete_domains import gym_lib
import gin
import gymnasium
import numpy as np


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  name: str
  gym_id: str
  observation_size: int
  num_actions: int
  min_vals: Tuple[float, ...]
  max_vals: Tuple[float, ...]
  max_steps_per_episode: int
  # Mean return of a uniformly random policy, and a good return (score 1).
  random_return: float
  reference_return: float
  observation_shape: Optional[Tuple[int, ...]] = None


def _vals(array):
  return tuple(float(v) for v in np.asarray(array))


TASKS = {
    'CartPole': TaskSpec(
        name='CartPole',
        gym_id='CartPole-v1',
        observation_size=4,
        num_actions=2,
        min_vals=_vals(gym_lib.CARTPOLE_MIN_VALS),
        max_vals=_vals(gym_lib.CARTPOLE_MAX_VALS),
        max_steps_per_episode=500,
        random_return=22.0,
        reference_return=500.0,
    ),
    'MountainCar': TaskSpec(
        name='MountainCar',
        gym_id='MountainCar-v0',
        observation_size=2,
        num_actions=3,
        min_vals=_vals(gym_lib.MOUNTAINCAR_MIN_VALS),
        max_vals=_vals(gym_lib.MOUNTAINCAR_MAX_VALS),
        max_steps_per_episode=200,
        random_return=-200.0,
        reference_return=-110.0,
    ),
    'Acrobot': TaskSpec(
        name='Acrobot',
        gym_id='Acrobot-v1',
        observation_size=6,
        num_actions=3,
        min_vals=_vals(gym_lib.ACROBOT_MIN_VALS),
        max_vals=_vals(gym_lib.ACROBOT_MAX_VALS),
        max_steps_per_episode=500,
        random_return=-500.0,
        reference_return=-80.0,
    ),
}

def register_task(spec):
  """Adds a task (e.g. a MinAtar game) that environments can then name."""
  TASKS[spec.name] = spec
  prefix = f'moe_dopamine.{spec.name.upper()}'
  gin.constant(f'{prefix}_MIN_VALS', spec.min_vals)
  gin.constant(f'{prefix}_MAX_VALS', spec.max_vals)


def get_task(name):
  """The TaskSpec called `name`; a ValueError that says why if there is none."""
  if name in TASKS:
    return TASKS[name]
  known = ', '.join(sorted(TASKS))
  gym_id = _gymnasium_id(name)
  if gym_id is not None:
    action_space = gymnasium.spec(gym_id).make().action_space
    if not isinstance(action_space, gymnasium.spaces.Discrete):
      raise ValueError(
          f"task '{name}' ({gym_id}) has a continuous action space "
          f'{action_space}; DQN needs discrete actions. Known tasks: {known}.'
      )
    raise ValueError(
        f"task '{name}' ({gym_id}) has no TaskSpec (bounds, reference returns). "
        'Fix: moe_dopamine.environments.tasks.register_task(TaskSpec(...)), '
        f'or use a known task: {known}.'
    )
  hint = difflib.get_close_matches(name, list(TASKS), n=1)
  raise ValueError(
      f"unknown task '{name}'."
      + (f" Did you mean '{hint[0]}'?" if hint else '')
      + f' Known tasks: {known}.'
  )


def _gymnasium_id(name):
  """`name` itself or its newest version 'name-vN' among gymnasium's ids."""
  if name in gymnasium.registry:
    return name
  versions = sorted(i for i in gymnasium.registry if i.split('-v')[0] == name)
  return versions[-1] if versions else None


for _spec in list(TASKS.values()):
  register_task(_spec)
