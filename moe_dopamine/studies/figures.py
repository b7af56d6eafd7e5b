r"""Figures of a study's results tables (see moe_dopamine.results).

- `curves`: per task, one panel per variant: the variant's normalized score
  with a 95% bootstrap band over seeds, the baseline's (another colour,
  labelled, with its band) and the single-task reference placed where the
  panel's variant first trains the task (what forward transfer is measured
  against);
- `overlay`: per task, the arms of an ablation (e.g. replay kept vs cleared)
  in one panel, each in its own colour with its band, plus the reference;
- `dormant`: small multiples of a per-iteration diagnostic (dormant
  fraction), the baseline's band in every panel, task switches marked;
- `screening`: per task, each seed's raw evaluation return over training
  steps with the random return, the learned threshold and the candidate
  stretches (the chosen one solid);
- `usage`: one expert-usage heatmap per seed (expert labels are arbitrary per
  seed, so seeds are never averaged), one colour bar.

Colours keep one meaning across every panel and figure: a task's training
stretch is shaded with `task_colour(task)` whatever the task order; the
panel's variant is VARIANT_COLOUR, the baseline BASELINE_COLOUR (grey-blue),
the single-task reference REFERENCE_COLOUR (dashed). Stretch labels sit in a
strip at the top of each panel that holds no data.

The figures are matplotlib `Figure`s drawn on the Agg canvas and never
registered with pyplot: nothing stays open after saving, and nothing here
changes the process's backend or rcParams. Every function returns the paths
it wrote (file names reduced to [A-Za-z0-9_.-]); with `return_axes=True` it
also returns the Axes, whose artists carry a `gid` naming their role
(GIDS), so tests and notebooks can inspect what was drawn.
"""

import colorsys
import contextlib
import hashlib
import math
import os
import re

import matplotlib
from matplotlib import colors as mcolors
from matplotlib import lines as mlines
from matplotlib import patches as mpatches
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from moe_dopamine.metrics import continual

DEFAULT_ITERATION_STEPS = 1000  # Runner.training_steps of rows logged without train_steps.


def iteration_label(table):
  """The x label of per-iteration curves: the training steps an iteration of
  `table`'s runs took (their median, to the nearest thousand from 1,000 up)."""
  steps = table['train_steps'].dropna() if 'train_steps' in table else None
  n = float(steps.median()) if steps is not None and len(steps) else DEFAULT_ITERATION_STEPS
  n = int(round(n, -3)) if n >= 1000 else int(round(n))
  return f'iteration ({n:,} training steps)'
Y_LABEL = 'normalized score'
DPI = 110
MAX_COLUMNS = 4
MTRL_TASK = 'all'  # train_task of multi-task iterations (results.MTRL_TASK).

TASK_COLOURS = {
    'CartPole': '#E0C200',
    'MountainCar': '#009E73',
    'Acrobot': '#CC79A7',
    'Breakout': '#E69F00',
    'SpaceInvaders': '#56B4E9',
    'Asterix': '#0072B2',
    'Freeway': '#882255',
    'Seaquest': '#999933',
}
VARIANT_COLOUR = '#D55E00'
BASELINE_COLOUR = '#4A6D99'
REFERENCE_COLOUR = '#1A1A1A'
ARM_COLOURS = ('#D55E00', '#0072B2', '#7B3294', '#1B7837', '#B8860B', '#C51B7D')
STRETCH_ALPHA = 0.16
# Artist roles (gid) a caller may look for in the returned Axes.
GIDS = ('variant', 'variant_band', 'baseline', 'baseline_band', 'reference',
        'reference_band', 'arm', 'arm_band', 'stretch', 'stretch_label', 'switch',
        'heatmap', 'seed', 'mean', 'random', 'threshold', 'candidate')

_RC = {
    'font.size': 9,
    'axes.titlesize': 9,
    'axes.labelsize': 9,
    'xtick.labelsize': 8,
    'ytick.labelsize': 8,
    'legend.fontsize': 9,
    'figure.titlesize': 10,
}
# Score panels: data in [0, 1], the stretch labels in the strip above it.
_SCORE_LIMITS = (-0.03, 1.16)
_LABEL_Y = 0.95  # axes fraction of the stretch labels' centre.
_DATA_TOP = 0.85  # axes fraction the data of a free-scaled panel stays below.
_USAGE_LABELS = {
    'top1': "share of the task's states\nrouted to it first (top-1)",
    'usage': 'mean routing probability',
}


