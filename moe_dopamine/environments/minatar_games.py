"""MinAtar games (Young & Tian, 2019) behind gymnasium's environment API.

`MinAtarGame` wraps one `minatar.Environment` with gymnasium's `reset(seed=...)`
and 5-tuple `step`, so `MultiTaskEnvironment`, the runner's side-by-side
evaluation and the random-return measurement treat a MinAtar game exactly as
they treat a gymnasium classic-control task.

- Actions are MinAtar's own six ids in every game (0 no-op, 1 left, 2 up,
  3 right, 4 down, 5 fire). `legal_actions` are the game's minimal action set
  (`action_set='minimal'`) or all six (`'full'`); the multi-task environment
  masks the rest, in acting, exploration and the target's max.
- Sticky actions (MinAtar's rule): with probability `sticky_action_prob` the
  game repeats the previous action instead of the chosen one. Each episode
  starts with "previous action" = no-op, so an episode does not depend on how
  the one before it ended.
- Randomness: the game's own draws (spawns, speeds) and the sticky-action
  draws come from one stream, the bit generator of gymnasium's `np_random`
  (MinAtar's `numpy.random.RandomState` is built over it). `reset(seed=s)`
  therefore makes the episodes that follow repeatable, and saving
  `np_random.bit_generator.state` saves all of the game's randomness (what
  `MultiTaskEnvironment.get_state` does for every task).
- Observations: MinAtar's bool state [10, 10, C].

MinAtar 1.0.15's `Environment(env_name, sticky_action_prob=0.1,
difficulty_ramping=True)` has no seed argument; its `seed(s)` replaces the
random state, which this wrapper does itself (over gymnasium's generator).
"""

import enum

import gin
import gymnasium
import minatar
import numpy as np

from moe_dopamine import config

# MinAtar's game modules, by the task names the package uses.
GAMES = {
    'Asterix': 'asterix',
    'Breakout': 'breakout',
    'Freeway': 'freeway',
    'Seaquest': 'seaquest',
    'SpaceInvaders': 'space_invaders',
}
NUM_ACTIONS = 6  # Every MinAtar game takes MinAtar's six action ids.
SCREEN = (10, 10)  # Every MinAtar game plays out on a 10 x 10 grid.


@gin.constants_from_enum(module='moe_dopamine')
class ActionSet(enum.Enum):
  """Which of MinAtar's six actions a game may take."""
  MINIMAL = 'minimal'  # The game's minimal_action_set().
  FULL = 'full'  # All six.


def check_game(game):
  """`game` if it is one of MinAtar's game modules, else a ConfigError."""
  if game in GAMES.values():
    return game
  raise config.ConfigError(
      f"unknown MinAtar game '{game}'." + config.did_you_mean(game, GAMES.values())
      + f" MinAtar's games: {', '.join(sorted(GAMES.values()))}."
  )


@gin.configurable(denylist=['game'])
class MinAtarGame(gymnasium.Env):
  """One MinAtar game as a gymnasium environment (see the module docstring)."""

  metadata = {'render_modes': []}

  def __init__(
      self,
      game,
      sticky_action_prob=0.1,
      difficulty_ramping=True,
      action_set=ActionSet.MINIMAL,
  ):
    """Creates the game.

    Args:
      game: str, MinAtar's module name of the game ('breakout', ...); set by
        the task's TaskSpec.
      sticky_action_prob: float in [0, 1], probability that the game repeats
        the previous action (MinAtar's default 0.1).
      difficulty_ramping: bool, MinAtar's difficulty ramp (on by default).
      action_set: ActionSet or its value: 'minimal' (the game's minimal
        action set) or 'full' (MinAtar's six actions).
    """
    self.game = check_game(game)
    self.sticky_action_prob = config.check_float(
        sticky_action_prob, 'MinAtarGame.sticky_action_prob', minimum=0.0, maximum=1.0
    )
    self.difficulty_ramping = config.check_bool(
        difficulty_ramping, 'MinAtarGame.difficulty_ramping'
    )
    self.action_set = config.parse_choice(ActionSet, action_set, 'MinAtarGame.action_set')
    self._game = minatar.Environment(
        game,
        sticky_action_prob=self.sticky_action_prob,
        difficulty_ramping=self.difficulty_ramping,
    )
    if self.action_set == ActionSet.MINIMAL:
      self.legal_actions = tuple(int(a) for a in self._game.minimal_action_set())
    else:
      self.legal_actions = tuple(range(NUM_ACTIONS))
    self.action_space = gymnasium.spaces.Discrete(NUM_ACTIONS)
    self.observation_space = gymnasium.spaces.Box(
        0, 1, tuple(self._game.state_shape()), bool
    )
    self._bound_generator = None  # The np_random the game draws from.

  def _bind_random_state(self):
    """Makes the game and its sticky actions draw from np_random's stream."""
    generator = self.np_random
    if generator is not self._bound_generator:
      shared = np.random.RandomState(generator.bit_generator)
      self._game.random = shared
      self._game.env.random = shared
      self._bound_generator = generator

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    self._bind_random_state()
    self._game.last_action = 0
    self._game.reset()
    return self._game.state(), {}

  def step(self, action):
    reward, terminal = self._game.act(int(action))
    return self._game.state(), float(reward), bool(terminal), False, {}
