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

MinAtar games (family MINATAR, `MINATAR_TASKS`) are tasks too: their
observation is MinAtar's bool screen [10, 10, C] (`observation_shape`), their
actions MinAtar's six ids, of which `minatar_games.MinAtarGame.legal_actions`
are legal, and they are built by `minatar_games.MinAtarGame` (gin-configurable:
sticky actions, difficulty ramping, action set) under the same step-limit
wrapper as gymnasium's tasks. Their random returns are measured the same way
(uniform over the legal actions of MinAtarGame's defaults: the minimal action
set, sticky actions 0.1, difficulty ramping on); their reference returns are
approximations of MinAtar's published DQN results (see MINATAR_REFERENCE
below: unverified).
"""

import dataclasses
import sys
from typing import Optional, Tuple

from dopamine.discrete_domains import gym_lib
import gin
import gymnasium
import minatar
import numpy as np

from moe_dopamine import config
from moe_dopamine.environments import minatar_games

CLASSIC_CONTROL = 'classic_control'
MINATAR = 'minatar'


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
  # CLASSIC_CONTROL (a gymnasium id, a flat vector rescaled with min/max) or
  # MINATAR (a MinAtar game module name in gym_id, a [10, 10, C] screen).
  family: str = CLASSIC_CONTROL
  # The raw observation's shape when it is not a flat vector (MinAtar).
  observation_shape: Optional[Tuple[int, ...]] = None


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

# MinAtar. Random returns from `measure_random_return` as above (100 episodes,
# seed 0; uniform over each game's minimal action set, sticky actions 0.1,
# difficulty ramping on).
RANDOM_ASTERIX = 0.44
RANDOM_BREAKOUT = 0.38
RANDOM_FREEWAY = 0.34
RANDOM_SEAQUEST = 0.1
RANDOM_SPACE_INVADERS = 3.89
# Reference returns (normalized score 1): the final returns of the full DQN
# agent (experience replay and target network; sticky actions, 5M frames) in
# the learning curves of the MinAtar paper, Young & Tian 2019, "MinAtar: An
# Atari-Inspired Testbed for Thorough and Reproducible Reinforcement Learning
# Experiments", arXiv 1903.03176. The paper (and MinAtar's README) gives them
# only as curves, not as numbers: these are rounded approximations of those
# curves' end points, NOT verified against the figures, and may be off by
# tens of percent. Replace them with measured single-game runs (or checked
# readings of the figures) before normalized MinAtar scores carry a claim;
# `MultiTaskEnvironment.reference_returns` overrides them per run.
# Breakout alone has two independent checks: this package's baseline reaches
# a greedy evaluation return of 10.7 after 500k steps (docs/minatar), and a
# public DQN reimplementation of the paper's setup stores logs ending at a
# training return (epsilon 0.1, last 100 episodes) of 9.24 over 3 seeds at 5M
# frames (github.com/joash2003/rainbow-minatar, runs_breakout_seed*.log).
MINATAR_REFERENCE = {
    'Asterix': 20.0,
    'Breakout': 10.0,
    'Freeway': 55.0,
    'Seaquest': 20.0,
    'SpaceInvaders': 100.0,
}
# Dopamine's MinAtar configs set no real episode limit (Runner.
# max_steps_per_episode = 1e8), but evaluation counts episodes, so every
# episode must end: the limit is Dopamine's Atari one, 27,000 agent steps.
# (Freeway ends by itself after 2,500.)
MINATAR_STEP_LIMIT = 27000


def _minatar(name, random_return):
  """A MinAtar game; its screen shape comes from MinAtar."""
  module = minatar_games.GAMES[name]
  shape = tuple(int(d) for d in minatar.Environment(module).state_shape())
  return TaskSpec(
      name=name,
      gym_id=module,
      observation_size=int(np.prod(shape)),
      num_actions=minatar_games.NUM_ACTIONS,
      min_vals=(),
      max_vals=(),
      max_steps_per_episode=MINATAR_STEP_LIMIT,
      random_return=random_return,
      reference_return=MINATAR_REFERENCE[name],
      family=MINATAR,
      observation_shape=shape,
  )


MINATAR_TASKS = {
    spec.name: spec
    for spec in (
        _minatar('Asterix', RANDOM_ASTERIX),
        _minatar('Breakout', RANDOM_BREAKOUT),
        _minatar('Freeway', RANDOM_FREEWAY),
        _minatar('Seaquest', RANDOM_SEAQUEST),
        _minatar('SpaceInvaders', RANDOM_SPACE_INVADERS),
    )
}
# Every task by family; TASKS is the classic-control one.
FAMILIES = {CLASSIC_CONTROL: TASKS, MINATAR: MINATAR_TASKS}


def make_gym_environment(spec):
  """The gymnasium environment of a task, with the task's step limit."""
  if spec.family == MINATAR:
    return gymnasium.wrappers.TimeLimit(
        minatar_games.MinAtarGame(spec.gym_id), spec.max_steps_per_episode
    )
  return gymnasium.make(spec.gym_id, max_episode_steps=spec.max_steps_per_episode)


