"""Per-run measurements of a study, from its results tables alone.

One row per run (`per_run`): its variant, seed, setting, parameters and
training rate, and every metric a spec can name (moe_dopamine.studies.spec):
P, the final score of each task, F and F per task, FT per task against the
study's reference runs, the score at the end of each task's training, and
the corrected dormant fraction. Every formula is metrics.continual's or
metrics.experts'; final values average the last `window` evaluations.
"""

import numpy as np
import pandas as pd

from moe_dopamine import results
from moe_dopamine.metrics import continual
from moe_dopamine.metrics import experts as expert_metrics

DORMANT_TAU = 0.1
DORMANT_COLUMN = f'dormant_tau{DORMANT_TAU}'


def run_curves(run_frame):
  """({task: normalized scores}, train task per iteration (None in MTRL))."""
  run_frame = run_frame.sort_values('iteration')
  scores = {task: rows['eval_score'].to_numpy(float)
            for task, rows in run_frame.groupby('task', sort=False)}
  per_iteration = run_frame.drop_duplicates('iteration')
  trained = [None if t == results.MTRL_TASK else t for t in per_iteration['train_task']]
  return scores, trained


def reference_aucs(scores_table, references, stretch_lengths):
  """{task: [AUC of each reference run over the task's stretch length]}."""
  out = {}
  for task, variant in references.items():
    if task not in stretch_lengths:
      continue
    frame = scores_table[(scores_table['variant'] == variant) & (scores_table['task'] == task)]
    aucs = []
    for _, rows in frame.groupby('run'):
      curve = rows.sort_values('iteration')['eval_score'].to_numpy(float)
      length = stretch_lengths[task]
      if len(curve) < length:
        raise ValueError(f'the reference run of {task} has {len(curve)} evaluations, fewer '
                         f'than its stretch of {length} iterations.')
      aucs.append(float(np.mean(curve[:length])))
    out[task] = aucs
  return out


def stretch_lengths(scores_table):
  """{task: length of its first stretch} over the CRL runs (the schedule is
  the same in every run of a study; the most common length is kept)."""
  lengths = {}
  for _, frame in scores_table[scores_table['setting'] == 'crl'].groupby('run'):
    scores, trained = run_curves(frame)
    for task in scores:
      spans = continual.stretches(trained, task)
      if spans:
        lengths.setdefault(task, []).append(spans[0][1] - spans[0][0])
  return {t: max(set(v), key=v.count) for t, v in lengths.items()}


def reference_returns(scores_table, references, window):
  """{task: mean over the task's reference runs of the mean evaluation
  return of their last `window` evaluations}: what the single-task baseline
  reaches alone in the study's budget."""
  out = {}
  for task, variant in references.items():
    rows = scores_table[(scores_table['variant'] == variant) & (scores_table['task'] == task)]
    finals = [run.sort_values('iteration')['eval_return'].to_numpy(float)[-window:].mean()
              for _, run in rows.groupby('run')]
    if finals:
      out[task] = float(np.mean(finals))
  return out


def renormalized(scores_table, references, window, random_returns):
  """The scores table with eval_score = continual.normalized_score of each
  evaluation return between the task's random return and its reference
  runs' final return (`reference_returns`), so that 1 is what the dense
  single-task baseline reaches alone in the same budget (Continual World's
  normalization by its reference runs). A task without reference runs keeps
  the score its runs logged; so does the table when it has no such task."""
  finals = reference_returns(scores_table, references, window)
  out = scores_table.copy()
  for task, final in finals.items():
    rows = out['task'] == task
    out.loc[rows, 'eval_score'] = continual.normalized_score(
        out.loc[rows, 'eval_return'].to_numpy(float), random_returns[task], final)
  return out


