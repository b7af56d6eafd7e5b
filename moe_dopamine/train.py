r"""Runs one moe_dopamine experiment.

  python -m moe_dopamine.train --gin_files=gin_configs/cartpole_baseline.gin \
      [--gin_bindings="ClassicControlQNetwork.placement='middle'"] \
      [--base_dir=runs/my_run]

Without --base_dir, the run goes to runs/<gin file names>_<start time>.
Running again with the same --base_dir resumes from the last checkpoint.
"""

import datetime
import json
import os
import shutil
import sys
import time

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

from absl import app
from absl import flags
from absl import logging
import gin
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import run_folder
from moe_dopamine import runner as runner_lib

flags.DEFINE_string(
    'base_dir', None, 'Folder of the run (default: runs/<gin files>_<time>).'
)
flags.DEFINE_multi_string('gin_files', [], 'Gin files, applied in order.')
flags.DEFINE_multi_string(
    'gin_bindings',
    [],
    'Gin bindings applied after the files, e.g. '
    '"ClassicControlQNetwork.placement=\'big\'" or "Runner.num_iterations=5".',
)

FLAGS = flags.FLAGS


def default_base_dir(gin_files, now=None):
  """runs/<stem1>+<stem2>_<YYYYmmdd-HHMMSS>."""
  stems = '+'.join(os.path.splitext(os.path.basename(f))[0] for f in gin_files)
  now = now or datetime.datetime.now()
  return os.path.join('runs', f'{stems}_{now:%Y%m%d-%H%M%S}')


def write_run_info(base_dir, gin_files, gin_bindings, runner):
  """Saves what reproduces the run: the operative config and its inputs."""
  with tf.io.gfile.GFile(os.path.join(base_dir, run_folder.OPERATIVE_CONFIG), 'w') as f:
    f.write(gin.operative_config_str())
  info = {
      'gin_files': [os.path.abspath(f) for f in gin_files],
      'gin_bindings': list(gin_bindings),
      'seed': runner.seed,
      'agent': type(runner.agent).__name__,
      'num_parameters': getattr(runner.agent, 'num_parameters', None),
  }
  with tf.io.gfile.GFile(os.path.join(base_dir, run_folder.RUN_INFO), 'w') as f:
    json.dump(info, f, indent=2)


def run(gin_files, gin_bindings=(), base_dir=None):
  """Parses the config, builds the runner and runs the experiment.

  Args:
    gin_files: list of gin file paths.
    gin_bindings: list of gin binding strings.
    base_dir: str or None (a new folder under runs/).

  Returns:
    The base dir of the run.

  Raises:
    config.ConfigError: before any graph is built, for a bad config.
  """
  gin_files, gin_bindings = list(gin_files), list(gin_bindings)
  config.load_gin_configs(gin_files, gin_bindings)
  try:
    runner_lib.check_config()
  except ValueError as error:
    raise config.ConfigError(str(error)) from error
  base_dir = base_dir or default_base_dir(gin_files)
  new_folder = not tf.io.gfile.exists(base_dir)
  finished = os.path.join(base_dir, run_folder.FINISHED)
  if tf.io.gfile.exists(finished):  # Running again: not finished until done.
    tf.io.gfile.remove(finished)
  print(f'moe_dopamine: base_dir={base_dir}', flush=True)
  try:
    runner = runner_lib.create_runner(base_dir)
  except ValueError as error:
    # Environment, network and layer settings are checked as they are built,
    # before any training; a folder made just now holds nothing to keep.
    if new_folder:
      shutil.rmtree(base_dir, ignore_errors=True)
    raise config.ConfigError(str(error)) from error
  write_run_info(base_dir, gin_files, gin_bindings, runner)
  start = time.time()
  runner.run_experiment()
  with tf.io.gfile.GFile(os.path.join(base_dir, run_folder.FINISHED), 'w') as f:
    json.dump({'seconds': time.time() - start}, f)
  print(f'moe_dopamine: finished, results in {base_dir}', flush=True)
  return base_dir


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.INFO)
  tf.compat.v1.disable_v2_behavior()
  try:
    run(FLAGS.gin_files, FLAGS.gin_bindings, FLAGS.base_dir)
  except config.ConfigError as error:
    print(f'moe_dopamine.train: error: {error}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
