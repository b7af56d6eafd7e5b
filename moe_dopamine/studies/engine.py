"""Plans and runs any study spec in resumable pieces.

`plan` lists the runs of a spec's parts (variants x seeds), `describe` says
how many the results tables already hold and the expected wall time of the
rest, and `run` runs the missing ones with the sweep's machinery (local
processes or Ray; run folders under the spec's runs_dir, so an interrupted
run resumes from its checkpoint), adding each run to the results tables as
soon as it finishes. The tables are what is kept: a study continues where it
stopped, on this machine or another. Nothing here names a variant.

Expected times come from measurements: a variant's mean time per run over its
runs in the tables (run_seconds: checkpoints and logging included where the
runs logged their iterations' wall time); for a variant not run yet, the measured time of the
baseline of its setting scaled by the measured training-step time ratio of
its network to that baseline in the study's cost table (`<out>/cost.csv`,
written by `python -m moe_dopamine.cost --family=study` or
`--family=minatar_study` with `--measure --csv=...`), corrected by how far
that ratio over-predicts the variants already run (acting and evaluation
cost less than training steps); else the mean of the measured runs.
"""

import collections
import csv
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from moe_dopamine import results
from moe_dopamine import sweep

COST_CSV = 'cost.csv'
SETTINGS = ('crl', 'mtrl')
# Training steps per iteration of rows recorded without `train_steps` (the
# classic-control study's Runner.training_steps).
TRAINING_STEPS = 1000.0


def plan(study, parts=None, seeds=None, extra_bindings=()):
  """{part name: [sweep.Run]} (a run in two parts counts once, in the first)."""
  out, seen = collections.OrderedDict(), set()
  for part in study.parts:
    if parts and part.name not in parts:
      continue
    runs = []
    part_seeds = [s for s in part.seeds if seeds is None or s in seeds]
    for variant in part.variants:
      grid = [list(variant.bindings)]
      for run in sweep.plan([variant.gin_file], part_seeds, grid, list(extra_bindings),
                            study.runs_dir):
        run.gin_files = run.gin_files + [os.path.abspath(g) for g in part.gin_files]
        if run.base_dir not in seen:
          seen.add(run.base_dir)
          runs.append(run)
    out[part.name] = runs
  return out


def check_parts(study, parts):
  unknown = [p for p in parts if p not in [q.name for q in study.parts]]
  if unknown:
    raise ValueError(f'--parts: unknown part(s) {unknown}; the parts of {study.path} are '
                     f'{[p.name for p in study.parts]}.')


def run_key(run):
  return f'{run.point}/{os.path.basename(run.base_dir)}'


def run_seconds(scores):
  """Seconds each run in the tables took: its training steps over its median
  rate per iteration, plus its evaluation time, times the median ratio of an
  iteration's whole wall time (`iteration_seconds`: checkpoint and logging
  included) to those two (1 for runs that did not log it). Medians, not each
  iteration's own figures: a run paused or crowded for a while (a benchmark
  beside it) logs a few iterations at a fraction of its rate, which would
  count the pause as compute."""
  per_iteration = scores.drop_duplicates(['run', 'iteration'])
  steps = (per_iteration['train_steps'] if 'train_steps' in per_iteration
           else pd.Series(np.nan, index=per_iteration.index)).fillna(TRAINING_STEPS)
  rate = per_iteration['train_steps_per_second']
  counted = steps / rate + per_iteration['eval_seconds']
  whole = (per_iteration['iteration_seconds'] if 'iteration_seconds' in per_iteration
           else pd.Series(np.nan, index=per_iteration.index))
  frame = per_iteration.assign(steps=steps, overhead=whole / counted)
  by_run = frame.groupby('run')
  overhead = by_run['overhead'].median().fillna(1.0)
  return (by_run['steps'].sum() / by_run['train_steps_per_second'].median()
          + by_run['eval_seconds'].sum()) * overhead