def per_run(scores_table, dormant_table, references, window, dormant_valid=(),
            variant_references=None):
  """One row per run (see the module doc).

  Args:
    scores_table, dormant_table: results tables.
    references: {task: variant of its single-task runs}.
    window: evaluations averaged for final values.
    dormant_valid: variants whose runs without per-layer dormant rows still
      measured the corrected definition (no hidden MoE output was scored).
    variant_references: {variant: {task: reference variant}} for variants
      whose forward transfer is measured against single-task runs of their
      own network (default: `references` for every variant).

  Returns:
    DataFrame with run, variant, seed, setting, num_parameters,
    steps_per_second, first_task (the task a CRL run trains first), P, score:<task>, end:<task>, F, F:<task>, auc:<task>,
    FT:<task> (against the mean AUC of the reference runs), dormant.
  """
  lengths = stretch_lengths(scores_table)
  variant_references = variant_references or {}
  means = {}

  def reference_means(variant):
    chosen = variant_references.get(variant, references)
    key = tuple(sorted(chosen.items()))
    if key not in means:
      aucs = reference_aucs(scores_table, chosen, lengths)
      means[key] = {t: float(np.mean(v)) for t, v in aucs.items() if v}
    return means[key]

  with_layers = set(dormant_table['run']) if dormant_table is not None else set()
  rows = []
  for run, frame in scores_table.groupby('run', sort=False):
    scores, trained = run_curves(frame)
    first = frame.iloc[0]
    row = {'run': run, 'variant': first['variant'], 'seed': first['seed'],
           'setting': first['setting'], 'num_parameters': first['num_parameters'],
           'steps_per_second': float(frame['train_steps_per_second'].dropna().median())
                               if frame['train_steps_per_second'].notna().any() else np.nan}
    row['first_task'] = trained[0] if first['setting'] == 'crl' and trained else None
    metrics = continual.run_metrics(scores, trained, None, window)
    row['P'] = metrics['P']
    for task in scores:
      row[f'score:{task}'] = metrics[f'p/{task}']
      if f'end/{task}' in metrics:
        row[f'end:{task}'] = metrics[f'end/{task}']
      if f'F/{task}' in metrics:
        row[f'F:{task}'] = metrics[f'F/{task}']
      if first['setting'] == 'crl':
        auc = continual.stretch_auc(scores[task], trained, task)
        if auc is not None:
          row[f'auc:{task}'] = auc[0]
          ref_means = reference_means(first['variant'])
          if task in ref_means:
            row[f'FT:{task}'] = float(continual.transfer(auc[0], ref_means[task]))
    if 'F' in metrics:
      row['F'] = metrics['F']
    per_iteration = frame.drop_duplicates('iteration')
    dormant = per_iteration[DORMANT_COLUMN].to_numpy(float)
    dormant = dormant[np.isfinite(dormant)]
    usable = run in with_layers or first['variant'] in dormant_valid
    row['dormant'] = float(dormant[-window:].mean()) if len(dormant) and usable else np.nan
    rows.append(row)
  return pd.DataFrame(rows)


def values(runs, variant, metric, seeds=None):
  """The per-run values of `metric` for `variant` (NaNs dropped), by seed."""
  frame = runs[runs['variant'] == variant]
  if seeds is not None:
    frame = frame[frame['seed'].isin(seeds)]
  if metric not in frame:
    return np.array([])
  column = frame[metric].to_numpy(float)
  return column[np.isfinite(column)]


def specialization_table(expert_table):
  """One row per run and MoE layer: specialization (NMI of task and top-1
  expert) and the busiest expert's share, at the run's last measurement of
  the most tasks. The statistics are measured on a replayed batch, and a CRL
  run's replay buffer may hold only its last task at the end (MinAtar: a
  100,000-transition buffer, 200,000-step stretches); there, the last
  measurement whose batch held two tasks. `tasks`: the tasks measured,
  `iteration`: when."""
  columns = ['run', 'variant', 'seed', 'layer', 'specialization', 'busiest_share', 'tasks',
             'iteration']
  rows = []
  if expert_table is None or not len(expert_table):
    return pd.DataFrame(columns=columns)
  for run, layer, at, matrix in _usage_matrices(expert_table):
    values = matrix.to_numpy(float)
    rows.append({'run': run, 'variant': at['variant'].iloc[0], 'seed': at['seed'].iloc[0],
                 'layer': layer,
                 'specialization': expert_metrics.specialization(values),
                 'busiest_share': expert_metrics.busiest_share(values),
                 'tasks': ', '.join(sorted(matrix.index)),
                 'iteration': int(at['iteration'].iloc[0])})
  return pd.DataFrame(rows, columns=columns)


def _usage_matrices(expert_table, value='top1'):
  """(run, layer, rows, task x expert matrix of `value`) of every run and
  layer at the run's last measurement of the most tasks (see
  specialization_table), skipping matrices with a missing cell or a task
  without usage."""
  measured = expert_table[np.isfinite(expert_table[value].to_numpy(float))]
  for (run, layer), frame in measured.groupby(['run', 'layer'], sort=False):
    covered = frame.groupby('iteration')['task'].nunique()
    iteration = int(covered[covered == covered.max()].index.max())
    at = frame[frame['iteration'] == iteration]
    matrix = at.pivot_table(index='task', columns='expert', values=value).sort_index()
    values = matrix.to_numpy(float)
    if not np.isfinite(values).all() or (values.sum(axis=1) <= 0).any():
      continue
    yield run, layer, at, matrix


def aligned_usage(expert_table, variant, value='top1'):
  """Per MoE layer of `variant`, its runs' task x expert `value` matrices
  (each at its last measurement of the most tasks) with the experts matched
  across runs (metrics.experts.align), over the runs that measured the
  layer's most common set of tasks. Returns {layer: (tasks, aligned [runs,
  tasks, n], seeds)}."""
  rows = expert_table[expert_table['variant'] == variant]
  by_layer = {}
  for _, layer, at, matrix in _usage_matrices(rows, value):
    by_layer.setdefault(layer, []).append((tuple(matrix.index), at['seed'].iloc[0],
                                           matrix.to_numpy(float)))
  out = {}
  for layer, entries in by_layer.items():
    tasks = pd.Series([t for t, _, _ in entries]).mode()[0]
    kept = sorted(((seed, m) for t, seed, m in entries if t == tasks), key=lambda e: e[0])
    aligned, _ = expert_metrics.align(np.stack([m for _, m in kept]))
    out[layer] = (list(tasks), aligned, [seed for seed, _ in kept])
  return out
