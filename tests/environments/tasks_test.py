"""Task definitions: one per task, measured random returns, solved thresholds."""

import dataclasses

import gin
import gymnasium
import pytest

from moe_dopamine import config
from moe_dopamine.environments import tasks


@pytest.mark.parametrize('name', sorted(tasks.TASKS))
@pytest.mark.slow
def test_random_returns_are_the_measured_ones(name):
  spec = tasks.TASKS[name]
  # Re-measured with the documented episodes and seed: the same number.
  assert tasks.measure_random_return(spec) == pytest.approx(spec.random_return, abs=1e-9)


@pytest.mark.parametrize('name', sorted(tasks.TASKS))
def test_reference_returns_are_gymnasiums_solved_thresholds(name):
  spec = tasks.TASKS[name]
  assert spec.reference_return == gymnasium.spec(spec.gym_id).reward_threshold


def test_a_random_policy_measurement_depends_on_its_seed():
  spec = tasks.TASKS['CartPole']
  assert tasks.measure_random_return(spec, 20, seed=1) != tasks.measure_random_return(
      spec, 20, seed=2
  )


def test_each_task_has_its_own_episode_limit():
  env = tasks.make_gym_environment(tasks.TASKS['MountainCar'])
  env.reset(seed=0)
  steps, done = 0, False
  while not done:
    _, _, terminated, truncated, _ = env.step(1)
    steps += 1
    done = terminated or truncated
  assert steps == 600


@pytest.mark.parametrize('name', sorted(tasks.MINATAR_TASKS))
def test_minatar_random_returns_are_the_measured_ones(name):
  spec = tasks.MINATAR_TASKS[name]
  # Uniform over the minimal action set, sticky actions, seed 0: the constant.
  assert tasks.measure_random_return(spec) == pytest.approx(spec.random_return, abs=1e-9)


def test_a_minatar_random_return_is_over_the_legal_actions_only():
  # SpaceInvaders' minimal set [0, 1, 3, 5] against all six: another mean.
  spec = tasks.MINATAR_TASKS['SpaceInvaders']
  minimal = tasks.measure_random_return(spec, 30)
  gin.bind_parameter('MinAtarGame.action_set', 'full')
  assert tasks.measure_random_return(spec, 30) != minimal


@pytest.mark.parametrize('name', sorted(tasks.MINATAR_TASKS))
def test_minatar_games_are_screens_with_six_actions_and_a_reference_above_random(name):
  spec = tasks.get_task(name)
  assert spec.family == tasks.MINATAR and spec.num_actions == 6
  assert spec.observation_shape[:2] == (10, 10)
  assert spec.observation_size == 100 * spec.observation_shape[2]
  assert spec.reference_return > spec.random_return


def test_a_minatar_episode_ends_at_the_tasks_step_limit():
  spec = dataclasses.replace(tasks.MINATAR_TASKS['Freeway'], max_steps_per_episode=50)
  env = tasks.make_gym_environment(spec)
  env.reset(seed=0)
  steps, truncated, terminated = 0, False, False
  while not (terminated or truncated):
    _, _, terminated, truncated, _ = env.step(0)
    steps += 1
  assert (steps, terminated, truncated) == (50, False, True)


@pytest.mark.parametrize(
    'name,message',
    [
        ('Breakot', "unknown task 'Breakot'. Did you mean 'Breakout'"),
        ('space_invaders', "unknown task 'space_invaders'. Did you mean 'SpaceInvaders'"),
        ('Minesweeper', r'Known tasks: Acrobot, CartPole, MountainCar \(classic control\); '
                 r'Asterix, Breakout, Freeway, Seaquest, SpaceInvaders \(MinAtar\)'),
    ],
)
def test_unknown_tasks_are_named_with_a_suggestion(name, message):
  with pytest.raises(config.ConfigError, match=message):
    tasks.get_task(name)
