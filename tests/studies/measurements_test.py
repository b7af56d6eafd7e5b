"""Per-run measurements from the results tables, against hand-worked values."""

import numpy as np
import pandas as pd
import pytest

from moe_dopamine import results
from moe_dopamine.studies import measurements
from tests.studies import synthetic

REFERENCES = {'CartPole': 'reference_cartpole', 'MountainCar': 'reference_mountaincar'}


def test_p_f_and_ft_of_a_run_are_the_hand_worked_ones():
  scores = synthetic.table({'crl_a': 0.8}, seeds=[0], noise=0.0)
  runs = measurements.per_run(scores, None, REFERENCES, window=5)
  row = runs[runs['run'] == 'crl_a/seed_0'].iloc[0]
  # CartPole ends at 0.4 (half of 0.8); MountainCar's last 5 evaluations
  # ramp 0.8 x 4/8 .. 8/8 (mean 0.6): P = 0.5.
  assert row['P'] == pytest.approx(0.5)
  assert row['score:MountainCar'] == pytest.approx(0.6)
  assert row['score:CartPole'] == pytest.approx(0.4)
  # F: the last 5 of CartPole's stretch (0.8 x 4/8 .. 8/8 ramp) against 0.4.
  end = np.mean([0.8 * i / 8 for i in range(4, 9)])
  assert row['F:CartPole'] == pytest.approx(end - 0.4)
  # FT against the reference runs' mean AUC (0.5 x mean(1..8)/8).
  auc_ref = 0.5 * np.mean(np.arange(1, 9)) / 8
  auc = np.mean([0.8 * i / 8 for i in range(1, 9)])  # MountainCar's stretch.
  assert row['FT:MountainCar'] == pytest.approx((auc - auc_ref) / (1 - auc_ref))


def test_a_window_of_one_and_of_five_differ_where_the_end_is_noisy():
  scores = synthetic.table({'crl_a': 0.8}, seeds=[0], noise=0.0)
  last = scores['iteration'] == scores['iteration'].max()
  scores.loc[last & (scores['task'] == 'CartPole'), 'eval_score'] = 1.0
  one = measurements.per_run(scores, None, REFERENCES, window=1)
  five = measurements.per_run(scores, None, REFERENCES, window=5)
  assert one.loc[one['run'] == 'crl_a/seed_0', 'score:CartPole'].item() == pytest.approx(1.0)
  assert five.loc[five['run'] == 'crl_a/seed_0', 'score:CartPole'].item() == pytest.approx(
      (4 * 0.4 + 1.0) / 5)


def test_dormant_counts_only_runs_logged_with_the_corrected_definition():
  # Fails if old pooled fractions (which scored linear MoE outputs) are used.
  scores = synthetic.table({'crl_a': 0.5, 'crl_b': 0.5}, seeds=[0, 1], noise=0.0)
  dormant = pd.DataFrame([dict(run='crl_a/seed_1', variant='crl_a', seed=1, setting='crl',
                               iteration=3, layer='hidden_0', units=512,
                               **{'dormant_tau0.025': 0.1, 'dormant_tau0.1': 0.2})],
                         columns=results.DORMANT_COLUMNS)
  runs = measurements.per_run(scores, dormant, REFERENCES, 5, dormant_valid=('crl_b',))
  by_run = runs.set_index('run')['dormant']
  assert np.isnan(by_run['crl_a/seed_0'])  # No per-layer rows, not declared valid.
  assert by_run['crl_a/seed_1'] == pytest.approx(0.2)
  assert by_run['crl_b/seed_0'] == pytest.approx(0.2)


def test_values_can_be_restricted_to_seeds():
  scores = synthetic.table({'crl_a': 0.5}, seeds=range(4), noise=0.1)
  runs = measurements.per_run(scores, None, REFERENCES, 5)
  assert len(measurements.values(runs, 'crl_a', 'P')) == 4
  assert len(measurements.values(runs, 'crl_a', 'P', seeds=[2, 3])) == 2
  assert len(measurements.values(runs, 'crl_a', 'FT:Acrobot')) == 0


def test_specialization_is_computed_per_run_before_averaging():
  # Two seeds, each routing one task per expert but with swapped labels: the
  # average usage would look unspecialized; per run it is 1.
  rows = []
  for seed, order in ((0, (0, 1)), (1, (1, 0))):
    for t, task in enumerate(synthetic.TASKS):
      for expert in range(2):
        rows.append(dict(run=f'crl_big/seed_{seed}', variant='crl_big', seed=seed,
                         setting='crl', iteration=9, task=task, layer='big', expert=expert,
                         usage=0.5, top1=float(expert == order[t])))
  table = measurements.specialization_table(pd.DataFrame(rows))
  assert table['specialization'].tolist() == pytest.approx([1.0, 1.0])
  assert table['busiest_share'].tolist() == pytest.approx([0.5, 0.5])


