"""The study report: per-run metrics from the tables, the claim verdicts, and
the page and figures written from the tables alone."""

import os

import numpy as np
import pandas as pd
import pytest

from moe_dopamine import cost
from moe_dopamine import results
from moe_dopamine import study_report
from moe_dopamine.metrics import continual

TASKS = ['CartPole', 'MountainCar']
STRETCH = 4


@pytest.fixture(autouse=True)
def fewer_bootstrap_repetitions(monkeypatch):
  monkeypatch.setattr(study_report, 'BOOTSTRAP_REPS', 300)
  monkeypatch.setattr(study_report, 'BAND_RESAMPLES', 300)


def crl_rows(variant, seed, level, dormant=0.2, setting='crl', noise=0.0):
  """A run whose scores ramp to `level` on each task in its stretch; in CRL
  CartPole then drops to half of it while MountainCar trains."""
  rng = np.random.default_rng(seed)
  rows = []
  for iteration in range(2 * STRETCH):
    if setting == 'crl':
      train_task = TASKS[iteration // STRETCH]
    else:
      train_task = results.MTRL_TASK
    for task in TASKS:
      if setting == 'mtrl' or task == 'CartPole':
        score = level * min(1.0, (iteration + 1) / STRETCH)
        if setting == 'crl' and iteration >= STRETCH:
          score = level / 2
      else:
        score = 0.0 if iteration < STRETCH else level * (iteration - STRETCH + 1) / STRETCH
      score = float(np.clip(score + noise * rng.normal(), 0, 1))
      rows.append(dict(
          run=f'{variant}/seed_{seed}', variant=variant, seed=seed, setting=setting,
          task_order='>'.join(TASKS), bindings='', num_parameters=1000, iteration=iteration,
          task=task, train_task=train_task, eval_return=100 * score, eval_score=score,
          eval_episodes=10, train_steps_per_second=800.0, eval_seconds=0.2,
          **{'dormant_tau0.025': dormant / 2, 'dormant_tau0.1': dormant,
             'unused_experts': np.nan if 'baseline' in variant else 0.0}))
  return rows


def reference_rows(seed, level=0.5):
  rows = []
  for task in TASKS:
    for iteration in range(STRETCH):
      score = level * (iteration + 1) / STRETCH
      rows.append(dict(
          run=f'reference_{task.lower()}/seed_{seed}', variant=f'reference_{task.lower()}',
          seed=seed, setting='single', task_order=task, bindings='', num_parameters=1000,
          iteration=iteration, task=task, train_task=task, eval_return=100 * score,
          eval_score=score, eval_episodes=10, train_steps_per_second=900.0,
          eval_seconds=0.1, **{'dormant_tau0.025': 0.1, 'dormant_tau0.1': 0.2,
                               'unused_experts': np.nan}))
  return rows


def table(levels, setting='crl', dormant=None, seeds=range(5)):
  rows = []
  for variant, level in levels.items():
    for seed in seeds:
      d = (dormant or {}).get(variant, 0.2) + 0.01 * seed
      rows += crl_rows(variant, seed, level + 0.02 * seed, d, setting)
  return pd.DataFrame(rows, columns=results.SCORE_COLUMNS)


def test_run_metrics_are_the_continual_formulas_on_the_table():
  frame = pd.DataFrame(crl_rows('crl_big_softmoe', 0, 0.8) + reference_rows(0),
                       columns=results.SCORE_COLUMNS)
  references = study_report.reference_curves(frame)
  np.testing.assert_allclose(references['MountainCar'], [0.125, 0.25, 0.375, 0.5])
  runs = study_report.run_table(frame, references)
  row = runs[runs['run'] == 'crl_big_softmoe/seed_0'].iloc[0]
  cartpole = [0.2, 0.4, 0.6, 0.8, 0.4, 0.4, 0.4, 0.4]
  mountaincar = [0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8]
  # Forgetting: the last 3 evaluations of CartPole's stretch against the last 3.
  assert row['F/CartPole'] == pytest.approx(np.mean([0.4, 0.6, 0.8]) - 0.4)
  assert row['F/MountainCar'] == pytest.approx(0.0)
  assert row['P'] == pytest.approx((0.4 + np.mean([0.4, 0.6, 0.8])) / 2)
  auc, auc_ref = np.mean(mountaincar[4:]), np.mean([0.125, 0.25, 0.375, 0.5])
  assert row['FT/MountainCar'] == pytest.approx((auc - auc_ref) / (1 - auc_ref))
  assert row['FT/CartPole'] == pytest.approx((np.mean(cartpole[:4]) - auc_ref) / (1 - auc_ref))
  assert row['return/CartPole'] == pytest.approx(40.0)
  assert row['end/CartPole'] == pytest.approx(np.mean([0.4, 0.6, 0.8]))
  assert row['end/MountainCar'] == pytest.approx(np.mean([0.4, 0.6, 0.8]))


def verdicts(groups):
  """{claim number: whole verdict, with its qualifier}."""
  return {claim.split('.')[0]: verdict for claim, verdict, _ in study_report.judge_claims(groups)}


def claims_of(groups):
  """{claim number: (claim, verdict, evidence)}."""
  return {c[0].split('.')[0]: c for c in study_report.judge_claims(groups)}


def words(groups):
  """{claim number: the verdict without the untested placements' qualifier}."""
  return {claim: verdict.split(' (')[0] for claim, verdict in verdicts(groups).items()}


def groups_of(*frames):
  out = {}
  for frame in frames:
    runs = study_report.run_table(frame, {})
    out[frame['setting'].iloc[0]] = (runs, TASKS)
  return out


def test_claims_follow_clear_differences():
  crl = table({'crl_baseline': 0.3, 'crl_middle_softmoe': 0.4, 'crl_middle_topk': 0.35,
               'crl_big_softmoe': 0.9, 'crl_big_topk': 0.5, 'crl_big_hardcoded': 0.95},
              dormant={'crl_baseline': 0.4})
  mtrl = table({'mtrl_baseline': 0.3, 'mtrl_middle_softmoe': 0.3, 'mtrl_big_softmoe': 0.8,
                'mtrl_big_topk': 0.2, 'mtrl_big_hardcoded': 0.5}, setting='mtrl',
               dormant={'mtrl_baseline': 0.4})
  got = words(groups_of(crl, mtrl))
  assert got['1'] == 'supported'  # Big SoftMoE above the baseline and Middle.
  assert got['2'] == 'supported'  # Only Big above the MTRL baseline.
  assert got['3'] == 'supported'  # SoftMoE above TopK in every placement.
  assert got['4'] == 'supported'  # Every MoE below the baseline's 0.4.
  assert got['5'] == 'supported'  # Hardcoded beats TopK (and CRL SoftMoE).


def test_claims_fail_when_the_differences_go_the_other_way():
  crl = table({'crl_baseline': 0.9, 'crl_middle_softmoe': 0.3, 'crl_middle_topk': 0.8,
               'crl_big_softmoe': 0.2, 'crl_big_topk': 0.6, 'crl_big_hardcoded': 0.1},
              dormant={'crl_baseline': 0.05})
  got = words(groups_of(crl))
  assert got['1'] == 'not supported'
  assert got['3'] == 'not supported'
  assert got['4'] == 'not supported'
  assert got['5'] == 'not supported'  # Learned routing beats hardcoded everywhere.


def test_equal_variants_are_inconclusive():
  crl = table({'crl_baseline': 0.5, 'crl_big_softmoe': 0.5, 'crl_big_topk': 0.5,
               'crl_middle_softmoe': 0.5, 'crl_middle_topk': 0.5})
  got = words(groups_of(crl))
  assert got['1'] == 'inconclusive' and got['3'] == 'inconclusive'
  assert got['4'] == 'inconclusive'


def test_the_report_is_written_from_the_tables_alone(tmp_path):
  crl = table({'crl_baseline': 0.3, 'crl_big_softmoe': 0.8, 'crl_big_topk': 0.5})
  mtrl = table({'mtrl_baseline': 0.3, 'mtrl_big_softmoe': 0.6}, setting='mtrl')
  references = pd.DataFrame(sum((reference_rows(s) for s in range(5)), []),
                            columns=results.SCORE_COLUMNS)
  experts = pd.DataFrame(
      [dict(run=f'crl_big_softmoe/seed_{s}', variant='crl_big_softmoe', seed=s, setting='crl',
            iteration=it, task=task, layer='big', expert=e, usage=0.25, top1=0.25)
       for s in range(5) for it in (3, 7) for task in TASKS for e in range(4)],
      columns=results.EXPERT_COLUMNS)
  results_dir = str(tmp_path / 'results')
  results.add(results_dir, [(pd.concat([crl, mtrl, references]), experts)])
  out = tmp_path / 'report'
  cost_md = tmp_path / 'cost.md'
  cost_md.write_text('# Cost\n\n| variant | x baseline |\n|---|---|\n| big | 4.35 |\n\n'
                  '## MinAtar\n\n| variant |\n|---|\n| breakout |\n')
  study_cost = tmp_path / 'cost.csv'
  cost.write_csv([dict(variant=v, n=n, parameters=p, active=a, **{
      'acting MFLOP': 0.5, 'training-step GFLOP': g}) for v, n, p, a, g in (
          ('crl_baseline', '-', 1000, 1000, 0.25), ('crl_big_softmoe', 4, 4016, 4016, 1.0),
          ('crl_big_topk', 4, 4016, 1016, 0.25))], study_cost)
  assert study_report.main(['--results', results_dir, '--out', str(out),
                            '--cost_table', str(cost_md), '--study_cost', str(study_cost),
                            '--conclusions', str(tmp_path / 'none.md')]) == 0
  page = (out / 'README.md').read_text()
  # The cost file sits under the report's own section, its headings two levels down.
  assert '## What each variant costs' in page and '| big | 4.35 |' in page
  assert '\n#### MinAtar\n' in page and '\n## MinAtar' not in page and '# Cost' not in page
  # The study's networks beside their scores: MTRL Big SoftMoE's runs end at
  # 0.60 ... 0.68 on both tasks; no MTRL run of Big TopK.
  [softmoe] = [line for line in page.splitlines() if line.startswith('| crl_big_softmoe | 4 |')]
  assert softmoe.startswith('| crl_big_softmoe | 4 | 4,016 | 4,016 | 0.50 | 1.000 | ')
  assert softmoe.split(' | ')[-1].startswith('0.64 [')
  [topk] = [line for line in page.splitlines() if line.startswith('| crl_big_topk | 4 |')]
  assert topk.endswith('| n/a |') and topk.count('(n=5)') == 1
  for heading in ('## Single-task runs', '## CRL: the grid', '## MTRL: the grid',
                  '## The claims', '**Verdict: supported'):
    assert heading in page
  # The protocol table: the mean of the last 3 of 12.5, 25, 37.5, 50.
  assert '| reference_cartpole | CartPole | 5 | 37.5 [' in page
  assert 'adaptive' not in page  # No soft-to-sparse run.
  # Retention, CRL only: Big SoftMoE's CartPole drops to about 0.4, its
  # MountainCar reaches about 0.8.
  assert '| crl_big_softmoe | 5 | 0 | 5 | 0 |' in page
  assert page.count('every task |') == 1
  figures = set(os.listdir(out / 'figures'))
  assert {'curves_crl_CartPole.png', 'curves_crl_MountainCar.png', 'dormant_crl.png',
          'expert_usage_crl_big_softmoe.png', 'curves_single-task_MountainCar.png'} <= figures
  for name in figures:
    assert f'figures/{name}' in page


def test_an_empty_results_folder_is_an_error(tmp_path, capsys):
  assert study_report.main(['--results', str(tmp_path), '--out', str(tmp_path / 'o')]) == 2
  assert 'no results' in capsys.readouterr().err


def test_cells_say_how_many_seeds():
  assert study_report.cell([1.0, 2.0]).endswith('(range, n=2)')
  summary = continual.over_seeds([1.0, 2.0, 3.0, 4.0, 5.0])
  assert study_report.cell([1.0, 2.0, 3.0, 4.0, 5.0]).startswith(f"{summary['mean']:.2f} [")
  assert study_report.cell([1.0, 2.0, 3.0, 4.0, 5.0]).endswith('(n=5)')


def test_claim_1_says_when_only_the_baselines_were_compared():
  crl = table({'crl_baseline': 0.3, 'crl_baseline_matched': 0.35, 'crl_big_softmoe': 0.9})
  verdict = verdicts(groups_of(crl))['1']
  assert verdict == 'supported against the baselines only (Middle, Final and All not yet run)'


def test_claims_1_and_2_name_the_placements_not_run_yet():
  crl = table({'crl_baseline': 0.3, 'crl_middle_topk': 0.35, 'crl_big_softmoe': 0.9})
  mtrl = table({'mtrl_baseline': 0.3, 'mtrl_final_softmoe': 0.3, 'mtrl_big_softmoe': 0.8},
               setting='mtrl')
  got = verdicts(groups_of(crl, mtrl))
  # Middle (CRL) and Final (MTRL) are run with one router of two.
  assert got['1'] == 'supported (Final and All not yet run; Middle only in part)'
  assert got['2'] == 'supported (Middle and All not yet run; Final only in part)'


def test_a_placement_with_too_few_seeds_is_only_in_part():
  levels = {'crl_baseline': 0.3, 'crl_big_softmoe': 0.9}
  levels.update({f'crl_{p}_{r}': 0.35 for p in ('middle', 'final') for r in ('softmoe', 'topk')})
  full = table(levels)
  assert verdicts(groups_of(full))['1'] == 'supported (All not yet run)'
  some = table({'crl_all_topk': 0.35, 'crl_all_softmoe': 0.35}, seeds=range(2))
  both = pd.concat([full, some])
  assert verdicts(groups_of(both))['1'] == 'supported (All only in part)'


def test_claim_5_needs_a_clear_win_of_hardcoded_routing():
  tie = table({'crl_big_softmoe': 0.5, 'crl_big_topk': 0.5, 'crl_big_hardcoded': 0.5})
  assert verdicts(groups_of(tie))['5'] == 'inconclusive'
  mixed = table({'crl_big_softmoe': 0.9, 'crl_big_topk': 0.5, 'crl_big_hardcoded': 0.5})
  assert verdicts(groups_of(mixed))['5'] == 'inconclusive'  # One learned win, one tie.


def test_retention_counts_runs_that_keep_each_task_and_every_task():
  # Two runs with the same P (0.5): one keeps half of each task, one keeps
  # CartPole whole and loses MountainCar; a third keeps both.
  runs = pd.DataFrame({
      'variant': ['v', 'v', 'v'], 'p/CartPole': [0.5, 1.0, 0.9],
      'p/MountainCar': [0.5, 0.0, 0.6]})
  lines = study_report.retention_lines(runs, TASKS)
  assert lines[0] == '| variant | runs | CartPole >= 0.5 | MountainCar >= 0.5 | every task |'
  assert lines[2] == '| v | 3 | 3 | 2 | 2 |'
  runs.loc[0, 'p/MountainCar'] = 0.49
  assert study_report.retention_lines(runs, TASKS)[2] == '| v | 3 | 3 | 1 | 1 |'


def test_per_task_table_leaves_out_the_last_trained_task_s_forgetting():
  frame = pd.DataFrame(
      [r for seed in range(5) for r in crl_rows('crl_big_softmoe', seed, 0.8 + 0.02 * seed)]
      + [r for seed in range(5) for r in reference_rows(seed)],
      columns=results.SCORE_COLUMNS)
  runs = study_report.run_table(frame, study_report.reference_curves(frame))
  runs = runs[runs['setting'] == 'crl']
  lines = study_report.per_task_lines(runs, TASKS)
  assert lines[0] == ('| variant | CartPole at the end of its training | MountainCar at the end of '
                      'its training | F CartPole | FT CartPole | FT MountainCar |')
  cells = lines[2].split(' | ')
  assert cells[0] == '| crl_big_softmoe'
  expected_f = study_report.cell(runs['F/CartPole'])
  assert cells[3] == expected_f
  assert float(expected_f.split(' ')[0]) == pytest.approx(runs['F/CartPole'].mean(), abs=0.005)
  assert study_report.per_task_lines(runs[['variant', 'P']], TASKS) == []


def test_each_panel_is_drawn_beside_the_baseline_with_its_own_bindings():
  reversed_ = 'crl_baseline__task_names-MountainCarCartPole'
  variants = ['crl_baseline', 'crl_big_softmoe', reversed_,
              'crl_big_softmoe__task_names-MountainCarCartPole', 'crl_big_topk__replay-clear']
  assert study_report.panel_baseline('crl_big_softmoe', variants, reversed_) == 'crl_baseline'
  assert study_report.panel_baseline(
      'crl_big_softmoe__task_names-MountainCarCartPole', variants, 'crl_baseline') == reversed_
  # No baseline with those bindings in the figure: the figure's baseline.
  assert study_report.panel_baseline(
      'crl_big_topk__replay-clear', variants, reversed_) == reversed_


def test_claim_1_lists_the_headline_comparison_of_each_ablation_beside_its_verdict():
  crl = table({'crl_baseline': 0.3, 'crl_big_softmoe': 0.9})
  reversed_ = table({'crl_baseline__order-BA': 0.8, 'crl_big_softmoe__order-BA': 0.2},
                    seeds=range(3))
  ablation = {'reversed order': (study_report.run_table(reversed_, {}), TASKS)}
  (claim, verdict, evidence), = [
      c for c in study_report.judge_claims(groups_of(crl), ablation) if c[0].startswith('1.')]
  assert verdict.startswith('supported')  # The ablation does not change it.
  line, = [e for e in evidence if e.startswith('reversed order')]
  assert 'P(crl_big_softmoe__order-BA > crl_baseline__order-BA) = 0.00' in line
  assert '(n=3) against' in line


def test_comparisons_with_too_few_seeds_are_listed_but_not_counted():
  crl = table({'crl_baseline': 0.3, 'crl_big_softmoe': 0.9, 'crl_middle_topk': 0.2,
               'crl_middle_softmoe': 0.2})
  # Two seeds of Final TopK, far above Big SoftMoE and far more dormant.
  few = table({'crl_final_topk': 1.0}, dormant={'crl_final_topk': 0.9}, seeds=range(2))
  claims = claims_of(groups_of(pd.concat([crl, few])))
  _, verdict, evidence = claims['1']
  assert verdict.startswith('supported')
  assert 'Final only in part' in verdict
  assert any(line.startswith('P(crl_big_softmoe > crl_final_topk)')
             and line.endswith(f'(n=2, {study_report.NOT_COUNTED})') for line in evidence)
  assert 'clearly beats 3 of 3 other variants counted' in evidence[0]
  _, verdict, evidence = claims['4']
  assert 'of 3 MoE variants counted' in evidence[0]
  assert any('crl_final_topk - baseline' in line and 'n=2' in line for line in evidence)


def test_claims_1_and_2_judge_big_with_learned_routing():
  # Big TopK has the higher mean but claim 1 judges the headline, Big
  # SoftMoE, which only ties the baseline.
  crl = table({'crl_baseline': 0.5, 'crl_big_softmoe': 0.5, 'crl_big_topk': 0.95})
  _, verdict, evidence = claims_of(groups_of(crl))['1']
  assert verdict.startswith('inconclusive')
  assert evidence[0].startswith('Big with learned routing: crl_big_softmoe;')
  assert evidence[1].startswith('crl_big_topk, beside it: clearly beats 1 of 1')
  # In MTRL hardcoded routing alone clearly above the baseline is not "only Big".
  mtrl = table({'mtrl_baseline': 0.3, 'mtrl_big_softmoe': 0.3, 'mtrl_big_topk': 0.3,
                'mtrl_big_hardcoded': 0.9}, setting='mtrl')
  _, verdict, evidence = claims_of(groups_of(mtrl))['2']
  assert verdict.startswith('inconclusive')
  assert any(line.endswith('(task-id control, not counted)') for line in evidence)


def test_claim_4_lists_big_against_the_matched_baseline_as_a_width_control():
  crl = table({'crl_baseline': 0.5, 'crl_baseline_matched': 0.5, 'crl_big_softmoe': 0.5},
              dormant={'crl_baseline': 0.2, 'crl_baseline_matched': 0.3, 'crl_big_softmoe': 0.25})
  _, verdict, evidence = claims_of(groups_of(crl))['4']
  assert verdict == 'not supported'  # More dormant than the small baseline...
  width = [line for line in evidence if 'matched baseline' in line]
  assert len(width) == 1 and width[0].split(': ')[1].startswith('-0.050 [')  # ...fewer than its width.


def test_claim_3_says_how_many_comparisons_it_counts():
  crl = table({'crl_big_softmoe': 0.9, 'crl_big_topk': 0.2})
  verdict = verdicts(groups_of(crl))['3']
  assert verdict == 'supported (1 of 4 placement x setting comparisons have both routers at 5 seeds)'


def test_conclusions_warn_when_the_tables_hold_other_runs():
  text = '<!-- written for 12 runs -->\n## What the runs say\n\nBig wins.\n'
  assert study_report.conclusions_lines(text, 12) == ['## What the runs say\n\nBig wins.', '']
  stale = study_report.conclusions_lines(text, 14)
  assert 'written for 12 runs' in stale[0] and 'now hold 14' in stale[0]
  assert stale[2] == '## What the runs say\n\nBig wins.'
  assert 'does not say how many runs' in study_report.conclusions_lines('Big wins.', 3)[0]


def test_first_stretches_of_the_crl_baselines_are_checked_like_single_task_runs():
  crl = table({'crl_baseline': 0.64, 'crl_baseline__replay_at_task_switch-clear': 0.64,
               'crl_big_softmoe': 0.9})
  runs = study_report.run_table(crl, {})
  lines = study_report.first_stretch_lines(runs, crl)
  # CartPole ramps to 0.5, 0.75, 1.0 of the level over the last 3 iterations of
  # its stretch: 0.75 x (0.64 + 0.02 seed) >= 0.5 from seed 2 on.
  ends = runs[runs['variant'] == 'crl_baseline']['end/CartPole']
  assert lines[2:] == [f'| crl_baseline | CartPole | 5 | {study_report.cell(ends)} | 3 of 5 |']
  assert study_report.first_stretch_lines(runs[runs['variant'] == 'crl_big_softmoe'], crl) == []
