r"""The study's report, regenerated from its results tables alone.

  python -m moe_dopamine.study report [--results docs/study/results] [--out docs/study]

Reads the tidy tables of moe_dopamine.results (no run folder is needed) and
writes into --out:
- README.md: the protocol and its single-task curves, per setting the tables
  (parameters, measured training steps/s, final return and normalized score per
  task, P / F / FT for CRL, each mean [95% CI] over seeds), the aggregate
  interquartile mean and probability of improvement over the baseline
  (rliable), dormant and unused-expert fractions, the replay and task-order
  comparisons, the adaptive routers, per claim of the paper a verdict with
  the comparison that decides it, and the cost tables: the study's networks
  beside their scores (docs/study/cost.csv, from python -m moe_dopamine.cost
  --family=study --csv=...) and the single-task variants (docs/cost.md);
- figures/: curves_<group>_<task>.png (per variant, mean and 95% bootstrap
  band over seeds, the baseline in every panel, CRL stretches shaded),
  dormant_<group>.png (tau 0.025 and 0.1 over training), and
  expert_usage_<variant>.png (task x expert mean routing probability, at
  each run's last iteration that measured it).
Every formula comes from moe_dopamine.metrics (continual, aggregate).
"""

import collections
import os
import re
import sys
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker  # pylint: disable=g-import-not-at-top

from moe_dopamine import cli
from moe_dopamine import cost
from moe_dopamine import results
from moe_dopamine.study import architecture
from moe_dopamine.study import BASELINE
from moe_dopamine.study import DEFAULT_SEEDS
from moe_dopamine.study import HEADLINE_VARIANTS
from moe_dopamine.metrics import aggregate
from moe_dopamine.metrics import continual

LAST = 3  # Evaluations averaged for final values (and both sides of F).
BAND_RESAMPLES = 2000
# rliable's stratified-bootstrap repetitions for every IQM and probability of
# improvement.
BOOTSTRAP_REPS = 2000
HEADLINE = 'big_softmoe'
LEARNED = 0.5  # A task counts as learned (or kept) at a final normalized score >= LEARNED.


def tags(variant):
  """The grid part of a variant name ('' for none)."""
  return variant.partition('__')[2]


def file_name(label):
  return re.sub(r'[^A-Za-z0-9._+-]+', '_', label).strip('_')


def cell(values, digits=2):
  return continual.format_over_seeds(
      continual.over_seeds(list(values)), digits
  ).replace(' (95% CI, n=', ' (n=')


# ---------------------------------------------------------------- per run


def run_curves(run_frame):
  """({task: scores}, {task: returns}, train tasks per iteration) of one run."""
  run_frame = run_frame.sort_values('iteration')
  scores, returns = {}, {}
  for task, rows in run_frame.groupby('task', sort=False):
    scores[task] = rows['eval_score'].to_numpy(float)
    returns[task] = rows['eval_return'].to_numpy(float)
  per_iteration = run_frame.drop_duplicates('iteration')
  trained = [None if t == results.MTRL_TASK else t for t in per_iteration['train_task']]
  return scores, returns, trained


def reference_curves(scores_table):
  """{task: mean normalized-score curve over the single-task runs' seeds}."""
  single = scores_table[scores_table['setting'] == 'single']
  out = {}
  for task, rows in single.groupby('task'):
    out[task] = rows.groupby('iteration')['eval_score'].mean().sort_index().to_numpy(float)
  return out


def run_table(scores_table, references, last=LAST):
  """One row per run: variant, seed, final return/score per task, P, F, FT
  (final values: the mean of the last `last` evaluations)."""
  rows = []
  for run, frame in scores_table.groupby('run', sort=False):
    scores, returns, trained = run_curves(frame)
    first = frame.iloc[0]
    row = {'run': run, 'variant': first['variant'], 'seed': first['seed'],
           'setting': first['setting'], 'num_parameters': first['num_parameters'],
           'steps_per_second': frame['train_steps_per_second'].median()}
    for task in scores:
      row[f'return/{task}'] = continual.final_score(returns[task], last)
    crl = first['setting'] == 'crl'
    usable = {t: r for t, r in references.items() if crl and t in scores}
    metrics = continual.run_metrics(scores, trained, usable, last)
    row.update(metrics)
    per_iteration = frame.drop_duplicates('iteration')
    for column in ('dormant_tau0.025', 'dormant_tau0.1', 'unused_experts'):
      values = per_iteration[column].to_numpy(float)
      finite = values[np.isfinite(values)]
      row[f'{column}/mean'] = float(finite.mean()) if len(finite) else np.nan
      row[f'{column}/final'] = float(finite[-last:].mean()) if len(finite) else np.nan
    rows.append(row)
  return pd.DataFrame(rows)


# ---------------------------------------------------------------- figures


def _stretches(trained):
  names = [t for t in dict.fromkeys(trained) if t is not None]
  return [(name, span) for name in names for span in continual.stretches(trained, name)]


def _band(frame, value):
  """(iterations, mean, low, high) over seeds of `value` per iteration."""
  iterations, means, lows, highs = [], [], [], []
  for iteration, rows in frame.groupby('iteration'):
    values = rows[value].to_numpy(float)
    mean, low, high = continual.bootstrap_ci(values, num_resamples=BAND_RESAMPLES)
    iterations.append(iteration)
    means.append(mean)
    lows.append(low)
    highs.append(high)
  return np.array(iterations), np.array(means), np.array(lows), np.array(highs)


def _figure_path(out_dir, kind, group, suffix=''):
  """<out_dir>/<kind>[_<group>][_<suffix>].png ('' group: none)."""
  parts = [kind] + [file_name(p) for p in (group, suffix) if p]
  return os.path.join(out_dir, '_'.join(parts) + '.png')


