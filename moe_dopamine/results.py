r"""Tidy results tables: the statistics of finished runs, small enough to commit.

  python -m moe_dopamine.results add RUN_DIR [RUN_DIR ...] --results DIR [--variant NAME]
  python -m moe_dopamine.results show --results DIR

Run folders are large (checkpoints, replay buffers) and stay out of version
control; these tables hold what a report needs, so it can be regenerated on
any machine, and a study knows which of its runs are done. A results folder
holds two gzip-compressed CSV tables:

- `scores.csv.gz`, one row per run x iteration x task: `run` (the run's key,
  `<variant>/seed_<seed>`), `variant` (the sweep's grid-point name: gin file
  stem and grid values), `seed`, `setting` ('crl', 'mtrl' or 'single'),
  `task_order` (the run's tasks, '>'-joined), `bindings` (the variant's
  gin bindings, '; '-joined), `num_parameters`, `iteration`, `task`,
  `train_task` (the task trained at that iteration, 'all' in MTRL),
  `eval_return`, `eval_score`, `eval_episodes`, `train_steps_per_second`,
  `train_steps` (the iteration's training steps; NaN in tables written before
  it was recorded, whose runs took Runner.training_steps = 1,000),
  `eval_seconds`, `training_seconds`, `acting_seconds`, `diagnostics_seconds`,
  `checkpoint_seconds`, `iteration_seconds` (where the iteration's wall time
  went, metrics.names; NaN in runs that did not log them), and the diagnostics `dormant_tau0.025`, `dormant_tau0.1`
  (every expert on the whole batch), `unused_experts` (NaN where not measured
  or not an MoE);
- `experts.csv.gz`, one row per run x iteration x task x MoE layer x expert,
  at the iterations that measured expert usage: `run`, `variant`, `seed`,
  `setting`, `iteration`, `task`, `layer`, `expert`, `usage` (mean routing
  probability), `top1` (fraction of the task's states whose top expert it is);
- `dormant.csv.gz`, one row per run x iteration x layer scored for dormant
  neurons (units behind a ReLU only, metrics.dormant): `run`, `variant`,
  `seed`, `setting`, `iteration`, `layer`, `units` (the layer's neurons),
  `dormant_tau0.025`, `dormant_tau0.1`. Any pooling of layers (all of them,
  experts only, dense only) is the units-weighted mean of these rows. Runs
  logged before the per-layer units existed have no rows here: their pooled
  fractions in `scores.csv.gz` counted a hidden MoE's linear outputs too.

Adding a run replaces its earlier rows (a run is added once it finished), under
a file lock, so concurrent adders do not lose each other's rows. Only
finished runs (finished.json) are added. Logs are pickles: add only trusted
run folders.
"""

import gzip
import os
import sys
import tempfile

import filelock
import numpy as np
import pandas as pd

from moe_dopamine import cli
from moe_dopamine import run_folder
from moe_dopamine.metrics import names

SCORES = 'scores.csv.gz'
EXPERTS = 'experts.csv.gz'
DORMANT = 'dormant.csv.gz'
_LOCK = '.results.lock'
MTRL_TASK = 'all'
DORMANT_TAUS = (0.025, 0.1)

SCORE_COLUMNS = [
    'run', 'variant', 'seed', 'setting', 'task_order', 'bindings', 'num_parameters',
    'iteration', 'task', 'train_task', 'eval_return', 'eval_score', 'eval_episodes',
    'train_steps_per_second', 'train_steps', 'eval_seconds', 'training_seconds',
    'acting_seconds', 'diagnostics_seconds', 'checkpoint_seconds', 'iteration_seconds',
] + [f'dormant_tau{tau}' for tau in DORMANT_TAUS] + ['unused_experts']
EXPERT_COLUMNS = [
    'run', 'variant', 'seed', 'setting', 'iteration', 'task', 'layer', 'expert',
    'usage', 'top1',
]
DORMANT_COLUMNS = [
    'run', 'variant', 'seed', 'setting', 'iteration', 'layer', 'units',
] + [f'dormant_tau{tau}' for tau in DORMANT_TAUS]
TABLES = ((SCORES, SCORE_COLUMNS, ['run', 'iteration', 'task']),
          (EXPERTS, EXPERT_COLUMNS, ['run', 'iteration', 'task', 'layer', 'expert']),
          (DORMANT, DORMANT_COLUMNS, ['run', 'iteration', 'layer']))
