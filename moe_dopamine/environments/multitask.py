"""Multi-task (MTRL) and continual (CRL) environments for Dopamine's runner.

One environment object serves every task of an experiment. It speaks
Dopamine's API (`reset`, 4-tuple `step`, `game_over`) and adds what the
plugin's runner and agent need: the task schedule, the per-task evaluation
switch, and the legal-action masks.

- Observations follow `moe_dopamine.observation`: rescaled features,
  zero-padded to the widest task, task id last (float32). MinAtar games: each
  screen's channels zero-padded to the widest game's, flattened, game id last
  (uint8, `observation_dtype`); `screen_shape` is [10, 10, C_max].
- Actions: the union size (the largest action count); `action_masks[t]` says
  which actions task t has (classic control: its first num_actions; MinAtar:
  the game's `legal_actions`, its minimal action set by default, among
  MinAtar's six action ids).
- One family per environment: classic-control tasks and MinAtar games do not
  share one network input, so mixing them is refused.
- Schedule: a pure function of (iteration, seed, episode index within the
  iteration), so a resumed run continues it exactly.
  CRL: task `task_names[(iteration // iterations_per_task) % N]`, for
  N * iterations_per_task * num_cycles iterations.
  MTRL: the task changes between episodes, round-robin or uniformly sampled.
- Episodes end at the task's own step limit (gymnasium's TimeLimit):
  `game_over` is set at a true end and at the limit, and `step`'s terminal
  flag only at a true end. Dopamine's agent stores every episode end as
  terminal; MoEDQNAgent(time_limit_is_terminal=False) stores a time limit as
  an episode end that is bootstrapped through.
"""

import enum

from absl import logging
import gin
import gymnasium
import numpy as np

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.environments import tasks
from moe_dopamine.metrics import continual
from moe_dopamine.metrics import names


@gin.constants_from_enum(module='moe_dopamine')
class Setting(enum.Enum):
  MTRL = 'mtrl'
  CRL = 'crl'


@gin.constants_from_enum(module='moe_dopamine')
class TaskSampling(enum.Enum):
  ROUND_ROBIN = 'round_robin'
  UNIFORM = 'uniform'


# One seed per run: MoERunner gives it to the environment factory.
config.SET_ELSEWHERE[('MultiTaskEnvironment', 'seed')] = 'MoERunner.seed'


def draw_seed():
  """A seed from the operating system's entropy (for unseeded runs)."""
  return int(np.random.SeedSequence().generate_state(1)[0])


