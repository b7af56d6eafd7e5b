"""Sweeps: local processes and local Ray, skipping finished runs, failures."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from moe_dopamine import run_folder
from moe_dopamine import sweep
from tests import runs

REPO, CARTPOLE = runs.REPO, runs.CARTPOLE
TOPK = runs.gin_path('cartpole_middle_topk.gin')
TINY = runs.as_flags(runs.tiny(60, evaluation_steps=30, **{'Runner.num_iterations': 1}))


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, capsys):
  # A run that fails as it starts: a file where its checkpoints folder goes.
  broken = tmp_path / 'cartpole_middle_topk__k-2' / 'seed_0'
  broken.mkdir(parents=True)
  (broken / 'checkpoints').write_text('not a folder')
  args = ['--out', str(tmp_path), f'--gin_files={TOPK}', '--seeds=0',
          '--grid=MoE.k=1;2'] + TINY + ['--workers=1']
  assert sweep.main(args) == 1
  out = capsys.readouterr().out
  assert '1 run(s) failed' in out
  assert (tmp_path / 'cartpole_middle_topk__k-1' / 'seed_0' / run_folder.FINISHED).exists()
  assert str(broken) in out


@pytest.mark.slow
def test_a_value_that_fails_as_the_network_is_built_is_refused_before_any_launch(
    tmp_path, capsys):
  # k=9 > num_experts parses; only building the network refuses it. The
  # pre-launch check builds every grid point, so k=1 is not launched either.
  args = ['--out', str(tmp_path / 'sweep'), f'--gin_files={TOPK}', '--seeds=0',
          '--grid=MoE.k=1;9'] + TINY + ['--workers=1']
  assert sweep.main(args) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ['moe_dopamine.sweep: error: grid point cartpole_middle_topk__k-9: '
                 'MoE.k=9 is out of range: k must be in [1, num_experts=4]. Fix: bind '
                 'MoE.k to at most 4, or raise the number of experts.']
  assert not (tmp_path / 'sweep').exists()


@pytest.mark.slow
def test_a_binding_a_grid_point_does_not_use_is_refused_unless_allowed(tmp_path, capsys):
  args = ['--out', str(tmp_path / 'sweep'), f'--gin_files={CARTPOLE}', '--seeds=0',
          '--grid=MoE.k=2'] + TINY
  assert sweep.main(args) == 2
  err = capsys.readouterr().err
  assert 'grid point cartpole_baseline__k-2: MoE.k=2: this run never builds MoE' in err
  assert not (tmp_path / 'sweep').exists()
  assert sweep.main(args + ['--allow_unused_bindings']) == 0
  info = json.loads((tmp_path / 'sweep' / 'cartpole_baseline__k-2' / 'seed_0' /
                     run_folder.RUN_INFO).read_text())
  assert info['unused_bindings'] == ['MoE.k=2: this run never builds MoE']


@pytest.mark.slow
def test_bad_grid_points_are_named_up_front_and_nothing_is_launched(tmp_path, capsys):
  out = tmp_path / 'sweep'
  args = ['--out', str(out), f'--gin_files={CARTPOLE}', '--seeds=0,1',
          '--grid=DQNAgent.gama=0.9;0.99', '--gin_bindings=MoE.k=2'] + TINY
  assert sweep.main(args) == 2
  errors = capsys.readouterr().err.strip().splitlines()
  assert len(errors) == 2  # One line per bad grid point, not per seed.
  for line, value in zip(errors, ('0.9', '0.99')):
    assert line.startswith(
        f"moe_dopamine.sweep: error: grid point cartpole_baseline__gama-{value}: "
        "'DQNAgent' has no parameter 'gama'. Did you mean 'gamma'?"
    )
  assert not out.exists()


@pytest.mark.parametrize(
    'argument,expected',
    [
        ('--seeds=-1', "--seeds=-1: '-1' is not a seed; seeds are non-negative integers"),
        ('--seeds=0,x', "'x' is not a seed"),
        ('--seeds=1,1', 'seed 1 is given twice'),
        ('--workers=0', '--workers=0: at least 1 run'),
    ],
)
def test_bad_sweep_arguments_fail_before_anything_runs(tmp_path, capsys, argument, expected):
  args = ['--out', str(tmp_path / 'sweep'), f'--gin_files={CARTPOLE}'] + TINY + [argument]
  assert sweep.main(args) == 2
  assert expected in capsys.readouterr().err
  assert not (tmp_path / 'sweep').exists()


def _processes():
  """{pid: (parent pid, command line)} of every process, from /proc."""
  table = {}
  for entry in os.listdir('/proc'):
    if not entry.isdigit():
      continue
    try:
      with open(f'/proc/{entry}/stat') as f:
        parent = int(f.read().rsplit(')', 1)[1].split()[1])
      with open(f'/proc/{entry}/cmdline', 'rb') as f:
        command = f.read().replace(b'\0', b' ').decode(errors='replace')
    except (OSError, IndexError, ValueError):
      continue
    table[int(entry)] = (parent, command)
  return table


def _alive(pid):
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
@pytest.mark.slow
def test_sigterm_stops_the_running_child_and_launches_nothing_more(tmp_path):
  out = tmp_path / 'sweep'
  args = ['--out', str(out), f'--gin_files={CARTPOLE}', '--seeds=0,1', '--workers=1',
          '--gin_bindings=Runner.num_iterations=1000'] + TINY[1:]
  driver = subprocess.Popen([sys.executable, '-m', 'moe_dopamine.sweep'] + args,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
  first = out / 'cartpole_baseline' / 'seed_0'
  try:
    deadline = time.time() + 120
    while not run_folder.read_lock_holder(str(first)).get('pid'):  # Training.
      assert driver.poll() is None and time.time() < deadline
      time.sleep(0.1)
    children = [pid for pid, (parent, command) in _processes().items()
                if parent == driver.pid and 'moe_dopamine.train' in command]
    assert children == [run_folder.read_lock_holder(str(first))['pid']]
    driver.send_signal(signal.SIGTERM)
    stopped = time.time()
    output, _ = driver.communicate(timeout=30)
  finally:
    driver.kill()
  assert time.time() - stopped < 10
  assert driver.returncode == 143
  assert not any(_alive(pid) for pid in children)
  assert not (out / 'cartpole_baseline' / 'seed_1').exists()  # Never started.
  assert 'stopped by SIGTERM: 0 run(s) finished' in output
  assert f'  stopped:  {first}' in output
  resume = output.split('Resume with: ', 1)[1].strip()
  assert resume.endswith(shlex.join(args))
  # The child said where it stopped, in its log.
  log = (first / run_folder.TRAIN_LOG).read_text()
  assert 'moe_dopamine.train: interrupted at iteration' in log


def test_runs_share_the_cores_among_themselves():
  assert sweep.threads_per_run(workers=2, num_runs=10, cores=2) == 1
  assert sweep.threads_per_run(workers=2, num_runs=1, cores=2) == 2
  assert sweep.threads_per_run(workers=1, num_runs=4, cores=8) == 8
  run = sweep.Run(['a.gin'], [], 0, '/tmp/x', threads=2)
  assert '--gin_bindings=MoERunner.intra_op_threads=2' in run.command()


def _start_long_sweep(out):
  args = ['--out', str(out), f'--gin_files={CARTPOLE}', '--seeds=0', '--workers=1',
          '--gin_bindings=MoERunner.num_iterations=1000'] + TINY
  return subprocess.Popen([sys.executable, '-m', 'moe_dopamine.sweep'] + args,
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_training(driver, run_dir):
  deadline = time.time() + 180
  while not run_folder.read_lock_holder(str(run_dir)).get('pid'):
    assert driver.poll() is None and time.time() < deadline
    time.sleep(0.1)
  return run_folder.read_lock_holder(str(run_dir))['pid']


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='prctl is Linux')
def test_a_killed_sweep_leaves_no_training_process_behind(tmp_path):
  run_dir = tmp_path / 'sweep' / 'cartpole_baseline' / 'seed_0'
  driver = _start_long_sweep(tmp_path / 'sweep')
  try:
    child = _wait_for_training(driver, run_dir)
    driver.kill()  # SIGKILL: the driver cannot stop anything itself.
    driver.wait()
    deadline = time.time() + 30
    while _alive(child) and time.time() < deadline:
      time.sleep(0.2)
    assert not _alive(child)
  finally:
    driver.kill()
  # It stopped as on Ctrl-C or SIGTERM: with the line that resumes it.
  assert 'moe_dopamine.train: interrupted at iteration' in (
      run_dir / run_folder.TRAIN_LOG).read_text()


@pytest.mark.slow
def test_a_relaunch_names_the_live_process_that_holds_a_run(tmp_path, capsys):
  out = tmp_path / 'sweep'
  holder = run_folder.RunLock(str(out / 'cartpole_baseline' / 'seed_0'))
  holder.acquire()  # This process stands for a run of an earlier launch.
  try:
    args = ['--out', str(out), f'--gin_files={CARTPOLE}', '--seeds=0,1',
            '--workers=1'] + TINY
    assert sweep.main(args) == 1
  finally:
    holder.release()
  printed = capsys.readouterr().out
  assert 'FAILED' not in printed
  assert f'[1/2] IN USE, not started {holder.base_dir}' in printed
  assert (f'{holder.base_dir} is in use by process {os.getpid()} on host') in printed
  assert f'(or stop it: kill {os.getpid()})' in printed
  assert (out / 'cartpole_baseline' / 'seed_1' / run_folder.FINISHED).exists()
