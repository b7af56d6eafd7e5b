"""A user's own two-variant spec, run end to end: plan, run, report, and a
relaunch that finds everything done."""

import csv
import os
import subprocess
import sys

import pytest

from moe_dopamine import results
from tests import runs as test_runs

SPEC = """
[study]
name = "mine"
title = "Two variants"
results = "{root}/results"
runs_dir = "{root}/runs"
out = "{root}/report"
seeds = [0, 1]
window = 1
sensitivity_windows = [1, 2]

[[part]]
name = "pair"
baseline = "crl_baseline"
variants = ["crl_baseline", "crl_big_topk"]

[[claim]]
id = "1"
statement = "Big TopK scores higher than the baseline."
  [[claim.comparison]]
  a = "crl_big_topk"
  b = "crl_baseline"
  metric = "P"
  direction = "greater"
"""


@pytest.mark.slow
def test_a_two_variant_spec_runs_reports_and_resumes(tmp_path):
  spec = tmp_path / 'mine.toml'
  spec.write_text(SPEC.format(root=tmp_path))
  bindings = test_runs.as_flags(test_runs.tiny() + [
      'ITERATIONS_PER_TASK=1', 'MoEDQNAgent.diagnostics_period=20',
      'MoEDQNAgent.diagnostics_batch_size=16'])
  base = [sys.executable, '-m', 'moe_dopamine.study']
  run = subprocess.run(base + ['run', f'--spec={spec}', '--workers=2'] + bindings,
                       cwd=test_runs.REPO, capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
  assert 'pair: 4 runs, 0 done, 4 to run' in run.stdout
  scores = results.read(str(tmp_path / 'results'))[0]
  assert set(scores['run']) == {'crl_baseline/seed_0', 'crl_baseline/seed_1',
                                'crl_big_topk/seed_0', 'crl_big_topk/seed_1'}
  # Every run logged the per-layer dormant table (the corrected definition).
  dormant = results.read(str(tmp_path / 'results'))[2]
  assert set(dormant['run']) == set(scores['run'])
  report = subprocess.run(base + ['report', f'--spec={spec}'], cwd=test_runs.REPO,
                          capture_output=True, text=True, timeout=600)
  assert report.returncode == 0, report.stderr[-2000:]
  text = (tmp_path / 'report' / 'README.md').read_text()
  assert 'Claim 1: Big TopK scores higher than the baseline.' in text
  with open(tmp_path / 'report' / 'verdicts.csv') as f:
    [row] = list(csv.DictReader(f))
  assert row['kind'] == 'primary' and row['n_a'] == '2' and row['n_b'] == '2'
  assert float(row['p']) >= 1 / 6  # 2 vs 2: 6 relabellings.
  assert os.listdir(tmp_path / 'report' / 'figures')
  # The run folders are gone (another machine): the tables alone say it is done.
  subprocess.run(['rm', '-rf', str(tmp_path / 'runs')], check=True)
  again = subprocess.run(base + ['run', f'--spec={spec}'] + bindings, cwd=test_runs.REPO,
                         capture_output=True, text=True, timeout=600)
  assert again.returncode == 0 and 'nothing to run' in again.stdout
  assert not os.path.exists(tmp_path / 'runs')


def test_a_bad_spec_exits_2_with_one_line(tmp_path):
  spec = tmp_path / 'bad.toml'
  spec.write_text('[study]\nname = "x"\nseeds = [0]\nwindow = 0\n')
  result = subprocess.run([sys.executable, '-m', 'moe_dopamine.study', 'plan',
                           f'--spec={spec}'], cwd=test_runs.REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f'moe_dopamine.study: error: {spec} [study]: window must be at least 1 evaluation (got 0).']