def baseline_of(variant):
  """The baseline of `variant`'s setting with the same grid tags (the same
  task order, the same replay)."""
  setting = variant.split('_', 1)[0]
  return f'{setting}_{BASELINE}' + (f'__{tags(variant)}' if tags(variant) else '')


def panel_baseline(variant, variants, baseline_variant):
  """The baseline drawn beside `variant`: baseline_of(variant) when the figure
  has it, else `baseline_variant`."""
  same = baseline_of(variant)
  return same if same in variants else baseline_variant


def plot_curves(group_frame, group, out_dir, baseline_variant=None, value='eval_return'):
  """One figure per task: a panel per variant that evaluates the task, the
  mean of the baseline with the same tags (panel_baseline) dashed in every
  other panel, each variant's training stretches shaded."""
  paths = []
  for task, task_frame in group_frame.groupby('task', sort=False):
    variants = list(dict.fromkeys(task_frame['variant']))
    columns = min(4, len(variants))
    rows = int(np.ceil(len(variants) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows + 0.6),
                                sharex=True, sharey=True, squeeze=False)
    references = {v: panel_baseline(v, variants, baseline_variant) for v in variants}
    bands = {b: _band(task_frame[task_frame['variant'] == b], value)
             for b in set(references.values()) if b in variants}
    for axis, variant in zip(axes.flat, variants):
      base = bands.get(references[variant])
      frame = task_frame[task_frame['variant'] == variant]
      first_run = group_frame[group_frame['run'] == frame['run'].iloc[0]]
      _, _, trained = run_curves(first_run)
      if len(set(trained)) > 1:  # CRL: shade who trains when.
        for index, (name, (start, stop)) in enumerate(_stretches(trained)):
          axis.axvspan(start - 0.5, stop - 0.5, color=('0.86', '0.95')[index % 2], lw=0)
          axis.text((start + stop - 1) / 2, 0.02, name, ha='center', va='bottom', fontsize=6,
                    color='0.35', transform=axis.get_xaxis_transform())
      if base is not None and variant != references[variant]:
        axis.plot(base[0], base[1], color='0.35', lw=1, ls='--')
      x, mean, low, high = _band(frame, value)
      axis.plot(x, mean, color='C0', lw=1.4)
      axis.fill_between(x, low, high, color='C0', alpha=0.25, lw=0)
      # n counts runs: an unseeded run has no seed to count.
      axis.set_title(f"{variant} (n={frame['run'].nunique()})", fontsize=7)
      axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
      axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(variants):]:
      axis.set_visible(False)
    title = f"{group + ', ' if group else ''}{task}: evaluation return per iteration"
    subtitle = 'mean and 95% bootstrap band over seeds'
    if len(bands) > 1:
      subtitle += '; dashed: the baseline with the same bindings (task order, replay)'
    elif bands and len(variants) > 1:
      subtitle += f'; dashed: {next(iter(bands))}'
    width = 55 * columns
    figure.suptitle(textwrap.fill(title, width) + '\n' + textwrap.fill(subtitle, width),
                    fontsize=8)
    figure.tight_layout()
    path = _figure_path(out_dir, 'curves', group, task)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    paths.append(path)
  return paths


def plot_dormant(group_frame, group, out_dir):
  per_iteration = group_frame.drop_duplicates(['run', 'iteration'])
  columns = [c for c in ('dormant_tau0.025', 'dormant_tau0.1')
             if np.isfinite(per_iteration[c].to_numpy(float)).any()]
  if not columns:
    return None
  figure, axes = plt.subplots(1, len(columns), figsize=(7 * len(columns), 4.5), squeeze=False)
  variants = list(dict.fromkeys(per_iteration['variant']))
  palette = dict(zip(variants, sns.color_palette(
      'tab10' if len(variants) <= 10 else 'tab20', len(variants))))
  for axis, column in zip(axes[0], columns):
    data = per_iteration[np.isfinite(per_iteration[column].to_numpy(float))]
    sns.lineplot(data=data, x='iteration', y=column, hue='variant', palette=palette,
                 errorbar=('ci', 95), n_boot=1000, seed=0, ax=axis, marker='o',
                 markersize=3, lw=1)
    axis.set_title(f'{group + ": " if group else ""}dormant fraction, tau = {column.split("tau")[1]} '
                   '(every expert on the whole batch)', fontsize=9)
    axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axis.legend(fontsize=6, ncol=2)
  figure.tight_layout()
  path = _figure_path(out_dir, 'dormant', group)
  figure.savefig(path, dpi=80)
  plt.close(figure)
  return path


def usage_matrices(expert_frame):
  """{layer: (tasks, [task x expert] mean usage over runs)}, each run at its
  last iteration that measured usage."""
  if not len(expert_frame):
    return {}
  last = expert_frame.groupby('run')['iteration'].transform('max')
  frame = expert_frame[expert_frame['iteration'] == last]
  out = {}
  for layer, rows in frame.groupby('layer'):
    table = rows.groupby(['task', 'expert'])['usage'].mean().unstack('expert').sort_index()
    out[layer] = (list(table.index), table.to_numpy(float))
  return out


def plot_usage(expert_frame, out_dir):
  paths = []
  for variant, frame in expert_frame.groupby('variant', sort=False):
    matrices = usage_matrices(frame)
    if not matrices:
      continue
    figure, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 2.2),
                                squeeze=False)
    for axis, (layer, (task_list, matrix)) in zip(axes[0], matrices.items()):
      sns.heatmap(matrix, annot=True, fmt='.2f', vmin=0, vmax=1, cmap='viridis',
                  yticklabels=task_list, ax=axis, cbar=False, annot_kws={'fontsize': 7})
      axis.set_yticklabels(task_list, rotation=0, fontsize=7)
      axis.set_xlabel('expert', fontsize=7)
      axis.set_title(layer, fontsize=8)
    figure.suptitle(f'expert usage: {variant} (n={frame["run"].nunique()})', fontsize=8)
    figure.tight_layout()
    path = os.path.join(out_dir, f'expert_usage_{file_name(variant)}.png')
    figure.savefig(path, dpi=80)
    plt.close(figure)
    paths.append((variant, path))
  return paths


