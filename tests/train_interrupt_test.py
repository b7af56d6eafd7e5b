"""Ctrl-C stops a run with one line: where, the last checkpoint, how to resume."""

import os
import shlex
import signal
import subprocess
import sys

from tests.run_lock_test import REPO
from tests.run_lock_test import train_command
from tests.run_lock_test import wait_for


def test_ctrl_c_prints_one_line_with_the_checkpoint_and_the_resume_command(tmp_path):
  base_dir = str(tmp_path / 'run')
  command = train_command(base_dir, 1000)
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  sentinel = os.path.join(base_dir, 'checkpoints', 'sentinel_checkpoint_complete.0')
  try:
    wait_for(lambda: os.path.exists(sentinel), what='the first checkpoint')
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
  finally:
    process.kill()
  assert process.returncode == 130
  assert 'Traceback' not in stderr
  lines = [line for line in stderr.splitlines() if line.startswith('moe_dopamine.train:')]
  assert len(lines) == 1
  last = max(int(f.rsplit('.', 1)[1]) for f in os.listdir(os.path.dirname(sentinel))
             if f.startswith('sentinel_checkpoint_complete.'))
  checkpoint = os.path.join(base_dir, 'checkpoints', f'ckpt.{last}')
  assert lines[0].startswith(
      f'moe_dopamine.train: interrupted at iteration {last + 1}; last checkpoint: '
      f'iteration {last} ({checkpoint}). Resume with: '
  )
  resume = lines[0].split('Resume with: ', 1)[1]
  expected = [sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={base_dir}',
              f"--gin_files={os.path.join(REPO, 'gin_configs', 'cartpole_baseline.gin')}"]
  expected += [arg for arg in command if arg.startswith('--gin_bindings=')]
  assert shlex.split(resume) == expected
