"""Deciding a comparison between two independent groups of per-run values.

A comparison puts the runs of one variant (`a`) against those of another (`b`),
one value per run (seed) of a pre-registered metric, e.g. 5 or 30 runs a side.
NaN values are dropped first; the permutation test (SciPy's) needs at least
2 runs a side. The rules are science.md section 10's:

- Effect: D = mean(a) - mean(b).
- p-value: permutation test of D (scipy.stats.permutation_test, independent
  samples). All C(n_a + n_b, n_a) relabellings are enumerated when that count
  is at most `max_exact` (MAX_EXACT: every design up to 10 vs 10, 184,756;
  252 for 5 vs 5, so p >= 1/252 one-sided and >= 2/252 two-sided);
  otherwise `resamples` seeded random relabellings, p = (count + 1) /
  (resamples + 1). A relabelling whose D equals the observed one counts as
  at least as extreme: D is computed on the values centred on their median
  and divided by their largest distance from it, then rounded to 9 decimals,
  so that relabellings of tied values (many runs at a return of 500, or a
  score of 1) are not told apart by the rounding error of their sums. Two-sided p = min(1, 2 min(p_less,
  p_greater)); it stays two-sided when a direction is predicted, so that a
  clear effect against the prediction shows as such.
- Holm's step-down adjustment within one claim's family of m p-values (NaN
  ones excluded from m): sorted p_(1) <= ... <= p_(m) become
  max_{j <= i} min(1, (m - j + 1) p_(j)). "Clear" = adjusted p < alpha (0.05).
- Probability of improvement: P(X_a > X_b) + P(X_a = X_b) / 2 = U / (n_a n_b),
  U the Mann-Whitney statistic of `a` (rliable's per-task value).
- Hodges-Lehmann shift: median of the m = n_a n_b differences a_i - b_j. Its
  interval is [d_(k), d_(m+1-k)] of the sorted differences, whose coverage
  under the shift model (b + shift has a's distribution, continuous values)
  is 1 - 2 P0(U <= k - 1), P0 the null distribution of U; k is the largest
  with coverage >= confidence (5 vs 5 at 95%: k = 3, coverage 1 - 8/252 =
  0.968). P0 is counted exactly when min(n)^2 max(n) <= 125000 (every case
  with n_a n_b <= 2500, e.g. 50 vs 50, and any number of runs against 1 or 2,
  where U is far from normal) and taken as normal with a continuity
  correction beyond that. When even k = 1 (the full range) covers
  less than asked (3 vs 3 at 95%: 0.90), the full range is returned with its
  coverage. Ties make the stated coverage approximate.
- BCa bootstrap interval of D (scipy.stats.bootstrap, each sample resampled on
  its own); the percentile interval when BCa is degenerate (e.g. all values
  equal), with the method named in the result.
- Power: the two-sample t-test's (statsmodels TTestIndPower, two-sided) as an
  approximation of the permutation test's, at Cohen's d = D / s, s the
  pooled standard deviation, and at the level a comparison of a Holm family
  of m must reach in Holm's first step, alpha / m (a lower bound on its
  power under Holm's adjustment); 0 where the exact test's smallest p at
  these runs cannot reach that level. Reported: the minimal detectable
  effect at these n, the power at the observed |d|, and the runs a side
  needed at the observed |d|.
- Equivalence (TOST) with margin M > 0 under the shift model: H0 D <= -M is
  the one-sided permutation test of a against b - M ('greater'), H0 D >= M
  that of a against b + M ('less'); p = the larger of the two. "No better than"
  needs p < alpha here; otherwise a difference is only "not distinguishable".
"""

import dataclasses
import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats import multitest
from statsmodels.stats import power as sm_power
from statsmodels.tools import sm_exceptions as sm_tools