# ---------------------------------------------------------------- tables


def variant_table(runs, tasks):
  """Markdown: per variant, parameters, steps/s, final return and score per
  task, and the continual metrics present."""
  metrics = [m for m in ('P', 'F', 'FT') if m in runs.columns and runs[m].notna().any()]
  header = (['variant', 'seeds', 'parameters', 'train steps/s']
            + [f'{t} return' for t in tasks] + [f'{t} score' for t in tasks] + metrics)
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for variant, frame in runs.groupby('variant', sort=False):
    parameters = ', '.join(f'{int(p):,}' for p in sorted(frame['num_parameters'].dropna().unique()))
    cells = [variant, str(len(frame)), parameters, f"{frame['steps_per_second'].median():.0f}"]
    cells += [cell(frame[f'return/{t}'], 1) if f'return/{t}' in frame else 'n/a' for t in tasks]
    cells += [cell(frame[f'p/{t}']) if f'p/{t}' in frame else 'n/a' for t in tasks]
    cells += [cell(frame[m]) if m in frame and frame[m].notna().any() else 'n/a'
              for m in metrics]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def retention_lines(runs, tasks):
  """Markdown: per variant, how many runs end with each task learned (final
  normalized score >= LEARNED) and how many end with every task learned. P
  alone cannot tell a run that keeps half of each task from one that keeps one
  task and loses the other."""
  header = ['variant', 'runs'] + [f'{t} >= {LEARNED}' for t in tasks] + ['every task']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for variant, frame in runs.groupby('variant', sort=False):
    columns = [f'p/{t}' for t in tasks]
    if not all(c in frame for c in columns):
      continue
    learned = frame[columns].to_numpy(float) >= LEARNED
    cells = [variant, str(len(frame))] + [str(int(n)) for n in learned.sum(axis=0)]
    cells.append(str(int(learned.all(axis=1).sum())))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def per_task_lines(runs, tasks):
  """Markdown: per variant and task, the score at the end of the task's
  training (did it learn the task in its stretch?), its forgetting F and its
  forward transfer FT, each as mean [95% CI] over seeds. The last-trained
  task's F is 0 by definition and is left out."""
  last_trained = {t for t in tasks
                  if f'F/{t}' in runs and np.allclose(runs[f'F/{t}'].dropna(), 0.0)}
  columns = ([(f'end/{t}', f'{t} at the end of its training') for t in tasks]
             + [(f'F/{t}', f'F {t}') for t in tasks if t not in last_trained]
             + [(f'FT/{t}', f'FT {t}') for t in tasks])
  columns = [(key, title) for key, title in columns if key in runs and runs[key].notna().any()]
  if not columns:
    return []
  lines = ['| variant | ' + ' | '.join(title for _, title in columns) + ' |',
           '|---|' + '---|' * len(columns)]
  for variant, frame in runs.groupby('variant', sort=False):
    cells = [cell(frame[key]) if key in frame and frame[key].notna().any() else 'n/a'
             for key, _ in columns]
    lines.append(f'| {variant} | ' + ' | '.join(cells) + ' |')
  return lines


def score_arrays(runs, tasks):
  """{variant: [runs, tasks] final normalized scores}."""
  out = {}
  for variant, frame in runs.groupby('variant', sort=False):
    columns = [f'p/{t}' for t in tasks]
    if all(c in frame for c in columns):
      out[variant] = frame[columns].to_numpy(float)
  return out


def aggregate_lines(arrays, baseline):
  iqms = aggregate.iqm(arrays, reps=BOOTSTRAP_REPS)
  improvement = (aggregate.probability_of_improvement(arrays, baseline, reps=BOOTSTRAP_REPS)
                 if baseline in arrays else {})
  lines = [f'| variant | runs | IQM of final normalized scores [95% CI] | '
           f'P(variant > {baseline}) [95% CI] |', '|---|---|---|---|']
  for variant, (value, low, high) in iqms.items():
    poi = improvement.get(variant)
    poi_text = f'{poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]' if poi else '-'
    lines.append(f'| {variant} | {len(arrays[variant])} | {value:.2f} [{low:.2f}, {high:.2f}] '
                 f'| {poi_text} |')
  return lines, iqms, improvement


def dormant_lines(runs):
  lines = ['| variant | dormant tau=0.025 (mean over training) | dormant tau=0.1 (mean over '
           'training) | dormant tau=0.1 (last evaluations) | unused experts (mean) |',
           '|---|---|---|---|---|']
  for variant, frame in runs.groupby('variant', sort=False):
    unused = frame['unused_experts/mean']
    lines.append(f"| {variant} | {cell(frame['dormant_tau0.025/mean'], 3)} | "
                 f"{cell(frame['dormant_tau0.1/mean'], 3)} | "
                 f"{cell(frame['dormant_tau0.1/final'], 3)} | "
                 f"{cell(unused, 3) if unused.notna().any() else 'n/a (no MoE)'} |")
  return lines


# ---------------------------------------------------------------- claims


def _poi(arrays, a, b):
  """(P(a > b), low, high), or None if either is missing."""
  if a not in arrays or b not in arrays:
    return None
  value = aggregate.probability_of_improvement(
      {a: arrays[a], b: arrays[b]}, b, reps=BOOTSTRAP_REPS)[a]
  return value


