"""A study's comparisons decided: exact tests, Holm within each claim.

For every comparison of the spec (moe_dopamine.studies.spec) the per-run
values of its metric (moe_dopamine.studies.measurements) go through
metrics.inference.compare: the difference of means with its BCa interval,
the Hodges-Lehmann shift with its exact interval, the exact two-sided
permutation p-value, the probability of improvement (per task when the
metric is P: never averaged over tasks that may disagree), and the power
figures (at the family's Bonferroni level, a lower bound on the power under
Holm's adjustment). Within each claim the p-values of its primary comparisons are
Holm-adjusted; a comparison is "clear" when its adjusted p < alpha (while
some of a claim's comparisons wait for their runs, the others get the bounds
of their adjusted p, and a verdict only where the bounds settle it). A claim
is decided by its rule:

- 'all': supported when every comparison is clear as predicted; contradicted
  when any is clear against the prediction;
- 'any': supported when at least one is clear as predicted and none against;
  contradicted when some are clear against and none as predicted; mixed when
  both happen;
- otherwise "not distinguishable at n = ..." (which is not evidence of no
  difference: that takes an equivalence test, reported where the spec sets a
  margin).
Exploratory comparisons get the same figures, unadjusted, and decide nothing.
"""

import dataclasses

import numpy as np

from moe_dopamine.metrics import inference
from moe_dopamine.studies import measurements

MIN_RUNS = 2  # Fewer runs a side: the comparison is not yet testable.
SUPPORTED = 'supported'
CONTRADICTED = 'contradicted'
MIXED = 'mixed'
NOT_YET_RUN = 'not yet run'


@dataclasses.dataclass
class ClaimResult:
  claim: object
  records: list
  verdict: str


def _tasks(runs, variant):
  return sorted(c.split(':', 1)[1] for c in runs.columns
                if c.startswith('score:') and runs.loc[runs['variant'] == variant, c].notna().any())


def seeds_of(comparison, default_seeds):
  """The seeds a comparison counts: its own; seeds 0 .. runs - 1 when it
  registered a number of runs (`runs`); else the study's default seeds, the
  ones it was registered for. Runs added later for other comparisons (more
  seeds of the same variants) never change it."""
  if comparison.seeds is not None:
    return comparison.seeds
  return tuple(range(comparison.runs)) if comparison.runs is not None else default_seeds


def evaluate(comparison, runs, alpha, seed=0, default_seeds=None, family_size=1):
  """The record of one comparison (a dict; without a p-value when a side has
  fewer than MIN_RUNS runs), on seeds_of(comparison, default_seeds), its
  power figures as one of a family of `family_size` (inference.power_figures)."""
  seeds = seeds_of(comparison, default_seeds)
  a = measurements.values(runs, comparison.a, comparison.metric, seeds)
  b = measurements.values(runs, comparison.b, comparison.metric, seeds)
  record = {'comparison': comparison, 'label': comparison.label, 'n_a': len(a), 'n_b': len(b)}
  needed = runs_needed(comparison, seeds)
  if min(len(a), len(b)) < needed:
    # Pre-registered runs not reached: no look at the test before then. A
    # comparison that registered no number of runs waits for every seed it
    # counts.
    record['verdict'] = f'waiting: {min(len(a), len(b))} of {needed} runs a side'
    return record
  if len(a) < MIN_RUNS or len(b) < MIN_RUNS:
    return record
  record.update(inference.compare(a, b, comparison.direction, alpha=alpha,
                                  margin=comparison.margin, seed=seed,
                                  family_size=family_size))
  if comparison.metric == 'P':
    record['poi_per_task'] = poi_per_task(comparison, runs, seeds)
  return record


def poi_per_task(comparison, runs, seeds):
  """{task: P(a > b) of the task's final score}: a comparison of P is
  described per task, never by one probability over the task average."""
  per_task = {}
  for task in _tasks(runs, comparison.a):
    ta = measurements.values(runs, comparison.a, f'score:{task}', seeds)
    tb = measurements.values(runs, comparison.b, f'score:{task}', seeds)
    if len(ta) and len(tb):
      per_task[task] = inference.probability_of_improvement(ta, tb)
  return per_task


def runs_needed(comparison, seeds):
  """Runs a side a comparison waits for: its registered runs, else every
  seed it counts (MIN_RUNS when it counts every seed there is)."""
  if comparison.runs is not None:
    return comparison.runs
  return len(seeds) if seeds is not None else MIN_RUNS


def testable(record):
  return 'p' in record


def decide_family(records, alpha):
  """Adds 'p_holm' and 'verdict' to each testable record of one family.

  Holm's adjustment needs every p-value of the family: while some
  comparisons wait for their runs, each tested record gets the bounds of
  its adjusted p instead ('p_holm_low', 'p_holm_high':
  inference.holm_bounds) and a verdict only when the bounds settle it
  (clear whatever the others give, or not clear whatever they give)."""
  tested = [r for r in records if testable(r)]
  if tested and len(tested) < len(records):
    _bound_partial_family(tested, len(records), alpha)
    for record in records:
      record.setdefault('verdict', NOT_YET_RUN)
    return records
  adjusted = inference.holm([r['p'] for r in tested]) if tested else []
  for record, p in zip(tested, adjusted):
    record['p_holm'] = float(p)
  if tested:
    verdicts = inference.verdicts([r['p_holm'] for r in tested],
                                  [r['difference'] for r in tested],
                                  [r['direction'] for r in tested], alpha)
    for record, verdict in zip(tested, verdicts):
      record['verdict'] = verdict
  for record in records:
    record.setdefault('verdict', NOT_YET_RUN)
  return records