# ---------------------------------------------------------------- colours, names


def task_colour(task):
  """The colour of `task`: fixed for the known tasks, else a hue from its
  name's digest (the same in every process, unlike hash())."""
  task = str(task)
  if task in TASK_COLOURS:
    return TASK_COLOURS[task]
  digest = int(hashlib.md5(task.encode('utf-8')).hexdigest(), 16)
  hue = (digest % 360) / 360.0
  return mcolors.to_hex(colorsys.hsv_to_rgb(hue, 0.55, 0.75))


def _iteration_ticks():
  """Integer iteration ticks at round steps (0, 10, 20, ...)."""
  return ticker.MaxNLocator(nbins=8, integer=True, steps=[1, 2, 2.5, 5, 10])


def _darker(colour, amount=0.45):
  """`colour` mixed with black: readable text in a task's shade."""
  red, green, blue = mcolors.to_rgb(colour)
  return mcolors.to_hex((red * (1 - amount), green * (1 - amount), blue * (1 - amount)))


def safe_name(text):
  """`text` with every run of characters outside [A-Za-z0-9_.-] made one '_'."""
  name = re.sub(r'[^A-Za-z0-9_.-]+', '_', str(text)).strip('_')
  return name or 'figure'


def _output_path(path):
  """`path` with a safe file name, its folder created."""
  folder, name = os.path.split(path)
  if folder:
    os.makedirs(folder, exist_ok=True)
  return os.path.join(folder, safe_name(name))


def _wrap(text, width=48):
  """`text` broken into lines of about `width` characters, at spaces or after
  '__' (variant names carry their bindings after '__')."""
  pieces = [p for p in re.split(r'(?<=__)|(?<= )', str(text)) if p]
  lines, line = [], ''
  for piece in pieces:
    if line and len(line) + len(piece) > width:
      lines.append(line.rstrip())
      line = ''
    line += piece
  lines.append(line.rstrip())
  return '\n'.join(lines)


# ---------------------------------------------------------------- statistics


def band(frame, value='eval_score', resamples=2000):
  """(iterations, mean, low, high): per iteration, the mean over runs (seeds)
  of `value` with its 95% percentile-bootstrap interval
  (continual.bootstrap_ci). A run with several rows at an iteration counts
  once, with their mean; NaNs are left out."""
  key = 'run' if 'run' in frame.columns else 'seed'
  per_run = frame.groupby(['iteration', key])[value].mean()
  iterations, means, lows, highs = [], [], [], []
  for iteration, values in per_run.groupby(level='iteration'):
    mean, low, high = continual.bootstrap_ci(
        values.to_numpy(float), num_resamples=resamples, seed=0)
    iterations.append(iteration)
    means.append(mean)
    lows.append(low)
    highs.append(high)
  return (np.asarray(iterations, int), np.asarray(means, float),
          np.asarray(lows, float), np.asarray(highs, float))


def dormant_frame(scores, column='dormant_tau0.1'):
  """The `dormant` input from a scores table: one row per run x iteration
  (run, variant, seed, iteration, train_task, value = `column`)."""
  frame = scores.drop_duplicates(['run', 'iteration']).sort_values(['run', 'iteration'])
  keep = [c for c in ('run', 'variant', 'seed', 'iteration', 'train_task') if c in frame]
  out = frame[keep].copy()
  out['value'] = frame[column].to_numpy(float)
  return out.reset_index(drop=True)


# ---------------------------------------------------------------- schedules


def _schedule(frame, variant):
  """(iterations, train_tasks) of `variant`'s first run (by run name), or
  None when `frame` has no train_task column."""
  if 'train_task' not in frame.columns:
    return None
  rows = frame[frame['variant'] == variant]
  first = sorted(rows['run'].unique())[0]
  per_iteration = rows[rows['run'] == first].drop_duplicates('iteration').sort_values('iteration')
  return (per_iteration['iteration'].to_numpy(int),
          per_iteration['train_task'].astype(str).to_numpy())


