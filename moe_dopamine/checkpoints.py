"""Picks the newest checkpoint of a run that loads, before Dopamine resumes.

Dopamine resumes from the highest N with a `sentinel_checkpoint_complete.N`
in `<base_dir>/checkpoints` (`checkpointer.get_latest_checkpoint_number`); the
sentinel is written after the rest of iteration N:

  tf_ckpt-N.index, tf_ckpt-N.data-*   the TensorFlow variables (agent saver),
  tf_ckpt-N.meta                      the graph (not read on restore),
  <array>_ckpt.N.gz                   the replay buffer, one gzip file per
                                      array ($store$_observation, add_count...),
  ckpt.N                              the runner's pickled bundle: agent state,
                                      logs and current_iteration,
  sentinel_checkpoint_complete.N.

If any of these files is damaged (a disk that filled up, a copy cut short),
the resume crashes although iteration N-1 is intact. `repair` finds the newest
iteration whose files all load, moves the newer ones to `checkpoints/unreadable/`
with one warning, and removes the temporary files TensorFlow leaves when it is
killed while writing (`*tempstate*`, `checkpoint.tmp*`).
"""

import gzip
import os
import pickle
import re
import zlib

from absl import logging
import tensorflow as tf

CHECKPOINT_DIR = 'checkpoints'  # Under the run folder (Dopamine's Runner).
UNREADABLE_DIR = 'unreadable'  # Under CHECKPOINT_DIR; Dopamine never looks there.
SENTINEL = 'sentinel_checkpoint_complete'
BUNDLE = 'ckpt'
TF_PREFIX = 'tf_ckpt'

# A checkpoint file's name -> its iteration number.
_ITERATION_FILE = re.compile(
    r'^(?:ckpt\.(\d+)'
    r'|sentinel_checkpoint_complete\.(\d+)'
    r'|tf_ckpt-(\d+)\.(?:index|meta|data-\d+-of-\d+)'
    r'|(?:.+)_ckpt\.(\d+)\.gz)$'
)
_REPLAY_FILE = re.compile(r'^(.+)_ckpt\.(\d+)\.gz$')
_TEMP_FILE = re.compile(r'tempstate|^checkpoint\.tmp')


def iteration_of(filename):
  """The iteration a checkpoint file belongs to, or None."""
  match = _ITERATION_FILE.match(filename)
  if not match:
    return None
  return int(next(group for group in match.groups() if group is not None))


def completed_iterations(checkpoint_dir):
  """Iterations with a sentinel, newest first (what Dopamine would resume)."""
  if not os.path.isdir(checkpoint_dir):
    return []
  prefix = SENTINEL + '.'
  numbers = [
      int(name[len(prefix):]) for name in os.listdir(checkpoint_dir)
      if name.startswith(prefix) and name[len(prefix):].isdigit()
  ]
  return sorted(numbers, reverse=True)


def latest_iteration(base_dir):
  """The newest completed checkpoint iteration of a run folder, -1 if none."""
  done = completed_iterations(os.path.join(base_dir, CHECKPOINT_DIR))
  return done[0] if done else -1


# Iterations whose checkpoints Dopamine keeps (its Checkpointer's and the
# replay buffer's checkpoint_duration, DQNAgent.max_tf_checkpoints_to_keep).
KEPT = 4


