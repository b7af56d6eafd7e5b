"""rliable aggregates against direct computations of their definitions."""

import numpy as np
import pytest
from scipy import stats

from moe_dopamine.metrics import aggregate


def scores():
  rng = np.random.default_rng(0)
  return {'base': rng.uniform(size=(5, 2)), 'moe': rng.uniform(size=(5, 2)) + 0.2}


def test_iqm_is_the_25_percent_trimmed_mean_with_an_interval_around_it():
  result = aggregate.iqm(scores(), reps=300)
  for variant, array in scores().items():
    value, low, high = result[variant]
    assert value == pytest.approx(stats.trim_mean(array.ravel(), 0.25))
    assert low <= value <= high


def test_probability_of_improvement_is_the_mann_whitney_statistic_per_task():
  data = scores()
  value, low, high = aggregate.probability_of_improvement(data, 'base', reps=300)['moe']
  expected = np.mean([
      np.mean([(x > y) + 0.5 * (x == y) for x in data['moe'][:, t] for y in data['base'][:, t]])
      for t in range(2)
  ])
  assert value == pytest.approx(expected)
  assert low <= value <= high


def test_a_missing_baseline_is_named():
  with pytest.raises(ValueError, match="baseline 'dqn' is not among"):
    aggregate.probability_of_improvement(scores(), 'dqn')


def test_intervals_are_the_same_for_the_same_seed_and_leave_numpy_alone():
  rng = np.random.default_rng(3)
  scores = {'a': rng.random((5, 2)), 'b': rng.random((5, 2))}
  state = np.random.get_state()[1].copy()
  first = aggregate.iqm(scores, reps=300, seed=7)
  assert aggregate.iqm(scores, reps=300, seed=7) == first
  assert (aggregate.probability_of_improvement(scores, 'b', reps=300, seed=7)
          == aggregate.probability_of_improvement(scores, 'b', reps=300, seed=7))
  assert aggregate.iqm(scores, reps=300, seed=8) != first
  np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_an_interval_does_not_depend_on_the_other_variants_of_the_call():
  rng = np.random.default_rng(4)
  scores = {'a': rng.random((5, 2)), 'b': rng.random((5, 2)), 'c': rng.random((5, 2))}
  alone = aggregate.probability_of_improvement({'c': scores['c'], 'b': scores['b']}, 'b',
                                               reps=300)
  together = aggregate.probability_of_improvement(scores, 'b', reps=300)
  assert together['c'] == alone['c']
  assert aggregate.iqm(scores, reps=300)['c'] == aggregate.iqm({'c': scores['c']}, reps=300)['c']
