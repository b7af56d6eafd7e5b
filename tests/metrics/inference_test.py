"""Deciding a comparison: each result against SciPy run here or a hand count."""

import fractions
import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import power as sm_power

from moe_dopamine.metrics import inference

SEPARATED_A = [6., 7., 8., 9., 10.]
SEPARATED_B = [1., 2., 3., 4., 5.]
# 5 vs 6 with no ties: C(11, 5) = 462 relabellings, all enumerated.
HAND_A = [3.1, 4.7, 2.2, 5.0, 6.3]
HAND_B = [1.0, 2.9, 3.3, 0.4, 2.5, 1.8]


def _scipy_mean_difference_p(a, b, alternative):
  return stats.permutation_test(
      (np.asarray(a), np.asarray(b)),
      lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
      permutation_type='independent', vectorized=True, n_resamples=np.inf,
      alternative=alternative).pvalue


# Permutation test.


@pytest.mark.parametrize('alternative', ['two-sided', 'greater', 'less'])
def test_permutation_p_is_scipys_exact_mean_difference_p_not_a_t_test_or_swapped_side(
    alternative):
  """Catches another statistic's null (e.g. t) or the alternatives mixed up."""
  result = inference.permutation_test(HAND_A, HAND_B, alternative)
  assert result.pvalue == pytest.approx(
      _scipy_mean_difference_p(HAND_A, HAND_B, alternative), rel=1e-12)
  assert result.statistic == pytest.approx(np.mean(HAND_A) - np.mean(HAND_B))
  assert result.exact and result.relabellings == math.comb(11, 5)


def test_separated_five_vs_five_is_2_of_252_two_sided_and_1_of_252_one_sided():
  """Catches a p that counts the observed labelling wrong (0 or +1 in an exact
  test) or a two-sided p not doubled."""
  two = inference.permutation_test(SEPARATED_A, SEPARATED_B, 'two-sided')
  greater = inference.permutation_test(SEPARATED_A, SEPARATED_B, 'greater')
  less = inference.permutation_test(SEPARATED_A, SEPARATED_B, 'less')
  assert two.relabellings == 252
  assert two.pvalue == pytest.approx(2 / 252, rel=1e-12)
  assert greater.pvalue == pytest.approx(1 / 252, rel=1e-12)
  assert less.pvalue == pytest.approx(1.0)
  assert inference.permutation_test(SEPARATED_B, SEPARATED_A, 'less').pvalue == (
      pytest.approx(1 / 252, rel=1e-12))


@pytest.mark.parametrize('alternative', ['two-sided', 'greater', 'less'])
def test_permutation_on_ranks_is_the_exact_mann_whitney_p(alternative):
  """On tie-free data the relabelling test of the rank mean difference is the
  exact Mann-Whitney test: catches a relabelling scheme that is not the
  independent-samples one (e.g. paired sign flips) or a wrong alternative."""
  ranks = stats.rankdata(HAND_A + HAND_B)
  result = inference.permutation_test(ranks[:5], ranks[5:], alternative)
  expected = stats.mannwhitneyu(HAND_A, HAND_B, alternative=alternative,
                                method='exact').pvalue
  assert result.pvalue == pytest.approx(expected, rel=1e-12)


def test_random_relabellings_above_max_exact_with_the_requested_count_and_seed():
  """Catches max_exact ignored (always exact or never), the requested count
  not used, and an unseeded generator."""
  # Closer arms than HAND_A vs HAND_B (exact p 0.38): random p-values vary.
  b = np.add(HAND_B, 1.5)
  exact = inference.permutation_test(HAND_A, b, max_exact=462)
  assert exact.exact and exact.relabellings == 462
  first, again = (inference.permutation_test(HAND_A, b, max_exact=461,
                                             resamples=99, seed=1)
                  for _ in range(2))
  other = [inference.permutation_test(HAND_A, b, max_exact=461, resamples=99,
                                      seed=seed).pvalue
           for seed in (2, 3, 4)]
  assert not first.exact and first.relabellings == 99
  assert first == again
  assert any(p != first.pvalue for p in other)
  # Two-sided: 2 (count + 1) / (99 + 1), a multiple of 1/50.
  assert first.pvalue * 50 == pytest.approx(round(first.pvalue * 50))


