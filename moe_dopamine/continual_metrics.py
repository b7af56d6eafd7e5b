r"""Prints the continual-learning metrics of CRL runs.

  python -m moe_dopamine.continual_metrics RUN_DIR [RUN_DIR ...] \
      [--reference MountainCar=runs/reference_mountaincar ...] [--last 3]

For each run: average performance P, forgetting F (mean and per task) and,
for tasks with a single-task reference run (gin_configs/reference_<task>.gin),
forward transfer FT. Then, for each variant (runs that differ only in their
seed), the mean over seeds with a 95% bootstrap confidence interval from 5
seeds on, or the range of the values below 5 seeds (metrics.continual).
Run folders hold pickles: read only trusted ones.
"""

import collections
import math
import sys

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.
from moe_dopamine import cli

# TensorFlow and gym (through Dopamine's log reader) print set-up noise on
# stderr as they are imported.
with cli.stderr_without_noise():
  # pylint: disable=g-import-not-at-top
  from moe_dopamine.metrics import continual
  from moe_dopamine.metrics import run_logs
  # pylint: enable=g-import-not-at-top


def parse_references(specs):
  """{task: reference scores} from 'TASK=RUN_DIR' strings."""
  references = {}
  for spec in specs:
    task, sep, run_dir = spec.partition('=')
    if not sep:
      raise ValueError(f"--reference '{spec}' must be TASK=RUN_DIR.")
    curves = run_logs.task_curves(run_logs.load_iterations(run_dir))
    if task not in curves:
      raise ValueError(
          f"reference run '{run_dir}' has no scores for {task} "
          f'(it has {sorted(curves)}). Make one with '
          f'gin_configs/reference_{task.lower()}.gin.'
      )
    references[task] = curves[task]
  return references


def format_value(value):
  return 'nan' if value is None or math.isnan(value) else f'{value:+.3f}'


def main(argv=None):
  parser = cli.ArgumentParser(
      prog='moe_dopamine.continual_metrics',
      description='Continual-learning metrics of CRL runs.',
  )
  parser.add_argument('run_dirs', nargs='+')
  parser.add_argument('--reference', action='append', default=[],
                      help='TASK=RUN_DIR of a single-task reference run, for forward transfer')
  parser.add_argument('--last', type=int, default=continual.FINAL_WINDOW,
                      help='evaluations averaged for final values (both sides of F)')
  args = parser.parse_args(argv)
  try:
    references = parse_references(args.reference)
    runs = [run_logs.load_run(d) for d in args.run_dirs]
    per_run = {r.run_dir: run_logs.continual_metrics(r, references, args.last) for r in runs}
  except (ValueError, FileNotFoundError) as error:
    print(f'moe_dopamine.continual_metrics: error: {error}', file=sys.stderr)
    return 2

  print('## Runs')
  for run_dir, metrics in per_run.items():
    print(f'{run_dir}: ' + '  '.join(f'{k}={format_value(v)}' for k, v in metrics.items()))

  variants, _ = run_logs.group_by_variant(runs)
  print('\n## Variants: mean [interval] over seeds '
        f'(95% bootstrap CI from {continual.MIN_SEEDS_FOR_CI} seeds, else the range)')
  print('| variant | metric | mean [interval] |')
  print('|---|---|---|')
  for label, members in variants.items():
    metrics = [per_run[r.run_dir] for r in members]
    keys = [k for k in metrics[0] if all(k in m for m in metrics)]
    for key in keys:
      summary = continual.over_seeds([m[key] for m in metrics])
      print(f'| {label} | {key} | {continual.format_over_seeds(summary)} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
