r"""Figures and a Markdown summary of run folders.

  python -m moe_dopamine.plot RUN_DIR [RUN_DIR ...] --out DIR [--last 3]

RUN_DIR may also be a sweep folder: every run folder below it is read. Runs
that differ only in their seed form one variant. The runs are turned into the
tidy tables of moe_dopamine.results and drawn and summarized by the study
report's own modules (moe_dopamine.studies: measurements, tables, figures), so
a sweep and a study look alike. Writes into DIR:
- curves_<task>.png: normalized score per iteration, a panel per variant,
  mean and 95% bootstrap band over seeds, the baseline (--baseline) with its
  band in every panel, CRL task stretches shaded by task;
- dormant.png: the tau = 0.1 dormant fraction per iteration, a panel per
  variant beside the baseline, task switches marked (if logged);
- expert_usage_<variant>.png: task x expert top-1 share of each MoE layer,
  one heatmap per seed, at each run's last iteration that measured it;
- summary.md: per variant, the parameter count, training steps/s, the final
  normalized score of each task and, for CRL, P and F, each as mean
  [interval] over seeds (95% bootstrap CI from 5 seeds, else the range); the
  interquartile mean of the final normalized scores with the probability of
  improvement over the baseline (rliable).
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
  from moe_dopamine.metrics import aggregate
  from moe_dopamine.metrics import continual
  from moe_dopamine.metrics import run_logs
  from moe_dopamine.studies import figures
  from moe_dopamine.studies import measurements
  from moe_dopamine.studies import tables
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
    run_scores, run_experts, _ = results.run_frames(run, labels[run.run_dir])
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
  parser.add_argument('--last', type=int, default=continual.FINAL_WINDOW,
                      help='evaluations averaged for the final values')
  parser.add_argument('--baseline', default=None,
                      help='variant label drawn in every panel and compared with '
                           '(default: the variant whose gin file ends in _baseline)')
  args = parser.parse_args(argv)
  try:
    tables_, common = load(args.paths)
  except ValueError as error:
    print(f'moe_dopamine.plot: error: {error}', file=sys.stderr)
    return 2
  if tables_ is None:
    print(f'moe_dopamine.plot: error: no run folder with logged iterations under '
          f'{args.paths}', file=sys.stderr)
    return 2
  scores, experts = tables_
  os.makedirs(args.out, exist_ok=True)
  # Every run here logged with this package's definitions: dormant counts.
  runs = measurements.per_run(scores, None, {}, args.last,
                              dormant_valid=set(scores['variant']))
  variants = list(dict.fromkeys(runs['variant']))
  baseline = args.baseline or default_baseline(variants)
  if baseline is not None and baseline not in variants:
    print(f"moe_dopamine.plot: error: --baseline '{baseline}' is not one of the variants "
          f'{variants}', file=sys.stderr)
    return 2

  curve_paths = figures.curves(scores, variants, baseline, {},
                               os.path.join(args.out, 'curves'))
  dormant = figures.dormant_frame(scores)
  dormant_path = None
  if len(dormant):
    shown = [v for v in variants if v in set(dormant['variant'])]
    dormant_path = figures.dormant(dormant, shown, baseline if baseline in shown else None,
                                   os.path.join(args.out, 'dormant.png'))
  usage_paths = [
      (variant, figures.usage(experts[experts['variant'] == variant], variant,
                              os.path.join(args.out, f'expert_usage_{figures.safe_name(variant)}.png')))
      for variant in dict.fromkeys(experts['variant'])
  ] if len(experts) else []

  report = [f'# Summary of {len(runs)} runs, {len(variants)} variants', '',
            f'Final values: mean of the last {args.last} evaluations; '
            'mean [interval] over seeds: a 95% percentile-bootstrap CI from '
            f'{continual.MIN_SEEDS_FOR_CI} seeds on, else the range of the seeds.']
  if common:
    report += ['', 'Bindings of every run: ' + ', '.join(f'`{b}`' for b in common) + '.']
  report += ['', '## Scores, continual metrics and dormant neurons', '']
  report += tables.variant_table(runs, variants)
  tasks = tables.tasks_of(runs, variants)
  arrays = {v: runs.loc[runs['variant'] == v, [f'score:{t}' for t in tasks]].to_numpy(float)
            for v in variants}
  if tasks and all(len(a) and not pd.isna(a).any() for a in arrays.values()):
    reference = baseline or variants[0]
    iqms = aggregate.iqm(arrays)
    improvement = aggregate.probability_of_improvement(arrays, reference)
    report += ['', '## Aggregates over tasks (rliable, stratified bootstrap)', '',
               f'| variant | runs | IQM of final normalized scores [95% CI] | '
               f'P(variant > {reference}) [95% CI] |', '|---|---|---|---|']
    for variant, (value, low, high) in iqms.items():
      poi = improvement.get(variant)
      poi_text = f'{poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]' if poi else '-'
      report.append(f'| {variant} | {len(arrays[variant])} | {value:.2f} [{low:.2f}, '
                    f'{high:.2f}] | {poi_text} |')
  report += ['', '## Figures', '']
  report += [f'![{os.path.basename(p)}]({os.path.basename(p)})' for p in curve_paths]
  if dormant_path:
    report.append(f'![dormant]({os.path.basename(dormant_path)})')
  for variant, path in usage_paths:
    report.append(f'![expert usage: {variant}]({os.path.basename(path)})')
  with open(os.path.join(args.out, 'summary.md'), 'w') as f:
    f.write('\n'.join(report) + '\n')
  written = [f'{len(curve_paths)} curve figure(s)']
  if dormant_path:
    written.append('1 dormant-neuron figure')
  written.append(f'{len(usage_paths)} expert-usage figure(s)')
  print(f"wrote {', '.join(written)} and summary.md to {args.out}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
