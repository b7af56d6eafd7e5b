"""A damaged newest checkpoint: the run resumes from the one before it."""

import logging
import os
import shutil

import gin
import pytest
import tensorflow as tf

from moe_dopamine import checkpoints
from moe_dopamine import train
from tests import runs

REPO, CARTPOLE = runs.REPO, runs.CARTPOLE
TINY = runs.tiny(50, evaluation_steps=20, **{'MoERunner.seed': 0})


def train_in_fresh_graph(base_dir, iterations):
  gin.clear_config()
  with tf.Graph().as_default():
    train.run([CARTPOLE], TINY + [f'MoERunner.num_iterations={iterations}'], base_dir)


read_log = runs.read_log


@pytest.fixture(scope='module')
def three_iterations(tmp_path_factory):
  """A run folder after iterations 0, 1 and 2 (checkpoints of all three)."""
  base_dir = str(tmp_path_factory.mktemp('original') / 'run')
  train_in_fresh_graph(base_dir, 3)
  gin.clear_config()
  return base_dir


def test_an_intact_run_resumes_from_its_newest_checkpoint(three_iterations, tmp_path):
  base_dir = str(tmp_path / 'run')
  shutil.copytree(three_iterations, base_dir)
  half_written = os.path.join(base_dir, 'checkpoints', 'tf_ckpt-3.index.tempstate8472')
  open(half_written, 'w').write('partial')
  assert checkpoints.repair(base_dir) == 2
  assert not os.path.exists(half_written)
  assert not os.path.exists(os.path.join(base_dir, 'checkpoints', 'unreadable'))
  assert checkpoints.latest_iteration(base_dir) == 2


@pytest.mark.parametrize(
    'damaged,named',
    [
        ('ckpt.2', 'ckpt.2 does not unpickle'),
        ('tf_ckpt-2.data-00000-of-00001', 'tf_ckpt-2 does not load'),
        ('$store$_observation_ckpt.2.gz', '$store$_observation_ckpt.2.gz does not decompress'),
    ],
    ids=['bundle_pickle', 'tf_variables', 'replay_array'],
)
def test_a_truncated_newest_checkpoint_resumes_from_the_previous_one(
    three_iterations, tmp_path, caplog, damaged, named
):
  base_dir = str(tmp_path / 'run')
  shutil.copytree(three_iterations, base_dir)
  path = os.path.join(base_dir, 'checkpoints', damaged)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  original = read_log(three_iterations, 2)

  with caplog.at_level(logging.WARNING):
    train_in_fresh_graph(base_dir, 4)  # Crashed in Dopamine's unbundle before.

  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and 'cannot be loaded' in r.getMessage()]
  assert len(warnings) == 1 and named in warnings[0] and 'after iteration 1' in warnings[0]
  assert os.path.exists(os.path.join(base_dir, 'checkpoints', 'unreadable', damaged))
  log = read_log(base_dir, 3)
  assert list(log) == [f'iteration_{i}' for i in range(4)]
  # Iterations 0 and 1 come from checkpoint 1; iteration 2 was trained again.
  assert log['iteration_0'] == original['iteration_0']
  assert log['iteration_1'] == original['iteration_1']
  assert os.path.exists(os.path.join(base_dir, 'checkpoints', 'sentinel_checkpoint_complete.3'))


def test_every_checkpoint_damaged_starts_again_from_iteration_0(three_iterations, tmp_path):
  base_dir = str(tmp_path / 'run')
  shutil.copytree(three_iterations, base_dir)
  for n in range(3):
    open(os.path.join(base_dir, 'checkpoints', f'ckpt.{n}'), 'wb').close()
  assert checkpoints.repair(base_dir) == -1
  assert checkpoints.latest_iteration(base_dir) == -1
  moved = os.listdir(os.path.join(base_dir, 'checkpoints', 'unreadable'))
  assert {checkpoints.iteration_of(name) for name in moved} == {0, 1, 2}


def test_a_missing_replay_array_makes_an_iteration_unloadable(three_iterations, tmp_path):
  base_dir = str(tmp_path / 'run')
  shutil.copytree(three_iterations, base_dir)
  os.remove(os.path.join(base_dir, 'checkpoints', 'add_count_ckpt.2.gz'))
  assert checkpoints.repair(base_dir) == 1


def test_iteration_of_names_only_checkpoint_files():
  assert checkpoints.iteration_of('ckpt.12') == 12
  assert checkpoints.iteration_of('sentinel_checkpoint_complete.3') == 3
  assert checkpoints.iteration_of('tf_ckpt-7.data-00000-of-00001') == 7
  assert checkpoints.iteration_of('$store$_observation_ckpt.10.gz') == 10
  assert checkpoints.iteration_of('checkpoint') is None
  assert checkpoints.iteration_of('ckpt.1.tempstate99') is None


def test_a_resumed_run_keeps_dopamines_number_of_tensorflow_checkpoints(tmp_path):
  base_dir = str(tmp_path / 'run')
  train_in_fresh_graph(base_dir, 3)
  train_in_fresh_graph(base_dir, 6)  # A second process, with a fresh saver.
  folder = os.path.join(base_dir, 'checkpoints')
  kept = sorted(checkpoints.iteration_of(name) for name in os.listdir(folder)
                if name.startswith('tf_ckpt-') and name.endswith('.index'))
  # DQNAgent.max_tf_checkpoints_to_keep = 4, as in an uninterrupted run.
  assert kept == [2, 3, 4, 5]
  assert not [name for name in os.listdir(folder)
              if name.startswith('tf_ckpt-') and checkpoints.iteration_of(name) < 2]