def test_specialization_is_measured_where_the_batch_held_the_most_tasks():
  # A CRL run whose replayed batch holds only its last task at the end: the
  # last measurement of both tasks (iteration 8) decides, not iteration 9
  # (one task: NMI undefined, busiest share 1 for any routing).
  rows = []
  for iteration, tasks in ((7, synthetic.TASKS), (8, synthetic.TASKS), (9, synthetic.TASKS[1:])):
    for t, task in enumerate(tasks):
      for expert in range(2):
        top1 = float(expert == t) if iteration == 8 else 0.5
        rows.append(dict(run='crl_big/seed_0', variant='crl_big', seed=0, setting='crl',
                         iteration=iteration, task=task, layer='big', expert=expert,
                         usage=0.5, top1=top1))
  table = measurements.specialization_table(pd.DataFrame(rows))
  assert table['iteration'].tolist() == [8]
  assert table['tasks'].tolist() == [', '.join(sorted(synthetic.TASKS))]
  assert table['specialization'].tolist() == pytest.approx([1.0])
  assert table['busiest_share'].tolist() == pytest.approx([0.5])


def test_a_variant_can_take_forward_transfer_against_its_own_architecture():
  # Fails if per-architecture references are ignored (FT against the dense one).
  scores = synthetic.table({'crl_a': 0.8, 'crl_b': 0.8}, seeds=[0], noise=0.0)
  own = scores[scores['variant'] == 'reference_mountaincar'].copy()
  own['variant'] = 'reference_mountaincar_a'
  own['run'] = own['run'].str.replace('reference_mountaincar', 'reference_mountaincar_a')
  own['eval_score'] = 0.0
  scores = pd.concat([scores, own])
  runs = measurements.per_run(
      scores, None, REFERENCES, 5,
      variant_references={'crl_a': {'MountainCar': 'reference_mountaincar_a'}})
  by_variant = runs.set_index('variant')
  auc = np.mean([0.8 * i / 8 for i in range(1, 9)])
  assert by_variant.loc['crl_a', 'FT:MountainCar'] == pytest.approx(auc)  # AUC_ref = 0.
  assert by_variant.loc['crl_b', 'FT:MountainCar'] < by_variant.loc['crl_a', 'FT:MountainCar']
  assert 'FT:CartPole' not in by_variant.columns or np.isnan(by_variant.loc['crl_a', 'FT:CartPole'])


def test_renormalizing_by_the_reference_runs_makes_their_final_return_one():
  rows = []
  for seed, final in ((0, 8.0), (1, 12.0)):  # Reference final returns average 10.
    for iteration, value in enumerate([2.0, 4.0, final, final]):
      rows.append(dict(run=f'ref/seed_{seed}', variant='ref', seed=seed, iteration=iteration,
                       task='Breakout', eval_return=value, eval_score=0.123))
  for iteration, value in enumerate([2.0, 6.0, 14.0, 0.0]):
    rows.append(dict(run='crl/seed_0', variant='crl', seed=0, iteration=iteration,
                     task='Breakout', eval_return=value, eval_score=0.123))
    rows.append(dict(run='crl/seed_0', variant='crl', seed=0, iteration=iteration,
                     task='Asterix', eval_return=value, eval_score=0.5))
  table = pd.DataFrame(rows)
  assert measurements.reference_returns(table, {'Breakout': 'ref'}, 2) == {'Breakout': 10.0}
  out = measurements.renormalized(table, {'Breakout': 'ref'}, 2, {'Breakout': 2.0})
  run = out[(out['run'] == 'crl/seed_0') & (out['task'] == 'Breakout')]
  # (R - 2) / (10 - 2), clipped to [0, 1].
  assert run['eval_score'].tolist() == [0.0, 0.5, 1.0, 0.0]
  # A task without reference runs keeps its logged scores.
  assert (out.loc[out['task'] == 'Asterix', 'eval_score'] == 0.5).all()
  assert (table['eval_score'] != out['eval_score']).any()  # The input is not modified.
  assert (table.loc[table['task'] == 'Breakout', 'eval_score'] == 0.123).all()
