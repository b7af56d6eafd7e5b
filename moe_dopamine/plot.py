r"""Figures and a Markdown summary of runs.

  python -m moe_dopamine.plot RUN_DIR [RUN_DIR ...] --out DIR [--last 3]

RUN_DIR may also be a sweep folder: every run folder below it is read. Runs
that differ only in their seed form one variant. Writes into DIR:
- curves_<task>.png: eval return per iteration, mean and 95% bootstrap band
  over seeds, one line per variant; CRL task stretches shaded;
- dormant.png: the tau=0.025 dormant fraction per iteration (if logged);
- expert_usage_<variant>.png: task x expert mean routing probability of each
  MoE layer at the last iteration that measured it (if logged);
- summary.md: per variant, the parameter count, the final return and
  normalized score of each task and, for CRL, the continual metrics, each as
  mean [interval] over seeds (95% bootstrap CI from 5 seeds, else the range);
  and the interquartile mean of the final normalized scores over runs x tasks
  with the probability of improvement over the baseline (rliable).
Logs are read with Dopamine's reader (`dopamine.colab.utils`); runs with no
logged iteration yet are skipped with a warning. Logs are pickles: read only
trusted run folders.
"""

import argparse
import collections
import os
import re
import sys

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pandas as pd
import seaborn as sns

from matplotlib import ticker  # pylint: disable=g-import-not-at-top

from moe_dopamine.metrics import aggregate
from moe_dopamine.metrics import continual
from moe_dopamine.metrics import names
from moe_dopamine.metrics import run_logs

DORMANT_KEY = names.dormant_fraction(0.025)


def warn(message):
  print(f'moe_dopamine.plot: warning: {message}', file=sys.stderr)


def load(paths):
  """({variant: [Run]}, bindings common to every run) of the runs under paths."""
  return run_logs.group_by_variant(run_logs.load_runs(paths, warn))


def eval_returns(iterations):
  """{task: eval returns}; a run without tasks gives {'eval': ...}."""
  returns = run_logs.task_curves(iterations, names.EVAL_RETURN_PREFIX)
  if not returns:
    returns = {'eval': np.array([it[names.EVAL_AVERAGE_RETURN][0] for it in iterations])}
  return returns


def returns_frame(variants):
  """Long DataFrame: variant, seed, iteration, task, return, score."""
  rows = []
  for variant, runs in variants.items():
    for seed, run in enumerate(runs):
      returns = eval_returns(run.iterations)
      scores = run_logs.task_curves(run.iterations)
      for task, curve in returns.items():
        for i, value in enumerate(curve):
          score = scores[task][i] if task in scores else np.nan
          rows.append((variant, seed, i, task, value, score))
  return pd.DataFrame(
      rows, columns=['variant', 'seed', 'iteration', 'task', 'return', 'score']
  )


def shade_stretches(axis, run):
  """Grey bands for the CRL task stretches, each labelled with its task."""
  tasks = run_logs.run_train_tasks(run)
  trained = [t for t in dict.fromkeys(tasks) if t is not None]
  for index, name in enumerate(trained):
    for start, stop in continual.stretches(tasks, name):
      axis.axvspan(start - 0.5, stop - 0.5, color=('0.85', '0.93')[index % 2], lw=0,
                   zorder=0)
      axis.text((start + stop - 1) / 2, 0.98, f'training {name}', ha='center', va='top',
                fontsize=7, color='0.35', transform=axis.get_xaxis_transform())


def legend_below(axis):
  handles, labels = axis.get_legend_handles_labels()
  unique = dict(zip(labels, handles))
  axis.legend(unique.values(), unique.keys(), fontsize=7, loc='upper center',
              bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)


# Above this many variants, curves get one panel per variant.
MAX_VARIANTS_PER_AXES = 4