def _fmt_poi(name_a, name_b, poi):
  return f'P({name_a} > {name_b}) = {poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]'


def _difference_ci(a, b, num_resamples=10000, seed=0):
  """(mean(a) - mean(b), low, high): bootstrap over the seeds of each."""
  a = np.asarray([v for v in a if np.isfinite(v)], float)
  b = np.asarray([v for v in b if np.isfinite(v)], float)
  if not len(a) or not len(b):
    return None
  rng = np.random.default_rng(seed)
  diffs = (rng.choice(a, (num_resamples, len(a))).mean(1)
           - rng.choice(b, (num_resamples, len(b))).mean(1))
  low, high = np.quantile(diffs, [0.025, 0.975])
  return float(a.mean() - b.mean()), float(low), float(high)


def _untested_placements(arrays, routers=('softmoe', 'topk'), min_seeds=len(DEFAULT_SEEDS)):
  """The qualifier of a placement claim whose grid lacks some placements, or
  has a placement only in part (a router missing, or fewer than `min_seeds`
  seeds)."""
  missing, partial = [], []
  for placement in ('middle', 'final', 'all'):
    runs = {architecture(v): len(a) for v, a in arrays.items()
            if architecture(v).startswith(f'{placement}_')}
    if not runs:
      missing.append(placement.capitalize())
    elif any(runs.get(f'{placement}_{r}', 0) < min_seeds for r in routers):
      partial.append(placement.capitalize())
  if len(missing) == 3:
    return ' against the baselines only (Middle, Final and All not yet run)'
  words = ([f"{' and '.join(missing)} not yet run"] if missing else []) + (
      [f"{' and '.join(partial)} only in part"] if partial else [])
  return f" ({'; '.join(words)})" if words else ''


def _majority_verdict(for_claim, against, total):
  """'supported' if most comparisons clearly go the claim's way and none
  clearly against it; 'not supported' if more go clearly against it than for
  it; else 'inconclusive' ('not yet run' without comparisons)."""
  if not total:
    return 'not yet run'
  if for_claim > total / 2 and not against:
    return 'supported'
  if against > for_claim:
    return 'not supported'
  return 'inconclusive'


def _ablation_lines(ablations):
  """Claim 1's headline comparison (Big SoftMoE against the baseline) in each
  ablation: both variants with the ablation's bindings."""
  lines = []
  for label, (runs, tasks) in (ablations or {}).items():
    a = score_arrays(runs, tasks)
    for variant in a:
      if architecture(variant) == HEADLINE and tags(variant):
        base = baseline_of(variant)
        poi = _poi(a, variant, base)
        if poi is not None:
          lines.append(f'{label}, beside the verdict (which is on the default protocol): '
                       + _fmt_poi(variant, base, poi)
                       + f'; P {a[variant].mean():.2f} (n={len(a[variant])}) against '
                       f'{a[base].mean():.2f} (n={len(a[base])}).')
  return lines


MIN_SEEDS = len(DEFAULT_SEEDS)  # Fewer seeds: listed, not counted in a verdict.
NOT_COUNTED = f'not counted: fewer than {MIN_SEEDS} seeds'


def _seeds_note(*counts):
  """'' if every side has MIN_SEEDS seeds, else the note of a comparison the
  verdicts leave out."""
  return '' if min(counts) >= MIN_SEEDS else f" (n={min(counts)}, {NOT_COUNTED})"


