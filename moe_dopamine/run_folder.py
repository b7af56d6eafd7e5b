"""The files of a run folder, and its one-writer lock.

Kept free of TensorFlow so that the sweep driver can use it without loading it.
"""

import datetime
import json
import os
import socket
import sys
import tempfile

import filelock

OPERATIVE_CONFIG = 'operative_config.gin'  # Every gin value the run used.
RUN_INFO = 'run_info.json'  # Gin files, bindings, seed, agent, parameters.
FINISHED = 'finished.json'  # Present once the run has done all iterations.
TRAIN_LOG = 'train.log'  # The sweep's capture of the run's output.
LOCK = '.lock'  # flock-ed by the one process writing the folder.
LOCK_HOLDER = '.lock.holder'  # Who holds the lock: pid, host, start, command.


class FolderInUse(Exception):
  """Another process holds the run folder's lock."""


def path_problem(path, flag='--base_dir'):
  """Why `path` cannot be (or become) a writable run folder; None if it can.

  Args:
    path: str, a run folder that may not exist yet.
    flag: str, the command-line flag that gave the path.

  Returns:
    None, or one sentence naming what is wrong and how to fix it.
  """
  path = os.path.abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    return (f"{flag} '{path}' is an existing file, not a folder. Fix: pass a "
            'folder path (new, or one written before by the same command), or '
            'move the file.')
  if os.path.isdir(path):
    if not _can_write_in(path):
      return (f"{flag} '{path}' is a folder this user cannot write in. Fix: "
              f"chmod u+rwx '{path}', or pass another {flag}.")
    return None
  # The folder will be made: its nearest existing ancestor decides.
  ancestor = os.path.dirname(path)
  while not os.path.exists(ancestor):
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    return (f"{flag} '{path}' cannot be created: '{ancestor}' is a file, not a "
            f'folder. Fix: pass a {flag} that is not inside a file.')
  if not _can_write_in(ancestor):
    return (f"{flag} '{path}' cannot be created: this user cannot make a folder "
            f"in '{ancestor}'. Fix: chmod u+rwx '{ancestor}' if it is yours, or "
            f'pass a {flag} in a writable folder.')
  return None


def _can_write_in(folder):
  """Whether a folder can be made in `folder` (tried, then removed).

  Permission bits alone do not tell: root passes os.access everywhere, yet
  cannot write in /proc or on a read-only mount.
  """
  if not os.access(folder, os.W_OK | os.X_OK):
    return False
  try:
    os.rmdir(tempfile.mkdtemp(prefix='.moe_dopamine_probe_', dir=folder))
  except OSError:
    return False
  return True


def read_lock_holder(base_dir):
  """The holder record {'pid', 'host', 'since', 'command'} ({} if unknown)."""
  try:
    with open(os.path.join(base_dir, LOCK_HOLDER)) as f:
      holder = json.load(f)
  except (OSError, ValueError):
    return {}
  return holder if isinstance(holder, dict) else {}


def describe_holder(holder):
  if not holder.get('pid'):
    return 'another process (its pid is not recorded yet)'
  return (f"process {holder['pid']} on host {holder.get('host', '?')} "
          f"(since {holder.get('since', '?')})")


def holder_if_in_use(base_dir):
  """The lock holder record if another process holds the folder, else None.

  Tries the lock without waiting and lets go at once; a folder that does not
  exist yet is not in use (and is not made).
  """
  if not os.path.isdir(base_dir):
    return None
  lock = filelock.FileLock(os.path.join(base_dir, LOCK), timeout=0)
  try:
    lock.acquire()
  except filelock.Timeout:
    return read_lock_holder(base_dir) or {'pid': None}
  lock.release()
  return None


class RunLock:
  """Exclusive hold on a run folder for the life of the process.

  The lock is an flock on `<base_dir>/.lock`, so the operating system drops it
  when its holder exits, even on SIGKILL: a killed run never blocks a resume.
  The holder writes its pid and host beside it (`.lock.holder`) so that a
  second writer can say who holds the folder.

  Usage: `with RunLock(base_dir): ...`; raises FolderInUse at once if another
  process holds the folder. Creates the folder.
  """

  def __init__(self, base_dir):
    self.base_dir = base_dir
    self._lock = filelock.FileLock(os.path.join(base_dir, LOCK), timeout=0)

  def acquire(self):
    os.makedirs(self.base_dir, exist_ok=True)
    try:
      self._lock.acquire()
    except filelock.Timeout:
      holder = read_lock_holder(self.base_dir)
      pid = holder.get('pid')
      raise FolderInUse(
          f"run folder '{os.path.abspath(self.base_dir)}' is in use by "
          f'{describe_holder(holder)}: one process writes a run folder at a time. '
          'Fix: wait for it to finish, stop it'
          + (f' (kill {pid})' if pid else '')
          + ', or pass another --base_dir.'
      ) from None
    holder = {
        'pid': os.getpid(),
        'host': socket.gethostname(),
        'since': datetime.datetime.now().isoformat(timespec='seconds'),
        'command': sys.argv,
    }
    with open(os.path.join(self.base_dir, LOCK_HOLDER), 'w') as f:
      json.dump(holder, f)
    return self

  def release(self):
    if not self._lock.is_locked:
      return
    # The record goes first: whoever takes the lock next writes its own.
    try:
      os.remove(os.path.join(self.base_dir, LOCK_HOLDER))
    except FileNotFoundError:
      pass
    self._lock.release()

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *unused_exc_info):
    self.release()