def plot_curves(frame, variants, out):
  paths = []
  first_run = next(iter(variants.values()))[0]
  title = 'evaluation return (mean, 95% bootstrap CI over seeds)'
  for task, task_frame in frame.groupby('task'):
    if len(variants) <= MAX_VARIANTS_PER_AXES:
      figure, axis = plt.subplots(figsize=(8, 6))
      shade_stretches(axis, first_run)
      sns.lineplot(data=task_frame, x='iteration', y='return', hue='variant',
                   errorbar=('ci', 95), n_boot=1000, seed=0, ax=axis)
      axis.set_title(f'{task}: {title}')
      integer_ticks(axis)
      legend_below(axis)
    else:
      grid = sns.relplot(data=task_frame, x='iteration', y='return', col='variant',
                         col_wrap=4, kind='line', errorbar=('ci', 95), n_boot=1000,
                         seed=0, height=2.4, aspect=1.3,
                         facet_kws={'sharey': True})
      for axis in grid.axes.flat:
        shade_stretches(axis, first_run)
        integer_ticks(axis)
      grid.set_titles('{col_name}', size=8)
      grid.figure.suptitle(f'{task}: {title}', y=1.02)
      figure = grid.figure
    path = os.path.join(out, f'curves_{task}.png')
    figure.savefig(path, dpi=80, bbox_inches='tight')
    plt.close(figure)
    paths.append(path)
  return paths


def integer_ticks(axis):
  axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


def plot_dormant(variants, out):
  rows = [
      (variant, seed, i, it[DORMANT_KEY][0])
      for variant, runs in variants.items()
      for seed, run in enumerate(runs)
      for i, it in enumerate(run.iterations)
      if DORMANT_KEY in it
  ]
  if not rows:
    return None
  frame = pd.DataFrame(rows, columns=['variant', 'seed', 'iteration', 'fraction'])
  figure, axis = plt.subplots(figsize=(8, 6))
  sns.lineplot(data=frame, x='iteration', y='fraction', hue='variant',
               errorbar=('ci', 95), n_boot=1000, seed=0, ax=axis, marker='o')
  integer_ticks(axis)
  axis.set_title('dormant neurons (tau = 0.025, every expert on the whole batch), '
                 'all hidden layers', fontsize=9)
  legend_below(axis)
  path = os.path.join(out, 'dormant.png')
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  plt.close(figure)
  return path


def usage_matrices(runs):
  """{layer: (tasks, matrix task x expert)}, seed mean, each run at its last
  iteration that measured expert usage."""
  per_layer = collections.defaultdict(lambda: collections.defaultdict(list))
  for run in runs:
    measured = [
        it for it in run.iterations
        if any(k.startswith(names.EXPERT_USAGE_PREFIX) for k in it)
    ]
    if not measured:
      continue
    for key, value in measured[-1].items():
      if key.startswith(names.EXPERT_USAGE_PREFIX):
        task, _, layer = key[len(names.EXPERT_USAGE_PREFIX):].partition('/')
        per_layer[layer][task].append(np.ravel(value))
  return {
      layer: (sorted(tasks), np.array([np.mean(tasks[t], axis=0) for t in sorted(tasks)]))
      for layer, tasks in per_layer.items()
  }


def plot_usage(variants, out):
  paths = []
  for variant, runs in variants.items():
    matrices = usage_matrices(runs)
    if not matrices:
      continue
    figure, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 2.8),
                                squeeze=False)
    for axis, (layer, (tasks, matrix)) in zip(axes[0], matrices.items()):
      sns.heatmap(matrix, annot=True, fmt='.2f', vmin=0, vmax=1, cmap='viridis',
                  yticklabels=tasks, ax=axis, cbar=False)
      axis.set_yticklabels(tasks, rotation=0)
      axis.set_xlabel('expert')
      axis.set_title(layer, fontsize=9)
    figure.suptitle(f'expert usage: {variant}', fontsize=8)
    path = os.path.join(out, f'expert_usage_{file_name(variant)}.png')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    paths.append((variant, path))
  return paths


def file_name(label):
  """A file-name-safe form of a variant label."""
  return re.sub(r'[^A-Za-z0-9._+-]+', '_', label).strip('_')


def cell(values, digits=2):
  return continual.format_over_seeds(continual.over_seeds(values), digits)


def summary_table(variants, last):
  """Markdown lines: returns and scores per task, and continual metrics."""
  lines = ['| variant | parameters | task | final return | final normalized score |',
           '|---|---|---|---|---|']
  metric_lines = ['| variant | average performance P | forgetting F |',
                  '|---|---|---|']
  for variant, runs in variants.items():
    parameters = {r.info.get('num_parameters') for r in runs}
    parameters = ', '.join(f'{p:,}' for p in sorted(parameters) if p is not None) or 'n/a'
    curves = [eval_returns(r.iterations) for r in runs]
    scores = [run_logs.task_curves(r.iterations) for r in runs]
    for task in curves[0]:
      finals = [continual.final_score(c[task], last) for c in curves if task in c]
      final_scores = [continual.final_score(s[task], last) for s in scores if task in s]
      lines.append(f'| {variant} | {parameters} | {task} | {cell(finals)} | '
                   f'{cell(final_scores)} |')
    if not scores[0]:
      continue
    metrics = [run_logs.continual_metrics(r, last=last) for r in runs]
    forget = [m['F'] for m in metrics if 'F' in m]
    metric_lines.append(
        f"| {variant} | {cell([m['P'] for m in metrics])} | "
        f"{cell(forget) if forget else 'n/a (MTRL)'} |"
    )
  return lines, metric_lines


