"""Reads run folders through Dopamine's own log reader.

The one reader of run folders for plots, continual metrics, benchmarks and
tests. Dopamine's logs are pickles: loading one runs code, so only trusted
run folders should be read. Every file read must lie inside its run folder
(after resolving symbolic links); a file that points outside is refused.
"""

import collections
import json
import os

from dopamine.colab import utils as colab_utils
import numpy as np

from moe_dopamine import run_folder
from moe_dopamine.metrics import continual
from moe_dopamine.metrics import names


class RunFolderError(ValueError):
  """A folder that is not a readable run folder."""


class EmptyRunError(RunFolderError):
  """A run folder with no logged iteration yet (e.g. killed early)."""


Run = collections.namedtuple('Run', ['run_dir', 'iterations', 'info'])


def _inside(run_dir, path):
  """Raises RunFolderError unless `path` resolves inside `run_dir`."""
  root = os.path.realpath(run_dir)
  real = os.path.realpath(path)
  if os.path.commonpath([root, real]) != root:
    raise RunFolderError(
        f"'{path}' resolves to '{real}', outside the run folder '{run_dir}': "
        'refusing to read it (logs are pickles, which can run code).'
    )
  return path


def load_iterations(run_dir):
  """The run's per-iteration statistics dicts, in iteration order."""
  logs = os.path.join(run_dir, 'logs')
  if not os.path.isdir(logs):
    raise RunFolderError(f"'{run_dir}' has no logs/ folder: not a run folder.")
  _inside(run_dir, logs)
  files = [f for f in os.listdir(logs) if f.startswith('log_')]
  if not files:
    raise EmptyRunError(f"'{run_dir}' has no logged iteration yet.")
  for name in files:
    _inside(run_dir, os.path.join(logs, name))
  data, _ = colab_utils.load_statistics(logs, verbose=False)
  return [data[f'iteration_{i}'] for i in range(len(data))]


def run_info(run_dir):
  path = os.path.join(run_dir, run_folder.RUN_INFO)
  if not os.path.exists(path):
    return {}
  with open(_inside(run_dir, path)) as f:
    return json.load(f)


def load_run(run_dir):
  return Run(run_dir, load_iterations(run_dir), run_info(run_dir))


def task_curves(iterations, prefix=names.EVAL_SCORE_PREFIX):
  """{task: array over iterations} of the statistic `prefix + task`."""
  keys = {k for it in iterations for k in it}
  return {
      name: np.array([it[prefix + name][0] for it in iterations], float)
      for name in names.tasks_with(prefix, keys)
  }


def train_tasks(iterations, task_names):
  """The task name each iteration trained on (None in MTRL).

  Args:
    iterations: the run's statistics.
    task_names: the run's task names by id (run_info.json 'task_names').
  """
  out = []
  for it in iterations:
    task = it.get(names.TRAIN_TASK, [None])[0]
    if task is None or task == names.MTRL_TRAIN_TASK:
      out.append(None)
    else:
      out.append(task_names[int(task)])
  return out


def run_train_tasks(run):
  """train_tasks of a loaded Run, with the task names of its run_info."""
  task_names = run.info.get('task_names')
  if not task_names:
    if any(names.TRAIN_TASK in it for it in run.iterations):
      raise RunFolderError(
          f"'{run.run_dir}' logs train_task ids but its run_info.json lists no "
          'task_names.'
      )
    return [None] * len(run.iterations)
  return train_tasks(run.iterations, task_names)


# Bindings that say how a run was executed, not what it is.
_EXECUTION_BINDINGS = ('MoERunner.seed', 'MoERunner.intra_op_threads')


def _variant_parts(run_dir, info):
  if not info:
    return os.path.basename(os.path.normpath(run_dir)), []
  name = '+'.join(os.path.splitext(os.path.basename(f))[0] for f in info['gin_files'])
  bindings = [
      b for b in info['gin_bindings']
      if b.split('=')[0].strip() not in _EXECUTION_BINDINGS
  ]
  return name, bindings


def variant_labels(run_dirs, infos=None):
  """({run_dir: label}, bindings common to all runs, left out of the labels)."""
  infos = infos or {d: run_info(d) for d in run_dirs}
  parts = {d: _variant_parts(d, infos[d]) for d in run_dirs}
  common = set.intersection(*(set(b) for _, b in parts.values())) if parts else set()
  labels = {
      d: name + ''.join(f' [{b}]' for b in bindings if b not in common)
      for d, (name, bindings) in parts.items()
  }
  ordered = [b for b in next(iter(parts.values()))[1] if b in common] if parts else []
  return labels, ordered


def find_runs(paths):
  """Run folders (those with logs/) at or below each path, not following
  symbolic links out of the given folders."""
  runs = []
  for path in paths:
    for root, dirs, _ in os.walk(path):
      if 'logs' in dirs:
        runs.append(root)
        dirs[:] = []
  return sorted(runs)


def load_runs(paths, warn):
  """Loaded Runs under `paths`; runs with no logged iteration are skipped
  with a call to warn(message)."""
  runs = []
  for run_dir in find_runs(paths):
    try:
      runs.append(load_run(run_dir))
    except EmptyRunError as error:
      warn(f'skipping {error}')
  return runs


def group_by_variant(runs):
  """({variant label: [Run]}, bindings common to every run)."""
  labels, common = variant_labels(
      [r.run_dir for r in runs], {r.run_dir: r.info for r in runs}
  )
  variants = collections.defaultdict(list)
  for run in runs:
    variants[labels[run.run_dir]].append(run)
  return dict(variants), common


def continual_metrics(run, references=None, last=continual.FINAL_WINDOW):
  """P, F and FT of one run (see metrics.continual.run_metrics)."""
  scores = task_curves(run.iterations)
  if not scores:
    raise RunFolderError(
        f"'{run.run_dir}' logs no per-task scores ({names.EVAL_SCORE_PREFIX}<task>)."
    )
  return continual.run_metrics(scores, run_train_tasks(run), references or {}, last)