def test_a_random_count_that_covers_every_relabelling_is_reported_exact():
  """SciPy enumerates when resamples >= C(n, n_a); the result must not claim a
  random test then."""
  result = inference.permutation_test(SEPARATED_A, SEPARATED_B, max_exact=10,
                                      resamples=1000)
  assert result.exact and result.relabellings == 252
  assert result.pvalue == pytest.approx(2 / 252)


def test_nans_are_dropped_and_an_empty_side_is_refused():
  """Catches NaN kept (a NaN statistic and p) and a short side reaching SciPy
  without a message naming it."""
  with_nans = inference.permutation_test(SEPARATED_A + [np.nan],
                                         [np.nan] + SEPARATED_B)
  assert with_nans.relabellings == 252
  assert with_nans.pvalue == pytest.approx(2 / 252)
  with pytest.raises(ValueError, match='b has 0 value'):
    inference.permutation_test([1., 2.], [np.nan, np.nan])
  with pytest.raises(ValueError, match=r'a has 1 value.*at least 2'):
    inference.permutation_test([1., np.nan], [1., 2.])
  with pytest.raises(ValueError, match='alternative'):
    inference.permutation_test([1., 2.], [3., 4.], 'two_sided')


def test_no_clear_difference_between_arms_from_one_distribution_beyond_alpha():
  """200 seeded 5 vs 5 comparisons of one distribution: at most 18 'clear'
  (binomial upper bound for 5%) unadjusted, Holm-adjusted no more. Catches a
  one-sided p reported as two-sided (about 10% clear) or a variance-blind
  null (e.g. a z approximation, anti-conservative at n = 5)."""
  rng = np.random.default_rng(12)
  p = np.array([
      inference.permutation_test(rng.normal(size=5), rng.normal(size=5)).pvalue
      for _ in range(200)])
  assert np.sum(p < 0.05) <= 18
  assert np.sum(inference.holm(p) < 0.05) <= np.sum(p < 0.05)
  # The smallest exact p is 2/252: the test cannot be clear by chance alone
  # more often than 12/252 of the time.
  assert p.min() >= 2 / 252 - 1e-12


def test_a_three_sd_shift_is_clear_in_most_repetitions_at_ten_a_side():
  """Catches a test without power (e.g. p always 1, or the statistic computed
  on the pooled data)."""
  rng = np.random.default_rng(5)
  clear = sum(
      inference.permutation_test(rng.normal(3., 1., size=10),
                                 rng.normal(size=10), max_exact=1000,
                                 resamples=500, seed=i).pvalue < 0.05
      for i in range(200))
  assert clear > 160


# Holm.


def test_holm_matches_the_hand_worked_step_down():
  """0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the
  running maximum makes the last 0.06. Catches Bonferroni (0.04, 0.16, ...),
  the missing running maximum (0.04) and results left in sorted order."""
  adjusted = inference.holm([0.01, 0.04, 0.03, 0.005])
  np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_leaves_nan_out_of_the_family_and_takes_empty_input():
  """Catches NaN counted in the family size (x3 instead of x2) or spreading."""
  adjusted = inference.holm([0.02, np.nan, 0.01])
  np.testing.assert_allclose(adjusted, [0.02, np.nan, 0.02])
  assert inference.holm([]).shape == (0,)
  assert np.isnan(inference.holm([np.nan])).all()
  np.testing.assert_allclose(inference.holm([0.6, 0.7]), [1.0, 1.0])


