"""Continual-learning metrics (Continual World, Wolczyk et al., 2021).

p_i(t) in [0, 1] is the normalized score of task i at evaluation t (every
iteration evaluates every task). With T the last evaluation:
- average performance P = (1/N) sum_i p_i(T);
- forgetting F_i = p_i(end of task i's training) - p_i(T);
- forward transfer FT_i = (AUC_i - AUC_i^ref) / (1 - AUC_i^ref), with AUC_i
  the mean of p_i over task i's (first) training stretch and AUC_i^ref the
  same for a single-task run of task i from scratch, over as many iterations.
p_i(T) is the mean of the last `last` evaluations (FINAL_WINDOW = 5, as
Continual World), to damp evaluation noise.
Forgetting averages the same number of evaluations on both sides, as
Continual World does: the last k evaluations inside task i's (last) stretch
against the last k of the run, k = min(last, stretch length). The
last-trained task therefore has F = 0 exactly. With several cycles, "end of
task i's training" is the end of its last stretch, and forward transfer uses
its first.

Across seeds (`over_seeds`): the mean with a 95% percentile-bootstrap
interval from MIN_SEEDS_FOR_CI seeds on; below that, the interval is only the
range of the values, and is labelled so.
"""

import numpy as np

# Evaluations averaged for a final value, as Continual World (the last 5).
FINAL_WINDOW = 5


def normalized_score(episode_return, random_return, reference_return):
  """clip((R - R_random) / (R_reference - R_random), 0, 1)."""
  score = (np.asarray(episode_return, float) - random_return) / (
      reference_return - random_return
  )
  return np.clip(score, 0.0, 1.0)


def stretches(train_tasks, task):
  """[(start, stop)] index ranges where `task` was the one trained."""
  out, start = [], None
  for i, name in enumerate(list(train_tasks) + [None]):
    if name == task and start is None:
      start = i
    elif name != task and start is not None:
      out.append((start, i))
      start = None
  return out


def final_score(curve, last):
  return float(np.mean(np.asarray(curve, float)[-last:]))


def average_performance(scores, last=1):
  """P: mean over tasks of the final normalized score. scores: {task: [T]}."""
  return float(np.mean([final_score(c, last) for c in scores.values()]))


def end_of_training(curve, train_tasks, task, last=1):
  """(score, window): the mean of the last `window` evaluations inside the
  task's last training stretch, window = min(last, stretch length); None if
  the task was never trained alone."""
  spans = stretches(train_tasks, task)
  if not spans:
    return None
  start, stop = spans[-1]
  window = min(last, stop - start)
  return float(np.mean(np.asarray(curve, float)[stop - window : stop])), window


def forgetting(scores, train_tasks, last=1):
  """{task: F_i} for every task trained at least once (see the module doc)."""
  out = {}
  for task, curve in scores.items():
    trained = end_of_training(curve, train_tasks, task, last)
    if trained:
      at_end, window = trained
      out[task] = float(at_end - final_score(curve, window))
  return out


def stretch_auc(curve, train_tasks, task):
  """(AUC, stretch length): the mean of `curve` over the task's first
  training stretch; None if the task was never trained alone."""
  spans = stretches(train_tasks, task)
  if not spans:
    return None
  start, stop = spans[0]
  return float(np.mean(np.asarray(curve, float)[start:stop])), stop - start


def transfer(auc, reference_auc):
  """FT = (AUC - AUC_ref) / (1 - AUC_ref); NaN if AUC_ref is 1."""
  auc = np.asarray(auc, float)
  if reference_auc >= 1.0:
    return np.full_like(auc, np.nan) if auc.ndim else float('nan')
  return (auc - reference_auc) / (1.0 - reference_auc)


def transfer_over_seeds(aucs, reference_aucs, confidence=0.95, num_resamples=10000, seed=0):
  """(mean FT, low, high) over a variant's runs, resampling the reference
  runs too (as Continual World): each resample draws the variant's runs and
  the reference runs with replacement and computes the mean FT of the drawn
  runs against the drawn references' mean AUC. The point value uses every
  run and every reference."""
  aucs = np.asarray([a for a in aucs if np.isfinite(a)], float)
  reference_aucs = np.asarray([a for a in reference_aucs if np.isfinite(a)], float)
  if not len(aucs) or not len(reference_aucs):
    return float('nan'), float('nan'), float('nan')
  point = float(np.mean(transfer(aucs, reference_aucs.mean())))
  rng = np.random.default_rng(seed)
  drawn = rng.choice(aucs, (num_resamples, len(aucs))).mean(axis=1)
  references = rng.choice(reference_aucs, (num_resamples, len(reference_aucs))).mean(axis=1)
  with np.errstate(divide='ignore', invalid='ignore'):
    values = np.where(references < 1.0, (drawn - references) / (1.0 - references), np.nan)
  values = values[np.isfinite(values)]
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(values, [alpha, 1.0 - alpha]) if len(values) else (np.nan, np.nan)
  return point, float(low), float(high)


