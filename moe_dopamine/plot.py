r"""Figures and a Markdown summary of run folders.

  python -m moe_dopamine.plot RUN_DIR [RUN_DIR ...] --out DIR [--last 3]

RUN_DIR may also be a sweep folder: every run folder below it is read. Runs
that differ only in their seed form one variant. The runs are turned into the
tidy tables of moe_dopamine.results and drawn by the study report's own
functions (moe_dopamine.study_report), so a sweep and the study look alike.
Writes into DIR:
- curves_<task>.png: eval return per iteration, a panel per variant, mean and
  95% bootstrap band over seeds, the baseline (--baseline) in every panel,
  CRL task stretches shaded;
- dormant.png: the tau = 0.025 and 0.1 dormant fractions per iteration (if
  logged);
- expert_usage_<variant>.png: task x expert mean routing probability of each
  MoE layer at each run's last iteration that measured it (if logged);
- summary.md: per variant, the parameter count, training steps/s, the final
  return and normalized score of each task and, for CRL, the continual metrics,
  each as mean [interval] over seeds (95% bootstrap CI from 5 seeds, else the
  range); the interquartile mean of the final normalized scores with the
  probability of improvement over the baseline (rliable); dormant fractions.
Logs are read with Dopamine's reader (`dopamine.colab.utils`); runs with no
logged iteration yet are skipped with a warning. Logs are pickles: read only
trusted run folders.
"""

import os
import sys

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.
from moe_dopamine import cli

# TensorFlow, gym and the ALE (through Dopamine's log reader) print set-up
# noise on stderr as they are imported.
with cli.stderr_without_noise():
  # pylint: disable=g-import-not-at-top
  import pandas as pd

  from moe_dopamine import results
  from moe_dopamine import study_report
  from moe_dopamine.metrics import continual
  from moe_dopamine.metrics import run_logs
  # pylint: enable=g-import-not-at-top


def warn(message):
  print(f'moe_dopamine.plot: warning: {message}', file=sys.stderr)


def load(paths):
  """((scores, experts) tables of the runs under paths, labelled by variant;
  bindings common to every run)."""
  runs = run_logs.load_runs(paths, warn)
  if not runs:
    return None, []
  labels, common = run_logs.variant_labels(
      [r.run_dir for r in runs], {r.run_dir: r.info for r in runs}
  )
  scores, experts = [], []
  for run in runs:
    run_scores, run_experts = results.run_frames(run, labels[run.run_dir])
    # Two sweeps may both hold <variant>/seed_0: the folder names the run.
    run_scores['run'] = run.run_dir
    run_experts['run'] = run.run_dir
    scores.append(run_scores)
    experts.append(run_experts)
  return (pd.concat(scores, ignore_index=True),
          pd.concat(experts, ignore_index=True)), common


def default_baseline(variants):
  """The first variant whose gin file ends in _baseline, or None."""
  candidates = [v for v in variants if v.split(' [')[0].split('+')[-1].endswith('_baseline')]
  return candidates[0] if candidates else None


def main(argv=None):
  parser = cli.ArgumentParser(prog='moe_dopamine.plot',
                              description=__doc__.split('\n')[0])
  parser.add_argument('paths', nargs='+', help='run or sweep folders')
  parser.add_argument('--out', required=True)
  parser.add_argument('--last', type=int, default=3,
                      help='evaluations averaged for the final values')
  parser.add_argument('--baseline', default=None,
                      help='variant label drawn in every panel and compared with '
                           '(default: the variant whose gin file ends in _baseline)')
  args = parser.parse_args(argv)
  try:
    tables, common = load(args.paths)
  except ValueError as error:
    print(f'moe_dopamine.plot: error: {error}', file=sys.stderr)
    return 2
  if tables is None:
    print(f'moe_dopamine.plot: error: no run folder with logged iterations under '
          f'{args.paths}', file=sys.stderr)
    return 2
  scores, experts = tables
  os.makedirs(args.out, exist_ok=True)
  runs = study_report.run_table(scores, {}, last=args.last)
  variants = list(dict.fromkeys(runs['variant']))
  baseline = args.baseline or default_baseline(variants)
  tasks = list(dict.fromkeys(scores['task']))

  curve_paths = study_report.plot_curves(scores, '', args.out, baseline)
  dormant_path = study_report.plot_dormant(scores, '', args.out)
  usage_paths = study_report.plot_usage(experts, args.out)

  report = [f'# Summary of {len(runs)} runs, {len(variants)} variants', '',
            f'Final values: mean of the last {args.last} evaluations; '
            'mean [interval] over seeds: a 95% percentile-bootstrap CI from '
            f'{continual.MIN_SEEDS_FOR_CI} seeds on, else the range of the seeds.']
  if common:
    report += ['', 'Bindings of every run: ' + ', '.join(f'`{b}`' for b in common) + '.']
  report += ['', '## Returns, scores and continual metrics', '']
  report += study_report.variant_table(runs, tasks)
  arrays = study_report.score_arrays(runs, tasks)
  if arrays and all(len(a) for a in arrays.values()):
    lines, _, _ = study_report.aggregate_lines(arrays, baseline or variants[0])
    report += ['', '## Aggregates over tasks (rliable, stratified bootstrap)', ''] + lines
  if runs[['dormant_tau0.025/mean', 'dormant_tau0.1/mean']].notna().any(axis=None):
    report += ['', '## Dormant neurons and unused experts', '']
    report += study_report.dormant_lines(runs)
  report += ['', '## Figures', '']
  report += [f'![{os.path.basename(p)}]({os.path.basename(p)})' for p in curve_paths]
  if dormant_path:
    report.append(f'![dormant]({os.path.basename(dormant_path)})')
  for variant, path in usage_paths:
    report.append(f'![expert usage: {variant}]({os.path.basename(path)})')
  with open(os.path.join(args.out, 'summary.md'), 'w') as f:
    f.write('\n'.join(report) + '\n')
  figures = [f'{len(curve_paths)} curve figure(s)']
  if dormant_path:
    figures.append('1 dormant-neuron figure')
  figures.append(f'{len(usage_paths)} expert-usage figure(s)')
  print(f"wrote {', '.join(figures)} and summary.md to {args.out}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