def time_split(scores):
  """Where the runs' wall time went, per variant, over the runs that logged
  their iterations' phases (metrics.names.PHASE_SECONDS): a frame indexed by
  variant with `runs`, `minutes` (median over runs of run_seconds) and each
  phase's median share of an iteration's wall time over the variant's
  iterations, `other` the rest (logging, summaries). Medians, as in
  run_seconds: an iteration paused beside a benchmark inflates whichever
  phase it was in."""
  phases = ['training_seconds', 'acting_seconds', 'diagnostics_seconds', 'eval_seconds',
            'checkpoint_seconds']
  columns = ['runs', 'minutes'] + [p.replace('_seconds', '') for p in phases] + ['other']
  if 'iteration_seconds' not in scores:
    return pd.DataFrame(columns=columns)
  per_iteration = scores.drop_duplicates(['run', 'iteration'])
  logged = per_iteration.groupby('run')['iteration_seconds'].apply(lambda s: s.notna().all())
  frame = per_iteration[per_iteration['run'].isin(logged[logged].index)]
  seconds = run_seconds(frame) if len(frame) else pd.Series(dtype=float)
  rows = {}
  for variant, group in frame.groupby('variant'):
    shares = {p.replace('_seconds', ''): (group[p] / group['iteration_seconds']).median()
              for p in phases}
    rows[variant] = dict(
        runs=group['run'].nunique(),
        minutes=seconds[group['run'].unique()].median() / 60,
        **shares, other=max(0.0, 1.0 - sum(shares.values())))
  return pd.DataFrame.from_dict(rows, orient='index', columns=columns)


def measured_seconds(scores):
  """{variant: mean compute seconds of its runs (run_seconds)}."""
  if scores is None or not len(scores):
    return {}
  per_run = run_seconds(scores)
  variants = per_run.index.str.split('/').str[0]
  return per_run.groupby(variants).mean().to_dict()


def cost_table(study):
  """The study's cost CSV: `cost.csv` in its report folder."""
  return os.path.join(study.out, COST_CSV)


def _setting_split(name):
  """(prefix through the setting, network) of a config stem:
  'minatar_crl_big_softmoe' -> ('minatar_crl', 'big_softmoe'); a name with
  no setting word splits at its first '_'."""
  words = name.split('_')
  for i, word in enumerate(words[:-1]):
    if word in SETTINGS:
      return '_'.join(words[:i + 1]), '_'.join(words[i + 1:])
  head, _, tail = name.partition('_')
  return head, tail


def baseline_of(name):
  """The dense baseline of a config stem's setting (and family):
  'crl_big_topk' -> 'crl_baseline', 'minatar_mtrl_big_topk' ->
  'minatar_mtrl_baseline'."""
  return f'{_setting_split(name)[0]}_baseline'


def cost_ratios(path):
  """{config stem: its training-step time over its setting's baseline's},
  from a cost CSV with 'variant' and 'train ms' columns; {} if absent."""
  if not path or not os.path.exists(path):
    return {}
  with open(path) as f:
    rows = [r for r in csv.DictReader(f) if r.get('train ms') and ' ' not in r['variant']]
  times = {r['variant']: float(r['train ms']) for r in rows}
  out = {}
  for name, ms in times.items():
    base = times.get(baseline_of(name))
    if base:
      out[name] = ms / base
      # The same network in the other setting costs the same per step.
      prefix, network = _setting_split(name)
      family = prefix.rsplit('_', 1)[0] + '_' if '_' in prefix else ''
      for other in SETTINGS:
        out.setdefault(f'{family}{other}_{network}', ms / base)
  return out


def _stem(point):
  return point.split('__')[0]


def estimate_seconds(runs, measured, ratios=None):
  """Expected compute seconds of each run (see the module doc); None where
  nothing is measured."""
  ratios = ratios or {}
  calibration = [
      seconds / (measured[baseline_of(v)] * ratios[v])
      for v, seconds in measured.items()
      if '__' not in v and v in ratios and baseline_of(v) in measured
      and v != baseline_of(v)
  ]
  scale = statistics.median(calibration) if calibration else 1.0
  fallback = sum(measured.values()) / len(measured) if measured else None
  out = []
  for run in runs:
    point, stem = run.point, _stem(run.point)
    base = measured.get(baseline_of(stem))
    if point in measured:
      out.append(measured[point])
    elif stem in measured:
      out.append(measured[stem])
    elif base and stem in ratios:
      out.append(base * ratios[stem] * scale)
    else:
      out.append(fallback)
  return out