def test_holm_bounds_hold_whatever_the_unknown_p_values_are():
  """Known 0.01 and 0.03 in a family of 4: over a grid of the two unknown
  p-values, Holm's adjusted value of each known one stays within the bounds;
  it reaches both ends: the low one with the unknowns at 0 (Holm of the two
  alone, 0.02 and 0.03), the high one with the unknowns at 1 (0.04 and
  0.09). Catches bounds from the known ones alone (0.02 as the high end),
  a Bonferroni bound over the known count, and Bonferroni over the family
  (0.12, which no unknown p-values reach: a looser bound that withholds
  settled verdicts)."""
  known = [0.01, 0.03]
  low, high = inference.holm_bounds(known, 4)
  np.testing.assert_allclose(low, [0.02, 0.03])
  np.testing.assert_allclose(high, [0.04, 0.09])
  seen = []
  grid = [0.0, 0.001, 0.005, 0.02, 0.04, 0.2, 1.0]
  for u in grid:
    for v in grid:
      adjusted = inference.holm(known + [u, v])[:2]
      assert np.all(adjusted >= low - 1e-12) and np.all(adjusted <= high + 1e-12)
      seen.append(adjusted)
  np.testing.assert_allclose(np.min(seen, axis=0), low)
  np.testing.assert_allclose(np.max(seen, axis=0), high)
  with pytest.raises(ValueError, match='a family of 1 cannot hold 2'):
    inference.holm_bounds(known, 1)


# Probability of improvement.


def test_probability_of_improvement_counts_ties_as_half():
  """a = 1 beats 0 (1); a = 2 ties 2, 2 and beats 0 (0.5 + 0.5 + 1); a = 3
  beats all 3: 6 of 9 pairs. Catches ties counted as 0 (5/9) or 1 (7/9) and
  the U of b instead of a (3/9)."""
  assert inference.probability_of_improvement([1., 2., 3.], [2., 2., 0.]) == (
      pytest.approx(6 / 9))
  assert inference.probability_of_improvement([2., 2., 0.], [1., 2., 3.]) == (
      pytest.approx(3 / 9))
  assert inference.probability_of_improvement(SEPARATED_A, SEPARATED_B) == 1.0


# Hodges-Lehmann.

# Differences a_i - b_j of a = [1, 4, 9], b = [0, 2, 3], sorted:
# -2, -1, 1, 1, 2, 4, 6, 7, 9 (median 2). The null counts of U for 3 vs 3 are
# 1, 1, 2, 3, 3, 3, 3, 2, 1, 1 (20 relabellings).
HL_A = [1., 4., 9.]
HL_B = [0., 2., 3.]


def test_hodges_lehmann_shift_and_interval_of_a_hand_enumerated_three_vs_three():
  """At 80%: P(U <= 1) = 2/20 = 0.1, so k = 2 and [d_(2), d_(7+1)] = [-1, 7]
  with coverage exactly 0.8. Catches the mean of differences (3) for the
  median, k off by one ([1, 6] or [-2, 9]) and a coverage refused over
  floating-point rounding of (1 - 0.8) / 2."""
  shift, low, high, achieved = inference.hodges_lehmann(HL_A, HL_B, 0.8)
  assert shift == 2.0
  assert (low, high) == (-1.0, 7.0)
  assert achieved == pytest.approx(0.8)


def test_hodges_lehmann_returns_the_full_range_when_no_interval_is_wide_enough():
  """At 95% even the full range covers only 1 - 2/20 = 0.9 for 3 vs 3: it is
  returned with that coverage, not a claimed 95%."""
  shift, low, high, achieved = inference.hodges_lehmann(HL_A, HL_B, 0.95)
  assert (shift, low, high) == (2.0, -2.0, 9.0)
  assert achieved == pytest.approx(0.9)


def test_hodges_lehmann_coverage_for_five_vs_five_is_the_exact_mann_whitney_one():
  """k = 3 at 95%: coverage 1 - 2 P(U <= 2) = 1 - 8/252 = 0.968, P read from
  SciPy's exact Mann-Whitney test on data whose U is 2. Catches a normal
  approximation at small n or a k chosen for one tail of 5%."""
  a, b = [0., 1., 2., 3., 5.5], [4., 5., 6., 7., 8.]
  u_at_most_2 = stats.mannwhitneyu(a, b, alternative='less', method='exact').pvalue
  assert u_at_most_2 == pytest.approx(4 / 252)
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=5), rng.normal(size=5)
  shift, low, high, achieved = inference.hodges_lehmann(x, y)
  assert achieved == pytest.approx(1 - 2 * u_at_most_2)
  assert achieved == pytest.approx(0.968, abs=5e-4)
  differences = np.sort(np.subtract.outer(x, y).ravel())
  assert (low, high) == (differences[2], differences[-3])
  assert shift == pytest.approx(np.median(differences))


