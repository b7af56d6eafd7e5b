"""One writer per run folder; a killed writer never blocks the resume."""

import json
import os
import subprocess
import sys
import time

import pytest

from moe_dopamine import checkpoints
from moe_dopamine import run_folder
from tests import runs

REPO = runs.REPO
TINY = ['--gin_files=gin_configs/cartpole_baseline.gin'] + runs.as_flags(runs.tiny(
    50, evaluation_steps=20,
    **{'MoERunner.intra_op_threads': 1}))  # A core for the other process.


def train_command(base_dir, iterations, *extra):
  return ([sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={base_dir}']
          + TINY + [f'--gin_bindings=MoERunner.num_iterations={iterations}'] + list(extra))


def wait_for(condition, timeout=120, what='condition'):
  deadline = time.time() + timeout
  while not condition():
    if time.time() > deadline:
      raise AssertionError(f'timed out waiting for {what}')
    time.sleep(0.1)


def holder_pid(base_dir):
  return run_folder.read_lock_holder(base_dir).get('pid')


@pytest.mark.slow
def test_second_writer_exits_at_once_and_a_killed_writer_does_not_block(tmp_path):
  base_dir = str(tmp_path / 'run')
  first = subprocess.Popen(train_command(base_dir, 1000), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    wait_for(lambda: holder_pid(base_dir) == first.pid, what='the first writer')
    second = subprocess.run(train_command(base_dir, 1000, '--verbose'), cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert first.poll() is None  # The first writer goes on.
  finally:
    first.kill()  # SIGKILL: no clean-up; the stale holder record stays.
    first.wait()
  assert second.returncode == 2
  error = [line for line in second.stderr.splitlines() if 'moe_dopamine.train' in line]
  assert error == [
      f"moe_dopamine.train: error: run folder '{base_dir}' is in use by process "
      f"{first.pid} on host {os.uname().nodename} "
      f"(since {run_folder.read_lock_holder(base_dir)['since']}): one process writes a "
      f'run folder at a time. Fix: wait for it to finish, stop it (kill {first.pid}), '
      'or pass another --base_dir.'
  ]
  assert 'Traceback' not in second.stderr
  # --verbose shows what quiet mode hides.
  assert 'Gym has been unmaintained' in second.stderr

  done = checkpoints.latest_iteration(base_dir) + 1  # Iterations done.
  resumed = subprocess.run(train_command(base_dir, done + 1), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert os.path.exists(os.path.join(base_dir, run_folder.FINISHED))
  assert not os.path.exists(os.path.join(base_dir, run_folder.LOCK_HOLDER))
  # Quiet by default: Dopamine's per-iteration summary, not the set-up noise.
  output = (resumed.stdout + resumed.stderr).replace('\r', '\n')
  assert f'[Iteration {done}]: Train/NumEpisodes' in output
  for noise in ('Steps executed', 'Gym has been unmaintained', 'DeprecationWarning',
                'cuInit', 'absl::InitializeLog', 'dqn_agent.py'):
    assert noise not in output
  assert len(output.splitlines()) < 30


def test_lock_is_exclusive_within_a_process_and_released_on_exit(tmp_path):
  base_dir = str(tmp_path / 'run')
  with run_folder.RunLock(base_dir):
    holder = json.load(open(os.path.join(base_dir, run_folder.LOCK_HOLDER)))
    assert holder['pid'] == os.getpid()
    with pytest.raises(run_folder.FolderInUse, match=f'in use by process {os.getpid()}'):
      run_folder.RunLock(base_dir).acquire()
  with run_folder.RunLock(base_dir):  # Free again.
    pass
