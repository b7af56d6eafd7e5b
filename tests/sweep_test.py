"""Sweeps: local processes and local Ray, skipping finished runs, failures."""

import json
import os
import subprocess
import sys

import pytest

from moe_dopamine import run_folder
from moe_dopamine import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTPOLE = os.path.join(REPO, 'gin_configs', 'cartpole_baseline.gin')
TINY = [
    '--gin_bindings=Runner.num_iterations=1',
    '--gin_bindings=Runner.training_steps=60',
    '--gin_bindings=Runner.evaluation_steps=30',
    '--gin_bindings=DQNAgent.min_replay_history=20',
    '--gin_bindings=WrappedReplayBuffer.replay_capacity=1000',
]


def test_grid_is_a_product_and_runs_get_their_own_folders(tmp_path):
  grid = sweep.parse_grid(['MoE.k=1;2', "MoE.router='topk'"])
  assert grid == [["MoE.k=1", "MoE.router='topk'"], ["MoE.k=2", "MoE.router='topk'"]]
  runs = sweep.plan([CARTPOLE], [0, 1], grid, ['Runner.num_iterations=1'], str(tmp_path))
  assert len(runs) == 4
  assert runs[0].base_dir.endswith(os.path.join('cartpole_baseline__k-1__router-topk', 'seed_0'))
  command = runs[3].command()
  assert '--gin_bindings=MoE.k=2' in command
  assert '--gin_bindings=MoERunner.seed=1' in command
  assert '--gin_bindings=MoERunner.intra_op_threads=1' in command
  with pytest.raises(ValueError, match='must be Configurable.param=value1;value2'):
    sweep.parse_grid(['MoE.k'])


def run_sweep_cli(args):
  """The sweep as a user runs it (Ray keeps its own hold on stdout)."""
  result = subprocess.run(
      [sys.executable, '-m', 'moe_dopamine.sweep'] + args,
      cwd=REPO, capture_output=True, text=True, timeout=600,
  )
  return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('mode', [[], ['--ray_address=local']], ids=['local', 'ray'])
def test_two_runs_finish_record_themselves_and_are_skipped_after(tmp_path, mode):
  args = ['--out', str(tmp_path), f'--gin_files={CARTPOLE}', '--seeds=0,1'] + TINY + mode
  code, out = run_sweep_cli(args)
  assert code == 0, out
  assert '[2/2] ok' in out and 'ETA' in out
  for seed in (0, 1):
    run_dir = tmp_path / 'cartpole_baseline' / f'seed_{seed}'
    assert (run_dir / run_folder.FINISHED).exists()
    assert (run_dir / 'logs' / 'log_0').exists()
    info = json.loads((run_dir / run_folder.RUN_INFO).read_text())
    assert info['seed'] == seed
    assert 'Runner.num_iterations=1' in info['gin_bindings']
  code, out = run_sweep_cli(args)
  assert code == 0 and '2 already finished, 0 to run' in out


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, capsys):
  args = ['--out', str(tmp_path), f'--gin_files={CARTPOLE}', '--seeds=0',
          '--grid=DQNAgent.gamma=0.9;gamma_typo'] + TINY + ['--workers=1']
  assert sweep.main(args) == 1
  out = capsys.readouterr().out
  assert '1 run(s) failed' in out
  assert (tmp_path / 'cartpole_baseline__gamma-0.9' / 'seed_0' / run_folder.FINISHED).exists()