def test_exact_u_counts_are_scipys_exact_mann_whitney_distribution_for_unequal_sizes():
  """P(U <= u) from the counts equals SciPy's exact one-sided Mann-Whitney p
  for data whose U is u. Catches a wrong counting recursion (e.g. sizes
  swapped or the series cut too early)."""
  counts = inference._u_counts(4, 7)  # pylint: disable=protected-access
  assert sum(counts) == math.comb(11, 4)
  assert list(counts) == list(counts[::-1])
  cdf = np.cumsum(counts) / math.comb(11, 4)
  rng = np.random.default_rng(2)
  for _ in range(6):
    a, b = rng.normal(size=4), rng.normal(size=7)
    u = int(np.sum(a[:, None] > b[None, :]))
    p = stats.mannwhitneyu(a, b, alternative='less', method='exact').pvalue
    assert float(cdf[u]) == pytest.approx(p, rel=1e-12)


def test_normal_approximation_beyond_50_vs_50_agrees_with_the_exact_count():
  """Where the count gives way to the normal approximation (50 vs 50; 51 vs
  50 is normal) the two give the same rank: catches a wrong mean or variance
  of U or a continuity correction of the wrong sign."""
  rank = inference._interval_rank  # pylint: disable=protected-access
  exact, normal = rank(50, 50, 0.95, exact=True), rank(50, 50, 0.95, exact=False)
  assert exact[0] == normal[0] == 966
  assert exact[1] >= 0.95 and abs(exact[1] - normal[1]) < 0.001
  assert rank(51, 50, 0.95) == rank(51, 50, 0.95, exact=False)
  assert rank(50, 50, 0.95) == exact


def test_one_run_against_thousands_is_counted_not_taken_as_normal():
  """Against a single run U is uniform on 0..3000: k = 75 (75/3001 <= 0.025),
  coverage 1 - 150/3001. The normal approximation would return the full
  range with a false 0.92."""
  k, coverage = inference._interval_rank(1, 3000, 0.95)  # pylint: disable=protected-access
  assert k == 75
  assert coverage == pytest.approx(1 - 150 / 3001)


# Bootstrap.