WAITING_FAMILY = 'waiting for the rest of its family'
SETTLED = ', whatever the waiting comparisons give'


def _bound_partial_family(tested, family_size, alpha):
  low, high = inference.holm_bounds([r['p'] for r in tested], family_size)
  settled = inference.verdicts(high, [r['difference'] for r in tested],
                               [r['direction'] for r in tested], alpha)
  for record, lo, hi, verdict in zip(tested, low, high, settled):
    record['p_holm_low'], record['p_holm_high'] = float(lo), float(hi)
    record['family'] = f'{len(tested)} of {family_size}'
    if hi < alpha:
      record['verdict'] = verdict + SETTLED
    elif lo >= alpha:
      record['verdict'] = inference.NOT_DISTINGUISHABLE + SETTLED
    else:
      record['verdict'] = WAITING_FAMILY


def is_clear(record, kind):
  """Whether `record`'s verdict is `kind` (inference.CLEAR_AS_PREDICTED or
  CLEAR_AGAINST), settled in a complete family or by the bounds of a
  partial one."""
  return record.get('verdict') in (kind, kind + SETTLED)


def claim_verdict(rule, records):
  verdicts = [r.get('verdict', '') for r in records]
  for_runs = sum(v.startswith('waiting:') for v in verdicts)
  if for_runs or WAITING_FAMILY in verdicts:
    return (f'not yet decided (pre-registered runs not reached; {for_runs} comparison(s) '
            'waiting for their runs)')
  if not records or not all(testable(r) for r in records):
    return NOT_YET_RUN
  as_predicted = sum(r['verdict'] == inference.CLEAR_AS_PREDICTED for r in records)
  against = sum(r['verdict'] == inference.CLEAR_AGAINST for r in records)
  if rule == 'all':
    if as_predicted == len(records):
      return SUPPORTED
    if against:
      return CONTRADICTED
  else:
    if as_predicted and against:
      return MIXED
    if as_predicted:
      return SUPPORTED
    if against:
      return CONTRADICTED
  sizes = sorted({min(r['n_a'], r['n_b']) for r in records})
  return f"not distinguishable at n = {'-'.join(map(str, [sizes[0], sizes[-1]] if len(sizes) > 1 else sizes))} runs a side"


def judge(study, runs, seed=0):
  """[ClaimResult] of every claim of the study."""
  out = []
  for claim in study.claims:
    records = [evaluate(c, runs, study.alpha, seed, study.seeds, len(claim.comparisons))
               for c in claim.comparisons]
    decide_family(records, study.alpha)
    out.append(ClaimResult(claim, records, claim_verdict(claim.rule, records)))
  return out


def exploratory(study, runs, seed=0):
  """Records of the exploratory comparisons: unadjusted, no verdict."""
  out = []
  for comparison in study.exploratory:
    record = evaluate(comparison, runs, study.alpha, seed, study.seeds)
    if testable(record):
      record['verdict'] = ('p < alpha, unadjusted' if record['p'] < study.alpha
                           else 'p >= alpha')
    out.append(record)
  return out


def sensitivity(study, scores, dormant, windows):
  """{comparison label: {window: (difference of means, probability of
  improvement)}} of every primary comparison, final values averaged over
  each window; the probability of improvement is {task: value} for P (per
  task, as in the comparison tables), a number for the other metrics."""
  out = {c.key: {} for c in study.primary()}
  for window in windows:
    runs = measurements.per_run(scores, dormant, study.references, window,
                                study.dormant_valid, study.architecture_references)
    for comparison in study.primary():
      seeds = seeds_of(comparison, study.seeds)
      a = measurements.values(runs, comparison.a, comparison.metric, seeds)
      b = measurements.values(runs, comparison.b, comparison.metric, seeds)
      reached = min(len(a), len(b)) >= runs_needed(comparison, seeds)
      if not (len(a) and len(b) and reached):
        out[comparison.key][window] = (float('nan'), float('nan'))
        continue
      poi = (poi_per_task(comparison, runs, seeds) if comparison.metric == 'P'
             else inference.probability_of_improvement(a, b))
      out[comparison.key][window] = (float(np.mean(a) - np.mean(b)), poi)
  return out


def first_seeds_check(study, runs, metrics=('P', 'dormant'), seed=0):
  """Whether the seeds a study began with (study.seeds) and the seeds added
  later are alike, per variant that has runs of both and per metric: the
  exact two-sided permutation test of the difference of means, Holm over
  every row. A check that counting the first seeds in a powered comparison
  is sound (their runs are older), not a claim: a clear row would say the
  two sets of runs differ. Records: variant, metric, n_first, n_later,
  mean_first, mean_later, p, exact (all relabellings, else random ones),
  p_holm."""
  first = set(study.seeds)
  rows = []
  for variant in study.variant_names():
    frame = runs[runs['variant'] == variant]
    later = sorted(set(frame['seed']) - first)
    for metric in metrics:
      a = measurements.values(runs, variant, metric, sorted(first))
      b = measurements.values(runs, variant, metric, later)
      if len(a) >= MIN_RUNS and len(b) >= MIN_RUNS:
        test = inference.permutation_test(a, b, seed=seed)
        rows.append({'variant': variant, 'metric': metric, 'n_first': len(a),
                     'n_later': len(b), 'mean_first': float(a.mean()),
                     'mean_later': float(b.mean()), 'p': test.pvalue, 'exact': test.exact})
  for row, adjusted in zip(rows, inference.holm([r['p'] for r in rows]) if rows else []):
    row['p_holm'] = float(adjusted)
  return rows

