r"""Figures and a Markdown summary of runs.

  python -m moe_dopamine.plot RUN_DIR [RUN_DIR ...] --out DIR [--last 3]

RUN_DIR may also be a sweep folder: every run folder below it is read. Runs
that differ only in their seed form one variant. Writes into DIR:
- curves_<task>.png: eval return per iteration, mean and 95% bootstrap band
  over seeds, one line per variant; CRL task stretches shaded;
- dormant.png: the tau=0.025 dormant fraction per iteration (if logged);
- expert_usage_<variant>.png: task x expert mean routing probability of each
  MoE layer at the last iteration (if logged);
- summary.md: per variant, the final return and normalized score of each task
  (mean [95% CI] over seeds) and, for CRL, the continual metrics.
Logs are read with Dopamine's reader (`dopamine.colab.utils`).
"""

import argparse
import collections
import os
import sys

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pandas as pd
import seaborn as sns

from moe_dopamine.metrics import continual
from moe_dopamine.metrics import run_logs

DORMANT_KEY = 'dormant_fraction_tau0.025'


def find_runs(paths):
  """Run folders (those with logs/) at or below each path."""
  runs = []
  for path in paths:
    for root, dirs, _ in os.walk(path):
      if 'logs' in dirs:
        runs.append(root)
        dirs[:] = []
  return sorted(runs)


def load(run_dirs):
  """({variant: [(run_dir, iterations)]}, bindings common to every run)."""
  labels, common = run_logs.variant_labels(run_dirs)
  variants = collections.defaultdict(list)
  for run_dir in run_dirs:
    variants[labels[run_dir]].append((run_dir, run_logs.load_iterations(run_dir)))
  return dict(variants), common


def returns_frame(variants):
  """Long DataFrame: variant, seed, iteration, task, return, score."""
  rows = []
  for variant, runs in variants.items():
    for seed, (_, iterations) in enumerate(runs):
      returns = run_logs.task_curves(iterations, run_logs.EVAL_RETURN)
      scores = run_logs.task_curves(iterations)
      if not returns:  # A single-task run: its one evaluation return.
        returns = {'eval': np.array([it['eval_average_return'][0] for it in iterations])}
      for task, curve in returns.items():
        for i, value in enumerate(curve):
          score = scores[task][i] if task in scores else np.nan
          rows.append((variant, seed, i, task, value, score))
  return pd.DataFrame(
      rows, columns=['variant', 'seed', 'iteration', 'task', 'return', 'score']
  )


def shade_stretches(axis, iterations):
  """Grey bands for the CRL task stretches, each labelled with its task."""
  tasks = run_logs.train_tasks(iterations)
  names = [t for t in dict.fromkeys(tasks) if t not in (None, 'mixed')]
  for index, name in enumerate(names):
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
  first_run = next(iter(variants.values()))[0][1]
  title = 'evaluation return (mean, 95% bootstrap CI over seeds)'
  for task, task_frame in frame.groupby('task'):
    if len(variants) <= MAX_VARIANTS_PER_AXES:
      figure, axis = plt.subplots(figsize=(8, 6))
      shade_stretches(axis, first_run)
      sns.lineplot(data=task_frame, x='iteration', y='return', hue='variant',
                   errorbar=('ci', 95), n_boot=1000, seed=0, ax=axis)
      axis.set_title(f'{task}: {title}')
      legend_below(axis)
    else:
      grid = sns.relplot(data=task_frame, x='iteration', y='return', col='variant',
                         col_wrap=4, kind='line', errorbar=('ci', 95), n_boot=1000,
                         seed=0, height=2.4, aspect=1.3,
                         facet_kws={'sharey': True})
      for axis in grid.axes.flat:
        shade_stretches(axis, first_run)
      grid.set_titles('{col_name}', size=8)
      grid.figure.suptitle(f'{task}: {title}', y=1.02)
      figure = grid.figure
    path = os.path.join(out, f'curves_{task}.png')
    figure.savefig(path, dpi=80, bbox_inches='tight')
    plt.close(figure)
    paths.append(path)
  return paths


def plot_dormant(variants, out):
  rows = [
      (variant, seed, i, it[DORMANT_KEY][0])
      for variant, runs in variants.items()
      for seed, (_, iterations) in enumerate(runs)
      for i, it in enumerate(iterations)
      if DORMANT_KEY in it
  ]
  if not rows:
    return None
  frame = pd.DataFrame(rows, columns=['variant', 'seed', 'iteration', 'fraction'])
  figure, axis = plt.subplots(figsize=(8, 6))
  sns.lineplot(data=frame, x='iteration', y='fraction', hue='variant',
               errorbar=('ci', 95), n_boot=1000, seed=0, ax=axis)
  axis.set_title('dormant neurons (tau = 0.025), all hidden layers')
  legend_below(axis)
  path = os.path.join(out, 'dormant.png')
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  plt.close(figure)
  return path


