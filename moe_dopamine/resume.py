"""What a run folder keeps when a run resumes: nothing after its checkpoint.

A run logs an iteration before it checkpoints it (Dopamine's order: logs,
then the checkpoint, then the collectors' flush), so a run stopped between
the two, or killed while writing the checkpoint, has logged an iteration it
will run again. Before the resumed run writes anything, `drop_after` cuts
every log back to the last checkpointed iteration:

  logs/log_N                       removed for N > last (Dopamine's logger
                                   rewrites them from the checkpoint's logs),
  metrics/pickle/pickle_K.pkl      iterations > last taken out (a file left
                                   empty is removed),
  metrics/console/console.log      lines '[Iteration N]: ...' with N > last
                                   taken out,
  TensorBoard event files          events of steps > last taken out
  (metrics/tensorboard/, base_dir)

TensorFlow names an event file after the second its writer opened it and the
host (`events.out.tfevents.<seconds>.<host>`), so a writer opened in the same
second as an earlier attempt's would overwrite that attempt's file: before a
run opens its writers, `keep_event_files` gives every event file already in
the folder a name no writer will take.

With no checkpoint at all (last = -1: the run starts again from iteration 0,
after a kill before the first checkpoint or with every checkpoint unreadable),
the old attempt's logs/ and metrics/ are moved whole to
`abandoned/<time>/`, as unreadable checkpoints are moved aside, so that no
reader takes them for this run's results.
"""

import datetime
import os
import pickle
import re

from absl import logging
import tensorflow as tf

ABANDONED_DIR = 'abandoned'  # Under the run folder.
LOGS_DIR = 'logs'
METRICS_DIR = 'metrics'

_LOG_FILE = re.compile(r'^log_(\d+)$')
_PICKLE_FILE = re.compile(r'^pickle_(\d+)\.pkl$')
_CONSOLE_LINE = re.compile(r'^\[Iteration (\d+)\]')
_ITERATION_KEY = re.compile(r'^iteration_(\d+)$')


KEPT_SUFFIX = '.kept'  # Event files of earlier attempts: '...tfevents.<s>.<host>.kept[N]'.


def keep_event_files(base_dir):
  """Renames the event files of earlier attempts (metrics/tensorboard/ and
  base_dir) so that none has a name a new writer can open; returns how many.
  TensorBoard reads every file with 'tfevents' in its name."""
  renamed = 0
  for folder in (os.path.join(base_dir, METRICS_DIR, 'tensorboard'), base_dir):
    for name in _listdir(folder):
      path = os.path.join(folder, name)
      if (not name.startswith('events.out.tfevents') or KEPT_SUFFIX in name
          or not os.path.isfile(path)):
        continue
      target, n = path + KEPT_SUFFIX, 1
      while os.path.exists(target):
        target, n = f'{path}{KEPT_SUFFIX}{n}', n + 1
      os.replace(path, target)
      renamed += 1
  return renamed


def drop_after(base_dir, last):
  """Leaves no log of an iteration after `last` in the run folder.

  Args:
    base_dir: str, the run folder.
    last: int, the last checkpointed iteration (-1: none).

  Returns:
    A short description of what was dropped or moved ('' if nothing was).
  """
  if last < 0:
    return _move_aside(base_dir)
  dropped = []
  for what, count in (
      ('log files', _drop_log_files(os.path.join(base_dir, LOGS_DIR), last)),
      ('pickled iterations', _drop_pickled(os.path.join(base_dir, METRICS_DIR, 'pickle'), last)),
      ('console lines', _drop_console_lines(
          os.path.join(base_dir, METRICS_DIR, 'console', 'console.log'), last)),
      ('TensorBoard events', sum(
          _drop_events(folder, last)
          for folder in (os.path.join(base_dir, METRICS_DIR, 'tensorboard'), base_dir))),
  ):
    if count:
      dropped.append(f'{count} {what}')
  return ', '.join(dropped)


def _move_aside(base_dir):
  present = [name for name in (LOGS_DIR, METRICS_DIR)
             if os.path.isdir(os.path.join(base_dir, name))
             and _has_files(os.path.join(base_dir, name))]
  events = [name for name in _listdir(base_dir) if name.startswith('events.out.tfevents')]
  if not present and not events:
    return ''
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
  aside = os.path.join(base_dir, ABANDONED_DIR, stamp)
  os.makedirs(aside)
  for name in present + events:
    os.replace(os.path.join(base_dir, name), os.path.join(aside, name))
  for name in present:  # Dopamine's logger made logs/ before the resume.
    os.makedirs(os.path.join(base_dir, name))
  return f'moved the logs of an abandoned attempt ({", ".join(present + events)}) to {aside}'


def _has_files(folder):
  return any(files for _, _, files in os.walk(folder))


def _listdir(folder):
  return os.listdir(folder) if os.path.isdir(folder) else []


def _drop_log_files(folder, last):
  count = 0
  for name in _listdir(folder):
    match = _LOG_FILE.match(name)
    if match and int(match.group(1)) > last:
      os.remove(os.path.join(folder, name))
      count += 1
  return count


def _iteration_of_key(key):
  match = _ITERATION_KEY.match(str(key))
  return int(match.group(1)) if match else None


def _drop_pickled(folder, last):
  """Takes iterations > last out of every pickle file (each holds all so far)."""
  count = 0
  for name in _listdir(folder):
    if not _PICKLE_FILE.match(name):
      continue
    path = os.path.join(folder, name)
    try:
      with open(path, 'rb') as f:
        data = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError):
      os.remove(path)  # Cut short by a kill: it held nothing kept.
      count += 1
      continue
    late = [k for k in data if (_iteration_of_key(k) or 0) > last]
    if not late:
      continue
    count += len(late)
    for key in late:
      del data[key]
    if data:
      _write_atomically(path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
    else:
      os.remove(path)
  return count


def _drop_console_lines(path, last):
  if not os.path.isfile(path):
    return 0
  with open(path) as f:
    lines = f.read().splitlines(keepends=True)
  kept = []
  for line in lines:
    match = _CONSOLE_LINE.match(line)
    if not (match and int(match.group(1)) > last):
      kept.append(line)
  # A line cut short by a kill (no newline) is dropped too.
  if kept and not kept[-1].endswith('\n'):
    kept.pop()
  if len(kept) == len(lines):
    return 0
  _write_atomically(path, ''.join(kept).encode())
  return len(lines) - len(kept)


def _drop_events(folder, last):
  """Rewrites each event file without the events of steps > last."""
  count = 0
  for name in _listdir(folder):
    path = os.path.join(folder, name)
    if not name.startswith('events.out.tfevents') or not os.path.isfile(path):
      continue
    kept, dropped = [], 0
    try:
      for record in tf.compat.v1.io.tf_record_iterator(path):
        event = tf.compat.v1.Event.FromString(record)
        if event.HasField('summary') and event.step > last:
          dropped += 1
        else:
          kept.append(record)
    except tf.errors.DataLossError:
      dropped += 1  # A record cut short by a kill.
    if not dropped:
      continue
    count += dropped
    temporary = path + '.truncating'
    with tf.io.TFRecordWriter(temporary) as writer:
      for record in kept:
        writer.write(record)
    os.replace(temporary, path)
  return count


def _write_atomically(path, data):
  temporary = path + '.truncating'
  with open(temporary, 'wb') as f:
    f.write(data)
  os.replace(temporary, path)


def log_drop(base_dir, last, what):
  if what:
    logging.info('Resuming %s after iteration %d: %s.', base_dir, last, what)
