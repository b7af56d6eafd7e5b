"""Claims decided by Holm-adjusted exact tests of their primary comparisons."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from moe_dopamine.metrics import inference
from moe_dopamine.studies import measurements
from moe_dopamine.studies import report
from moe_dopamine.studies import spec as spec_lib
from moe_dopamine.studies import tables
from moe_dopamine.studies import verdicts
from tests.studies import synthetic

REFERENCES = {'CartPole': 'reference_cartpole', 'MountainCar': 'reference_mountaincar'}


def comparison(a, b, metric='P', direction='greater', seeds=None):
  return spec_lib.Comparison(a, b, metric, direction, seeds=seeds)


def study_of(claims, exploratory=()):
  return spec_lib.Study(
      path='x.toml', name='x', title='x', results='r', runs_dir='d', out='o', seeds=tuple(range(5)),
      window=5, sensitivity_windows=(1, 5), alpha=0.05, registered='', references=REFERENCES,
      parts=(), claims=tuple(claims), exploratory=tuple(exploratory))


def runs_of(levels, seeds=range(5), noise=0.05):
  return measurements.per_run(synthetic.table(levels, seeds, noise), None, REFERENCES, 5)


def test_a_large_effect_is_clear_and_the_claim_supported():
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3})
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  [result] = verdicts.judge(study_of([claim]), runs)
  record = result.records[0]
  assert record['n_a'] == record['n_b'] == 5
  assert record['p'] == pytest.approx(2 / 252)  # Every a above every b: exact minimum.
  assert record['p_holm'] == pytest.approx(2 / 252)  # A family of one.
  assert result.verdict == verdicts.SUPPORTED


def test_holm_adjusts_within_the_claim_not_across_claims():
  # Fails if p-values are adjusted over every comparison of the study, or not at all.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3, 'crl_c': 0.3, 'crl_d': 0.9})
  family = spec_lib.Claim('1', 's', 'all', (
      comparison('crl_a', 'crl_b'), comparison('crl_a', 'crl_c'), comparison('crl_d', 'crl_b')))
  alone = spec_lib.Claim('2', 's', 'all', (comparison('crl_d', 'crl_c'),))
  first, second = verdicts.judge(study_of([family, alone]), runs)
  ps = [r['p'] for r in first.records]
  assert [r['p_holm'] for r in first.records] == pytest.approx(list(inference.holm(ps)))
  assert first.records[0]['p_holm'] == pytest.approx(min(1.0, 3 * min(ps)))
  assert second.records[0]['p_holm'] == pytest.approx(second.records[0]['p'])


def test_a_clear_effect_against_the_prediction_contradicts_the_claim():
  runs = runs_of({'crl_a': 0.2, 'crl_b': 0.9})
  claim = spec_lib.Claim('1', 's', 'any', (comparison('crl_a', 'crl_b'),))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert result.records[0]['verdict'] == inference.CLEAR_AGAINST
  assert result.verdict == verdicts.CONTRADICTED


def test_no_difference_is_not_distinguishable_not_supported():
  runs = runs_of({'crl_a': 0.5, 'crl_b': 0.5}, noise=0.1)
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert result.verdict.startswith('not distinguishable at n = 5')


def test_rule_any_is_supported_by_one_clear_comparison_and_all_needs_every_one():
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3, 'crl_c': 0.5, 'crl_d': 0.5}, noise=0.1)
  comparisons = (comparison('crl_a', 'crl_b'), comparison('crl_c', 'crl_d'))
  any_result, all_result = verdicts.judge(study_of([
      spec_lib.Claim('1', 's', 'any', comparisons),
      spec_lib.Claim('2', 's', 'all', comparisons)]), runs)
  assert any_result.verdict == verdicts.SUPPORTED
  assert all_result.verdict.startswith('not distinguishable')


def test_a_comparison_on_new_seeds_uses_only_those():
  # Seeds 0-4: a far above b; seeds 5-9: no difference. Tested on 5-9 only,
  # the comparison must not see the old seeds.
  scores = synthetic.table({'crl_a': 0.9, 'crl_b': 0.2}, seeds=range(5), noise=0.02)
  import pandas as pd  # pylint: disable=g-import-not-at-top
  later = synthetic.table({'crl_a': 0.5, 'crl_b': 0.5}, seeds=range(5, 10), noise=0.1)
  runs = measurements.per_run(pd.concat([scores, later]), None, REFERENCES, 5)
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b', seeds=tuple(range(5, 10))),))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert result.records[0]['n_a'] == 5
  assert result.verdict.startswith('not distinguishable')


def test_probability_of_improvement_is_per_task_for_p():
  # a wins on CartPole, loses on MountainCar: no single averaged number.
  scores = synthetic.table({'crl_a': 0.6, 'crl_b': 0.6}, noise=0.0)
  scores.loc[(scores['variant'] == 'crl_a') & (scores['task'] == 'CartPole'), 'eval_score'] += 0.3
  scores.loc[(scores['variant'] == 'crl_a') & (scores['task'] == 'MountainCar'), 'eval_score'] -= 0.3
  runs = measurements.per_run(scores, None, REFERENCES, 5)
  record = verdicts.evaluate(comparison('crl_a', 'crl_b'), runs, 0.05)
  assert record['poi_per_task'] == {'CartPole': 1.0, 'MountainCar': 0.0}


def test_too_few_runs_is_not_yet_decided():
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3}, seeds=[0])
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert result.records[0]['verdict'] == 'waiting: 1 of 5 runs a side'
  assert 'p' not in result.records[0]
  assert result.verdict.startswith('not yet decided')


def test_sensitivity_gives_every_window():
  scores = synthetic.table({'crl_a': 0.9, 'crl_b': 0.3}, noise=0.0)
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  table = verdicts.sensitivity(study_of([claim]), scores, None, (1, 5))
  [(label, by_window)] = table.items()
  assert set(by_window) == {1, 5}
  assert by_window[1][0] == pytest.approx(0.6 * 0.75)  # (0.45 + 0.9) / 2 - (0.15 + 0.3) / 2
  assert by_window[1][1] == {'CartPole': 1.0, 'MountainCar': 1.0}


def test_sensitivity_gives_p_of_improvement_per_task_not_over_the_average():
  # a wins on CartPole and loses on MountainCar; on the task-averaged P it
  # would win every pair (1.0), hiding the trade-off.
  scores = synthetic.table({'crl_a': 0.6, 'crl_b': 0.6}, noise=0.0)
  on = lambda task: (scores['variant'] == 'crl_a') & (scores['task'] == task)
  scores.loc[on('CartPole'), 'eval_score'] += 0.4
  scores.loc[on('MountainCar'), 'eval_score'] -= 0.1
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  [(_, by_window)] = verdicts.sensitivity(study_of([claim]), scores, None, (5,)).items()
  assert by_window[5][0] > 0
  assert by_window[5][1] == {'CartPole': 1.0, 'MountainCar': 0.0}
  row = tables.sensitivity_table({'a vs b': by_window}, (5,))[-1]
  assert 'CartPole 1.00; MountainCar 0.00' in row


def test_cited_p_values_are_checked_against_the_comparisons():
  records = [{'p': 0.015873, 'p_holm': 0.047619}, {'p': 0.2, 'tost_p': None}]
  text = 'clear (p = 0.0159, p (Holm) = 0.0476); another p = 0.2000 and p = 0.0300.'
  assert report.unmatched_p_values(text, records) == ['0.0300']


def test_a_comparison_waits_for_its_pre_registered_runs():
  # Fails if a comparison is tested (peeked at) before the runs it registered.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3})
  waiting = spec_lib.Comparison('crl_a', 'crl_b', 'P', 'greater', runs=30)
  claim = spec_lib.Claim('1', 's', 'all', (waiting,))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert 'p' not in result.records[0]
  assert result.records[0]['verdict'] == 'waiting: 5 of 30 runs a side'
  assert result.verdict.startswith('not yet decided')
  table = verdicts.sensitivity(study_of([claim]), synthetic.table({'crl_a': 0.9, 'crl_b': 0.3}),
                               None, (5,))
  assert all(np.isnan(v[0]) for v in table[waiting.key].values())
  # The same comparison at 5 runs a side (a first stage) keeps its own row.
  first = comparison('crl_a', 'crl_b')
  both = verdicts.sensitivity(
      study_of([spec_lib.Claim('1', 's', 'all', (first,)), claim]),
      synthetic.table({'crl_a': 0.9, 'crl_b': 0.3}), None, (5,))
  assert list(both) == [first.key, waiting.key] == [
      'crl_a vs crl_b, P', 'crl_a vs crl_b, P at 30 runs a side']
  assert np.isfinite(both[first.key][5][0]) and np.isnan(both[waiting.key][5][0])
  reached = spec_lib.Comparison('crl_a', 'crl_b', 'P', 'greater', runs=5)
  [done] = verdicts.judge(study_of([spec_lib.Claim('1', 's', 'all', (reached,))]), runs)
  assert done.verdict == verdicts.SUPPORTED


def test_a_companions_claim_verdicts_come_back_from_its_verdicts_csv(tmp_path):
  # The side-by-side table judges the companion's claims from its CSV alone:
  # the same verdicts as judged from the runs, for every kind of verdict.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3, 'crl_c': 0.3, 'crl_d': 0.32})
  claims = [
      spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),)),
      spec_lib.Claim('2', 's', 'all', (comparison('crl_c', 'crl_d'), comparison('crl_a', 'crl_c'))),
      spec_lib.Claim('3', 's', 'any', (comparison('crl_b', 'crl_a'),)),
  ]
  results = verdicts.judge(study_of(claims), runs)
  path = str(tmp_path / 'verdicts.csv')
  report.write_verdicts_csv(path, results, [])
  records = report.companion_records(path)
  assert sorted(records) == ['1', '2', '3']
  back = [verdicts.claim_verdict(c.rule, records[c.id]) for c in claims]
  assert back == [r.verdict for r in results]
  assert back[0] == verdicts.SUPPORTED and back[2] == verdicts.CONTRADICTED
  assert back[1].startswith('not distinguishable')


def test_runs_added_for_other_comparisons_never_change_a_registered_one():
  # Seeds 5-9 arrive for a 10-run comparison; the 5-seed comparison of the
  # same variants (no seeds, no runs) keeps judging seeds 0-4 only.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3}, seeds=range(10))
  five = comparison('crl_a', 'crl_b')
  ten = spec_lib.Comparison('crl_a', 'crl_b', 'P', 'greater', runs=10)
  study = dataclasses.replace(study_of([spec_lib.Claim('1', 's', 'all', (five, ten))]),
                              seeds=(0, 1, 2, 3, 4))
  [result] = verdicts.judge(study, runs)
  assert [(r['n_a'], r['n_b']) for r in result.records] == [(5, 5), (10, 10)]
  assert verdicts.seeds_of(five, (0, 1)) == (0, 1)
  assert verdicts.seeds_of(ten, (0, 1)) == tuple(range(10))


def test_a_family_with_comparisons_waiting_gets_bounds_not_holm_over_the_ones_in():
  # Fails if Holm adjusts over the tested comparisons only, as if the family
  # had no others (the waiting ones can only raise the adjusted p).
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3, 'crl_c': 0.5, 'crl_d': 0.5})
  tested = comparison('crl_a', 'crl_b')          # p = 2/252 at 5 v 5.
  level = comparison('crl_c', 'crl_d')           # No difference.
  waiting = [spec_lib.Comparison('crl_a', x, 'P', 'greater', runs=30) for x in ('crl_c', 'crl_d')]
  claim = spec_lib.Claim('1', 's', 'any', (tested, level, *waiting))
  [result] = verdicts.judge(study_of([claim]), runs)
  clear, flat = result.records[:2]
  assert 'p_holm' not in clear and 'p_holm' not in flat
  p = 2 / 252
  assert clear['p_holm_low'] == pytest.approx(2 * p)  # Holm over the two in: x2.
  assert clear['p_holm_high'] == pytest.approx(4 * p)  # The family of 4, the waiting ones at 1.
  assert clear['verdict'] == inference.CLEAR_AS_PREDICTED + verdicts.SETTLED
  assert flat['p_holm_low'] >= 0.05
  assert flat['verdict'] == inference.NOT_DISTINGUISHABLE + verdicts.SETTLED
  # The two waiting for runs, not the two settled by the bounds.
  assert result.verdict == ('not yet decided (pre-registered runs not reached; 2 comparison(s) '
                            'waiting for their runs)')
  row = [line for line in report.tables.comparison_table(result.records)
         if line.startswith('| crl_a vs crl_b')][0]
  assert f'{2 * p:.4f} to {4 * p:.4f} (2 of 4 comparisons in)' in row


def test_a_bound_that_does_not_settle_it_waits_for_the_family():
  # p = 2/252 = 0.0079 in a family of 8: the high bound 8 p = 0.063 >= 0.05,
  # Holm over the one in 0.0079 < 0.05: neither settles it.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3})
  waiting = [spec_lib.Comparison('crl_a', 'crl_b', 'P', 'greater', runs=30 + i)
             for i in range(7)]
  claim = spec_lib.Claim('1', 's', 'any', (comparison('crl_a', 'crl_b'), *waiting))
  [result] = verdicts.judge(study_of([claim]), runs)
  assert result.records[0]['verdict'] == verdicts.WAITING_FAMILY


def test_the_claim_summary_counts_comparisons_settled_by_the_bounds():
  # Fails if the summary counts only verdicts of complete families: a
  # comparison clear whatever the waiting ones give is clear.
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3, 'crl_c': 0.5, 'crl_d': 0.5})
  waiting = spec_lib.Comparison('crl_a', 'crl_c', 'P', 'greater', runs=30)
  claim = spec_lib.Claim('1', 's', 'any', (comparison('crl_a', 'crl_b'), waiting))
  against = spec_lib.Claim('2', 't', 'any', (comparison('crl_b', 'crl_a'), waiting))
  results = verdicts.judge(study_of([claim, against]), runs)
  assert verdicts.is_clear(results[0].records[0], inference.CLEAR_AS_PREDICTED)
  rows = [line for line in report._claim_summary(results) if line.startswith('| 1. ')
          or line.startswith('| 2. ')]
  assert rows[0].endswith('| 1 | 0 | 2 |') and rows[1].endswith('| 0 | 1 | 2 |')


def test_first_seeds_against_later_ones_flags_runs_that_differ():
  # crl_a's later seeds score far below its first ones; crl_b's match.
  # Fails if the check pools the seeds, compares the wrong sets or skips Holm.
  first = synthetic.table({'crl_a': 0.9, 'crl_b': 0.5}, range(5), 0.02)
  later = synthetic.table({'crl_a': 0.3, 'crl_b': 0.5}, range(5, 15), 0.02)
  runs = measurements.per_run(pd.concat([first, later]), None, REFERENCES, 5)
  part = spec_lib.Part('p', (spec_lib.Variant('crl_a.gin'), spec_lib.Variant('crl_b.gin')),
                       tuple(range(15)))
  study = dataclasses.replace(study_of([]), parts=(part,))
  rows = verdicts.first_seeds_check(study, runs, metrics=('P',))
  assert [(r['variant'], r['n_first'], r['n_later']) for r in rows] == [
      ('crl_a', 5, 10), ('crl_b', 5, 10)]
  a, b = rows
  assert a['mean_later'] < a['mean_first']
  assert a['p'] == pytest.approx(2 / 3003)  # Every later run below every first one.
  assert a['p_holm'] == pytest.approx(2 * a['p'])
  assert b['p_holm'] >= b['p']
  table = tables.first_seeds_lines(rows, range(5))
  assert 'seeds 0-4: runs, mean' in table[0] and table[2].startswith('| crl_a | P | 5, ')


def test_a_comparison_without_registered_runs_waits_for_every_seed_it_counts():
  # Fails if a comparison is tested on 2 of its 5 seeds (an interval from
  # two runs a side bounds nothing).
  runs = runs_of({'crl_a': 0.9, 'crl_b': 0.3}, seeds=[0, 1])
  record = verdicts.evaluate(comparison('crl_a', 'crl_b'), runs, 0.05, default_seeds=range(5))
  assert 'p' not in record and record['verdict'] == 'waiting: 2 of 5 runs a side'
  two = verdicts.evaluate(comparison('crl_a', 'crl_b'), runs, 0.05, default_seeds=(0, 1))
  assert 'p' in two
  scores = synthetic.table({'crl_a': 0.9, 'crl_b': 0.3}, [0, 1])
  claim = spec_lib.Claim('1', 's', 'all', (comparison('crl_a', 'crl_b'),))
  table = verdicts.sensitivity(study_of([claim]), scores, None, (5,))  # Seeds 0-4.
  assert np.isnan(table[claim.comparisons[0].key][5][0])
