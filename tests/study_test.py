"""The study driver: its plan, what it skips, its time estimate, and a real
(tiny) piece of it run twice."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from moe_dopamine import results
from moe_dopamine import study
from tests import runs as test_runs


def test_the_plan_has_every_part_five_seeds_each_and_no_run_twice(tmp_path):
  planned = study.plan(list(study.STUDY_PARTS), study.DEFAULT_SEEDS, str(tmp_path))
  counts = {part: len(runs) for part, runs in planned.items()}
  assert counts['protocol'] == 2 * 5
  assert counts['crl_headline'] == 3 * 5 and counts['crl_controls'] == 2 * 5
  assert counts['mtrl_headline'] == 5 * 5
  assert counts['crl_placements'] == counts['mtrl_placements'] == 6 * 5
  keys = [study.run_key(r) for runs in planned.values() for r in runs]
  assert len(keys) == len(set(keys))
  assert 'crl_big_softmoe__replay_at_task_switch-clear/seed_4' in keys
  assert "crl_baseline__task_names-MountainCarCartPole/seed_0" in keys
  # Every gin file of the plan exists.
  for runs in planned.values():
    for run in runs:
      assert all(os.path.isfile(f) for f in run.gin_files), run.gin_files


def test_an_unknown_part_is_named_with_the_parts():
  with pytest.raises(ValueError, match=r"unknown part 'crl_headlines'.*did you mean 'crl_headline'"):
    study.parse_parts('protocol,crl_headlines')


def measured_table():
  """A scores table of two measured baseline runs and one Big run."""
  rows = []
  for run, variant, rate in (('crl_baseline/seed_0', 'crl_baseline', 1000.0),
                             ('crl_baseline/seed_1', 'crl_baseline', 500.0),
                             ('crl_big_softmoe/seed_0', 'crl_big_softmoe', 100.0)):
    for iteration in range(4):
      for task in ('CartPole', 'MountainCar'):
        rows.append(dict(run=run, variant=variant, iteration=iteration, task=task,
                         train_steps_per_second=rate, eval_seconds=0.5))
  return pd.DataFrame(rows)


def test_times_come_from_the_variant_then_its_architecture_then_all_runs(tmp_path):
  measured = study.measured_seconds(measured_table())
  # 4 iterations x (1000 steps / rate + 0.5 s of evaluation).
  assert measured['crl_baseline'] == pytest.approx(((4 * 1.5) + (4 * 2.5)) / 2)
  assert measured['crl_big_softmoe'] == pytest.approx(4 * 10.5)
  planned = study.plan(['crl_headline', 'crl_controls', 'mtrl_headline'], [0], str(tmp_path))
  by_point = {r.point: e for runs in planned.values() for r, e in
              zip(runs, study.estimate_seconds(runs, measured))}
  assert by_point['crl_baseline'] == measured['crl_baseline']
  assert by_point['mtrl_big_softmoe'] == measured['crl_big_softmoe']  # Same architecture.
  assert by_point['crl_big_topk'] == pytest.approx(sum(measured.values()) / 2)
  done = {'crl_baseline/seed_0'}
  lines = study.describe(planned, done, measured, workers=2)
  assert lines[0].startswith('  crl_headline: 3 runs, 1 done, 2 to run')
  assert lines[-1].startswith('total: 9 runs to run; expected wall time')


def cost_table(path, ratios):
  lines = ['| variant | n | parameters | active | acting MFLOP | training-step GFLOP | train ms '
           '| x baseline | act ms | x baseline | RSS MiB |', '|' + '---|' * 11]
  for name, n, ratio in ratios:
    lines.append(f'| cartpole_{name} | {n} | 1 | 1 | 1.00 | 1.000 | {4 * ratio:.2f} | '
                 f'{ratio:.2f} | 0.1 | 9.00 | 1000 |')
  lines += ['', '## MinAtar', '', '| variant | n | parameters |', '|---|---|---|',
            '| minatar_breakout_all_softmoe | 4 | 5 |']
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def test_the_cost_table_scales_the_baseline_for_architectures_not_run_yet(tmp_path):
  path = cost_table(tmp_path / 'cost.md', [('baseline', '-', 1.0), ('big_softmoe', 4, 4.0),
                                           ('big_topk', 4, 2.0), ('big_topk', 8, 3.0),
                                           ('all_softmoe', 8, 30.0)])
  ratios = study.cost_ratios(path)
  # The n = 4 rows (and the baseline's), the act-time column not the train one.
  assert ratios == {'baseline': 1.0, 'big_softmoe': 4.0, 'big_topk': 2.0}
  assert study.cost_ratios(str(tmp_path / 'missing.md')) == {}
  measured = study.measured_seconds(measured_table())  # baseline 8 s, Big SoftMoE 42 s.
  planned = study.plan(['crl_headline', 'mtrl_headline', 'crl_placements'], [0], str(tmp_path))
  runs = [r for part in planned.values() for r in part]
  by_point = dict(zip([r.point for r in runs], study.estimate_seconds(runs, measured, ratios)))
  # Big SoftMoE took 42 s where its ratio predicts 8 x 4 = 32: the scale is 42 / 32.
  assert by_point['crl_big_topk'] == pytest.approx(8 * 2 * 42 / 32)
  assert by_point['mtrl_big_topk'] == pytest.approx(25.0)  # No MTRL baseline: the mean.
  assert by_point['crl_all_softmoe'] == pytest.approx(25.0)  # Not in the table at n = 4.
  lines = study.describe(planned, set(), measured, 2, ratios)
  assert '1 run(s) of architectures not run yet are scaled' in lines[-1]


def test_with_nothing_measured_the_time_is_said_to_be_unknown(tmp_path):
  planned = study.plan(['protocol'], [0], str(tmp_path))
  assert 'known once the first runs have finished' in study.describe(planned, set(), {}, 2)[-1]


@pytest.mark.slow
def test_a_study_piece_adds_its_runs_and_a_relaunch_runs_nothing(tmp_path):
  results_dir, runs_dir = str(tmp_path / 'results'), str(tmp_path / 'runs')
  command = [sys.executable, '-m', 'moe_dopamine.study', 'run', '--parts=protocol',
             '--seeds=0', f'--results={results_dir}', f'--runs_dir={runs_dir}', '--workers=2']
  command += [f'--gin_bindings={b}' for b in test_runs.tiny()] + [
      '--gin_bindings=ITERATIONS_PER_TASK=2']
  first = subprocess.run(command, cwd=test_runs.REPO, capture_output=True, text=True,
                         timeout=600)
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
  assert 'protocol: 2 runs, 0 done, 2 to run' in first.stdout
  scores, _ = results.read(results_dir)
  assert set(scores['run']) == {'reference_cartpole/seed_0', 'reference_mountaincar/seed_0'}
  assert scores.groupby('run')['iteration'].nunique().tolist() == [2, 2]
  # The run folders are gone (another machine): the tables alone say it is done.
  subprocess.run(['rm', '-rf', runs_dir], check=True)
  second = subprocess.run(command, cwd=test_runs.REPO, capture_output=True, text=True,
                          timeout=600)
  assert second.returncode == 0, second.stderr[-2000:]
  assert 'protocol: 2 runs, 2 done, 0 to run' in second.stdout
  assert 'nothing to run' in second.stdout
  assert not os.path.exists(runs_dir)