def aggregate_table(variants, last, baseline=None):
  """Markdown lines: IQM of final normalized scores and P(X > baseline)."""
  scores = {}
  for variant, runs in variants.items():
    per_run = [run_logs.task_curves(r.iterations) for r in runs]
    tasks = sorted(per_run[0]) if per_run[0] else []
    if not tasks or any(sorted(s) != tasks for s in per_run):
      continue
    scores[variant] = np.array(
        [[continual.final_score(s[t], last) for t in tasks] for s in per_run]
    )
  if not scores:
    return []
  if baseline is None:
    candidates = [v for v in scores if v.split(' [')[0].endswith('_baseline')]
    baseline = candidates[0] if candidates else None
  iqms = aggregate.iqm(scores)
  improvement = aggregate.probability_of_improvement(scores, baseline) if baseline else {}
  lines = [
      f'| variant | runs | IQM of final normalized scores [95% CI] | '
      f'P(variant > {baseline or "baseline"}) [95% CI] |',
      '|---|---|---|---|',
  ]
  for variant, (value, low, high) in iqms.items():
    poi = improvement.get(variant)
    poi_text = f'{poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]' if poi else '-'
    lines.append(f'| {variant} | {len(scores[variant])} | '
                 f'{value:.2f} [{low:.2f}, {high:.2f}] | {poi_text} |')
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('paths', nargs='+', help='run or sweep folders')
  parser.add_argument('--out', required=True)
  parser.add_argument('--last', type=int, default=3,
                      help='evaluations averaged for the final values')
  parser.add_argument('--baseline', default=None,
                      help='variant label for the probability of improvement '
                           '(default: the variant whose gin file ends in _baseline)')
  args = parser.parse_args(argv)
  try:
    variants, common = load(args.paths)
  except ValueError as error:
    print(f'moe_dopamine.plot: error: {error}', file=sys.stderr)
    return 2
  if not variants:
    print(f'moe_dopamine.plot: error: no run folder with logged iterations under '
          f'{args.paths}', file=sys.stderr)
    return 2
  num_runs = sum(len(runs) for runs in variants.values())
  os.makedirs(args.out, exist_ok=True)
  frame = returns_frame(variants)
  curve_paths = plot_curves(frame, variants, args.out)
  dormant_path = plot_dormant(variants, args.out)
  usage_paths = plot_usage(variants, args.out)
  lines, metric_lines = summary_table(variants, args.last)
  aggregate_lines = aggregate_table(variants, args.last, args.baseline)

  report = [f'# Summary of {num_runs} runs, {len(variants)} variants', '',
            f'Final values: mean of the last {args.last} evaluations; '
            'mean [interval] over seeds: a 95% percentile-bootstrap CI from '
            f'{continual.MIN_SEEDS_FOR_CI} seeds on, else the range of the seeds.']
  if common:
    report += ['', 'Bindings of every run: ' + ', '.join(f'`{b}`' for b in common) + '.']
  report += ['', '## Returns', ''] + lines
  if len(metric_lines) > 2:
    report += ['', '## Continual metrics (normalized scores)', ''] + metric_lines
  if aggregate_lines:
    report += ['', '## Aggregates over tasks (rliable, stratified bootstrap)', '']
    report += aggregate_lines
  report += ['', '## Figures', '']
  report += [f'![{os.path.basename(p)}]({os.path.basename(p)})' for p in curve_paths]
  if dormant_path:
    report.append(f'![dormant]({os.path.basename(dormant_path)})')
  for variant, path in usage_paths:
    report.append(f'![expert usage: {variant}]({os.path.basename(path)})')
  with open(os.path.join(args.out, 'summary.md'), 'w') as f:
    f.write('\n'.join(report) + '\n')
  print(f'wrote {len(curve_paths)} curve figure(s), '
        f'{len(usage_paths)} usage figure(s) and summary.md to {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