_ALTERNATIVES = ('two-sided', 'greater', 'less')
_DIRECTIONS = ('greater', 'less')
# Counting the null distribution of U costs about min(n)^2 max(n) additions of
# big integers; up to this (50 vs 50: 2500 pairs; 20 ms) it is counted, beyond
# it taken as normal, which by then moves the coverage by < 0.001 (both sizes
# are then at least 18, so U is a sum of many terms). Against 1 or 2 runs U is
# near uniform and the normal approximation is far off, so such cases are
# counted even with thousands of pairs.
_EXACT_U_MAX_COST = 125_000
# Relabellings evaluated per batch: bounds memory for large random tests.
_BATCH = 10_000
# Designs with at most this many relabellings are enumerated (10 vs 10:
# 184,756, a second or so).
MAX_EXACT = 200_000
# Decimals of the scaled D (see the module doc): far below any difference of
# means between real runs, far above the rounding error of a sum.
_D_DECIMALS = 9

CLEAR_AS_PREDICTED = 'clear, as predicted'
CLEAR_AGAINST = 'clear, against the prediction'
NOT_DISTINGUISHABLE = 'not distinguishable'


@dataclasses.dataclass(frozen=True)
class PermutationResult:
  """statistic = mean(a) - mean(b); relabellings = how many were evaluated
  (all of them when exact)."""
  statistic: float
  pvalue: float
  exact: bool
  relabellings: int


def _values(x, name, minimum=1):
  """x as a flat float array without its NaNs (runs that produced no value)."""
  array = np.asarray(x, dtype=float).ravel()
  array = array[~np.isnan(array)]
  if np.isinf(array).any():
    raise ValueError(f'{name} has infinite values: {array.tolist()}.')
  if array.size < minimum:
    raise ValueError(
        f'{name} has {array.size} value(s) that are not NaN; at least '
        f'{minimum} needed.'
    )
  return array


def _check_confidence(confidence):
  if not 0 < confidence < 1:
    raise ValueError(f'confidence must be in (0, 1), got {confidence}.')


def _mean_difference(x, y, axis=-1):
  return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_test(a, b, alternative='two-sided', max_exact=MAX_EXACT,
                     resamples=100_000, seed=0):
  """Permutation test of mean(a) - mean(b) over relabellings of the runs.

  Exact when C(n_a + n_b, n_a) <= max_exact. Otherwise `resamples` random
  relabellings drawn from a generator seeded with `seed`; should `resamples`
  be at least C(n_a + n_b, n_a), SciPy enumerates them all instead, and the
  result says exact with that count. SciPy needs at least 2 runs a side.
  """
  if alternative not in _ALTERNATIVES:
    raise ValueError(f'alternative must be one of {_ALTERNATIVES}, got {alternative!r}.')
  a = _values(a, 'a', minimum=2)
  b = _values(b, 'b', minimum=2)
  total = math.comb(a.size + b.size, a.size)
  n_resamples = np.inf if total <= max_exact else int(resamples)
  if n_resamples < 1:
    raise ValueError(f'resamples must be at least 1, got {resamples}.')
  pooled = np.concatenate([a, b])
  center = np.median(pooled)
  scale = np.max(np.abs(pooled - center)) or 1.0

  def rounded_difference(x, y, axis=-1):
    return np.round(_mean_difference(x, y, axis=axis), _D_DECIMALS)

  result = stats.permutation_test(
      ((a - center) / scale, (b - center) / scale), rounded_difference,
      permutation_type='independent', vectorized=True, n_resamples=n_resamples,
      batch=_BATCH, alternative=alternative, rng=np.random.default_rng(seed))
  exact = total <= n_resamples
  return PermutationResult(
      statistic=float(_mean_difference(a, b)),
      pvalue=float(result.pvalue),
      exact=bool(exact),
      relabellings=int(total if exact else n_resamples),
  )


