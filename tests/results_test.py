"""The tidy results tables: rows of a run, merging, and finished runs only."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from moe_dopamine import results
from moe_dopamine.metrics import names
from moe_dopamine.metrics import run_logs

TASKS = ['CartPole', 'MountainCar']


def iteration_stats(i, train_task, usage=None, dormant=None):
  """One iteration's statistics as the runner logs them."""
  stats = {names.TRAIN_TASK: [train_task], 'train_average_steps_per_second': [500.0 + i],
           names.EVAL_SECONDS: [0.5]}
  for t, task in enumerate(TASKS):
    stats[names.eval_return(task)] = [10.0 * i + t]
    stats[names.eval_score(task)] = [min(1.0, 0.1 * i + 0.01 * t)]
    stats[names.eval_episodes(task)] = [10]
    if usage is not None:
      stats[names.expert_usage(task, 'big')] = list(usage[t])
      stats[names.expert_top1(task, 'big')] = list(usage[t][::-1])
  if dormant is not None:
    stats[names.dormant_fraction(0.025)] = [dormant]
    stats[names.dormant_fraction(0.1)] = [2 * dormant]
    stats[names.unused_experts()] = [0.25]
    stats[names.dormant_units()] = [48]
    for layer, units, scale in (('big/expert_0/hidden_0', 32, 1.0), ('big/expert_0/hidden_1', 16, 3.0)):
      stats[names.dormant_units(layer)] = [units]
      stats[names.dormant_fraction(0.025, layer)] = [scale * dormant]
      stats[names.dormant_fraction(0.1, layer)] = [2 * scale * dormant]
  return stats


def synthetic_run(run_dir, train_tasks, with_diagnostics=True, seed=3):
  usage = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]]
  iterations = [
      iteration_stats(i, t, usage if with_diagnostics and i % 2 else None,
                      0.05 * i if with_diagnostics and i % 2 else None)
      for i, t in enumerate(train_tasks)
  ]
  info = {'gin_files': ['/x/crl_big_softmoe.gin'],
          'gin_bindings': ['MoERunner.seed=3', 'MoE.k=2', 'MoERunner.intra_op_threads=1'],
          'seed': seed, 'num_parameters': 1234, 'task_names': TASKS}
  return run_logs.Run(run_dir, iterations, info)


def test_a_crl_run_gives_one_row_per_iteration_and_task():
  run = synthetic_run('/s/crl_big_softmoe/seed_3', [0, 0, 1, 1])
  scores, experts, _ = results.run_frames(run)
  assert list(scores.columns) == results.SCORE_COLUMNS
  assert len(scores) == 4 * 2
  assert set(scores['run']) == {'crl_big_softmoe/seed_3'}
  assert set(scores['setting']) == {'crl'} and set(scores['seed']) == {3}
  assert scores['bindings'].iloc[0] == 'MoE.k=2'  # Seed and threads are not the variant.
  assert scores['task_order'].iloc[0] == 'CartPole>MountainCar'
  assert list(scores.drop_duplicates('iteration')['train_task']) == [
      'CartPole', 'CartPole', 'MountainCar', 'MountainCar']
  row = scores[(scores['iteration'] == 3) & (scores['task'] == 'MountainCar')].iloc[0]
  assert row['eval_return'] == 31.0 and row['eval_score'] == pytest.approx(0.31)
  assert row['train_steps_per_second'] == 503.0
  assert row['dormant_tau0.025'] == pytest.approx(0.15)
  assert row['dormant_tau0.1'] == pytest.approx(0.3)
  assert np.isnan(scores[scores['iteration'] == 0]['dormant_tau0.025']).all()
  # Expert usage: iterations 1 and 3, 2 tasks, 4 experts.
  assert len(experts) == 2 * 2 * 4
  cell = experts[(experts['iteration'] == 3) & (experts['task'] == 'MountainCar')]
  np.testing.assert_allclose(cell.sort_values('expert')['usage'], [0.1, 0.2, 0.3, 0.4])
  np.testing.assert_allclose(cell.sort_values('expert')['top1'], [0.4, 0.3, 0.2, 0.1])


def test_mtrl_and_single_task_runs_are_named_so():
  mtrl = results.run_frames(synthetic_run('/s/mtrl_x/seed_0', [-1, -1]))[0]
  assert set(mtrl['setting']) == {'mtrl'} and set(mtrl['train_task']) == {results.MTRL_TASK}
  single = synthetic_run('/s/reference_cartpole/seed_0', [0, 0])
  single.info['task_names'] = ['CartPole']
  frame = results.run_frames(single)[0]
  assert set(frame['setting']) == {'single'} and set(frame['task']) == {'CartPole'}


