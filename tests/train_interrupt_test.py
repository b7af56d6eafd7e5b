"""Ctrl-C stops a run with one line: where, the last checkpoint, how to resume."""

import gc
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from moe_dopamine import train
from tests.run_lock_test import REPO
from tests.run_lock_test import train_command
from tests.run_lock_test import wait_for


@pytest.mark.slow
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


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_an_interrupt_lost_in_a_callback_is_raised_again():
  handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
  lost = []

  def gc_hook(phase, unused_info):
    # Python only prints what a garbage-collection hook raises (JAX has one).
    if phase == 'start' and not lost:
      lost.append(True)
      os.kill(os.getpid(), signal.SIGTERM)
      for _ in range(10000):  # The handler runs, and raises, in here.
        pass

  stop_signals = train._StopSignals()  # pylint: disable=protected-access
  stop_signals.install()
  gc.callbacks.append(gc_hook)
  try:
    gc.collect()
    assert lost
    with pytest.raises(train.Terminated):
      time.sleep(3)
  finally:
    gc.callbacks.remove(gc_hook)
    stop_signals.settle()
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
  assert stop_signals.signum == signal.SIGTERM


def test_a_full_disk_is_recognised_in_python_and_tensorflow_errors():
  import errno  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert train.disk_is_full(OSError(errno.ENOSPC, 'No space left on device'))
  tf_error = tf.errors.ResourceExhaustedError(
      None, None, '/run/checkpoints/tf_ckpt-3.data-00000-of-00001.tempstate1; '
      'No space left on device')
  assert train.disk_is_full(tf_error)
  try:
    try:
      raise tf_error
    except tf.errors.OpError as error:
      raise RuntimeError('while checkpointing') from error
  except RuntimeError as wrapped:
    assert train.disk_is_full(wrapped)
  assert not train.disk_is_full(OSError(errno.EACCES, 'Permission denied'))
  assert not train.disk_is_full(tf.errors.ResourceExhaustedError(None, None, 'OOM'))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='mounts a tmpfs')
def test_a_full_disk_stops_the_run_with_one_line_and_the_resume_command(tmp_path):
  disk = tmp_path / 'small_disk'
  disk.mkdir()
  mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', str(disk)],
                           capture_output=True)
  if mounted.returncode:
    pytest.skip('cannot mount a 10 MB tmpfs here (needs root)')
  base_dir = str(disk / 'run')
  try:
    result = subprocess.run(train_command(base_dir, 50), cwd=REPO, capture_output=True,
                            text=True, timeout=600)
  finally:
    subprocess.run(['umount', str(disk)], check=True)
  assert result.returncode == train.DISK_FULL == 3, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith('moe_dopamine.train:')]
  assert len(lines) == 1
  assert lines[0].startswith(f'moe_dopamine.train: error: the disk is full: writing in '
                             f'{base_dir} failed (')
  assert 'MiB free; a checkpoint of this run takes ' in lines[0]
  assert 'and 4 are kept; last checkpoint: iteration ' in lines[0]
  resume = lines[0].split('then resume with: ', 1)[1]
  assert shlex.split(resume)[:4] == [sys.executable, '-m', 'moe_dopamine.train',
                                     f'--base_dir={base_dir}']


def test_an_interrupt_another_error_swallowed_still_stops_with_the_resume_line(tmp_path):
  # The signal lands in code that turns it into another error, as a C
  # extension does ('returned a result with an exception set').
  script = f'''
import os, signal
from absl import app
from moe_dopamine import train

def run(*unused_args, **unused_kwargs):
  os.makedirs({str(tmp_path / 'run')!r})
  try:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10 ** 6):
      pass
  except KeyboardInterrupt:
    raise SystemError('<built-in method> returned a result with an exception set')

train.run = run
app.run(train.main, flags_parser=train.parse_flags)
'''
  result = subprocess.run(
      [sys.executable, '-c', script, f'--base_dir={tmp_path / "run"}',
       '--gin_files=gin_configs/cartpole_baseline.gin'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith('moe_dopamine.train:')]
  assert len(lines) == 1
  assert lines[0].startswith('moe_dopamine.train: interrupted at iteration 0, before the '
                             'first checkpoint. Start again with: ')
