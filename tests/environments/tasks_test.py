"""Task definitions: one per task, measured random returns, solved thresholds."""

import gymnasium
import pytest

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
