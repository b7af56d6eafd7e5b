"""Aggregates over tasks and seeds with `rliable` (Agarwal et al., 2021).

Scores are normalized scores (metrics.continual.normalized_score) arranged as
{variant: array [runs, tasks]}, one row per seed. With few seeds a mean over
tasks and seeds hides how uncertain it is, so the field reports
- the interquartile mean (IQM) over all runs x tasks, with a stratified
  bootstrap confidence interval (runs resampled within each task);
- the probability of improvement P(X > Y): the probability that a run of X
  beats a run of Y on a task, averaged over tasks (Mann-Whitney U statistic),
  with its stratified bootstrap interval.
"""

import warnings

import numpy as np
from rliable import library as rly_library
from rliable import metrics as rly_metrics


def _interval_estimates(scores, func, seed, **kwargs):
  """rliable's get_interval_estimates, reproducible for a seed, one variant at
  a time. rliable's StratifiedBootstrap draws its indices from NumPy's global
  generator (not from the RandomState it is given), so that generator is
  seeded before each variant and restored afterwards: a variant's interval
  then depends only on its own scores and the seed, not on which variants
  were estimated before it in the same call (the same comparison gets the
  same interval in every table). `arch`'s deprecation warning for the
  RandomState is silenced."""
  points, intervals = {}, {}
  state = np.random.get_state()
  try:
    with warnings.catch_warnings():
      warnings.filterwarnings('ignore', message='random_state is deprecated',
                              category=FutureWarning)
      for key, value in scores.items():
        np.random.seed(seed)
        point, interval = rly_library.get_interval_estimates(
            {key: value}, func, random_state=np.random.RandomState(seed), **kwargs)
        points[key], intervals[key] = point[key], interval[key]
  finally:
    np.random.set_state(state)
  return points, intervals


def _check(scores):
  for variant, array in scores.items():
    array = np.asarray(array, float)
    if array.ndim != 2 or array.shape[0] < 1:
      raise ValueError(
          f'scores of {variant!r} must be [runs, tasks], got shape {array.shape}.'
      )


def iqm(scores, reps=2000, seed=0, confidence=0.95):
  """{variant: (IQM, low, high)} with stratified bootstrap intervals."""
  _check(scores)
  scores = {k: np.asarray(v, float) for k, v in scores.items()}
  point, intervals = _interval_estimates(
      scores,
      lambda x: np.array([rly_metrics.aggregate_iqm(x)]),
      reps=reps,
      confidence_interval_size=confidence,
      seed=seed,
  )
  return {
      k: (float(point[k][0]), float(intervals[k][0, 0]), float(intervals[k][1, 0]))
      for k in scores
  }


def probability_of_improvement(scores, baseline, reps=2000, seed=0, confidence=0.95):
  """{variant: (P(variant > baseline), low, high)} for every other variant."""
  _check(scores)
  if baseline not in scores:
    raise ValueError(f'baseline {baseline!r} is not among {sorted(scores)}.')
  pairs = {
      k: (np.asarray(v, float), np.asarray(scores[baseline], float))
      for k, v in scores.items()
      if k != baseline
  }
  if not pairs:
    return {}
  point, intervals = _interval_estimates(
      pairs,
      rly_metrics.probability_of_improvement,
      reps=reps,
      confidence_interval_size=confidence,
      seed=seed,
  )
  return {
      k: (float(np.squeeze(point[k])), float(np.squeeze(intervals[k][0])),
          float(np.squeeze(intervals[k][1])))
      for k in pairs
  }
