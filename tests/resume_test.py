"""A resumed run logs nothing twice; a restart keeps nothing of the old attempt."""

import collections
import glob
import os
import pickle
import shutil

import gin
import pytest
import tensorflow as tf

from moe_dopamine import checkpoints
from moe_dopamine import resume
from moe_dopamine import runner as runner_lib
from moe_dopamine import train
from moe_dopamine.metrics import run_logs
from tests import runs

CARTPOLE = runs.CARTPOLE
TINY = runs.tiny(50, evaluation_steps=20, **{'MoERunner.seed': 0})


def train_in_fresh_graph(base_dir, iterations):
  gin.clear_config()
  with tf.Graph().as_default():
    train.run([CARTPOLE], TINY + [f'MoERunner.num_iterations={iterations}'], base_dir)


def console_iterations(base_dir):
  """How often each iteration's Train/NumEpisodes line is in console.log."""
  path = os.path.join(base_dir, 'metrics', 'console', 'console.log')
  counts = collections.Counter()
  for line in open(path):
    if 'Train/NumEpisodes' in line:
      counts[int(line.split(']')[0].split()[-1])] += 1
  return dict(counts)


def event_steps(base_dir, tag='Train/NumEpisodes'):
  counts = collections.Counter()
  for path in glob.glob(os.path.join(base_dir, 'metrics', 'tensorboard', 'events.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          counts[event.step] += 1
  return dict(counts)


def last_pickle(base_dir):
  paths = glob.glob(os.path.join(base_dir, 'metrics', 'pickle', 'pickle_*.pkl'))
  newest = max(paths, key=lambda p: int(p.rsplit('_', 1)[1].split('.')[0]))
  with open(newest, 'rb') as f:
    return pickle.load(f)


def test_an_iteration_logged_but_not_checkpointed_is_logged_once_after_resuming(
    tmp_path, monkeypatch, capsys):
  base_dir = str(tmp_path / 'run')
  checkpoint = runner_lib.MoERunner._checkpoint_experiment

  def stopped_while_checkpointing(self, iteration):
    if iteration == 1:
      # Everything logged so far reaches the disk, as it does when a kill
      # lands in the checkpoint's write.
      self._collector_dispatcher.flush()
      raise KeyboardInterrupt()
    checkpoint(self, iteration)

  monkeypatch.setattr(runner_lib.MoERunner, '_checkpoint_experiment',
                      stopped_while_checkpointing)
  with pytest.raises(KeyboardInterrupt):
    train_in_fresh_graph(base_dir, 2)
  assert checkpoints.latest_iteration(base_dir) == 0
  assert console_iterations(base_dir) == {0: 1, 1: 1}  # Iteration 1 was logged.
  assert os.path.exists(os.path.join(base_dir, 'logs', 'log_1'))
  monkeypatch.setattr(runner_lib.MoERunner, '_checkpoint_experiment', checkpoint)
  capsys.readouterr()

  train_in_fresh_graph(base_dir, 2)
  out = capsys.readouterr().out
  assert (f'moe_dopamine: resuming {base_dir} at iteration 1 of 2 (last checkpoint: '
          'iteration 0); dropped the logs of the unfinished iteration: 1 log files') in out
  assert console_iterations(base_dir) == {0: 1, 1: 1}
  assert event_steps(base_dir) == {0: 1, 1: 1}
  pickled = last_pickle(base_dir)
  assert sorted(pickled) == ['iteration_0', 'iteration_1']
  # One value per statistic and iteration, not one per attempt.
  assert len(pickled['iteration_1']['Train/NumEpisodes']) == 1
  assert len(run_logs.load_iterations(base_dir)) == 2


def test_a_restart_from_scratch_moves_the_old_attempts_logs_aside(tmp_path, capsys):
  base_dir = str(tmp_path / 'run')
  train_in_fresh_graph(base_dir, 3)
  for n in range(3):  # Every checkpoint unreadable.
    open(os.path.join(base_dir, 'checkpoints', f'ckpt.{n}'), 'wb').close()
  capsys.readouterr()

  train_in_fresh_graph(base_dir, 1)
  out = capsys.readouterr().out
  assert 'no checkpoint: starting from iteration 0; moved the logs of an abandoned attempt' in out
  # The results are this attempt's only: one iteration, not the old three.
  assert len(run_logs.load_iterations(base_dir)) == 1
  assert sorted(os.listdir(os.path.join(base_dir, 'logs'))) == ['log_0']
  assert console_iterations(base_dir) == {0: 1}
  assert event_steps(base_dir) == {0: 1}
  (attempt,) = os.listdir(os.path.join(base_dir, resume.ABANDONED_DIR))
  old = os.path.join(base_dir, resume.ABANDONED_DIR, attempt)
  assert sorted(os.listdir(os.path.join(old, 'logs'))) == ['log_0', 'log_1', 'log_2']
  assert console_iterations(old) == {0: 1, 1: 1, 2: 1}


def test_drop_after_cuts_every_log_back_to_the_checkpoint(tmp_path):
  base_dir = str(tmp_path)
  console = tmp_path / 'metrics' / 'console'
  console.mkdir(parents=True)
  (console / 'console.log').write_text(
      '[Iteration 0]: a = 1\n[Iteration 1]: a = 2\n[Iteration 2]: a = 3\n[Iteration 2]: b')
  pickles = tmp_path / 'metrics' / 'pickle'
  pickles.mkdir()
  for number, iterations in ((0, [0]), (1, [0, 1]), (2, [0, 1, 2])):
    with open(pickles / f'pickle_{number}.pkl', 'wb') as f:
      pickle.dump({f'iteration_{i}': {'a': [i]} for i in iterations}, f)
  (pickles / 'pickle_3.pkl').write_bytes(b'\x80\x05cut short')
  logs = tmp_path / 'logs'
  logs.mkdir()
  for n in range(3):
    (logs / f'log_{n}').write_bytes(b'')
  board = tmp_path / 'metrics' / 'tensorboard'
  writer = tf.compat.v1.summary.FileWriter(str(board))
  for step in range(3):
    writer.add_summary(tf.compat.v1.Summary(
        value=[tf.compat.v1.Summary.Value(tag='x', simple_value=step)]), step)
  writer.close()

  what = resume.drop_after(base_dir, 1)
  assert what == '1 log files, 2 pickled iterations, 2 console lines, 1 TensorBoard events'
  assert (console / 'console.log').read_text() == '[Iteration 0]: a = 1\n[Iteration 1]: a = 2\n'
  assert sorted(os.listdir(pickles)) == ['pickle_0.pkl', 'pickle_1.pkl', 'pickle_2.pkl']
  with open(pickles / 'pickle_2.pkl', 'rb') as f:
    assert pickle.load(f) == {'iteration_0': {'a': [0]}, 'iteration_1': {'a': [1]}}
  assert sorted(os.listdir(logs)) == ['log_0', 'log_1']
  assert event_steps(base_dir, 'x') == {0: 1, 1: 1}
  assert resume.drop_after(base_dir, 1) == ''  # Nothing left to drop.
  shutil.rmtree(board)


def test_an_earlier_attempts_event_file_is_never_reopened_by_a_new_writer(tmp_path):
  # TensorFlow names event files by the second and the host only: a writer
  # opened in the same second as an earlier one would truncate its file.
  folder = tmp_path / 'metrics' / 'tensorboard'

  def write(step):
    writer = tf.compat.v1.summary.FileWriter(str(folder))
    summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
        tag='Train/NumEpisodes', simple_value=1.0)])
    writer.add_summary(summary, step)
    writer.close()

  write(0)
  (first,) = os.listdir(folder)
  assert resume.keep_event_files(str(tmp_path)) == 1
  assert os.listdir(folder) == [first + resume.KEPT_SUFFIX]
  write(1)  # Within the same second, as a quick restart would.
  assert event_steps(str(tmp_path)) == {0: 1, 1: 1}
  # A second resume renames only the new file, to a name not yet taken.
  (second,) = [n for n in os.listdir(folder) if resume.KEPT_SUFFIX not in n]
  if second == first:  # Both writers opened in the same second.
    assert resume.keep_event_files(str(tmp_path)) == 1
    assert sorted(os.listdir(folder)) == sorted(
        [first + resume.KEPT_SUFFIX, first + resume.KEPT_SUFFIX + '1'])
  else:
    assert resume.keep_event_files(str(tmp_path)) == 1
  assert resume.keep_event_files(str(tmp_path)) == 0
  assert event_steps(str(tmp_path)) == {0: 1, 1: 1}
