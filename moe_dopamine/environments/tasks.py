"""What the package knows about each task: one definition per task.

A `TaskSpec` is all an environment or a network needs: the gymnasium id,
observation size and bounds (for the [-1, 1] rescale), action count, the
episode limit, and the random and reference returns that define a normalized
score. Single-task, multi-task and reference runs all build their tasks from
these specs (through `MultiTaskEnvironment`), so a task means the same thing
in every run. Bounds come from Dopamine's gym_lib; the step limits are
gymnasium's for CartPole-v1 and Acrobot-v1 and Dopamine's stock 600 for
MountainCar-v0 (gymnasium's 200 leaves an epsilon-greedy DQN almost no chance
to reach the flag).

Reference returns are gymnasium's "solved" thresholds (`reward_threshold` of
each id). Random returns are measured: the mean return of a uniformly random
policy over RANDOM_EPISODES episodes, `measure_random_return(spec)`, seeded
with RANDOM_SEED; `python -m moe_dopamine.environments.tasks` re-measures them.
"""

import dataclasses
import sys
from typing import Tuple

from dopamine.discrete_domains import gym_lib
import gin
import gymnasium
import numpy as np

from moe_dopamine import config


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


# Random-policy returns, from `measure_random_return` with the settings below.
RANDOM_EPISODES = 100
RANDOM_SEED = 0
RANDOM_CARTPOLE = 21.61
RANDOM_MOUNTAINCAR = -600.0
RANDOM_ACROBOT = -499.85


def _vals(array):
  return tuple(float(v) for v in np.asarray(array))


def _classic_control(name, gym_id, limit, random_return, reference_return):
  """A gymnasium classic-control task with Dopamine's gym_lib bounds."""
  prefix = name.upper()
  min_vals = _vals(getattr(gym_lib, f'{prefix}_MIN_VALS'))
  return TaskSpec(
      name=name,
      gym_id=gym_id,
      observation_size=len(min_vals),
      num_actions=int(gymnasium.spec(gym_id).make().action_space.n),
      min_vals=min_vals,
      max_vals=_vals(getattr(gym_lib, f'{prefix}_MAX_VALS')),
      max_steps_per_episode=limit,
      random_return=random_return,
      reference_return=reference_return,
  )


# name, gymnasium id, step limit, random return, reference ("solved") return.
TASKS = {
    spec.name: spec
    for spec in (
        _classic_control('CartPole', 'CartPole-v1', 500, RANDOM_CARTPOLE, 475.0),
        _classic_control('MountainCar', 'MountainCar-v0', 600, RANDOM_MOUNTAINCAR, -110.0),
        _classic_control('Acrobot', 'Acrobot-v1', 500, RANDOM_ACROBOT, -100.0),
    )
}


def make_gym_environment(spec):
  """The gymnasium environment of a task, with the task's step limit."""
  return gymnasium.make(spec.gym_id, max_episode_steps=spec.max_steps_per_episode)


def measure_random_return(spec, episodes=RANDOM_EPISODES, seed=RANDOM_SEED):
  """Mean return of a uniformly random policy over `episodes` episodes.

  The environment is reset with `seed` once, then unseeded; actions come from
  numpy.random.default_rng(seed). The same arguments give the same mean.
  """
  env = make_gym_environment(spec)
  rng = np.random.default_rng(seed)
  returns = []
  for episode in range(episodes):
    env.reset(seed=seed if episode == 0 else None)
    total, done = 0.0, False
    while not done:
      _, reward, terminated, truncated, _ = env.step(int(rng.integers(spec.num_actions)))
      total += reward
      done = terminated or truncated
    returns.append(total)
  env.close()
  return float(np.mean(returns))


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
      raise config.ConfigError(
          f"task '{name}' ({gym_id}) has a continuous action space "
          f'{action_space}; DQN needs discrete actions. Known tasks: {known}.'
      )
    raise config.ConfigError(
        f"task '{name}' ({gym_id}) has no TaskSpec (bounds, reference returns). "
        'Fix: moe_dopamine.environments.tasks.register_task(TaskSpec(...)), '
        f'or use a known task: {known}.'
    )
  raise config.ConfigError(
      f"unknown task '{name}'." + config.did_you_mean(name, TASKS) + f' Known tasks: {known}.'
  )


def _gymnasium_id(name):
  """`name` itself or its newest version 'name-vN' among gymnasium's ids."""
  if name in gymnasium.registry:
    return name
  versions = sorted(i for i in gymnasium.registry if i.split('-v')[0] == name)
  return versions[-1] if versions else None


for _spec in list(TASKS.values()):
  register_task(_spec)


def main():
  for name, spec in TASKS.items():
    print(f'{name} ({spec.gym_id}, {spec.max_steps_per_episode} steps): random '
          f'return {measure_random_return(spec):.2f} over {RANDOM_EPISODES} '
          f'episodes (seed {RANDOM_SEED}); reference {spec.reference_return}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