def test_adding_a_run_again_replaces_its_rows_and_keeps_the_others(tmp_path):
  a = results.run_frames(synthetic_run('/s/crl_big_softmoe/seed_0', [0, 1]))
  b = results.run_frames(synthetic_run('/s/crl_big_softmoe/seed_1', [0, 1]))
  results.add(str(tmp_path), [a])
  results.add(str(tmp_path), [b])
  longer = results.run_frames(synthetic_run('/s/crl_big_softmoe/seed_0', [0, 0, 1]))
  results.add(str(tmp_path), [longer])
  scores, experts, _ = results.read(str(tmp_path))
  assert scores.groupby('run').size().to_dict() == {
      'crl_big_softmoe/seed_0': 6, 'crl_big_softmoe/seed_1': 4}
  assert results.finished_runs(str(tmp_path)) == {
      'crl_big_softmoe/seed_0', 'crl_big_softmoe/seed_1'}
  assert len(experts[experts['run'] == 'crl_big_softmoe/seed_0']) == 1 * 2 * 4


def test_the_same_rows_give_the_same_bytes(tmp_path):
  frames = results.run_frames(synthetic_run('/s/crl_big_softmoe/seed_0', [0, 1]))
  results.add(str(tmp_path / 'a'), [frames])
  results.add(str(tmp_path / 'b'), [frames])
  for name in (results.SCORES, results.EXPERTS):
    assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def write_run_folder(run_dir, run, finished=True):
  os.makedirs(os.path.join(run_dir, 'logs'))
  data = {f'iteration_{i}': stats for i, stats in enumerate(run.iterations)}
  with open(os.path.join(run_dir, 'logs', f'log_{len(run.iterations) - 1}'), 'wb') as f:
    pickle.dump(data, f)
  with open(os.path.join(run_dir, 'run_info.json'), 'w') as f:
    json.dump(run.info, f)
  if finished:
    with open(os.path.join(run_dir, 'finished.json'), 'w') as f:
      json.dump({}, f)


def test_only_finished_run_folders_are_added(tmp_path, capsys):
  sweep_dir = tmp_path / 'sweep'
  done = str(sweep_dir / 'crl_big_softmoe' / 'seed_0')
  running = str(sweep_dir / 'crl_big_softmoe' / 'seed_1')
  write_run_folder(done, synthetic_run(done, [0, 1, 1]))
  write_run_folder(running, synthetic_run(running, [0]), finished=False)
  out = str(tmp_path / 'results')
  assert results.main(['add', str(sweep_dir), '--results', out]) == 0
  assert 'added 1 finished run(s)' in capsys.readouterr().out
  scores = results.read(out)[0]
  assert set(scores['run']) == {'crl_big_softmoe/seed_0'}
  assert isinstance(scores, pd.DataFrame) and len(scores) == 3 * 2


def test_runs_can_be_added_under_another_variant_name(tmp_path):
  run_dir = str(tmp_path / 'sweep' / 'reference_mountaincar__learning_rate-0.0005' / 'seed_2')
  write_run_folder(run_dir, synthetic_run(run_dir, [0, 0]))
  out = str(tmp_path / 'results')
  assert results.main(['add', run_dir, '--results', out, '--variant', 'MountainCar lr=5e-4']) == 0
  scores = results.read(out)[0]
  assert set(scores['run']) == {'MountainCar lr=5e-4/seed_2'}
  assert set(scores['variant']) == {'MountainCar lr=5e-4'}


def test_the_dormant_table_keeps_each_layer_with_its_units(tmp_path):
  # Fails if per-layer fractions or unit counts are dropped (pooling could
  # not be recomputed) or if the layer name is cut wrongly.
  frames = results.run_frames(synthetic_run('/s/crl_big_softmoe/seed_0', [0, 0, 1, 1]))
  results.add(str(tmp_path), [frames])
  table = results.read(str(tmp_path))[2]
  assert list(table.columns) == results.DORMANT_COLUMNS
  assert set(table['layer']) == {'big/expert_0/hidden_0', 'big/expert_0/hidden_1'}
  assert sorted(table['iteration'].unique()) == [1, 3]  # Measured at odd iterations.
  row = table[(table['iteration'] == 3) & (table['layer'] == 'big/expert_0/hidden_1')].iloc[0]
  assert row['units'] == 16
  assert row['dormant_tau0.1'] == pytest.approx(2 * 3.0 * 0.05 * 3)
  # A run added again replaces its dormant rows too.
  results.add(str(tmp_path), [frames])
  assert len(results.read(str(tmp_path))[2]) == len(table)
