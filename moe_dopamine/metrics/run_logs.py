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


def variant_label(run_dir):
  """What a run is, seed aside: its gin files' names and non-seed bindings."""
  info = run_info(run_dir)
  if not info:
    return os.path.basename(os.path.normpath(run_dir))
  label = '+'.join(
      os.path.splitext(os.path.basename(f))[0] for f in info['gin_files']
  )
  bindings = [b for b in info['gin_bindings'] if '.seed' not in b.split('=')[0]]
  return label + ''.join(f' [{b}]' for b in bindings)
