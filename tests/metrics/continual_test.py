"""Continual metrics on hand-made curves with answers worked out by hand."""

import json
import math
import os
import pickle
import re

import numpy as np
import pytest

from moe_dopamine import continual_metrics
from moe_dopamine.metrics import continual

# Two tasks, 3 iterations each: A is learned then partly forgotten; B is
# learned in its stretch.
TRAIN = ['A', 'A', 'A', 'B', 'B', 'B']
TASK_NAMES = ['A', 'B']
SCORES = {
    'A': np.array([0.2, 0.6, 1.0, 0.8, 0.6, 0.4]),
    'B': np.array([0.0, 0.0, 0.1, 0.3, 0.6, 0.9]),
}


def test_normalized_score_is_clipped_affine():
  assert continual.normalized_score(50, 0, 100) == 0.5
  assert continual.normalized_score(-150, -200, -100) == 0.5
  assert continual.normalized_score(300, 0, 100) == 1.0
  assert continual.normalized_score(-1, 0, 100) == 0.0


def test_stretches_find_every_run_of_a_task():
  assert continual.stretches(['A', 'A', 'B', 'A', 'B'], 'A') == [(0, 2), (3, 4)]
  assert continual.stretches(['mixed'] * 3, 'A') == []


def test_average_performance():
  assert continual.average_performance(SCORES) == pytest.approx((0.4 + 0.9) / 2)
  # Last two evaluations: A (0.6 + 0.4) / 2 = 0.5, B (0.6 + 0.9) / 2 = 0.75.
  assert continual.average_performance(SCORES, last=2) == pytest.approx(0.625)


def test_forgetting_is_the_drop_since_the_end_of_training():
  forgetting = continual.forgetting(SCORES, TRAIN)
  assert forgetting['A'] == pytest.approx(1.0 - 0.4)
  assert forgetting['B'] == pytest.approx(0.0)


def test_end_of_training_is_the_last_evaluations_of_the_last_stretch():
  assert continual.end_of_training(SCORES['A'], TRAIN, 'A', last=2) == (
      pytest.approx(0.8), 2)
  assert continual.end_of_training(SCORES['B'], TRAIN, 'B', last=5) == (
      pytest.approx(0.6), 3)
  assert continual.end_of_training(SCORES['A'], [None] * 6, 'A') is None
  metrics = continual.run_metrics(SCORES, TRAIN, last=2)
  assert metrics['end/A'] == pytest.approx(0.8)
  assert metrics['end/A'] - metrics['p/A'] == pytest.approx(metrics['F/A'])


def test_forgetting_of_the_last_trained_task_is_zero_with_last_three():
  # B still improves at the end (0.3, 0.6, 0.9): comparing its last
  # evaluation with the mean of the last three would call that forgetting.
  forgetting = continual.forgetting(SCORES, TRAIN, last=3)
  assert forgetting['B'] == 0.0
  # A: mean of its stretch's last three (0.2, 0.6, 1.0) vs the run's (0.8, 0.6, 0.4).
  assert forgetting['A'] == pytest.approx(0.6 - 0.6)


def test_forgetting_windows_shrink_to_a_short_stretch():
  train = ['A', 'B', 'B', 'B']
  scores = {'A': np.array([0.9, 0.5, 0.4, 0.3]), 'B': np.array([0.0, 0.2, 0.4, 0.6])}
  # A's stretch has one evaluation: both sides average one.
  assert continual.forgetting(scores, train, last=3) == pytest.approx({'A': 0.6, 'B': 0.0})


def test_forgetting_uses_the_last_stretch_when_tasks_cycle():
  train = ['A', 'B', 'A', 'B']
  scores = {'A': np.array([0.5, 0.2, 0.9, 0.3]), 'B': np.array([0, 0.5, 0.4, 0.8])}
  forgetting = continual.forgetting(scores, train)
  assert forgetting == pytest.approx({'A': 0.9 - 0.3, 'B': 0.0})


def test_forward_transfer_against_a_reference_run():
  reference = {'B': np.array([0.0, 0.2, 0.4, 0.9])}
  # AUC_B = mean(0.3, 0.6, 0.9) = 0.6; AUC_ref over 3 = mean(0, 0.2, 0.4) = 0.2.
  transfer = continual.forward_transfer(SCORES, TRAIN, reference)
  assert transfer['B'] == pytest.approx((0.6 - 0.2) / (1 - 0.2))
  assert math.isnan(
      continual.forward_transfer(SCORES, TRAIN, {'B': np.ones(3)})['B']
  )
  with pytest.raises(ValueError, match='fewer than its stretch of 3'):
    continual.forward_transfer(SCORES, TRAIN, {'B': np.ones(2)})


def test_fewer_than_five_seeds_give_a_range_not_a_confidence_interval():
  two = continual.over_seeds([0.2, 0.6])
  assert two == {'mean': pytest.approx(0.4), 'low': 0.2, 'high': 0.6, 'n': 2, 'kind': 'range'}
  assert continual.format_over_seeds(two, 2) == '0.40 [0.20, 0.60] (range, n=2)'
  five = continual.over_seeds([0.1, 0.2, 0.3, 0.4, 0.5])
  assert five['kind'] == '95% CI' and five['n'] == 5
  assert 0.1 <= five['low'] < 0.3 < five['high'] <= 0.5
  assert (five['low'], five['high']) != (0.1, 0.5)


