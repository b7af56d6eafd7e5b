"""MultiTaskEnvironment: observation layout, masks, schedules, bad input."""

import gin
import numpy as np
import pytest

from moe_dopamine.environments import multitask
from moe_dopamine.environments import tasks
from moe_dopamine.metrics import names


def make(**kwargs):
  kwargs.setdefault('task_names', ['CartPole', 'MountainCar'])
  return multitask.MultiTaskEnvironment(**kwargs)


def test_observations_are_rescaled_padded_and_carry_the_task_id():
  env = make(setting='crl', iterations_per_task=1, seed=0)
  assert env.observation_shape == (5, 1) and env.num_actions == 3
  env.set_eval_task(1)  # MountainCar: 2 features.
  obs = env.reset()
  raw = env._envs[1].unwrapped.state
  low, high = np.array([-1.2, -0.07]), np.array([0.6, 0.07])
  np.testing.assert_allclose(obs[:2], 2 * (raw - low) / (high - low) - 1, rtol=1e-5)
  np.testing.assert_array_equal(obs[2:4], [0.0, 0.0])  # Padding.
  assert obs[4] == 1.0  # Task id.
  env.set_eval_task(0)  # CartPole: 4 features, id 0.
  obs = env.reset()
  raw = np.asarray(env._envs[0].unwrapped.state)
  np.testing.assert_allclose(
      obs[:4], 2 * (raw + [2.4, 5, np.pi / 12, 2 * np.pi]) / [4.8, 10, np.pi / 6, 4 * np.pi] - 1,
      rtol=1e-5, atol=1e-6,
  )
  assert obs[4] == 0.0


def test_action_masks_are_the_union_with_each_tasks_actions():
  env = make(task_names=['CartPole', 'MountainCar', 'Acrobot'])
  np.testing.assert_array_equal(
      env.action_masks, [[True, True, False], [True, True, True], [True, True, True]]
  )
  env.set_eval_task(0)
  env.reset()
  with pytest.raises(ValueError, match='action 2 is not an action of task CartPole'):
    env.step(2)


def test_crl_schedule_over_cycles():
  env = make(
      task_names=['CartPole', 'MountainCar', 'Acrobot'],
      setting='crl', iterations_per_task=2, num_cycles=2,
  )
  assert env.schedule_length == 12
  assert [env.train_task_id(i) for i in range(12)] == ([0] * 2 + [1] * 2 + [2] * 2) * 2
  env.begin_iteration(5)
  env.reset()
  assert env.current_task == 2


def test_mtrl_round_robin_changes_task_every_episode():
  env = make(setting='mtrl', task_sampling='round_robin')
  assert env.schedule_length is None and env.train_task_id(3) == names.MTRL_TRAIN_TASK
  env.begin_iteration(0)
  seen = []
  for _ in range(4):
    env.reset()
    seen.append(env.current_task)
  assert seen == [0, 1, 0, 1]


def test_mtrl_uniform_sampling_is_a_function_of_seed_and_iteration():
  first = make(setting='mtrl', task_sampling='uniform', seed=3)
  second = make(setting='mtrl', task_sampling='uniform', seed=3)
  draws = [first.mtrl_task(7, e) for e in range(50)]
  assert draws == [second.mtrl_task(7, e) for e in range(50)]
  assert set(draws) == {0, 1}
  assert draws != [first.mtrl_task(8, e) for e in range(50)]


def test_episodes_end_at_the_tasks_own_step_limit():
  env = make(setting='crl', iterations_per_task=1)
  env.set_eval_task(1)  # MountainCar: 600 steps; a constant push never wins.
  env.reset()
  steps = 0
  while not env.game_over:
    env.step(1)
    steps += 1
  assert steps == tasks.TASKS['MountainCar'].max_steps_per_episode == 600


def test_normalized_scores_use_gin_overridable_returns():
  env = make(reference_returns={'CartPole': 200.0}, random_returns={'MountainCar': -500.0})
  assert env.normalized_score(0, 111.0) == pytest.approx((111 - 21.61) / (200 - 21.61))
  assert env.normalized_score(0, 1000.0) == 1.0
  assert env.normalized_score(1, -600.0) == 0.0
  assert env.normalized_score(1, -305.0) == pytest.approx(195 / 390)


def test_environment_state_round_trip_continues_the_random_streams():
  env = make(setting='crl', iterations_per_task=1, seed=4)
  env.reset()
  state = env.get_state()
  first = [env._envs[0].unwrapped.np_random.random() for _ in range(3)]
  other = make(setting='crl', iterations_per_task=1, seed=4)
  other.set_state(state)
  assert [other._envs[0].unwrapped.np_random.random() for _ in range(3)] == first
  assert other._seeded_tasks == {0}


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'task_names': ['CartPole', 'Cartpol']}, "unknown task 'Cartpol'. Did you mean 'CartPole'.*Known tasks: Acrobot, CartPole, MountainCar"),
        ({'task_names': ['Pendulum']}, "task 'Pendulum' .*continuous action space"),
        ({'task_names': ['CartPole'], 'iterations_per_task': 0}, 'iterations_per_task must be an integer >= 1, got 0'),
        ({'task_names': []}, 'task_names is empty'),
        ({'task_names': ['CartPole', 'CartPole']}, 'duplicates'),
        ({'setting': 'continual'}, r"setting='continual' is not one of \['mtrl', 'crl'\]"),
        ({'reference_returns': {'Acrobot': 1.0}}, "not among the tasks"),
    ],
)
def test_bad_input_names_the_problem(kwargs, message):
  with pytest.raises(ValueError, match=message):
    make(**kwargs)