def stretches(schedule):
  """[(task, start, stop)]: the contiguous stretches of a schedule
  (iterations, train_tasks); iterations start..stop-1 train `task`."""
  if schedule is None:
    return []
  iterations, trained = schedule
  out = []
  for iteration, task in zip(iterations, trained):
    if out and out[-1][0] == task and out[-1][2] == iteration:
      out[-1] = (task, out[-1][1], iteration + 1)
    else:
      out.append((task, int(iteration), int(iteration) + 1))
  return out


def stretch_start(stretch_list, task):
  """Where the single-task reference of `task` starts: the first iteration of
  the first stretch training `task`, 0 in multi-task training, None if the
  schedule never trains it."""
  for name, start, _ in stretch_list:
    if name == task:
      return start
  if any(name == MTRL_TASK for name, _, _ in stretch_list):
    return 0
  return None


# ---------------------------------------------------------------- drawing


@contextlib.contextmanager
def _style():
  with matplotlib.rc_context(_RC):
    yield


def _grid(count, panel_width=3.5, panel_height=2.8, extra_height=1.6, sharey=True):
  """A constrained-layout Figure with `count` panels, up to MAX_COLUMNS a row;
  panels beyond `count` removed; x tick labels kept on every panel that is
  the lowest of its column."""
  columns = min(MAX_COLUMNS, count)
  rows = math.ceil(count / columns)
  figure = Figure(figsize=(max(6.5, panel_width * columns + 0.7),
                           panel_height * rows + extra_height), layout='constrained')
  FigureCanvasAgg(figure)
  axes = figure.subplots(rows, columns, sharex=True, sharey=sharey, squeeze=False)
  for index, axis in enumerate(axes.flat):
    if index >= count:
      axis.remove()
  panels = list(axes.flat)[:count]
  bottom = [index + columns >= count for index in range(count)]
  for axis, lowest in zip(panels, bottom):
    if lowest:
      axis.xaxis.set_tick_params(labelbottom=True)
  return figure, panels, bottom, columns


def _shade(axis, stretch_list, switches=False):
  """Shades each training stretch in its task's colour and names it in the
  strip above the data; with `switches`, a dashed line at every task switch,
  each stretch labelled from its start ('-> task')."""
  transform = axis.get_xaxis_transform()
  for index, (task, start, stop) in enumerate(stretch_list):
    if task == MTRL_TASK:
      text, colour = 'all tasks (multi-task)', '0.3'
    else:
      text, colour = task, _darker(task_colour(task))
      axis.axvspan(start - 0.5, stop - 0.5, color=task_colour(task), alpha=STRETCH_ALPHA,
                   lw=0, zorder=0, gid='stretch')
    if switches:
      if index:
        axis.axvline(start - 0.5, color='0.25', ls='--', lw=1.0, zorder=1, gid='switch')
        text = f'\u2192 {text}'
      axis.text(start - 0.5 + 0.01 * (stop - start), _LABEL_Y, ' ' + text, transform=transform,
                ha='left', va='center', fontsize=8, color=colour, clip_on=True,
                gid='stretch_label')
    else:
      axis.text((start + stop - 1) / 2, _LABEL_Y, text, transform=transform, ha='center',
                va='center', fontsize=8, color=colour, clip_on=True, gid='stretch_label')


def _draw_band(axis, curve, colour, role, label=None, alpha=0.25, lw=1.6, ls='-', shift=0,
               zorder=3):
  """Mean line and bootstrap band of `curve` (band()'s tuple), x + `shift`."""
  x, mean, low, high = curve[:4]
  x = np.asarray(x, float) + shift
  axis.fill_between(x, low, high, color=colour, alpha=alpha, lw=0, zorder=zorder,
                    gid=f'{role}_band')
  axis.plot(x, mean, color=colour, lw=lw, ls=ls, zorder=zorder + 0.5, gid=role,
            label=label)


def _stretch_handles(stretch_lists):
  tasks = []
  for stretch_list in stretch_lists:
    for task, _, _ in stretch_list:
      if task != MTRL_TASK and task not in tasks:
        tasks.append(task)
  return [mpatches.Patch(color=task_colour(t), alpha=STRETCH_ALPHA * 2, label=f'training {t}')
          for t in tasks]


def _band_handle(colour, label, ls='-', alpha=0.25):
  """A legend entry showing a line over its band."""
  return (mpatches.Patch(color=colour, alpha=alpha, lw=0),
          mlines.Line2D([], [], color=colour, ls=ls, lw=1.6)), label