def usage_matrices(runs):
  """{layer: (tasks, matrix task x expert)} at the last iteration, seed mean."""
  per_layer = collections.defaultdict(lambda: collections.defaultdict(list))
  for _, iterations in runs:
    for key, value in iterations[-1].items():
      if key.startswith('expert_usage_'):
        task, _, layer = key[len('expert_usage_'):].partition('/')
        per_layer[layer][task].append(np.ravel(value))
  return {
      layer: (sorted(tasks), np.array([np.mean(tasks[t], axis=0) for t in sorted(tasks)]))
      for layer, tasks in per_layer.items()
  }


def plot_usage(variants, out):
  paths = []
  for index, (variant, runs) in enumerate(variants.items()):
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
    path = os.path.join(out, f'expert_usage_{index}.png')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    paths.append((variant, path))
  return paths


def fmt(mean, low, high):
  return f'{mean:.2f} [{low:.2f}, {high:.2f}]' if np.isfinite(mean) else 'n/a'


def summary_table(variants, last):
  """Markdown: final return and score per task, and continual metrics."""
  lines = ['| variant | seeds | task | final return | final normalized score |',
           '|---|---|---|---|---|']
  metric_lines = ['| variant | seeds | average performance P | forgetting F |',
                  '|---|---|---|---|']
  for variant, runs in variants.items():
    curves = [run_logs.task_curves(its, run_logs.EVAL_RETURN) for _, its in runs]
    scores = [run_logs.task_curves(its) for _, its in runs]
    if not curves[0]:
      curves = [{'eval': np.array([it['eval_average_return'][0] for it in its])}
                for _, its in runs]
    for task in curves[0]:
      finals = [continual.final_score(c[task], last) for c in curves]
      final_scores = [continual.final_score(s[task], last) for s in scores if task in s]
      lines.append(
          f'| {variant} | {len(runs)} | {task} | {fmt(*continual.bootstrap_ci(finals))} | '
          f'{fmt(*continual.bootstrap_ci(final_scores))} |'
      )
    trained = [run_logs.train_tasks(its) for _, its in runs]
    if scores[0] and any(t not in (None, 'mixed') for t in trained[0]):
      perf = [continual.average_performance(s, last) for s in scores]
      forget = [np.mean(list(continual.forgetting(s, t, last).values()))
                for s, t in zip(scores, trained)]
      metric_lines.append(
          f'| {variant} | {len(runs)} | {fmt(*continual.bootstrap_ci(perf))} | '
          f'{fmt(*continual.bootstrap_ci(forget))} |'
      )
    elif scores[0]:
      perf = [continual.average_performance(s, last) for s in scores]
      metric_lines.append(
          f'| {variant} | {len(runs)} | {fmt(*continual.bootstrap_ci(perf))} | n/a (MTRL) |'
      )
  return lines, metric_lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('paths', nargs='+', help='run or sweep folders')
  parser.add_argument('--out', required=True)
  parser.add_argument('--last', type=int, default=3,
                      help='evaluations averaged for the final values')
  args = parser.parse_args(argv)
  run_dirs = find_runs(args.paths)
  if not run_dirs:
    print(f'moe_dopamine.plot: error: no run folder (with logs/) under {args.paths}',
          file=sys.stderr)
    return 2
  os.makedirs(args.out, exist_ok=True)
  variants, common = load(run_dirs)
  frame = returns_frame(variants)
  curve_paths = plot_curves(frame, variants, args.out)
  dormant_path = plot_dormant(variants, args.out)
  usage_paths = plot_usage(variants, args.out)
  lines, metric_lines = summary_table(variants, args.last)

  report = [f'# Summary of {len(run_dirs)} runs, {len(variants)} variants', '',
            f'Final values: mean of the last {args.last} evaluations; '
            'mean [95% bootstrap CI] over seeds.']
  if common:
    report += ['', 'Bindings of every run: ' + ', '.join(f'`{b}`' for b in common) + '.']
  report += ['', '## Returns', ''] + lines
  if len(metric_lines) > 2:
    report += ['', '## Continual metrics (normalized scores)', ''] + metric_lines
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