def judge_claims(groups, ablations=None):
  """[(claim, verdict, evidence lines)] from the per-group run tables.

  groups: {'crl': (runs, tasks), 'mtrl': (runs, tasks)}; ablations: {label:
  (runs, tasks)} of the CRL ablations, whose headline comparison claim 1 also
  lists. A comparison is "clear" when the 95% CI of the probability of
  improvement excludes 0.5 (or the CI of a difference excludes 0). Only
  comparisons with at least MIN_SEEDS seeds on both sides count; the others
  are listed with their seed count. Claims 1 and 2 judge the Big placement
  with learned routing, Big SoftMoE (the study's headline) first; hardcoded
  routing is the task-id control of claim 5.
  """
  out = []
  arrays = {g: score_arrays(r, t) for g, (r, t) in groups.items()}

  def name(group, arch):
    return f'{group}_{arch}'

  def learned_big(variant):
    return architecture(variant) in ('big_softmoe', 'big_topk')

  # Claim 1: in CRL, Big beats the other placements and the baseline.
  if 'crl' in arrays:
    a = arrays['crl']
    bigs = [v for v in (name('crl', HEADLINE), name('crl', 'big_topk')) if v in a]
    big = bigs[0] if bigs else None
    evidence, wins, losses, counted = [], 0, 0, 0
    others = [v for v in a if not architecture(v).startswith('big')]
    for other in others:
      poi = _poi(a, big, other) if big else None
      if poi is None:
        continue
      note = _seeds_note(len(a[big]), len(a[other]))
      evidence.append(_fmt_poi(big, other, poi) + note)
      if not note:
        counted += 1
        wins += poi[1] > 0.5
        losses += poi[2] < 0.5
    base = name('crl', BASELINE)
    if big is None or not evidence:
      verdict = 'not yet run'
    elif not counted:
      verdict = f'not yet run at {MIN_SEEDS} seeds'
    elif wins == counted:
      verdict = 'supported'
    elif losses or (base in a and not _seeds_note(len(a[big]), len(a[base]))
                    and _poi(a, big, base)[2] < 0.5):
      verdict = 'not supported'
    else:
      verdict = 'inconclusive'
    if evidence:
      verdict += _untested_placements(a)
    summary = [f'Big with learned routing: {big}; it clearly beats {wins} of {counted} other '
               f'variants counted, clearly loses to {losses}.'] if big else []
    for other_big in bigs[1:]:
      results_of = [_poi(a, other_big, o) for o in others
                    if not _seeds_note(len(a[other_big]), len(a[o]))]
      results_of = [r for r in results_of if r is not None]
      summary.append(f'{other_big}, beside it: clearly beats '
                     f'{sum(r[1] > 0.5 for r in results_of)} of {len(results_of)}, clearly '
                     f'loses to {sum(r[2] < 0.5 for r in results_of)}.')
    out.append(('1. In CRL, Big beats the other placements and the baseline.', verdict,
                summary + evidence + _ablation_lines(ablations)))

  # Claim 2: in MTRL, only Big clearly beats the baseline.
  if 'mtrl' in arrays:
    a = arrays['mtrl']
    base = name('mtrl', BASELINE)
    evidence, clear, big_upper = [], [], []
    for variant in a:
      if variant == base or architecture(variant) == 'baseline_matched':
        continue
      poi = _poi(a, variant, base)
      if poi is None:
        continue
      note = _seeds_note(len(a[variant]), len(a[base]))
      if architecture(variant) == 'big_hardcoded':
        note = ' (task-id control, not counted)'
      evidence.append(_fmt_poi(variant, base, poi) + note)
      if note:
        continue
      if poi[1] > 0.5:
        clear.append(variant)
      if learned_big(variant):
        big_upper.append(poi[2])
    big_clear = [v for v in clear if learned_big(v)]
    other_clear = [v for v in clear if not learned_big(v)]
    if not evidence:
      verdict = 'not yet run'
    elif big_clear and not other_clear:
      verdict = 'supported'
    elif other_clear or (big_upper and all(u < 0.5 for u in big_upper)):
      verdict = 'not supported'
    else:
      verdict = 'inconclusive'
    if evidence:
      verdict += _untested_placements(a)
    out.append(('2. In MTRL, only Big clearly beats the baseline.', verdict,
                [f'variants clearly above the baseline: {clear or "none"}'] + evidence))

  # Claim 3: SoftMoE copes with non-stationarity better than TopK.
  evidence, better, worse, total = [], 0, 0, 0
  placements = ('middle', 'final', 'all', 'big')
  for group, a in arrays.items():
    for placement in placements:
      soft, topk = name(group, f'{placement}_softmoe'), name(group, f'{placement}_topk')
      poi = _poi(a, soft, topk)
      if poi is None:
        continue
      note = _seeds_note(len(a[soft]), len(a[topk]))
      evidence.append(f'{group} {placement}: ' + _fmt_poi('SoftMoE', 'TopK', poi) + note)
      if note:
        continue
      total += 1
      better += poi[1] > 0.5
      worse += poi[2] < 0.5
  verdict = _majority_verdict(better, worse, total)
  expected = len(arrays) * len(placements)
  if total and total < expected:
    verdict += (f' ({total} of {expected} placement x setting comparisons have both routers '
                f'at {MIN_SEEDS} seeds)')
  out.append(('3. SoftMoE copes with non-stationarity better than TopK.', verdict,
              [f'SoftMoE clearly better in {better}, clearly worse in {worse} of {total} '
               'placement x setting comparisons counted.'] + evidence))

  # Claim 4: MoE networks keep fewer dormant neurons than the baseline.
  evidence, lower, higher, total = [], 0, 0, 0
  column = 'dormant_tau0.1/mean'
  for group, (runs, _) in groups.items():
    base = runs[runs['variant'] == name(group, BASELINE)][column]
    matched = runs[runs['variant'] == name(group, 'baseline_matched')][column]
    if not len(base):
      continue
    for variant, frame in runs.groupby('variant', sort=False):
      if architecture(variant).startswith(BASELINE):
        continue
      diff = _difference_ci(frame[column], base)
      if diff is None:
        continue
      note = _seeds_note(frame[column].notna().sum(), base.notna().sum())
      evidence.append(f'{variant} - baseline, dormant tau=0.1 (mean over training): '
                      f'{diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}]{note}')
      if learned_big(variant) and len(matched):
        width = _difference_ci(frame[column], matched)
        evidence.append(f'{variant} - matched baseline (the same parameter count; width '
                        f'control, not counted): {width[0]:+.3f} [{width[1]:+.3f}, '
                        f'{width[2]:+.3f}]')
      if note:
        continue
      total += 1
      lower += diff[2] < 0
      higher += diff[1] > 0
  verdict = _majority_verdict(lower, higher, total)
  out.append(('4. MoE networks keep fewer dormant neurons than the baseline.', verdict,
              [f'clearly fewer in {lower}, clearly more in {higher} of {total} MoE variants '
               'counted (95% bootstrap CI of the difference of means over seeds).'] + evidence))

  # Claim 5: learned routing does not always beat hardcoded routing.
  evidence, learned_wins, hardcoded_wins, total = [], 0, 0, 0
  for group, a in arrays.items():
    hard = name(group, 'big_hardcoded')
    for router in ('softmoe', 'topk'):
      learned = name(group, f'big_{router}')
      poi = _poi(a, learned, hard)
      if poi is None:
        continue
      note = _seeds_note(len(a[learned]), len(a[hard]))
      evidence.append(f'{group}: ' + _fmt_poi(f'Big {router}', 'Big hardcoded', poi) + note)
      if note:
        continue
      total += 1
      learned_wins += poi[1] > 0.5
      hardcoded_wins += poi[2] < 0.5
  if not total:
    verdict = 'not yet run'
  elif hardcoded_wins:
    verdict = 'supported'
  elif learned_wins == total:
    verdict = 'not supported'
  else:
    verdict = 'inconclusive'
  out.append(('5. Learned routing does not always beat hardcoded (task-id) routing.', verdict,
              [f'learned routing clearly beats hardcoded in {learned_wins} of {total} '
               f'comparisons counted; hardcoded clearly beats learned in {hardcoded_wins}.']
              + evidence))
  return out