_EXECUTION_BINDINGS = ('MoERunner.seed', 'MoERunner.intra_op_threads')


def run_key(run_dir):
  """'<variant>/seed_<s>' of a sweep run folder <out>/<variant>/seed_<s>."""
  run_dir = os.path.normpath(run_dir)
  return f'{os.path.basename(os.path.dirname(run_dir))}/{os.path.basename(run_dir)}'


def _scalar(iteration, key):
  value = iteration.get(key)
  if value is None:
    return np.nan
  value = np.ravel(value)
  return float(value[0]) if value.size else np.nan


def _train_steps(iteration):
  """Training steps of an iteration: its training episodes' lengths summed
  (the count Dopamine divides by the phase's time for its steps per second)."""
  lengths = iteration.get('train_episode_lengths')
  return float(np.sum(lengths)) if lengths is not None and np.size(lengths) else np.nan


def run_frames(run, variant=None):
  """(scores, experts, dormant) DataFrames of one loaded run_logs.Run.

  Args:
    run: the run.
    variant: the variant's name; default the run's grid-point folder name.
  """
  info = run.info
  task_names = info.get('task_names') or ['eval']
  seed = info.get('seed')
  key = run_key(run.run_dir)
  if variant is not None:
    key = f"{variant}/{key.split('/')[1]}"
  variant = key.split('/')[0]
  bindings = '; '.join(
      b for b in info.get('gin_bindings', []) if b.split('=')[0].strip() not in _EXECUTION_BINDINGS
  )
  trained = _run_logs().run_train_tasks(run)
  is_mtrl = any(names.TRAIN_TASK in it for it in run.iterations) and all(
      t is None for t in trained
  )
  setting = 'single' if len(task_names) == 1 else ('mtrl' if is_mtrl else 'crl')
  common = dict(run=key, variant=variant, seed=seed, setting=setting,
                task_order='>'.join(task_names), bindings=bindings,
                num_parameters=info.get('num_parameters'))
  rows, expert_rows, dormant_rows = [], [], []
  units_prefix = names.dormant_units('')
  for i, it in enumerate(run.iterations):
    for stat_key in it:
      if stat_key.startswith(units_prefix):
        layer = stat_key[len(units_prefix):]
        dormant_rows.append(dict(
            run=key, variant=variant, seed=seed, setting=setting, iteration=i,
            layer=layer, units=_scalar(it, stat_key),
            **{f'dormant_tau{tau}': _scalar(it, names.dormant_fraction(tau, layer))
               for tau in DORMANT_TAUS}))
    diagnostics = {f'dormant_tau{tau}': _scalar(it, names.dormant_fraction(tau))
                   for tau in DORMANT_TAUS}
    diagnostics['unused_experts'] = _scalar(it, names.unused_experts())
    if len(task_names) == 1:
      train_task = task_names[0]
    else:
      train_task = MTRL_TASK if trained[i] is None else trained[i]
    for task in task_names:
      ret_key = names.eval_return(task)
      if ret_key not in it:  # A run outside MultiTaskEnvironment: Dopamine's.
        ret_key = names.EVAL_AVERAGE_RETURN
      rows.append(dict(
          common, iteration=i, task=task, train_task=train_task,
          eval_return=_scalar(it, ret_key),
          eval_score=_scalar(it, names.eval_score(task)),
          eval_episodes=_scalar(it, names.eval_episodes(task)),
          train_steps_per_second=_scalar(it, 'train_average_steps_per_second'),
          train_steps=_train_steps(it),
          **{key: _scalar(it, key) for key in names.PHASE_SECONDS + (names.ITERATION_SECONDS,)},
          **diagnostics,
      ))
      usage_prefix = f'{names.EXPERT_USAGE_PREFIX}{task}/'
      for stat_key, value in it.items():
        if not stat_key.startswith(usage_prefix):
          continue
        layer = stat_key[len(usage_prefix):]
        usage = np.ravel(value)
        top1 = np.ravel(it.get(names.expert_top1(task, layer), [np.nan] * len(usage)))
        for expert, (u, t) in enumerate(zip(usage, top1)):
          expert_rows.append(dict(
              run=key, variant=variant, seed=seed, setting=setting, iteration=i,
              task=task, layer=layer, expert=expert, usage=float(u), top1=float(t),
          ))
  return (pd.DataFrame(rows, columns=SCORE_COLUMNS),
          pd.DataFrame(expert_rows, columns=EXPERT_COLUMNS),
          pd.DataFrame(dormant_rows, columns=DORMANT_COLUMNS))