def describe(planned, done, measured, workers, ratios=None):
  """Lines: per part, its runs, done, to do and expected compute; then the
  total and the expected wall time with `workers` runs at a time. `done`:
  {part: run keys} (see done_runs) or one set for every part."""
  lines, total_seconds, total_todo, guessed = [], 0.0, 0, 0
  for part, runs in planned.items():
    todo = [r for r in runs if run_key(r) not in _done_of(done, part)]
    estimates = estimate_seconds(todo, measured, ratios)
    seconds = sum(e for e in estimates if e is not None)
    guessed += sum(1 for r in todo if r.point not in measured and _stem(r.point) not in measured)
    total_seconds += seconds
    total_todo += len(todo)
    text = f'  {part}: {len(runs)} runs, {len(runs) - len(todo)} done, {len(todo)} to run'
    if todo and measured:
      text += f', ~{seconds / 3600:.1f} h of compute'
    lines.append(text)
  if total_todo and not measured:
    lines.append(f'total: {total_todo} runs to run; the expected time is known once the '
                 'first runs have finished (it comes from their measured times).')
  else:
    wall = total_seconds / max(1, workers) / 3600
    lines.append(
        f'total: {total_todo} runs to run, ~{total_seconds / 3600:.1f} h of compute; expected '
        f'wall time ~{wall:.1f} h with {workers} run(s) at a time'
        + (f' ({guessed} run(s) of variants not run yet are estimated from the cost table '
           'or the mean run)' if guessed else ''))
  return lines


class CollectingProgress(sweep.Progress):
  """Adds every run that finishes to the results tables at once."""

  def __init__(self, total, results_dir):
    super().__init__(total)
    self.results_dir = results_dir

  def update(self, run, code):
    super().update(run, code)
    if code == 0:
      # In its own process: the driver never loads TensorFlow.
      added = subprocess.run(
          [sys.executable, '-m', 'moe_dopamine.results', 'add', run.base_dir,
           f'--results={os.path.abspath(self.results_dir)}'],
          check=False, cwd=sweep.REPO, capture_output=True, text=True,
      )
      if added.returncode:
        print(f'moe_dopamine.study: could not add {run.base_dir} to the results: '
              f'{added.stderr.strip().splitlines()[-1:]}; add it later with '
              f'python -m moe_dopamine.results add {run.base_dir} '
              f'--results={self.results_dir}', file=sys.stderr, flush=True)


def done_runs(study, results_dir):
  """({part: keys of its runs the tables hold}, scores table). A part that
  requires the per-layer dormant table counts only runs that logged it."""
  scores, _, dormant = results.read(results_dir)
  finished = set(scores['run'].unique()) if len(scores) else set()
  with_layers = finished & set(dormant['run'].unique()) if len(dormant) else set()
  done = {part.name: with_layers if 'dormant_layers' in part.requires else finished
          for part in study.parts}
  return done, scores


def _done_of(done, part):
  return done.get(part, set()) if isinstance(done, dict) else done


def launch_order(todo):
  """Seed by seed (each seed's runs in the spec's order): a study stopped
  partway holds about as many seeds of every variant, so each comparison
  gains runs on both sides as it goes."""
  return sorted(todo, key=lambda r: r.seed)


def within(seconds, estimates, clock=time.monotonic):
  """may_start for a time limit: starts a run only if its estimated seconds
  ({run key: seconds or None}) end within `seconds` of this call. A run with
  no estimate starts while any time is left."""
  deadline = clock() + seconds

  def may_start(run):
    left = deadline - clock()
    estimate = estimates.get(run_key(run))
    return left > 0 and (estimate is None or estimate <= left)
  return may_start


def run(planned, done, results_dir, workers, ray_address, argv, time_limit=None,
        measured=None, ratios=None):
  """Runs what the tables lack, seed by seed. With `time_limit` (seconds;
  local runs), a run starts only if its expected time (estimate_seconds from
  `measured` and `ratios`) ends within the limit; the rest are left for the
  next call."""
  todo = launch_order([r for part, runs in planned.items() for r in runs
                       if run_key(r) not in _done_of(done, part)])
  if not todo:
    print('nothing to run: the results tables hold every run of these parts.')
    return 0
  if not ray_address:
    for r in todo:
      r.threads = sweep.threads_per_run(workers, len(todo))
  may_start = None
  if time_limit is not None:
    estimates = dict(zip((run_key(r) for r in todo),
                         estimate_seconds(todo, measured or {}, ratios)))
    may_start = within(time_limit, estimates)
  progress = CollectingProgress(len(todo), results_dir)
  code = sweep.launch(todo, workers, ray_address, progress, argv, module='moe_dopamine.study',
                      may_start=may_start)
  if code is not None:
    return code
  finished = progress.done
  print(f'{finished} of {len(todo)} runs finished and added to {results_dir}'
        if finished < len(todo) else f'all {len(todo)} runs finished and added to {results_dir}')
  return 0