def _legend(figure, entries):
  """One legend for the figure, below the panels, as many columns as fit."""
  handles = [e[0] for e in entries]
  labels = [_wrap(e[1], 40) for e in entries]
  columns = max(1, min(len(entries), int(figure.get_figwidth() // 3.7)))
  figure.legend(handles, labels, loc='outside lower center', frameon=False, ncol=columns,
                handlelength=2.4)


def _score_axis(axis, x_label, y_label, show_x_label, show_y_label):
  axis.set_ylim(*_SCORE_LIMITS)
  axis.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
  axis.xaxis.set_major_locator(_iteration_ticks())
  axis.grid(axis='y', color='0.9', lw=0.6, zorder=0)
  if show_x_label:
    axis.set_xlabel(x_label)
  if show_y_label:
    axis.set_ylabel(y_label)


def _save(figure, path, tight=False):
  """Writes the figure; `tight` trims it to what is drawn (a colour bar's
  label outside the axes stays in the image)."""
  path = _output_path(path)
  figure.savefig(path, dpi=DPI, **({'bbox_inches': 'tight', 'pad_inches': 0.1} if tight else {}))
  return path


def _require(frame, variants, what='scores'):
  present = set(frame['variant'].unique())
  missing = [v for v in variants if v not in present]
  if missing:
    raise ValueError(f'no rows in {what} for variant(s) {missing}')


def _reference_curve(scores, references, task, value, resamples):
  """(name, band() + (runs,)) of the single-task reference of `task`, or
  (None, None) without one."""
  name = (references or {}).get(task)
  if name is None:
    return None, None
  rows = scores[(scores['variant'] == name) & (scores['task'] == task)]
  if not len(rows):
    raise ValueError(f'no scores of the reference {name!r} on {task}')
  if 'setting' in rows and set(rows['setting']) != {'single'}:
    raise ValueError(f'reference {name!r} of {task} is not single-task: '
                     f'settings {sorted(set(rows["setting"]))}')
  return name, band(rows, value, resamples) + (_seeds(rows),)


def _tasks(frame):
  return list(dict.fromkeys(frame['task']))


def _seeds(frame):
  return frame['run'].nunique() if 'run' in frame else frame['seed'].nunique()


# ---------------------------------------------------------------- figures


def curves(scores, variants, baseline, references, path_prefix, labels=None, title='',
           x_label=None, value='eval_score', resamples=2000, return_axes=False):
  """One figure per task the variants evaluate, `<path_prefix>_<task>.png`:
  a panel per variant with its mean and 95% bootstrap band of `value`, the
  baseline's (except in the baseline's own panel), and the single-task
  reference (`references`: {task: variant of single-task runs}) from the
  start of the panel variant's first training stretch of the task (0 in
  multi-task training). Returns the paths, and with `return_axes`
  ({task: {variant: Axes}}) too. `x_label`: iteration_label(scores) if None."""
  x_label = x_label or iteration_label(scores)
  variants = list(variants)
  labels = dict(labels or {})
  _require(scores, variants + ([baseline] if baseline else []))
  chosen = scores[scores['variant'].isin(variants)]
  paths, all_axes = [], {}
  with _style():
    for task in _tasks(chosen):
      on_task = chosen[chosen['task'] == task]
      panel_variants = [v for v in variants if (on_task['variant'] == v).any()]
      base, base_rows = None, scores[(scores['variant'] == baseline) & (scores['task'] == task)]
      if baseline and len(base_rows):
        base = band(base_rows, value, resamples)
      reference_name, reference = _reference_curve(scores, references, task, value, resamples)
      figure, panels, bottom, columns = _grid(len(panel_variants))
      stretch_lists = []
      all_axes[task] = {}
      for index, (axis, variant) in enumerate(zip(panels, panel_variants)):
        stretch_list = stretches(_schedule(scores, variant))
        stretch_lists.append(stretch_list)
        _shade(axis, stretch_list)
        start = stretch_start(stretch_list, task)
        if reference is not None and start is not None:
          _draw_band(axis, reference, REFERENCE_COLOUR, 'reference', alpha=0.1, lw=1.2,
                     ls='--', shift=start, zorder=2)
        if base is not None and variant != baseline:
          _draw_band(axis, base, BASELINE_COLOUR, 'baseline', alpha=0.22, lw=1.3, zorder=3)
        rows = on_task[on_task['variant'] == variant]
        own = BASELINE_COLOUR if variant == baseline else VARIANT_COLOUR
        _draw_band(axis, band(rows, value, resamples), own,
                   'baseline' if variant == baseline else 'variant', zorder=4)
        name = labels.get(variant, variant)
        suffix = ' \u2014 baseline' if variant == baseline else ''
        axis.set_title(_wrap(f'{name} (n={_seeds(rows)}){suffix}'))
        _score_axis(axis, x_label, Y_LABEL, bottom[index], index % columns == 0)
        axis.set_xlim(-0.5, rows['iteration'].max() + 0.5)
        all_axes[task][variant] = axis
      entries = []
      if any(v != baseline for v in panel_variants):
        entries.append(_band_handle(VARIANT_COLOUR, "the panel's variant"))
      if base is not None:
        entries.append(_band_handle(
            BASELINE_COLOUR, f'baseline: {labels.get(baseline, baseline)} (n={_seeds(base_rows)})'))
      if reference is not None:
        entries.append(_band_handle(
            REFERENCE_COLOUR, f'single-task reference: {labels.get(reference_name, reference_name)}'
            f' (n={reference[4]}), from the start of the training stretch', ls='--', alpha=0.1))
      entries += [(h, h.get_label()) for h in _stretch_handles(stretch_lists)]
      _legend(figure, entries)
      heading = f'{title}: {task}' if title else task
      figure.suptitle(f'{heading} \u2014 {Y_LABEL} per iteration\n'
                      'mean and 95% bootstrap band over seeds (n = runs)')
      paths.append(_save(figure, f'{path_prefix}_{task}.png'))
  return (paths, all_axes) if return_axes else paths


def overlay(scores, arms, references, path_prefix, title='', x_label=None,
            value='eval_score', resamples=2000, return_axes=False):
  """One figure per task, `<path_prefix>_<task>.png`, with every arm
  ({label: variant}) in its own colour with its band in one panel, the
  single-task reference from the start of the task's first stretch, and the
  stretches shaded (all from the first arm's first run). Returns the paths,
  and with `return_axes` ({task: Axes}) too. `x_label`: iteration_label(scores)
  if None."""
  x_label = x_label or iteration_label(scores)
  arms = dict(arms)
  _require(scores, list(arms.values()))
  chosen = scores[scores['variant'].isin(list(arms.values()))]
  stretch_list = stretches(_schedule(scores, next(iter(arms.values()))))
  paths, all_axes = [], {}
  with _style():
    for task in _tasks(chosen):
      figure = Figure(figsize=(7.4, 4.6), layout='constrained')
      FigureCanvasAgg(figure)
      axis = figure.subplots()
      _shade(axis, stretch_list)
      reference_name, reference = _reference_curve(scores, references, task, value, resamples)
      start = stretch_start(stretch_list, task)
      entries = []
      if reference is not None and start is not None:
        _draw_band(axis, reference, REFERENCE_COLOUR, 'reference', alpha=0.1, lw=1.2, ls='--',
                   shift=start, zorder=2)
        entries.append(_band_handle(
            REFERENCE_COLOUR, f'single-task reference: {reference_name} (n={reference[4]})',
            ls='--', alpha=0.1))
      last = 0
      for index, (label, variant) in enumerate(arms.items()):
        rows = chosen[(chosen['variant'] == variant) & (chosen['task'] == task)]
        if not len(rows):
          continue
        colour = ARM_COLOURS[index % len(ARM_COLOURS)]
        _draw_band(axis, band(rows, value, resamples), colour, 'arm', label=label, alpha=0.2,
                   zorder=3 + index)
        entries.append(_band_handle(colour, f'{label}: {variant} (n={_seeds(rows)})', alpha=0.2))
        last = max(last, rows['iteration'].max())
      entries += [(h, h.get_label()) for h in _stretch_handles([stretch_list])]
      _score_axis(axis, x_label, Y_LABEL, True, True)
      axis.set_xlim(-0.5, last + 0.5)
      _legend(figure, entries)
      heading = f'{title}: {task}' if title else task
      figure.suptitle(f'{heading} \u2014 {Y_LABEL} per iteration\n'
                      'mean and 95% bootstrap band over seeds')
      paths.append(_save(figure, f'{path_prefix}_{task}.png'))
      all_axes[task] = axis
  return (paths, all_axes) if return_axes else paths


def dormant(frame, variants, baseline, path, title='',
            value_label='dormant fraction (tau = 0.1)', labels=None, x_label=None,
            resamples=2000, return_axes=False):
  """Small multiples of a per-iteration value (`frame`: run, variant, seed,
  iteration, value; optional train_task): a panel per variant with its mean
  and band, the baseline's band (grey-blue) in every other panel, shared y;
  with train_task, stretches shaded and every task switch marked and
  labelled. Returns the path, and with `return_axes` ({variant: Axes}) too.
  `x_label`: iteration_label(frame) if None."""
  x_label = x_label or iteration_label(frame)
  variants = list(variants)
  labels = dict(labels or {})
  _require(frame, variants + ([baseline] if baseline else []), 'frame')
  curves_of = {v: band(frame[frame['variant'] == v], 'value', resamples)
               for v in dict.fromkeys(variants + ([baseline] if baseline else []))}
  highs = np.concatenate([c[3] for c in curves_of.values()])
  top = np.nanmax(highs) if np.isfinite(highs).any() else 1.0
  top = max(top, 1e-6) / _DATA_TOP
  all_axes = {}
  with _style():
    figure, panels, bottom, columns = _grid(len(variants))
    stretch_lists = []
    for index, (axis, variant) in enumerate(zip(panels, variants)):
      stretch_list = stretches(_schedule(frame, variant))
      stretch_lists.append(stretch_list)
      _shade(axis, stretch_list, switches=True)
      if baseline and variant != baseline:
        _draw_band(axis, curves_of[baseline], BASELINE_COLOUR, 'baseline', alpha=0.22, lw=1.3)
      own = BASELINE_COLOUR if variant == baseline else VARIANT_COLOUR
      _draw_band(axis, curves_of[variant], own,
                 'baseline' if variant == baseline else 'variant', zorder=4)
      rows = frame[frame['variant'] == variant]
      suffix = ' \u2014 baseline' if variant == baseline else ''
      axis.set_title(_wrap(f'{labels.get(variant, variant)} (n={_seeds(rows)}){suffix}'))
      axis.set_ylim(0, top)
      axis.set_xlim(-0.5, rows['iteration'].max() + 0.5)
      axis.xaxis.set_major_locator(_iteration_ticks())
      axis.grid(axis='y', color='0.9', lw=0.6, zorder=0)
      if bottom[index]:
        axis.set_xlabel(x_label)
      if index % columns == 0:
        axis.set_ylabel(value_label)
      all_axes[variant] = axis
    entries = []
    if any(v != baseline for v in variants):
      entries.append(_band_handle(VARIANT_COLOUR, "the panel's variant"))
    if baseline:
      base_rows = frame[frame['variant'] == baseline]
      entries.append(_band_handle(
          BASELINE_COLOUR, f'baseline: {labels.get(baseline, baseline)} (n={_seeds(base_rows)})',
          alpha=0.22))
    if any(len(s) > 1 for s in stretch_lists):
      entries.append((mlines.Line2D([], [], color='0.25', ls='--', lw=1.0), 'task switch'))
    entries += [(h, h.get_label()) for h in _stretch_handles(stretch_lists)]
    _legend(figure, entries)
    figure.suptitle(f'{title + ": " if title else ""}{value_label} per iteration\n'
                    'mean and 95% bootstrap band over seeds')
    path = _save(figure, path)
  return (path, all_axes) if return_axes else path


def usage(experts, variant, path, value='top1', title='', return_axes=False, per_row=10):
  """Expert usage of `variant`: a task x expert heatmap per seed (a row of
  seeds per MoE layer), each run at its last iteration that measured
  `value`, cells annotated, colours 0..1 with one colour bar. Seeds are not
  averaged: expert labels are arbitrary per seed. More than `per_row` seeds
  wrap onto further rows (each layer's block of rows in turn). Returns the
  path, and with `return_axes` ({(layer, seed): Axes}) too."""
  rows = experts[(experts['variant'] == variant) & np.isfinite(experts[value].to_numpy(float))]
  if not len(rows):
    raise ValueError(f'no expert {value!r} rows for variant {variant!r}')
  last = rows.groupby('run')['iteration'].transform('max')
  rows = rows[rows['iteration'] == last]
  layers = list(dict.fromkeys(rows['layer']))
  runs = (rows.drop_duplicates('run').sort_values(['seed', 'run'])[['run', 'seed', 'iteration']]
          .itertuples(index=False))
  runs = list(runs)
  tasks = _tasks(rows)
  num_experts = rows['expert'].nunique()
  columns = min(len(runs), per_row)
  blocks = -(-len(runs) // columns)  # Rows of seeds per layer.
  cell = 0.5
  width = max(7.0, columns * (num_experts * cell + 0.45) + 2.4)
  height = len(layers) * blocks * (len(tasks) * cell + 0.9) + 1.5
  cmap = matplotlib.colormaps['viridis']
  all_axes = {}
  with _style():
    figure = Figure(figsize=(width, height), layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(layers) * blocks, columns, squeeze=False)
    for index in range(len(runs), blocks * columns):
      for layer_index in range(len(layers)):  # Unused cells of a last, shorter row.
        axes[layer_index * blocks + index // columns, index % columns].set_axis_off()
    image = None
    for layer_index, layer in enumerate(layers):
      for index, run in enumerate(runs):
        row, column = layer_index * blocks + index // columns, index % columns
        axis = axes[row, column]
        table = (rows[(rows['run'] == run.run) & (rows['layer'] == layer)]
                 .pivot_table(index='task', columns='expert', values=value, aggfunc='mean')
                 .reindex(index=tasks))
        matrix = table.to_numpy(float)
        image = axis.imshow(matrix, vmin=0, vmax=1, cmap=cmap, aspect='auto', gid='heatmap')
        for (i, j), cell_value in np.ndenumerate(matrix):
          if np.isfinite(cell_value):
            red, green, blue, _ = cmap(cell_value)
            light = 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5
            axis.text(j, i, f'{cell_value:.2f}', ha='center', va='center', fontsize=8,
                      color='black' if light else 'white')
        axis.set_xticks(range(matrix.shape[1]), [str(e) for e in table.columns])
        axis.set_yticks(range(len(tasks)), tasks if column == 0 else [''] * len(tasks))
        axis.tick_params(length=0)
        axis.set_title(f'seed {run.seed} (iteration {run.iteration})', fontsize=8)
        if index + columns >= len(runs):  # Lowest heatmap of its column in this layer.
          axis.set_xlabel('expert')
        if column == 0:
          axis.set_ylabel(f'layer {layer}')
        all_axes[(layer, run.seed)] = axis
    figure.colorbar(image, ax=list(all_axes.values()), label=_USAGE_LABELS.get(value, value),
                    shrink=0.9, fraction=0.04, pad=0.02)
    figure.suptitle(f'{title or variant}: expert {value} per seed at its last measured '
                    'iteration\nexpert numbers are arbitrary per seed: compare patterns, not '
                    'columns, across seeds')
    path = _save(figure, path, tight=True)
  return (path, all_axes) if return_axes else path


def aligned_usage(by_layer, variant, path, value='top1', title='', return_axes=False):
  """Expert usage of `variant` over its runs with experts matched across
  runs (measurements.aligned_usage's {layer: (tasks, aligned, seeds)}): a
  task x matched-expert heatmap per layer of the mean over runs, each cell
  annotated with the mean and the runs' range. Returns the path, and with
  `return_axes` ({layer: Axes}) too."""
  if not by_layer:
    raise ValueError(f'no expert {value!r} matrices for variant {variant!r}')
  cmap = matplotlib.colormaps['viridis']
  layers = list(by_layer)
  num_tasks = max(len(tasks) for tasks, _, _ in by_layer.values())
  num_experts = max(aligned.shape[2] for _, aligned, _ in by_layer.values())
  all_axes = {}
  with _style():
    figure = Figure(figsize=(max(5.0, len(layers) * (num_experts * 0.95 + 1.2) + 1.6),
                             num_tasks * 0.75 + 2.2), layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(layers), squeeze=False)[0]
    image = None
    for axis, layer in zip(axes, layers):
      tasks, aligned, seeds = by_layer[layer]
      mean, low, high = aligned.mean(axis=0), aligned.min(axis=0), aligned.max(axis=0)
      image = axis.imshow(mean, vmin=0, vmax=1, cmap=cmap, aspect='auto', gid='heatmap')
      for (i, j), cell_value in np.ndenumerate(mean):
        red, green, blue, _ = cmap(cell_value)
        light = 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5
        axis.text(j, i, f'{cell_value:.2f}\n({low[i, j]:.2f}-{high[i, j]:.2f})', ha='center',
                  va='center', fontsize=7, color='black' if light else 'white')
      axis.set_xticks(range(mean.shape[1]), [str(e) for e in range(mean.shape[1])])
      axis.set_yticks(range(len(tasks)), tasks)
      axis.tick_params(length=0)
      axis.set_xlabel('matched expert')
      axis.set_title(f'layer {layer}: {len(seeds)} runs', fontsize=9)
      all_axes[layer] = axis
    figure.colorbar(image, ax=list(all_axes.values()), label=_USAGE_LABELS.get(value, value),
                    shrink=0.9, fraction=0.05, pad=0.02)
    figure.suptitle(_wrap(f'{title or variant}: expert {value}, experts matched across runs '
                          '(Hungarian), mean (range over runs)', 70))
    path = _save(figure, path, tight=True)
  return (path, all_axes) if return_axes else path


def screening(scores, rows, iteration_steps, chosen, path, title='', return_axes=False):
  """Per task, one panel: each seed's evaluation return (thin) and their mean
  (bold) against training steps, the random policy's return (dashed), the
  learned threshold (dotted) and the candidate stretches (vertical; the
  chosen one solid). `rows` is studies.screening.table's frame."""
  tasks = _tasks(scores)
  all_axes = {}
  with _style():
    figure, panels, bottom, columns = _grid(len(tasks), panel_height=2.6, sharey=False)
    for index, (axis, task) in enumerate(zip(panels, tasks)):
      frame = scores[scores['task'] == task]
      steps = (frame['iteration'] + 1) * iteration_steps / 1000
      for seed, run in frame.assign(steps=steps).groupby('seed'):
        axis.plot(run['steps'], run['eval_return'], color=VARIANT_COLOUR, lw=0.8, alpha=0.45,
                  gid='seed')
      mean = frame.assign(steps=steps).groupby('steps')['eval_return'].mean()
      axis.plot(mean.index, mean.to_numpy(), color=VARIANT_COLOUR, lw=2.0, gid='mean')
      task_rows = rows[rows['task'] == task]
      axis.axhline(task_rows['random_return'].iloc[0], color=REFERENCE_COLOUR, ls='--', lw=1.0,
                   gid='random')
      axis.axhline(task_rows['threshold'].max(), color=BASELINE_COLOUR, ls=':', lw=1.2,
                   gid='threshold')
      for stretch in sorted(task_rows['stretch'].unique()):
        axis.axvline(stretch / 1000, color='0.35', lw=1.2 if stretch == chosen else 0.7,
                     ls='-' if stretch == chosen else (0, (2, 3)), gid='candidate')
      axis.set_title(task)
      axis.grid(axis='y', color='0.9', lw=0.6, zorder=0)
      if bottom[index]:
        axis.set_xlabel('training steps (thousands)')
      if index % columns == 0:
        axis.set_ylabel('evaluation return')
      axis.tick_params(labelleft=True)
      all_axes[task] = axis
    entries = [
        (mlines.Line2D([], [], color=VARIANT_COLOUR, lw=0.8, alpha=0.6), 'one seed'),
        (mlines.Line2D([], [], color=VARIANT_COLOUR, lw=2.0), 'mean over seeds'),
        (mlines.Line2D([], [], color=REFERENCE_COLOUR, ls='--'), 'random policy'),
        (mlines.Line2D([], [], color=BASELINE_COLOUR, ls=':'), 'learned threshold'),
        (mlines.Line2D([], [], color='0.35', ls=(0, (2, 3))), 'candidate stretch'),
    ]
    if chosen:
      entries.append((mlines.Line2D([], [], color='0.35', lw=1.2), 'chosen stretch'))
    _legend(figure, entries)
    if title:
      figure.suptitle(title)
    path = _save(figure, path)
  return (path, all_axes) if return_axes else path