def read(results_dir):
  """(scores, experts, dormant) of a results folder (empty frames if absent)."""
  out = []
  for name, columns, _ in TABLES:
    path = os.path.join(results_dir, name)
    # Text columns read as text: most runs have no bindings (empty), and
    # pandas would guess the column's type chunk by chunk.
    out.append(pd.read_csv(path, dtype={'bindings': str, 'task_order': str})
               if os.path.exists(path) else pd.DataFrame(columns=columns))
  return tuple(out)


def finished_runs(results_dir):
  """Keys of the runs the results folder holds."""
  scores = read(results_dir)[0]
  return set(scores['run'].unique())


def _write(frame, path):
  """Writes atomically: a reader sees the old table or the new one."""
  handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
  os.close(handle)
  try:
    # No name and no time in the gzip header: the same rows give the same
    # bytes, so an unchanged table leaves no change to commit.
    with open(temporary, 'wb') as raw:
      with gzip.GzipFile(filename='', mode='wb', fileobj=raw, mtime=0) as compressed:
        compressed.write(frame.to_csv(index=False).encode())
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def add(results_dir, frames):
  """Merges [(scores, experts, dormant)] into the tables, replacing the same
  runs' rows in every table."""
  frames = [tuple(f) + tuple(pd.DataFrame(columns=c) for _, c, _ in TABLES[len(f):])
            for f in frames]
  os.makedirs(results_dir, exist_ok=True)
  with filelock.FileLock(os.path.join(results_dir, _LOCK)):
    tables = read(results_dir)
    merged = []
    for index, (table, (_, _, sort)) in enumerate(zip(tables, TABLES)):
      new = [f[index] for f in frames if len(f[index])]
      keys = set().union(*(set(f[0]['run']) for f in frames)) if frames else set()
      kept = table[~table['run'].isin(keys)]
      parts = ([kept] if len(kept) else []) + new
      frame = pd.concat(parts, ignore_index=True) if parts else kept
      frame = frame.sort_values(sort, kind='stable').reset_index(drop=True)
      merged.append(frame)
    for frame, (name, _, _) in zip(merged, TABLES):
      _write(frame, os.path.join(results_dir, name))
  return merged


def _run_logs():
  # Dopamine's reader loads TensorFlow: only what reads run folders needs it,
  # not what reads the tables (the study driver).
  from moe_dopamine.metrics import run_logs  # pylint: disable=g-import-not-at-top
  return run_logs


def add_run_dirs(results_dir, run_dirs, variant=None):
  """Adds the finished runs among `run_dirs` (under the name `variant`, if
  given); returns (added, skipped) keys."""
  run_logs = _run_logs()
  frames, added, skipped = [], [], []
  for run_dir in run_dirs:
    if not os.path.exists(os.path.join(run_dir, run_folder.FINISHED)):
      skipped.append(run_key(run_dir))
      continue
    frames.append(run_frames(run_logs.load_run(run_dir), variant))
    added.append(frames[-1][0]['run'].iloc[0])
  if frames:
    add(results_dir, frames)
  return added, skipped


def main(argv=None):
  parser = cli.ArgumentParser(prog='moe_dopamine.results',
                              description=__doc__.split('\n')[0])
  sub = parser.add_subparsers(dest='command', required=True)
  add_parser = sub.add_parser('add', help='add finished runs (run or sweep folders)')
  add_parser.add_argument('paths', nargs='+')
  add_parser.add_argument('--results', required=True)
  add_parser.add_argument('--variant', default=None,
                          help='the variant name of the added runs (default: their '
                               'grid-point folder name)')
  show_parser = sub.add_parser('show', help='runs per variant in a results folder')
  show_parser.add_argument('--results', required=True)
  args = parser.parse_args(argv)
  if args.command == 'add':
    run_logs = _run_logs()
    try:
      added, skipped = add_run_dirs(args.results, run_logs.find_runs(args.paths), args.variant)
    except (run_logs.RunFolderError, OSError) as error:
      print(f'moe_dopamine.results: error: {error}', file=sys.stderr)
      return 2
    print(f'added {len(added)} finished run(s) to {args.results}'
          + (f'; {len(skipped)} not finished, left out' if skipped else ''))
    return 0
  scores = read(args.results)[0]
  counts = scores.drop_duplicates('run').groupby('variant')['seed'].count()
  for variant, count in counts.items():
    print(f'{variant}: {count} run(s)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