def test_bca_interval_is_scipys_two_sample_bca_for_the_same_seed():
  """Catches a percentile interval, pooled resampling or an unseeded one."""
  rng = np.random.default_rng(1)
  a, b = rng.exponential(size=8), rng.exponential(size=9) + 0.5
  low, high, method = inference.bca_interval(a, b, resamples=2000, seed=4)
  expected = stats.bootstrap(
      (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
      n_resamples=2000, vectorized=True, method='BCa',
      rng=np.random.default_rng(4)).confidence_interval
  assert method == 'BCa'
  assert (low, high) == pytest.approx(tuple(expected), rel=1e-12)
  assert (low, high) == inference.bca_interval(a, b, resamples=2000, seed=4)[:2]


def test_bca_falls_back_to_percentile_when_every_value_is_equal():
  """All-equal values make BCa NaN: the fallback is the percentile interval,
  named as such."""
  low, high, method = inference.bca_interval([2., 2., 2.], [1., 1., 1.],
                                             resamples=500)
  assert method == 'percentile'
  assert (low, high) == pytest.approx((1.0, 1.0))


# Power.


def _standardized(n, seed):
  z = np.random.default_rng(seed).normal(size=n)
  return (z - z.mean()) / z.std(ddof=1)


def test_d_of_0_8_needs_26_runs_a_side():
  """The textbook 25.5 a side at two-sided alpha 0.05, rounded up. Catches a
  one-sided alpha (21), total runs for runs a side (52) and rounding down."""
  z = _standardized(12, 0)
  figures = inference.power_figures(z + 0.8, z)
  assert figures['d'] == pytest.approx(0.8)
  assert figures['sd'] == pytest.approx(1.0)
  assert figures['runs_needed'] == 26


def test_minimal_detectable_effect_at_30_a_side_is_0_74_sd_in_the_metrics_units():
  """Catches mde_d for one-sided alpha (0.65) or 60 runs a side (0.52) and mde
  not scaled by the pooled SD."""
  a = 3. * _standardized(30, 1) + 10.
  b = 3. * _standardized(30, 2)
  figures = inference.power_figures(a, b)
  assert figures['n_a'] == figures['n_b'] == 30
  assert figures['mde_d'] == pytest.approx(0.74, abs=0.005)
  assert figures['mde'] == pytest.approx(3. * figures['mde_d'])
  assert figures['sd'] == pytest.approx(3.)
  assert figures['power_at_observed'] == pytest.approx(1.0, abs=1e-6)


def test_pooled_sd_weights_each_side_by_its_degrees_of_freedom():
  """Catches the unweighted average of variances or the SD of pooled data."""
  a, b = [0., 2., 4., 6.], [1., 2.]
  expected = math.sqrt((3 * np.var(a, ddof=1) + 1 * np.var(b, ddof=1)) / 4)
  figures = inference.power_figures(a, b)
  assert figures['sd'] == pytest.approx(expected)
  assert figures['d'] == pytest.approx((3. - 1.5) / expected)


def test_power_at_no_difference_is_alpha_and_needs_infinitely_many_runs():
  """Catches a crash (statsmodels' solver fails at d = 0, near 0 and for
  effects needing fewer than the exact test's runs) and power at d = 0 other
  than alpha."""
  figures = inference.power_figures([1., 2., 3., 4., 5.], [5., 4., 3., 2., 1.])
  assert figures['d'] == 0.0
  assert figures['runs_needed'] == math.inf
  assert figures['power_at_observed'] == pytest.approx(0.05)
  tiny = inference.power_figures([0., 2. + 1e-7, 1., 1.], [0., 2., 1., 1.])
  assert 1e12 < tiny['runs_needed'] < math.inf
  constant = inference.power_figures([1., 1., 1.], [1., 1., 1.])
  assert math.isnan(constant['d']) and math.isnan(constant['runs_needed'])


def test_the_smallest_p_is_two_over_the_relabellings_or_the_resamples():
  assert inference.smallest_p(5, 5) == pytest.approx(2 / 252)
  assert inference.smallest_p(2, 2) == pytest.approx(2 / 6)
  assert inference.smallest_p(1, 1) == 1.0
  assert inference.smallest_p(30, 30) == pytest.approx(2 / 100_001)
  # More resamples than relabellings: SciPy enumerates them all.
  assert inference.smallest_p(8, 8, max_exact=1000, resamples=20_000) == pytest.approx(2 / 12870)
  a, b = np.arange(5.) + 10, np.arange(5.)
  assert inference.permutation_test(a, b).pvalue == pytest.approx(inference.smallest_p(5, 5))


def test_a_level_the_exact_test_cannot_reach_has_no_power_whatever_the_effect():
  """5 vs 5 in a Holm family of 8: the exact test's smallest p, 2/252 =
  0.0079, never reaches alpha / 8 = 0.00625 (with every comparison at 5 vs
  5, none can be clear); the t-test alone would call the power of this huge
  effect 1. Catches power at the unadjusted level and power not capped by
  the exact test."""
  a, b = np.arange(5.) + 100, np.arange(5.)
  alone = inference.power_figures(a, b)
  assert alone['level'] == 0.05 and alone['reachable']
  assert alone['power_at_observed'] == pytest.approx(1.0)
  family = inference.power_figures(a, b, family_size=8)
  assert family['level'] == pytest.approx(0.05 / 8) and not family['reachable']
  assert family['power_at_observed'] == 0.0 and math.isinf(family['mde'])
  assert family['runs_needed'] == 6  # 2 / C(12, 6) = 0.0022 < 0.00625.
  # Two runs a side never reach 0.05 (smallest p 1/3): 4 a side are needed.
  assert inference.power_figures([10., 11.], [0., 1.])['runs_needed'] == 4


def test_power_in_a_family_is_the_t_tests_at_bonferronis_level():
  """Catches the unadjusted level (0.74 sd at 30 a side) in a family of 4."""
  a = 3. * _standardized(30, 1) + 1.
  b = 3. * _standardized(30, 2)
  figures = inference.power_figures(a, b, family_size=4)
  analysis = sm_power.TTestIndPower()
  assert figures['mde_d'] == pytest.approx(analysis.solve_power(
      effect_size=None, nobs1=30, alpha=0.0125, power=0.8, ratio=1.0))
  assert figures['mde_d'] > 0.85  # 0.74 at the unadjusted level.
  assert figures['power_at_observed'] == pytest.approx(analysis.power(
      effect_size=1 / 3, nobs1=30, alpha=0.0125, ratio=1.0))
  assert figures['runs_needed'] == math.ceil(analysis.solve_power(
      effect_size=1 / 3, nobs1=None, alpha=0.0125, power=0.8, ratio=1.0))


# Equivalence.


def test_tost_finds_arms_from_one_distribution_equivalent_within_a_wide_margin():
  """Catches the two shifts swapped (b + M tested 'greater'), which makes
  every pair of arms non-equivalent."""
  rng = np.random.default_rng(8)
  a, b = rng.normal(size=40), rng.normal(size=40)
  p, p_lower, p_upper = inference.tost(a, b, margin=1.0, resamples=2000)
  assert p < 0.05
  assert p == max(p_lower, p_upper)


def test_tost_does_not_find_arms_two_sd_apart_equivalent():
  """Catches p = min of the two one-sided p-values."""
  rng = np.random.default_rng(9)
  a, b = rng.normal(2., 1., size=40), rng.normal(size=40)
  p, p_lower, p_upper = inference.tost(a, b, margin=1.0, resamples=2000)
  assert p > 0.5
  assert p_lower < 0.05 < p_upper


@pytest.mark.parametrize('margin', [0., -1.])
def test_tost_refuses_a_margin_that_is_not_positive(margin):
  """Catches a margin <= 0 accepted (the two hypotheses then cover everything)."""
  with pytest.raises(ValueError, match='margin must be > 0'):
    inference.tost([1., 2.], [1., 2.], margin)


# Comparison and verdicts.


def test_a_clear_effect_against_the_predicted_direction_is_reported_as_such():
  """Predicted a < b but a is clearly greater: the two-sided p stays 2/252
  (not a one-sided ~1) and the verdict says against the prediction."""
  result = inference.compare(SEPARATED_A, SEPARATED_B, direction='less',
                             bootstrap_resamples=500)
  assert result['p'] == pytest.approx(2 / 252)
  assert result['difference'] == 5.0 and not result['agrees']
  assert inference.verdicts([result['p']], [result['difference']], ['less']) == [
      'clear, against the prediction']
  assert inference.verdicts([result['p']], [result['difference']], ['greater']) == [
      'clear, as predicted']


def test_verdicts_use_the_adjusted_p_and_each_comparisons_direction():
  """0.03, 0.04 adjusted by Holm over 2 are 0.06, 0.06: not distinguishable;
  catches verdicts from unadjusted p or one direction for all."""
  adjusted = inference.holm([0.03, 0.04])
  assert inference.verdicts(adjusted, [1., -1.], ['greater', 'less']) == [
      'not distinguishable', 'not distinguishable']
  assert inference.verdicts([0.01, 0.01, 0.01, np.nan], [1., -1., -1., 1.],
                            ['greater', 'less', 'greater', 'greater']) == [
      'clear, as predicted', 'clear, as predicted',
      'clear, against the prediction', 'not distinguishable']
  with pytest.raises(ValueError, match='direction'):
    inference.verdicts([0.01], [1.], ['up'])
  with pytest.raises(ValueError, match='one of each'):
    inference.verdicts([0.01, 0.02], [1.], ['greater'])


def test_compare_gathers_every_figure_from_the_functions_it_names():
  """Catches a figure computed on other data (e.g. NaNs not dropped) or a
  field missing from the report."""
  a = HAND_A + [np.nan]
  result = inference.compare(a, HAND_B, direction='greater', margin=2.0,
                             resamples=2000, bootstrap_resamples=500)
  assert (result['n_a'], result['n_b']) == (5, 6)
  assert result['mean_a'] == pytest.approx(np.mean(HAND_A))
  assert result['difference'] == pytest.approx(np.mean(HAND_A) - np.mean(HAND_B))
  assert result['p'] == pytest.approx(_scipy_mean_difference_p(HAND_A, HAND_B, 'two-sided'))
  assert result['exact'] and result['relabellings'] == 462 and result['agrees']
  assert result['poi'] == inference.probability_of_improvement(HAND_A, HAND_B)
  assert (result['hl_shift'], result['hl_low'], result['hl_high'],
          result['hl_coverage']) == inference.hodges_lehmann(HAND_A, HAND_B)
  assert (result['bca_low'], result['bca_high'], result['bca_method']) == (
      inference.bca_interval(HAND_A, HAND_B, resamples=500))
  figures = inference.power_figures(HAND_A, HAND_B)
  assert {key: result[key] for key in figures} == figures
  assert result['tost_p'] == inference.tost(HAND_A, HAND_B, 2.0)[0]
  assert inference.compare(HAND_A, HAND_B, bootstrap_resamples=200)['tost_p'] is None


def _exact_two_sided_p(a, b):
  """Brute force in exact decimal arithmetic: the share of relabellings whose
  |sum of a's side - n_a / n * total| is at least the observed one (the
  two-sided p of D, which is that sum's affine function), doubled one-sided
  as SciPy does: 2 min(P(D <= d), P(D >= d)), at most 1."""
  values = [fractions.Fraction(str(v)) for v in list(a) + list(b)]
  observed = sum(values[:len(a)])
  sums = [sum(values[i] for i in chosen)
          for chosen in itertools.combinations(range(len(values)), len(a))]
  greater = sum(s >= observed for s in sums) / len(sums)
  less = sum(s <= observed for s in sums) / len(sums)
  return min(1.0, 2 * min(greater, less))


@pytest.mark.parametrize('a, b', [
    ([0.7, 0.698, 0.698, 0.7, 0.699], [0.699, 0.697, 0.698, 0.697, 0.696]),
    ([500, 500, 500, 499.2, 498.6], [500, 499.2, 497, 500, 480.4]),
    ([1.0, 1.0, 0.9, 1.0, 0.3], [1.0, 0.3, 1.0, 0.9, 0.2, 1.0]),
])
def test_permutation_p_counts_relabellings_that_tie_the_observed_difference(a, b):
  """Tied values far from zero: relabellings whose mean difference equals
  the observed one up to the rounding of their sums are as extreme as it.
  Catches a tolerance relative to the difference alone (SciPy's default:
  the first case then gives 0.0397 against the exact 0.0873)."""
  result = inference.permutation_test(a, b)
  assert result.exact
  assert result.pvalue == pytest.approx(_exact_two_sided_p(a, b), abs=1e-12)
  assert result.statistic == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)


def test_ten_runs_a_side_are_enumerated():
  """10 vs 10 (184,756 relabellings, the MinAtar study's primary design) is
  exact; 11 vs 11 (705,432) draws. Catches the old limit of 100,000."""
  rng = np.random.default_rng(3)
  ten = inference.permutation_test(rng.normal(size=10), rng.normal(size=10))
  assert ten.exact and ten.relabellings == math.comb(20, 10)
  eleven = inference.permutation_test(rng.normal(size=11), rng.normal(size=11))
  assert not eleven.exact and eleven.relabellings == 100_000
  assert inference.smallest_p(10, 10) == pytest.approx(2 / math.comb(20, 10))