def holm(pvalues):
  """Holm-adjusted p-values in the input's order; NaN stays NaN and does not
  count in the family size. One call per family: statsmodels' Holm runs a
  full garbage collection each time (a tenth of a second or more in a
  process holding TensorFlow)."""
  p = np.asarray(pvalues, dtype=float).ravel()
  adjusted = np.full(p.shape, np.nan)
  present = ~np.isnan(p)
  if np.any((p[present] < 0) | (p[present] > 1)):
    raise ValueError(f'p-values must be in [0, 1], got {p[present].tolist()}.')
  if present.any():
    adjusted[present] = multitest.multipletests(p[present], method='holm')[1]
  return adjusted


def holm_bounds(pvalues, family_size):
  """(low, high) of each known p-value's Holm-adjusted value in a family of
  `family_size` whose other p-values are not known yet. low: Holm over the
  known ones alone, what it is if every unknown p is 0; high: Holm over
  the family with every unknown p at 1, what it is then. Holm's
  adjusted p-values never fall when any p-value rises, so whatever the
  unknown ones turn out to be, each known one's adjusted p lies in [low,
  high]."""
  p = np.asarray(pvalues, dtype=float).ravel()
  if family_size < p.size:
    raise ValueError(f'a family of {family_size} cannot hold {p.size} known p-values.')
  high = holm(np.concatenate([p, np.ones(family_size - p.size)]))[:p.size]
  return holm(p), high


def probability_of_improvement(a, b):
  """P(X_a > X_b) + P(X_a = X_b) / 2 over all pairs of a run of a and a run
  of b: the Mann-Whitney U of a over n_a n_b, from mid-ranks."""
  a = _values(a, 'a')
  b = _values(b, 'b')
  ranks = stats.rankdata(np.concatenate([a, b]))
  u = ranks[:a.size].sum() - a.size * (a.size + 1) / 2
  return float(u / (a.size * b.size))


def _u_counts(n_a, n_b):
  """How many of the C(n_a + n_b, n_a) relabellings give U = 0, 1, ...,
  n_a n_b: the coefficients of the Gaussian binomial coefficient, built as
  prod_{i <= k} (1 - q^(r + i)) / (1 - q^i) with k = min, r = max of the
  sizes. Python integers keep the counts exact; the series is cut at degree
  n_a n_b, which the result does not exceed, and neither multiplying by
  (1 - q^s) nor dividing by (1 - q^i) moves terms to lower degrees."""
  k, r = min(n_a, n_b), max(n_a, n_b)
  degree = k * r
  counts = np.zeros(degree + 1, dtype=object)
  counts[:] = 0
  counts[0] = 1
  for i in range(1, k + 1):
    shift = r + i
    if shift <= degree:
      counts[shift:] = counts[shift:] - counts[:-shift]
    for start in range(i):
      counts[start::i] = np.cumsum(counts[start::i])
  return counts