@gin.configurable(denylist=['seed'])
class MultiTaskEnvironment:
  """Several tasks (gymnasium's or MinAtar's) behind one Dopamine-style
  environment."""

  def __init__(
      self,
      task_names=('CartPole', 'MountainCar'),
      setting=Setting.CRL,
      iterations_per_task=30,
      num_cycles=1,
      task_sampling=TaskSampling.ROUND_ROBIN,
      seed=None,
      random_returns=None,
      reference_returns=None,
  ):
    """Creates the environment (validates everything before any env is made).

    Args:
      task_names: task names from `tasks.TASKS` or `tasks.MINATAR_TASKS`
        (one family), in CRL order.
      setting: 'crl' (one task per stretch of iterations) or 'mtrl' (tasks
        change between episodes).
      iterations_per_task: int >= 1, CRL stretch length.
      num_cycles: int >= 1, CRL passes through the task sequence.
      task_sampling: MTRL: 'round_robin' or 'uniform' (seeded) per episode.
      seed: None or int, seeds the task sampling, the training environments
        and (through the runner) the evaluation environments; MoERunner
        passes its seed here. None (an unseeded run) draws a seed from the
        operating system's entropy, different for every run; it is saved
        with the checkpoints (`get_state`), so a resumed run continues the
        same schedule.
      random_returns: None or {task: return} overriding the TaskSpec's.
      reference_returns: None or {task: return} overriding the TaskSpec's.
    """
    task_names = list(task_names)
    if not task_names:
      raise config.ConfigError(
          'MultiTaskEnvironment.task_names is empty; name at least one of '
          f"{', '.join(sorted(tasks.all_tasks()))}."
      )
    if len(set(task_names)) != len(task_names):
      raise config.ConfigError(
          f'MultiTaskEnvironment.task_names has duplicates: {task_names}; '
          'repeat a sequence with num_cycles instead.'
      )
    self.setting = config.parse_choice(Setting, setting, 'MultiTaskEnvironment.setting')
    self.task_sampling = config.parse_choice(
        TaskSampling, task_sampling, 'MultiTaskEnvironment.task_sampling'
    )
    for name, value in (
        ('iterations_per_task', iterations_per_task),
        ('num_cycles', num_cycles),
    ):
      if not isinstance(value, int) or value < 1:
        raise config.ConfigError(
            f'MultiTaskEnvironment.{name} must be an integer >= 1, got {value!r}.'
        )
    self.specs = [tasks.get_task(name) for name in task_names]
    families = sorted({spec.family for spec in self.specs})
    if len(families) > 1:
      raise config.ConfigError(
          f'MultiTaskEnvironment.task_names {task_names} mix task families '
          f'{families}: their observations cannot share one network input. '
          'Name tasks of one family.'
      )
    self.family = families[0]
    self.task_names = task_names
    self.iterations_per_task = iterations_per_task
    self.num_cycles = num_cycles
    # The run's seed, or for an unseeded run one drawn at random (a run is
    # never silently seeded with a constant).
    self.seeded = seed is not None
    self.seed = int(seed) if self.seeded else draw_seed()
    self.random_returns = self._per_task(random_returns, 'random_return')
    self.reference_returns = self._per_task(reference_returns, 'reference_return')

    self.width = max(spec.observation_size for spec in self.specs)
    self.num_actions = max(spec.num_actions for spec in self.specs)
    self.observation_dtype = np.float32
    self.screen_shape = None  # MinAtar: [10, 10, C_max], what networks see.
    if self.family == tasks.MINATAR:
      self.observation_dtype = np.uint8
      channels = max(spec.observation_shape[-1] for spec in self.specs)
      self.screen_shape = tuple(self.specs[0].observation_shape[:-1]) + (channels,)
    self.action_space = gymnasium.spaces.Discrete(self.num_actions)
    if self.family == tasks.MINATAR:
      # 0/1 screen values, then the task id.
      self.observation_space = gymnasium.spaces.Box(
          0, 255, (self.width + 1,), self.observation_dtype
      )
    else:
      self.observation_space = gymnasium.spaces.Box(
          -np.inf, np.inf, (self.width + 1,), np.float32
      )
    self.observation_shape = (self.width + 1, 1)
    self.max_steps_per_episode = max(s.max_steps_per_episode for s in self.specs)

    self._envs = [tasks.make_gym_environment(spec) for spec in self.specs]
    self.action_masks = np.zeros((self.num_tasks, self.num_actions), bool)
    for t, (spec, env) in enumerate(zip(self.specs, self._envs)):
      self.action_masks[t, list(tasks.legal_actions(env, spec))] = True
    self._seeded_tasks = set()  # Each env is seeded on its first reset only.
    self._eval_envs = {}  # task -> environments for side-by-side evaluation.
    self.game_over = False
    self.current_task = 0
    self._eval_task = None
    self._iteration = 0
    self._episode_in_iteration = 0
    logging.info(
        'MultiTaskEnvironment: %s, %s tasks %s, observation width %d + task id '
        '(screen %s), %d actions, legal actions %s',
        self.setting.value,
        self.family,
        task_names,
        self.width,
        self.screen_shape,
        self.num_actions,
        [np.flatnonzero(m).tolist() for m in self.action_masks],
    )
    if self.family == tasks.MINATAR:
      game = self._envs[0].unwrapped
      logging.info(
          'MinAtar games: sticky_action_prob=%s difficulty_ramping=%s action_set=%s',
          game.sticky_action_prob, game.difficulty_ramping, game.action_set.value,
      )

  def _per_task(self, overrides, field):
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(self.task_names)
    if unknown:
      raise config.ConfigError(
          f'{field}s given for {sorted(unknown)}, which are not among the tasks '
          f'{self.task_names}.'
      )
    return [overrides.get(s.name, getattr(s, field)) for s in self.specs]

  @property
  def num_tasks(self):
    return len(self.specs)

  def ignored_bindings(self):
    """{'MultiTaskEnvironment.parameter': why} of the parameters the
    setting does not use (see moe_dopamine.bindings)."""
    if self.setting == Setting.MTRL:
      why = 'MTRL changes the task between episodes, with no CRL schedule'
      return {'MultiTaskEnvironment.iterations_per_task': why,
              'MultiTaskEnvironment.num_cycles': why}
    return {'MultiTaskEnvironment.task_sampling':
            "CRL trains the tasks in order (task_sampling applies to setting='mtrl')"}

  @property
  def schedule_length(self):
    """Iterations a CRL run of several tasks takes; None for MTRL and for a
    single task (their length is Runner.num_iterations)."""
    if self.setting == Setting.CRL and self.num_tasks > 1:
      return self.num_tasks * self.iterations_per_task * self.num_cycles
    return None

  def crl_task(self, iteration):
    """The task index CRL trains on at `iteration`."""
    return (iteration // self.iterations_per_task) % self.num_tasks

  def train_task_id(self, iteration):
    """The task id trained at `iteration`; names.MTRL_TRAIN_TASK in MTRL."""
    if self.setting == Setting.CRL:
      return self.crl_task(iteration)
    return names.MTRL_TRAIN_TASK

  def get_state(self):
    """What a resumed run needs to continue as an uninterrupted one: each
    task environment's random state and which were seeded."""
    return {
        'seed': self.seed,
        'seeded_tasks': sorted(self._seeded_tasks),
        'np_random': [env.unwrapped.np_random.bit_generator.state for env in self._envs],
    }

  def set_state(self, state):
    """Restores `get_state()`; the next episode starts from it."""
    self.seed = state.get('seed', self.seed)
    self._seeded_tasks = set(state['seeded_tasks'])
    for env, random_state in zip(self._envs, state['np_random']):
      env.unwrapped.np_random.bit_generator.state = random_state

  def mtrl_task(self, iteration, episode):
    """The task index of MTRL training episode `episode` of `iteration`."""
    if self.task_sampling == TaskSampling.ROUND_ROBIN:
      return (iteration + episode) % self.num_tasks
    rng = np.random.default_rng([self.seed, iteration, episode])
    return int(rng.integers(self.num_tasks))

  def begin_iteration(self, iteration):
    """Called by the runner before an iteration's training phase."""
    self._iteration = iteration
    self._episode_in_iteration = 0
    self._eval_task = None

  def set_eval_task(self, task):
    """Pins every following episode to `task` (index); None unpins."""
    self._eval_task = task

  def normalized_score(self, task, episode_return):
    """clip((R - R_random) / (R_reference - R_random), 0, 1) for task index."""
    return float(
        continual.normalized_score(
            episode_return, self.random_returns[task], self.reference_returns[task]
        )
    )

  def _next_task(self):
    if self._eval_task is not None:
      return self._eval_task
    if self.setting == Setting.CRL:
      return self.crl_task(self._iteration)
    task = self.mtrl_task(self._iteration, self._episode_in_iteration)
    self._episode_in_iteration += 1
    return task

  def encode(self, task, raw):
    """The observation of task `task` for raw features `raw`."""
    spec = self.specs[task]
    if self.family == tasks.MINATAR:
      features = observation.pad_channels(raw, self.screen_shape[-1]).reshape(-1)
      return observation.encode(features, task, self.width, self.observation_dtype)
    features = observation.rescale_features(
        np.asarray(raw, np.float32),
        np.asarray(spec.min_vals, np.float32),
        np.asarray(spec.max_vals, np.float32),
    )
    return observation.encode(features, task, self.width)

  def _encode(self, raw):
    return self.encode(self.current_task, raw)

  def evaluation_episodes(self, task, num_episodes, seed):
    """`num_episodes` fresh environments of `task`, reset with seeds
    seed, seed + 1, ...: (environments, first observations [k, width + 1]).

    Evaluation runs them side by side, apart from the training environments,
    so evaluating never disturbs the training episode in progress.
    """
    cache = self._eval_envs.setdefault(task, [])
    while len(cache) < num_episodes:
      cache.append(tasks.make_gym_environment(self.specs[task]))
    envs = cache[:num_episodes]
    first = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    return envs, np.stack([self.encode(task, raw) for raw in first])

  def reset(self):
    self.current_task = self._next_task()
    env = self._envs[self.current_task]
    if self.current_task not in self._seeded_tasks:
      self._seeded_tasks.add(self.current_task)
      raw, _ = env.reset(seed=self.seed + self.current_task)
    else:
      raw, _ = env.reset()
    self.game_over = False
    return self._encode(raw)

  def step(self, action):
    if not self.action_masks[self.current_task, action]:
      raise ValueError(
          f'action {action} is not an action of task '
          f'{self.task_names[self.current_task]} (its actions: '
          f'{np.flatnonzero(self.action_masks[self.current_task]).tolist()}).'
      )
    raw, reward, terminated, truncated, info = self._envs[self.current_task].step(
        int(action)
    )
    # The episode ends at a time limit too (game_over), but only a true end
    # is terminal: an agent that tells them apart (MoEDQNAgent with
    # time_limit_is_terminal=False) then bootstraps through time limits.
    self.game_over = bool(terminated or truncated)
    return self._encode(raw), float(reward), bool(terminated), info