def forward_transfer(scores, train_tasks, reference_scores):
  """{task: FT_i} for tasks with a reference curve; NaN if AUC^ref is 1."""
  out = {}
  for task, reference in reference_scores.items():
    spans = stretches(train_tasks, task)
    if task not in scores or not spans:
      continue
    start, stop = spans[0]
    if len(reference) < stop - start:
      raise ValueError(
          f'the reference run of {task} has {len(reference)} evaluations, '
          f'fewer than its stretch of {stop - start} iterations.'
      )
    auc = float(np.mean(scores[task][start:stop]))
    auc_ref = float(np.mean(reference[: stop - start]))
    out[task] = (auc - auc_ref) / (1.0 - auc_ref) if auc_ref < 1.0 else float('nan')
  return out


def run_metrics(scores, train_tasks, references=None, last=None):
  """The continual metrics of one run.

  Args:
    scores: {task: normalized scores over iterations}.
    train_tasks: the task trained at each iteration (None: several, MTRL).
    references: {task: a single-task reference run's scores}, for FT.
    last: evaluations averaged for final values (default FINAL_WINDOW).

  Returns:
    {'P', 'p/<task>', and when tasks were trained one at a time 'F',
     'F/<task>', 'end/<task>' (the score at the end of its training, see
     `end_of_training`), and with references 'FT', 'FT/<task>'}.
  """
  last = FINAL_WINDOW if last is None else last
  out = {'P': average_performance(scores, last)}
  out.update({f'p/{task}': final_score(curve, last) for task, curve in scores.items()})
  for task, curve in scores.items():
    trained = end_of_training(curve, train_tasks, task, last)
    if trained:
      out[f'end/{task}'] = trained[0]
  forgotten = forgetting(scores, train_tasks, last)
  if forgotten:
    out['F'] = float(np.mean(list(forgotten.values())))
    out.update({f'F/{t}': v for t, v in forgotten.items()})
  transfer = forward_transfer(scores, train_tasks, references or {})
  if transfer:
    out['FT'] = float(np.nanmean(list(transfer.values())))
    out.update({f'FT/{t}': v for t, v in transfer.items()})
  return out


MIN_SEEDS_FOR_CI = 5


def over_seeds(values, confidence=0.95, num_resamples=10000, seed=0):
  """{'mean', 'low', 'high', 'n', 'kind'} of per-seed values (NaNs dropped).

  kind is '95% CI' (percentile bootstrap) with at least MIN_SEEDS_FOR_CI
  values, 'range' below: two or three seeds bound nothing, they only span.
  """
  finite = [v for v in values if np.isfinite(v)]
  if len(finite) >= MIN_SEEDS_FOR_CI:
    mean, low, high = bootstrap_ci(finite, confidence, num_resamples, seed)
    kind = f'{confidence:.0%} CI'
  elif finite:
    mean, low, high = float(np.mean(finite)), float(min(finite)), float(max(finite))
    kind = 'range'
  else:
    mean = low = high = float('nan')
    kind = 'range'
  return {'mean': mean, 'low': low, 'high': high, 'n': len(finite), 'kind': kind}


def format_over_seeds(summary, digits=3):
  """'0.512 [0.401, 0.633] (95% CI, n=5)' or '... (range, n=2)'."""
  if summary['n'] == 0:
    return 'n/a'
  f = f'{{:.{digits}f}}'
  return (
      f"{f.format(summary['mean'])} [{f.format(summary['low'])}, "
      f"{f.format(summary['high'])}] ({summary['kind']}, n={summary['n']})"
  )


def bootstrap_ci(values, confidence=0.95, num_resamples=10000, seed=0):
  """(mean, low, high): percentile bootstrap of the mean over `values`."""
  values = np.asarray([v for v in values if np.isfinite(v)], float)
  if len(values) == 0:
    return float('nan'), float('nan'), float('nan')
  rng = np.random.default_rng(seed)
  means = rng.choice(values, (num_resamples, len(values))).mean(axis=1)
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(means, [alpha, 1.0 - alpha])
  return float(values.mean()), float(low), float(high)