# ---------------------------------------------------------------- report


def compute_lines(cost_rows, runs, tasks):
  """Markdown: the cost of each of the study's networks (rows of
  `python -m moe_dopamine.cost --family=study`, named after their CRL
  configs) beside its score in each setting of `tasks` ({setting: tasks}):
  P in CRL, the mean over tasks of the final normalized scores in MTRL, as
  mean [95% CI] over seeds (the default protocol's runs, no grid tags).
  A soft-to-sparse row at full sparsity shows its variant's scores too."""
  extra = {}
  for setting, title in (('crl', 'CRL P'), ('mtrl', 'MTRL mean score')):
    if setting not in tasks:
      continue
    column = {}
    for row in cost_rows:
      name = row['variant'].removesuffix(cost.FULLY_SPARSE)
      frame = runs[(runs['setting'] == setting)
                   & (runs['variant'] == f'{setting}_{architecture(name)}')]
      if not len(frame):
        continue
      if setting == 'crl':
        column[row['variant']] = cell(frame['P'])
      else:
        column[row['variant']] = cell(frame[[f'p/{t}' for t in tasks[setting]]].mean(axis=1))
    extra[title] = column
  return cost.table(cost_rows, extra).splitlines()


def _group_runs(runs, scores_table, setting, variant_filter):
  keep = runs[(runs['setting'] == setting) & runs['variant'].map(variant_filter)]
  tasks = list(dict.fromkeys(scores_table[scores_table['run'].isin(keep['run'])]['task']))
  return keep, tasks


def protocol_lines(runs, tasks_frame):
  """The single-task criterion: final normalized score >= 0.5 in >= 4 of 5 seeds."""
  lines = ['| variant | task | seeds | final return | final normalized score | '
           f'seeds with score >= {LEARNED} |', '|---|---|---|---|---|---|']
  for variant, frame in runs.groupby('variant', sort=False):
    task = [c[2:] for c in frame.columns if c.startswith('p/') and frame[c].notna().any()][0]
    scores = frame[f'p/{task}']
    lines.append(f"| {variant} | {task} | {len(frame)} | {cell(frame[f'return/{task}'], 1)} | "
                 f'{cell(scores)} | {int((scores >= LEARNED).sum())} of {len(frame)} |')
  return lines


def first_stretch_lines(runs, scores_table):
  """The criterion again on the first stretch of every CRL baseline run, which
  is a single-task run from scratch too (the CRL network, the same settings).
  Emptying the replay at the switch leaves that stretch unchanged, so those
  variants are left out."""
  crl = runs[(runs['setting'] == 'crl') & (runs['variant'].map(architecture) == BASELINE)
             & ~runs['variant'].str.contains('replay_at_task_switch')]
  if not len(crl):
    return []
  first = scores_table.sort_values('iteration').drop_duplicates('run').set_index('run')[
      'train_task']
  lines = ['| variant | first task | seeds | score at the end of its stretch | '
           f'seeds with score >= {LEARNED} |', '|---|---|---|---|---|']
  for variant, frame in crl.groupby('variant', sort=False):
    task = first.get(frame['run'].iloc[0])
    if f'end/{task}' not in frame:
      continue
    scores = frame[f'end/{task}']
    lines.append(f'| {variant} | {task} | {len(frame)} | {cell(scores)} | '
                 f'{int((scores >= LEARNED).sum())} of {len(frame)} |')
  return lines if len(lines) > 2 else []


def screening_lines(screening, stretch):
  """Markdown: per screened setting, each seed's normalized score at the end
  of a `stretch`-iteration stretch (mean of its last LAST evaluations), and
  how many seeds end it at >= 0.5."""
  lines = [f'| setting screened | seeds | score at the end of {stretch} iterations, per seed '
           f'| seeds >= {LEARNED} |', '|---|---|---|---|']
  for variant, frame in screening.groupby('variant', sort=True):
    finals = []
    for _, run in frame[frame['iteration'] < stretch].groupby('run'):
      curve = run.sort_values('iteration')['eval_score'].to_numpy(float)
      if len(curve) >= stretch:
        finals.append(continual.final_score(curve, LAST))
    if finals:
      lines.append(f"| {variant} | {len(finals)} | {', '.join(f'{v:.2f}' for v in finals)} | "
                   f'{sum(v >= LEARNED for v in finals)} of {len(finals)} |')
  return lines


WRITTEN_FOR = re.compile(r'<!--\s*written for (\d+) runs\s*-->')


def conclusions_lines(text, num_runs):
  """The hand-written discussion, included verbatim, behind a warning when
  the tables no longer hold the runs it was written for. It names that number
  in a first-line comment, `<!-- written for N runs -->`."""
  match = WRITTEN_FOR.search(text)
  body = WRITTEN_FOR.sub('', text).strip()
  if match is None:
    warning = ('> This discussion does not say how many runs it was written for (a first line '
               '`<!-- written for N runs -->`): check its numbers against the tables above.')
  elif int(match.group(1)) != num_runs:
    warning = (f'> This discussion was written for {match.group(1)} runs and the tables above '
               f'now hold {num_runs}: where its numbers differ from the tables, the tables are '
               'current.')
  else:
    return [body, '']
  return [warning, '', body, '']