def checkpoint_size(base_dir):
  """(bytes, complete): the files of the newest complete checkpoint, or
  (when none is complete) of the newest one begun; (0, False) if none."""
  checkpoint_dir = os.path.join(base_dir, CHECKPOINT_DIR)
  sizes = {}
  for name in (os.listdir(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []):
    iteration = iteration_of(name)
    if iteration is not None:
      sizes[iteration] = sizes.get(iteration, 0) + os.path.getsize(
          os.path.join(checkpoint_dir, name))
  done = completed_iterations(checkpoint_dir)
  if done:
    return sizes[done[0]], True
  if sizes:
    return sizes[max(sizes)], False
  return 0, False


def _replay_arrays(checkpoint_dir, iteration):
  names = set()
  for name in os.listdir(checkpoint_dir):
    match = _REPLAY_FILE.match(name)
    if match and int(match.group(2)) == iteration:
      names.add(match.group(1))
  return names


def problem_of(checkpoint_dir, iteration, replay_arrays):
  """Why iteration `iteration` would not load; None if every file loads.

  Args:
    checkpoint_dir: str, the run's checkpoints folder.
    iteration: int, a completed iteration.
    replay_arrays: set of the replay array names a complete iteration has.

  Returns:
    None, or a short description of the first damaged or missing file.
  """
  bundle = os.path.join(checkpoint_dir, f'{BUNDLE}.{iteration}')
  try:
    with open(bundle, 'rb') as f:
      data = pickle.load(f)
  except Exception as error:  # pylint: disable=broad-except  # Any is fatal to Dopamine.
    return f'{BUNDLE}.{iteration} does not unpickle ({type(error).__name__}: {error})'
  if not isinstance(data, dict) or not {'logs', 'current_iteration'} <= set(data):
    return f'{BUNDLE}.{iteration} lacks the logs or current_iteration Dopamine needs'

  prefix = os.path.join(checkpoint_dir, f'{TF_PREFIX}-{iteration}')
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)  # Reads the data file, not just the index.
  except Exception as error:  # pylint: disable=broad-except
    first_line = str(error).strip().split('\n')[0]
    return f'{TF_PREFIX}-{iteration} does not load ({type(error).__name__}: {first_line})'

  missing = replay_arrays - _replay_arrays(checkpoint_dir, iteration)
  if missing:
    return f"replay file {sorted(missing)[0]}_ckpt.{iteration}.gz is missing"
  for array in sorted(replay_arrays):
    name = f'{array}_ckpt.{iteration}.gz'
    try:
      with gzip.open(os.path.join(checkpoint_dir, name), 'rb') as f:
        while f.read(1 << 24):
          pass
    except (OSError, EOFError, zlib.error) as error:
      return f'{name} does not decompress ({type(error).__name__}: {error})'
  return None


def repair(base_dir):
  """Leaves the newest loadable checkpoint as the one Dopamine resumes from.

  Iterations newer than it (damaged, or incomplete because the run was killed
  while writing) are moved to checkpoints/unreadable/ with one warning.

  Args:
    base_dir: str, the run folder.

  Returns:
    The iteration Dopamine will resume after, or -1 if there is none.
  """
  checkpoint_dir = os.path.join(base_dir, CHECKPOINT_DIR)
  if not os.path.isdir(checkpoint_dir):
    return -1
  for name in os.listdir(checkpoint_dir):
    path = os.path.join(checkpoint_dir, name)
    if _TEMP_FILE.search(name) and os.path.isfile(path):
      os.remove(path)
      logging.info('Removed %s, a file left half-written by a killed run.', path)

  completed = completed_iterations(checkpoint_dir)
  # Every complete iteration saves the same replay arrays.
  replay_arrays = set()
  for iteration in completed:
    replay_arrays |= _replay_arrays(checkpoint_dir, iteration)
  problems = {}
  good = -1
  for iteration in completed:
    problem = problem_of(checkpoint_dir, iteration, replay_arrays)
    if problem is None:
      good = iteration
      break
    problems[iteration] = problem
  if not problems:
    return good

  aside = os.path.join(checkpoint_dir, UNREADABLE_DIR)
  os.makedirs(aside, exist_ok=True)
  for name in os.listdir(checkpoint_dir):
    iteration = iteration_of(name)
    if iteration is not None and iteration > good:
      os.replace(os.path.join(checkpoint_dir, name), os.path.join(aside, name))
  logging.warning(
      'Checkpoint iteration%s %s of %s cannot be loaded (%s); moved %s files to %s; %s.',
      's' if len(problems) > 1 else '',
      ', '.join(str(i) for i in problems),
      base_dir,
      '; '.join(problems.values()),
      'their' if len(problems) > 1 else 'its',
      aside,
      f'resuming after iteration {good}' if good >= 0 else 'starting again from iteration 0',
  )
  return good
