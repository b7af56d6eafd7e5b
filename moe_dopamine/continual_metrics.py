r"""Prints the continual-learning metrics of CRL runs.

  python -m moe_dopamine.continual_metrics RUN_DIR [RUN_DIR ...] \
      [--reference MountainCar=runs/single_mountaincar ...] [--last 3]

For each run: average performance P, forgetting F (mean and per task) and,
for tasks with a single-task reference run, forward transfer FT. Then, for
each variant (runs that differ only in their seed), the mean over seeds with a
95% bootstrap confidence interval.
"""

import argparse
import collections
import math
import sys

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import numpy as np

from moe_dopamine.metrics import continual
from moe_dopamine.metrics import run_logs


def run_metrics(run_dir, references, last):
  """{'P': .., 'F': .., 'F/<task>': .., 'FT': .., 'FT/<task>': ..} of one run."""
  iterations = run_logs.load_iterations(run_dir)
  scores = run_logs.task_curves(iterations)
  if not scores:
    raise ValueError(
        f"'{run_dir}' logs no per-task scores ({run_logs.EVAL_SCORE}<task>): "
        'is it a multi-task run?'
    )
  tasks = run_logs.train_tasks(iterations)
  out = {'P': continual.average_performance(scores, last)}
  forgetting = continual.forgetting(scores, tasks, last)
  if forgetting:
    out['F'] = float(np.mean(list(forgetting.values())))
    out.update({f'F/{t}': v for t, v in forgetting.items()})
  transfer = continual.forward_transfer(scores, tasks, references)
  if transfer:
    out['FT'] = float(np.nanmean(list(transfer.values())))
    out.update({f'FT/{t}': v for t, v in transfer.items()})
  for task, curve in scores.items():
    out[f'p/{task}'] = continual.final_score(curve, last)
  return out


def parse_references(specs):
  references = {}
  for spec in specs:
    task, sep, run_dir = spec.partition('=')
    if not sep:
      raise ValueError(f"--reference '{spec}' must be TASK=RUN_DIR.")
    curves = run_logs.task_curves(run_logs.load_iterations(run_dir))
    if task not in curves:
      raise ValueError(
          f"reference run '{run_dir}' has no scores for {task} "
          f'(it has {sorted(curves)}).'
      )
    references[task] = curves[task]
  return references


def format_value(value):
  return 'nan' if value is None or math.isnan(value) else f'{value:+.3f}'


def main(argv=None):
  parser = argparse.ArgumentParser(
      description='Continual-learning metrics of CRL runs.'
  )
  parser.add_argument('run_dirs', nargs='+')
  parser.add_argument('--reference', action='append', default=[],
                      help='TASK=RUN_DIR of a single-task run, for forward transfer')
  parser.add_argument('--last', type=int, default=3,
                      help='evaluations averaged for the final score')
  args = parser.parse_args(argv)
  try:
    references = parse_references(args.reference)
    per_run = {d: run_metrics(d, references, args.last) for d in args.run_dirs}
  except (ValueError, FileNotFoundError) as error:
    print(f'continual_metrics: error: {error}', file=sys.stderr)
    return 2

  print('## Runs')
  for run_dir, metrics in per_run.items():
    print(f'{run_dir}: ' + '  '.join(f'{k}={format_value(v)}' for k, v in metrics.items()))

  labels, _ = run_logs.variant_labels(list(per_run))
  groups = collections.defaultdict(list)
  for run_dir in per_run:
    groups[labels[run_dir]].append(per_run[run_dir])
  print('\n## Variants: mean [95% bootstrap CI] over seeds')
  print('| variant | seeds | metric | mean | CI low | CI high |')
  print('|---|---|---|---|---|---|')
  for label, runs in groups.items():
    keys = [k for k in runs[0] if all(k in r for r in runs)]
    for key in keys:
      mean, low, high = continual.bootstrap_ci([r[key] for r in runs])
      print(f'| {label} | {len(runs)} | {key} | {format_value(mean)} | '
            f'{format_value(low)} | {format_value(high)} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
