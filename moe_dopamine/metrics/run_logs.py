"""Reads run folders through Dopamine's own log reader."""

import json
import os

from dopamine.colab import utils as colab_utils
import numpy as np

from moe_dopamine import run_folder

EVAL_SCORE = 'eval_normalized_score_'
EVAL_RETURN = 'eval_average_return_'


def load_iterations(run_dir):
  """The run's per-iteration statistics dicts, in iteration order."""
  logs = os.path.join(run_dir, 'logs')
  if not os.path.isdir(logs):
    raise FileNotFoundError(f"'{run_dir}' has no logs/ folder: not a run folder.")
  data, _ = colab_utils.load_statistics(logs, verbose=False)
  return [data[f'iteration_{i}'] for i in range(len(data))]


def task_curves(iterations, prefix=EVAL_SCORE):
  """{task: array over iterations} of the statistic `prefix + task`."""
  names = sorted(
      {k[len(prefix):] for it in iterations for k in it if k.startswith(prefix)}
  )
  return {
      name: np.array([it[prefix + name][0] for it in iterations], float)
      for name in names
  }


def train_tasks(iterations):
  """The task each iteration trained on ('mixed' in MTRL)."""
  return [it.get('train_task', [None])[0] for it in iterations]


def run_info(run_dir):
  path = os.path.join(run_dir, run_folder.RUN_INFO)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


# Bindings that say how a run was executed, not what it is.
_EXECUTION_BINDINGS = ('MoERunner.seed', 'MoERunner.intra_op_threads')


def _variant_parts(run_dir):
  info = run_info(run_dir)
  if not info:
    return os.path.basename(os.path.normpath(run_dir)), []
  name = '+'.join(os.path.splitext(os.path.basename(f))[0] for f in info['gin_files'])
  bindings = [
      b for b in info['gin_bindings']
      if b.split('=')[0].strip() not in _EXECUTION_BINDINGS
  ]
  return name, bindings


def variant_labels(run_dirs):
  """({run_dir: label}, bindings common to all runs, left out of the labels)."""
  parts = {d: _variant_parts(d) for d in run_dirs}
  common = set.intersection(*(set(b) for _, b in parts.values())) if parts else set()
  labels = {
      d: name + ''.join(f' [{b}]' for b in bindings if b not in common)
      for d, (name, bindings) in parts.items()
  }
  ordered = [b for b in next(iter(parts.values()))[1] if b in common] if parts else []
  return labels, ordered