def legal_actions(env, spec):
  """The actions `env` (a task's environment) may take: its `legal_actions`
  (MinAtar) or the first num_actions."""
  return tuple(getattr(env.unwrapped, 'legal_actions', range(spec.num_actions)))


def random_episode_returns(spec, episodes=RANDOM_EPISODES, seed=RANDOM_SEED):
  """The returns of a uniformly random policy over `episodes` episodes.

  The environment is reset with `seed` once, then unseeded; actions come from
  numpy.random.default_rng(seed), uniformly among the task's legal actions.
  The same arguments give the same returns.
  """
  env = make_gym_environment(spec)
  legal = legal_actions(env, spec)
  rng = np.random.default_rng(seed)
  returns = []
  for episode in range(episodes):
    env.reset(seed=seed if episode == 0 else None)
    total, done = 0.0, False
    while not done:
      action = legal[int(rng.integers(len(legal)))]
      _, reward, terminated, truncated, _ = env.step(action)
      total += reward
      done = terminated or truncated
    returns.append(total)
  env.close()
  return np.asarray(returns, float)


def measure_random_return(spec, episodes=RANDOM_EPISODES, seed=RANDOM_SEED):
  """Mean return of a uniformly random policy (`random_episode_returns`)."""
  return float(np.mean(random_episode_returns(spec, episodes, seed)))


def register_task(spec):
  """Adds a task that environments can then name (to its family's tasks)."""
  FAMILIES[spec.family][spec.name] = spec
  if spec.family == CLASSIC_CONTROL:
    prefix = f'moe_dopamine.{spec.name.upper()}'
    gin.constant(f'{prefix}_MIN_VALS', spec.min_vals)
    gin.constant(f'{prefix}_MAX_VALS', spec.max_vals)


def all_tasks():
  """{name: TaskSpec} of every family."""
  return {name: spec for family in FAMILIES.values() for name, spec in family.items()}


_FAMILY_NAMES = {CLASSIC_CONTROL: 'classic control', MINATAR: 'MinAtar'}


def _known_tasks():
  """'Acrobot, CartPole, MountainCar (classic control); Asterix, ... (MinAtar)'."""
  return '; '.join(
      f"{', '.join(sorted(family))} ({_FAMILY_NAMES[kind]})"
      for kind, family in FAMILIES.items()
  )


def get_task(name):
  """The TaskSpec called `name`; a ValueError that says why if there is none."""
  every = all_tasks()
  if name in every:
    return every[name]
  known = _known_tasks()
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
  # MinAtar's own spelling ('space_invaders') names the package's task.
  by_module = {module: task for task, module in minatar_games.GAMES.items()}
  hint = (f" Did you mean '{by_module[name]}'?" if name in by_module
          else config.did_you_mean(name, every))
  raise config.ConfigError(f"unknown task '{name}'." + hint + f' Known tasks: {known}.')


def _gymnasium_id(name):
  """`name` itself or its newest version 'name-vN' among gymnasium's ids."""
  if name in gymnasium.registry:
    return name
  versions = sorted(i for i in gymnasium.registry if i.split('-v')[0] == name)
  return versions[-1] if versions else None


for _spec in list(TASKS.values()):
  register_task(_spec)


def main():
  for name, spec in all_tasks().items():
    print(f'{name} ({spec.gym_id}, {spec.max_steps_per_episode} steps): random '
          f'return {measure_random_return(spec):.2f} over {RANDOM_EPISODES} '
          f'episodes (seed {RANDOM_SEED}); reference {spec.reference_return}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