def main(argv=None):
  parser = cli.ArgumentParser(prog='moe_dopamine.study_report',
                              description=__doc__.split('\n')[0])
  parser.add_argument('--results', default=os.path.join('docs', 'study', 'results'))
  parser.add_argument('--out', default=os.path.join('docs', 'study'))
  parser.add_argument('--cost_table', default=os.path.join('docs', 'cost.md'))
  parser.add_argument('--study_cost', default=os.path.join('docs', 'study', 'cost.csv'),
                      help='rows of python -m moe_dopamine.cost --family=study --csv=...')
  parser.add_argument('--protocol', default=os.path.join('docs', 'study', 'protocol.md'),
                      help='Markdown describing the protocol, included verbatim')
  parser.add_argument('--screening', default=os.path.join('docs', 'study', 'screening'),
                      help='results folder of the runs that chose the protocol')
  parser.add_argument('--conclusions', default=os.path.join('docs', 'study', 'conclusions.md'),
                      help='Markdown with the discussion of the results, included verbatim')
  args = parser.parse_args(argv)
  scores_table, expert_table = results.read(args.results)
  if not len(scores_table):
    print(f'moe_dopamine.study_report: error: no results in {args.results} '
          '(run: python -m moe_dopamine.study run)', file=sys.stderr)
    return 2
  figures = os.path.join(args.out, 'figures')
  os.makedirs(figures, exist_ok=True)
  references = reference_curves(scores_table)
  runs = run_table(scores_table, references)
  num_runs = runs['run'].nunique()
  compute_hours = _compute_hours(scores_table)

  report = ['# The study: MoE Q-networks under non-stationarity', '',
            'Regenerate this page (and `figures/`) from the committed results tables with '
            '`.venv/bin/python -m moe_dopamine.study report`; continue the study with '
            '`bash launchers/study.sh` (it runs only what the tables lack).', '',
            f'{num_runs} runs in `results/` ({compute_hours:.1f} h of compute on this machine). '
            f'Final values: mean of the last {LAST} evaluations (10 episodes each). '
            'Cells: mean [95% percentile-bootstrap CI] over seeds (n = seeds); below 5 seeds '
            'the interval is the range.', '']
  for path in (args.protocol,):
    if os.path.exists(path):
      with open(path) as f:
        report += [f.read().strip(), '']

  # Protocol curves.
  single = runs[runs['setting'] == 'single']
  screening, _ = results.read(args.screening)
  if len(screening):
    stretch = int(scores_table[scores_table['setting'] == 'single']['iteration'].max() + 1
                  if len(single) else screening['iteration'].max() + 1)
    report += ['## How the protocol was chosen', '',
               'Single-task baseline runs of the settings screened (DQN, the 512x512 baseline; '
               'n: update_horizon, target: target_update_period, lr: Adam learning rate, eps: '
               'steps of the linear epsilon decay from 1 to 0.01), from '
               f'`{args.screening}`:', ''] + screening_lines(screening, stretch) + ['']
  if len(single):
    report += ['## Single-task runs (the protocol check and the forward-transfer references)',
               ''] + protocol_lines(single, scores_table) + ['']
    first = first_stretch_lines(runs, scores_table)
    if first:
      report += ['The first stretch of every CRL baseline run is a single-task run from scratch '
                 'too, with the CRL network (one output per action of either task, the ones '
                 'a task lacks masked) and the same settings:', ''] + first + ['']
    frame = scores_table[scores_table['setting'] == 'single']
    for path in plot_curves(frame, 'single-task', figures, None):
      report.append(f'![{os.path.basename(path)}](figures/{os.path.basename(path)})')
    report.append('')

  groups = {}
  sections = [
      ('crl', 'CRL: the grid', lambda v: v.startswith('crl_') and not tags(v)
       and 'soft_to_sparse' not in v),
      ('mtrl', 'MTRL: the grid', lambda v: v.startswith('mtrl_') and not tags(v)
       and 'soft_to_sparse' not in v),
  ]
  for setting, title, keep in sections:
    group_runs, tasks = _group_runs(runs, scores_table, setting, keep)
    if not len(group_runs):
      continue
    groups[setting] = (group_runs, tasks)
    report += _group_section(title, setting, group_runs, tasks, scores_table, expert_table,
                             figures, f'{setting}_{BASELINE}')

  # Ablations of the headline comparison.
  ablations = {}
  for title, keep, group in (
      ('CRL, replay buffer emptied at the task switch', lambda v: 'replay_at_task_switch-clear' in v,
       'crl_replay_clear'),
      ('CRL, reversed task order (MountainCar, then CartPole)', lambda v: 'task_names-' in v,
       'crl_reversed'),
      ('CRL, adaptive routers (soft-to-sparse)', lambda v: v.startswith('crl_') and (
          'soft_to_sparse' in v or architecture(v) in HEADLINE_VARIANTS)
       and not tags(v), 'crl_adaptive'),
  ):
    group_runs, tasks = _group_runs(runs, scores_table, 'crl', keep)
    if not len(group_runs) or (group == 'crl_adaptive' and not group_runs['variant'].str.contains(
        'soft_to_sparse').any()):
      continue
    if group in ('crl_replay_clear', 'crl_reversed'):
      ablations[title[len('CRL, '):]] = (group_runs, tasks)
      # Beside the default protocol's headline runs, for comparison.
      default, _ = _group_runs(runs, scores_table, 'crl', lambda v: v in (
          f'crl_{BASELINE}', f'crl_{HEADLINE}'))
      group_runs = pd.concat([default, group_runs])
    baseline = next((v for v in group_runs['variant'] if architecture(v) == BASELINE
                     and tags(v)), f'crl_{BASELINE}')
    report += _group_section(title, group, group_runs, tasks, scores_table, expert_table,
                             figures, baseline,
                             heatmaps=lambda v: bool(tags(v)) or 'soft_to_sparse' in v)

  report += ['## The claims', '']
  for claim, verdict, evidence in judge_claims(groups, ablations):
    report += [f'### {claim}', '', f'**Verdict: {verdict}.**', '']
    report += [f'- {line}' for line in evidence] + ['']
  report += ['A comparison is called clear when its 95% CI excludes no difference (0.5 for a '
             'probability of improvement, 0 for a difference). Scores: the final normalized '
             'score of every task (for CRL, averaged over tasks this is P).', '']
  if os.path.exists(args.conclusions):
    with open(args.conclusions) as f:
      report += conclusions_lines(f.read(), num_runs)
  if os.path.exists(args.study_cost) or os.path.exists(args.cost_table):
    report += ['## What each variant costs', '']
  if os.path.exists(args.study_cost):
    rows = cost.read_csv(args.study_cost)
    measured = 'train ms' in rows[0]
    report += ['### The study\'s networks, beside their scores', '',
               f'From `{args.study_cost}` (regenerate on an otherwise idle machine: '
               '`.venv/bin/python -m moe_dopamine.cost --family=study'
               + (' --measure --repeats=50' if measured else '')
               + f' --csv={args.study_cost}`): each CRL config\'s network as the study trains it '
               '(the MTRL configs build the same ones), at its own number of experts. '
               'Parameters, active parameters and FLOPs are analytic, from the layer shapes'
               + ('; train ms is the median time of one training step (batch of 128: sampling, '
                  'forward, backward, Adam) and act ms of one greedy action, on one thread, '
                  'each with its ratio to the baseline\'s; peak RSS is the peak resident '
                  'memory of that short run (each variant in a fresh process, Python and '
                  'TensorFlow included)' if measured else '')
               + '. A soft-to-sparse router has two rows: its annealing phase (s < 1, every '
               'expert computed) and, ending in "(s = 1)", full sparsity, where it computes '
               'only the chosen experts (the study\'s runs anneal over 10,000 of their 80,000 '
               'training steps).', '']
    report += compute_lines(rows, runs, {k: v[1] for k, v in groups.items()}) + ['']
  if os.path.exists(args.cost_table):
    with open(args.cost_table) as f:
      cost_text = f.read().strip().splitlines()
    report += ['### Single-task variants at 4 and 8 experts', '',
               f'From `{args.cost_table}` (regenerate: `.venv/bin/python -m moe_dopamine.cost '
               f'--measure --repeats=50 --out={args.cost_table}`), beside the measured training '
               'steps/s of the study runs above. Its classic-control networks are CartPole\'s (2 '
               'actions); the study\'s CRL and MTRL networks have one output per action of '
               'the union of the tasks (3), so 513 parameters more per output layer (and per '
               'expert of an MoE output layer).', '']
    # The cost file's own headings sit two levels below this section.
    report += [('##' + line) if line.startswith('## ') else line
               for line in cost_text if not line.startswith('# ')] + ['']
  with open(os.path.join(args.out, 'README.md'), 'w') as f:
    f.write('\n'.join(report) + '\n')
  print(f'wrote {os.path.join(args.out, "README.md")} ({num_runs} runs)')
  return 0