def _interval_rank(n_a, n_b, confidence, exact=None):
  """(k, coverage): the largest k with 1 - 2 P0(U <= k - 1) >= confidence,
  and that coverage; k = 1 (the full range) with its coverage when no k
  reaches the confidence. exact=None counts P0 when min(n)^2 max(n) <=
  125000, else takes it as normal."""
  pairs = n_a * n_b
  if exact is None:
    exact = min(n_a, n_b) ** 2 * max(n_a, n_b) <= _EXACT_U_MAX_COST
  tail = (1 - confidence) / 2
  if exact:
    counts = _u_counts(n_a, n_b)
    total = math.comb(n_a + n_b, n_a)
    cumulative = np.cumsum(counts)
    # cumulative[j] / total = P0(U <= j). The tolerance keeps a coverage
    # that equals the confidence exactly (3 vs 3 at 0.8: 1 - 2 * 2/20) from
    # being refused over the rounding of (1 - 0.8) / 2 in floating point.
    fits = [j for j in range(pairs // 2 + 1)
            if cumulative[j] <= tail * total * (1 + 1e-9)]
    k = (max(fits) + 1) if fits else 1
    coverage = 1 - 2 * (cumulative[k - 1] / total)
    return k, float(coverage)
  mean = pairs / 2
  sd = math.sqrt(pairs * (n_a + n_b + 1) / 12)
  # P0(U <= k - 1) ~ Phi((k - 1 + 0.5 - mean) / sd), continuity-corrected.
  k = math.floor(mean + 0.5 + sd * stats.norm.ppf(tail))
  k = min(max(k, 1), (pairs + 1) // 2)
  coverage = 1 - 2 * stats.norm.cdf((k - 0.5 - mean) / sd)
  return k, float(coverage)


def hodges_lehmann(a, b, confidence=0.95):
  """(shift, low, high, achieved): the Hodges-Lehmann shift of a over b, its
  distribution-free interval [d_(k), d_(m+1-k)] and that interval's coverage
  under the shift model (exact up to 50 vs 50 and against 1 or 2 runs at
  any size, normal for larger samples)."""
  _check_confidence(confidence)
  a = _values(a, 'a')
  b = _values(b, 'b')
  differences = np.sort((a[:, None] - b[None, :]).ravel())
  k, achieved = _interval_rank(a.size, b.size, confidence)
  return (float(np.median(differences)), float(differences[k - 1]),
          float(differences[-k]), achieved)


def bca_interval(a, b, confidence=0.95, resamples=10_000, seed=0):
  """(low, high, method) of mean(a) - mean(b) by the bootstrap, each sample
  resampled on its own. method is 'BCa', or 'percentile' when BCa is
  degenerate (its acceleration or bias correction undefined, e.g. all values
  equal)."""
  _check_confidence(confidence)
  a = _values(a, 'a', minimum=2)
  b = _values(b, 'b', minimum=2)
  for method in ('BCa', 'percentile'):
    with warnings.catch_warnings():
      # A degenerate BCa interval is NaN with this warning; the fallback
      # below handles it and the method is reported, so it is not repeated.
      warnings.simplefilter('ignore', stats.DegenerateDataWarning)
      with np.errstate(invalid='ignore', divide='ignore'):
        result = stats.bootstrap(
            (a, b), _mean_difference, n_resamples=resamples, batch=_BATCH,
            vectorized=True, paired=False, confidence_level=confidence,
            method=method, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if np.isfinite(low) and np.isfinite(high):
      break
  return float(low), float(high), method


def smallest_p(n_a, n_b, max_exact=MAX_EXACT, resamples=100_000):
  """The smallest two-sided p-value permutation_test can return for n_a
  against n_b runs: 2 / C(n_a + n_b, n_a) when it enumerates every
  relabelling (5 vs 5: 0.0079; it does when there are at most max_exact, or
  at most resamples), 2 / (resamples + 1) when it draws them."""
  total = math.comb(n_a + n_b, n_a)
  exact = total <= max_exact or resamples >= total
  return min(1.0, 2 / total if exact else 2 / (resamples + 1))


def _reachable_runs(level, max_exact, resamples):
  """The fewest equal runs a side at which the exact test can reach `level`."""
  n = 2
  while smallest_p(n, n, max_exact, resamples) >= level:
    n += 1
    if n > 1000:
      return math.inf
  return n


def _runs_needed(analysis, d, alpha, power):
  """Runs a side for `power` at effect d > 0 by the t-test at two-sided
  `alpha`, rounded up (at least 2, which a t-test needs). statsmodels' root
  finder fails (NaN) when the answer is below 2 or, for |d| near 0,
  astronomically large; the normal approximation
  2 ((z_(1 - alpha/2) + z_power) / d)^2 then decides between the two."""
  if d == 0:
    return math.inf
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', sm_tools.ConvergenceWarning)
    runs = float(np.squeeze(analysis.solve_power(
        effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=1.0,
        alternative='two-sided')))
  if not np.isfinite(runs):
    runs = 2 * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / d) ** 2
  return max(2, math.ceil(runs))


def power_figures(a, b, alpha=0.05, power=0.8, family_size=1, max_exact=MAX_EXACT,
                  resamples=100_000):
  """Power of the comparison as one of a Holm family of `family_size`.

  The level is Bonferroni's alpha / family_size, Holm's first step: power at
  that level is a lower bound on the power under Holm's adjustment. It is
  the two-sample t-test's power at that two-sided level (statsmodels
  TTestIndPower), an approximation of the permutation test's, which has no
  closed form; and it is 0 where the exact test cannot reach the level at
  these runs (smallest_p >= level: 5 vs 5 in a family of 8, 0.0079 against
  0.00625), whatever the effect. That 0 is for the level: Holm's later steps
  ask less of a comparison once others are rejected, so it can still be
  clear unless every comparison of the family has that floor (then none
  can).

  Returns n_a, n_b; level; smallest_p; reachable (smallest_p < level); sd
  (pooled standard deviation) and d = (mean(a) - mean(b)) / sd; mde_d, the
  smallest |d| detected with probability `power` at these n (inf when not
  reachable), and mde = mde_d * sd in the metric's units; power_at_observed,
  the power at the observed |d|; runs_needed, equal runs a side for `power`
  at the observed |d|, at least as many as the exact test needs to reach the
  level (inf when d == 0; NaN when sd == 0, where d is NaN too).
  """
  a = _values(a, 'a')
  b = _values(b, 'b')
  n_a, n_b = a.size, b.size
  if n_a + n_b < 3:
    raise ValueError(
        f'a pooled standard deviation needs at least 3 runs, got {n_a} + {n_b}.')
  if not (isinstance(family_size, int) and family_size >= 1):
    raise ValueError(f'family_size must be a whole number >= 1, got {family_size!r}.')
  level = alpha / family_size
  floor = smallest_p(n_a, n_b, max_exact, resamples)
  reachable = floor < level
  analysis = sm_power.TTestIndPower()
  ratio = n_b / n_a
  # A single run adds no spread; ddof=1 would make its variance NaN.
  sd = math.sqrt(((n_a - 1) * np.var(a, ddof=1 if n_a > 1 else 0)
                  + (n_b - 1) * np.var(b, ddof=1 if n_b > 1 else 0))
                 / (n_a + n_b - 2))
  mde_d = float(analysis.solve_power(
      effect_size=None, nobs1=n_a, alpha=level, power=power, ratio=ratio,
      alternative='two-sided')) if reachable else math.inf
  if sd == 0:
    d = power_at_observed = runs_needed = math.nan
  else:
    d = float((a.mean() - b.mean()) / sd)
    power_at_observed = float(analysis.power(
        effect_size=abs(d), nobs1=n_a, alpha=level, ratio=ratio,
        alternative='two-sided')) if reachable else 0.0
    runs_needed = max(_runs_needed(analysis, abs(d), level, power),
                      _reachable_runs(level, max_exact, resamples))
  return {
      'n_a': n_a,
      'n_b': n_b,
      'level': level,
      'smallest_p': floor,
      'reachable': bool(reachable),
      'd': d,
      'sd': sd,
      'mde_d': mde_d,
      'mde': mde_d * sd,
      'power_at_observed': power_at_observed,
      'runs_needed': runs_needed,
  }


def tost(a, b, margin, max_exact=MAX_EXACT, resamples=100_000, seed=0):
  """(pvalue, p_lower, p_upper) of the equivalence |mean(a) - mean(b)| <
  margin by two one-sided permutation tests under the shift model."""
  if not margin > 0:
    raise ValueError(f'the equivalence margin must be > 0, got {margin}.')
  a = _values(a, 'a')
  b = _values(b, 'b')
  lower = permutation_test(a, b - margin, 'greater', max_exact=max_exact,
                           resamples=resamples, seed=seed)
  upper = permutation_test(a, b + margin, 'less', max_exact=max_exact,
                           resamples=resamples, seed=seed)
  return max(lower.pvalue, upper.pvalue), lower.pvalue, upper.pvalue


def _check_direction(direction):
  if direction not in _DIRECTIONS:
    raise ValueError(f'direction must be one of {_DIRECTIONS}, got {direction!r}.')


def _agrees(difference, direction):
  _check_direction(direction)
  return bool(difference > 0) if direction == 'greater' else bool(difference < 0)


def compare(a, b, direction='greater', alpha=0.05, confidence=0.95,
            margin=None, seed=0, max_exact=MAX_EXACT, resamples=100_000,
            bootstrap_resamples=10_000, power=0.8, family_size=1):
  """Everything the report states about one comparison of a against b, as a
  dict. `direction` is what the pre-registered hypothesis predicts for a vs b
  ('greater' or 'less'); 'agrees' says whether the observed difference has
  that sign. p is the two-sided permutation p-value (unadjusted: Holm is
  applied over the claim's family by the caller, and the power figures are
  those of a family of `family_size`); tost_p is None without a margin.
  Needs at least 2 runs a side."""
  _check_direction(direction)
  if margin is not None and not margin > 0:
    raise ValueError(f'the equivalence margin must be > 0, got {margin}.')
  a = _values(a, 'a', minimum=2)
  b = _values(b, 'b', minimum=2)
  test = permutation_test(a, b, 'two-sided', max_exact=max_exact,
                          resamples=resamples, seed=seed)
  shift, hl_low, hl_high, hl_coverage = hodges_lehmann(a, b, confidence)
  bca_low, bca_high, bca_method = bca_interval(
      a, b, confidence, resamples=bootstrap_resamples, seed=seed)
  result = {
      'n_a': int(a.size),
      'n_b': int(b.size),
      'mean_a': float(a.mean()),
      'mean_b': float(b.mean()),
      'difference': test.statistic,
      'direction': direction,
      'agrees': _agrees(test.statistic, direction),
      'p': test.pvalue,
      'exact': test.exact,
      'relabellings': test.relabellings,
      'poi': probability_of_improvement(a, b),
      'hl_shift': shift,
      'hl_low': hl_low,
      'hl_high': hl_high,
      'hl_coverage': hl_coverage,
      'bca_low': bca_low,
      'bca_high': bca_high,
      'bca_method': bca_method,
      'confidence': confidence,
      'margin': margin,
      'tost_p': None,
  }
  result.update(power_figures(a, b, alpha=alpha, power=power, family_size=family_size,
                              max_exact=max_exact, resamples=resamples))
  if margin is not None:
    result['tost_p'] = tost(a, b, margin, max_exact=max_exact,
                            resamples=resamples, seed=seed)[0]
  return result


def verdicts(pvalues_adjusted, differences, directions, alpha=0.05):
  """One verdict per comparison: 'not distinguishable' when the adjusted p is
  >= alpha (or NaN), else 'clear, as predicted' or 'clear, against the
  prediction' by the sign of the difference against the direction
  ('greater' or 'less'; one string applies to every comparison)."""
  p = np.asarray(pvalues_adjusted, dtype=float).ravel()
  differences = np.asarray(differences, dtype=float).ravel()
  directions = [directions] * p.size if isinstance(directions, str) else list(directions)
  if not p.size == differences.size == len(directions):
    raise ValueError(
        f'{p.size} p-values, {differences.size} differences and '
        f'{len(directions)} directions: one of each per comparison.')
  out = []
  for value, difference, direction in zip(p, differences, directions):
    _check_direction(direction)
    if not value < alpha:
      out.append(NOT_DISTINGUISHABLE)
    elif _agrees(difference, direction):
      out.append(CLEAR_AS_PREDICTED)
    else:
      out.append(CLEAR_AGAINST)
  return out