GAMES = ['Breakout', 'SpaceInvaders', 'Asterix']


def test_minatar_screens_are_padded_to_the_widest_game_with_the_game_id_last():
  env = make(task_names=GAMES, setting='crl', iterations_per_task=1, seed=0)
  assert env.screen_shape == (10, 10, 6)  # SpaceInvaders' 6 channels.
  assert env.observation_shape == (601, 1) and env.observation_dtype == np.uint8
  for task, channels in ((0, 4), (1, 6), (2, 4)):
    env.set_eval_task(task)
    obs = env.reset()
    assert obs.shape == (601,) and obs.dtype == np.uint8
    screen = obs[:-1].reshape(10, 10, 6)
    raw = env._envs[task].unwrapped._game.state()
    np.testing.assert_array_equal(screen[..., :channels], raw)
    assert not screen[..., channels:].any()  # Padding.
    assert obs[-1] == task
    obs, _, _, _ = env.step(0)
    np.testing.assert_array_equal(
        obs[:-1].reshape(10, 10, 6)[..., :channels], env._envs[task].unwrapped._game.state()
    )


def test_minatar_masks_are_each_games_minimal_action_set():
  env = make(task_names=GAMES)
  assert env.num_actions == 6
  np.testing.assert_array_equal(
      env.action_masks.astype(int),
      [[1, 1, 0, 1, 0, 0], [1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 0]],
  )
  env.set_eval_task(0)
  env.reset()
  with pytest.raises(ValueError, match=r'action 5 is not an action of task Breakout \(its actions: \[0, 1, 3\]\)'):
    env.step(5)


def test_the_full_action_set_masks_nothing():
  gin.bind_parameter('MinAtarGame.action_set', 'full')
  assert make(task_names=GAMES).action_masks.all()


def minatar_observations(seed, steps=400):
  env = make(task_names=GAMES, setting='mtrl', seed=seed)
  env.begin_iteration(0)
  rng = np.random.default_rng(0)
  frames = [env.reset()]
  for _ in range(steps):
    legal = np.flatnonzero(env.action_masks[env.current_task])
    obs, _, done, _ = env.step(rng.choice(legal))
    frames.append(env.reset() if done else obs)
  return np.stack(frames)


def test_a_seeded_multigame_environment_repeats_its_observations():
  first = minatar_observations(seed=3)
  assert set(first[:, -1]) == {0, 1, 2}  # Round robin went through every game.
  np.testing.assert_array_equal(first, minatar_observations(seed=3))
  assert not np.array_equal(first, minatar_observations(seed=4))


def evaluation_trajectories(env, task, seed, episodes=3, steps=150):
  """Each evaluation episode's observations under one fixed action sequence
  ([episodes, steps + 1, width + 1]): what its seed decides, beyond the
  first frame (SpaceInvaders' first frame is the same for every seed)."""
  envs, first = env.evaluation_episodes(task, episodes, seed=seed)
  legal = np.flatnonzero(env.action_masks[task])
  actions = np.random.default_rng(0).choice(legal, steps)
  trajectories = []
  for game, observation in zip(envs, first):
    frames = [observation]
    for action in actions:
      raw, _, terminated, truncated, _ = game.step(int(action))
      frames.append(env.encode(task, raw) if not (terminated or truncated) else frames[-1])
    trajectories.append(np.stack(frames))
  return np.stack(trajectories)


def test_minatar_evaluation_episodes_are_seeded_apart_from_training():
  env = make(task_names=GAMES, seed=0)
  env.reset()  # A training episode in progress (Breakout).
  training_state = env.get_state()
  first = evaluation_trajectories(env, 1, seed=10)
  assert first.shape == (3, 151, 601) and set(first[:, :, -1].ravel()) == {1}
  # The same seed replays the same episodes; another seed plays others, and
  # the episodes of one evaluation differ from each other (seeds 10, 11, 12).
  np.testing.assert_array_equal(first, evaluation_trajectories(env, 1, seed=10))
  assert not np.array_equal(first, evaluation_trajectories(env, 1, seed=20))
  assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
  # Evaluating drew nothing from the training environments' streams.
  assert env.get_state() == training_state


def test_classic_control_and_minatar_tasks_do_not_mix():
  with pytest.raises(ValueError, match=r"mix task families \['classic_control', 'minatar'\]"):
    make(task_names=['CartPole', 'Breakout'])


def test_an_unseeded_environment_is_seeded_by_nothing_constant():
  # Unseeded, two environments start different episodes, sample different
  # MTRL schedules and seed different evaluation episodes (env.seed).
  first, second = (make(setting='mtrl', task_sampling='uniform') for _ in range(2))
  assert not first.seeded and first.seed != second.seed
  assert not np.array_equal(first.reset(), second.reset())
  schedule = [[env.mtrl_task(i, e) for i in range(20) for e in range(3)]
              for env in (first, second)]
  assert schedule[0] != schedule[1]
  # A resume continues the drawn seed's schedule.
  resumed = make(setting='mtrl', task_sampling='uniform')
  resumed.set_state(first.get_state())
  assert resumed.seed == first.seed
  assert [resumed.mtrl_task(i, e) for i in range(20) for e in range(3)] == schedule[0]
  seeded = make(setting='crl', seed=7)
  assert seeded.seeded and seeded.seed == 7