def _compute_hours(scores_table):
  per_iteration = scores_table.drop_duplicates(['run', 'iteration'])
  seconds = 1000.0 / per_iteration['train_steps_per_second'] + per_iteration['eval_seconds']
  return float(np.nansum(seconds)) / 3600


def _group_section(title, group, group_runs, tasks, scores_table, expert_table, figures,
                   baseline, heatmaps=True):
  lines = [f'## {title}', '']
  lines += variant_table(group_runs, tasks) + ['']
  lines += ['Train steps/s: the median over a variant\'s iterations, measured with two runs '
            'sharing two cores (and at times other jobs): a rough guide; the cost table below '
            'has the clean per-step ratios.', '']
  arrays = score_arrays(group_runs, tasks)
  if arrays:
    aggregate_text, _, _ = aggregate_lines(arrays, baseline)
    lines += ['Aggregate over tasks and seeds (rliable: IQM with stratified-bootstrap CI; '
              'probability of improvement over the baseline):', ''] + aggregate_text + ['']
  if group.startswith('crl'):
    lines += [f'Runs that end with each task learned (final normalized score >= {LEARNED}):',
              ''] + retention_lines(group_runs, tasks) + ['']
    per_task = per_task_lines(group_runs, tasks)
    if per_task:
      lines += ['Per task: the normalized score at the end of its training (the last '
                f'{LAST} evaluations of its stretch), its forgetting and its forward '
                'transfer (F and FT above are their means over tasks):', ''] + per_task + ['']
  lines += ['Dormant neurons (ReDo score, every expert on the whole batch) and unused experts:',
            ''] + dormant_lines(group_runs) + ['']
  frame = scores_table[scores_table['run'].isin(group_runs['run'])]
  for path in plot_curves(frame, group, figures, baseline):
    lines.append(f'![{os.path.basename(path)}](figures/{os.path.basename(path)})')
  dormant_path = plot_dormant(frame, group, figures)
  if dormant_path:
    lines.append(f'![dormant](figures/{os.path.basename(dormant_path)})')
  if heatmaps:
    # heatmaps: True for every MoE variant of the group, or a predicate that
    # leaves out the variants another section already draws.
    shown = group_runs['run'] if heatmaps is True else group_runs[
        group_runs['variant'].map(heatmaps)]['run']
    experts = expert_table[expert_table['run'].isin(shown)]
    for variant, path in plot_usage(experts, figures):
      lines.append(f'![expert usage: {variant}](figures/{os.path.basename(path)})')
  return lines + ['']


if __name__ == '__main__':
  sys.exit(main())