def test_bootstrap_interval_brackets_the_mean_and_shrinks_to_a_point():
  mean, low, high = continual.bootstrap_ci([1.0, 2.0, 3.0, 4.0])
  assert mean == 2.5 and 1.0 <= low < 2.5 < high <= 4.0
  assert continual.bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7, 0.7))


def write_run(path, train_tasks, scores, seed):
  os.makedirs(path / 'logs')
  data = {
      f'iteration_{i}': {
          'train_task': [TASK_NAMES.index(task)],
          **{f'eval_normalized_score_{t}': [float(c[i])] for t, c in scores.items()},
      }
      for i, task in enumerate(train_tasks)
  }
  with open(path / 'logs' / f'log_{len(train_tasks) - 1}', 'wb') as f:
    pickle.dump(data, f)
  with open(path / 'run_info.json', 'w') as f:
    json.dump({'gin_files': ['/x/crl_big_softmoe.gin'], 'task_names': TASK_NAMES,
               'gin_bindings': [f'MoERunner.seed={seed}']}, f)


def test_command_prints_runs_and_seed_intervals(tmp_path, capsys):
  write_run(tmp_path / 's0', TRAIN, SCORES, 0)
  write_run(tmp_path / 's1', TRAIN, {k: v * 0.5 for k, v in SCORES.items()}, 1)
  assert continual_metrics.main([str(tmp_path / 's0'), str(tmp_path / 's1'), '--last', '1']) == 0
  out = capsys.readouterr().out
  assert 'P=+0.650' in out and 'F/A=+0.600' in out
  # Both seeds form one variant: P = mean(0.65, 0.325) = 0.4875, and two
  # seeds give a range, not a confidence interval.
  assert re.search(r'\| crl_big_softmoe \| P \| 0\.48[78] \[0\.325, 0\.650\] \(range, n=2\) \|', out)


def test_forward_transfer_from_a_reference_run(tmp_path, capsys):
  write_run(tmp_path / 's0', TRAIN, SCORES, 0)
  os.makedirs(tmp_path / 'ref' / 'logs')
  with open(tmp_path / 'ref' / 'logs' / 'log_2', 'wb') as f:
    pickle.dump({f'iteration_{i}': {'train_task': [0], 'eval_normalized_score_B': [v]}
                 for i, v in enumerate([0.0, 0.2, 0.4])}, f)
  with open(tmp_path / 'ref' / 'run_info.json', 'w') as f:
    json.dump({'gin_files': ['/x/reference_b.gin'], 'gin_bindings': [], 'task_names': ['B']}, f)
  assert continual_metrics.main([str(tmp_path / 's0'), '--reference', f'B={tmp_path / "ref"}',
                                 '--last', '1']) == 0
  # AUC_B = 0.6, AUC_ref = 0.2: FT = 0.4 / 0.8.
  assert 'FT/B=+0.500' in capsys.readouterr().out


def test_command_refuses_logs_linked_from_outside_the_run(tmp_path, capsys):
  write_run(tmp_path / 'elsewhere', TRAIN, SCORES, 0)
  os.makedirs(tmp_path / 'run')
  os.symlink(tmp_path / 'elsewhere' / 'logs', tmp_path / 'run' / 'logs')
  assert continual_metrics.main([str(tmp_path / 'run')]) == 2
  assert 'outside the run folder' in capsys.readouterr().err


def test_command_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
  assert continual_metrics.main([str(tmp_path)]) == 2
  assert 'has no logs/ folder' in capsys.readouterr().err


def test_transfer_intervals_resample_the_reference_runs_too():
  # Fails if the reference is treated as fixed: spread in the reference runs
  # must widen the interval, and identical references must not.
  aucs = [0.40, 0.45, 0.50, 0.55, 0.60]
  fixed = continual.transfer_over_seeds(aucs, [0.3] * 5)
  spread = continual.transfer_over_seeds(aucs, [0.1, 0.2, 0.3, 0.4, 0.5])
  assert fixed[0] == pytest.approx(np.mean([(a - 0.3) / 0.7 for a in aucs]))
  assert spread[0] == pytest.approx(fixed[0])  # Same mean reference.
  assert spread[2] - spread[1] > 1.5 * (fixed[2] - fixed[1])
  # The point value is the mean FT against the references' mean AUC.
  assert continual.transfer(0.65, 0.3) == pytest.approx(0.5)
  assert np.isnan(continual.transfer(0.65, 1.0))


def test_the_default_final_window_is_continual_worlds_five():
  curve = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
  assert continual.run_metrics({'A': curve}, ['A'] * 10)['P'] == pytest.approx(1.0)
  assert continual.run_metrics({'A': curve}, ['A'] * 10, last=6)['P'] == pytest.approx(5 / 6)
