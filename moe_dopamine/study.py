r"""The study: its grid of runs, run in resumable pieces, and its report.

  python -m moe_dopamine.study plan   [--parts=protocol,crl_headline] [--seeds=0,1,2,3,4]
  python -m moe_dopamine.study run    [--parts=...] [--workers=2 | --ray_address=auto]
  python -m moe_dopamine.study report [--results=docs/study/results] [--out=docs/study]

The study is a list of parts (STUDY_PARTS), each a list of variants (a gin file
and bindings) run over the seeds. `plan` prints how many runs each part has,
how many the results tables already hold, and the expected wall time of the
rest (from the measured time of the runs already done). `run` runs the missing
ones with the sweep's machinery (local processes or Ray; run folders under
--runs_dir, so an interrupted run resumes from its checkpoint) and adds each
run to the results tables (moe_dopamine.results) as soon as it finishes: the
tables are what is kept (docs/study/results, committed), so a study continues
where it stopped, on this machine or another. `report` regenerates
docs/study/ from the tables alone (moe_dopamine.study_report).
"""

import collections
import os
import re
import statistics
import subprocess
import sys

from moe_dopamine import cli
from moe_dopamine import sweep

DEFAULT_RESULTS = os.path.join('docs', 'study', 'results')
DEFAULT_RUNS = os.path.join('runs', 'study')
DEFAULT_SEEDS = (0, 1, 2, 3, 4)

BASELINE = 'baseline'
HEADLINE_VARIANTS = [BASELINE, 'big_softmoe', 'big_topk']
CONTROL_VARIANTS = ['big_hardcoded', 'baseline_matched']
PLACEMENT_VARIANTS = [
    'middle_topk', 'final_topk', 'middle_softmoe', 'final_softmoe', 'all_topk', 'all_softmoe'
]
REPLAY_CLEAR = "MoEDQNAgent.replay_at_task_switch='clear'"
REVERSED_ORDER = "MultiTaskEnvironment.task_names=['MountainCar', 'CartPole']"

Variant = collections.namedtuple('Variant', ['gin_file', 'bindings'])


def _variants(stems, bindings=()):
  return [Variant(os.path.join('gin_configs', f'{stem}.gin'), list(bindings)) for stem in stems]


# part -> variants, in the order `run` runs them: the CRL headline (baseline,
# Big SoftMoE, Big TopK, then the soft-to-sparse routers beside them), its
# controls (hardcoded routing, the parameter-matched baseline), MTRL, the
# ablations, and the costliest placements (All SoftMoE costs 16 baselines per
# training step) last. 'protocol' holds the single-task runs:
# they show the protocol learns every task in its stretch and are the
# references of forward transfer.
STUDY_PARTS = collections.OrderedDict([
    ('protocol', _variants(['reference_cartpole', 'reference_mountaincar'])),
    ('crl_headline', _variants([f'crl_{v}' for v in HEADLINE_VARIANTS])),
    ('crl_adaptive', _variants(['crl_big_soft_to_sparse', 'crl_big_soft_to_sparse_resoften'])),
    ('crl_controls', _variants([f'crl_{v}' for v in CONTROL_VARIANTS])),
    ('mtrl_headline', _variants([f'mtrl_{v}' for v in HEADLINE_VARIANTS + CONTROL_VARIANTS])),
    ('crl_replay_clear', _variants(['crl_baseline', 'crl_big_softmoe'], [REPLAY_CLEAR])),
    ('crl_reversed', _variants(['crl_baseline', 'crl_big_softmoe'], [REVERSED_ORDER])),
    ('crl_placements', _variants([f'crl_{v}' for v in PLACEMENT_VARIANTS])),
    ('mtrl_placements', _variants([f'mtrl_{v}' for v in PLACEMENT_VARIANTS])),
])


def parse_parts(spec):
  parts = [p.strip() for p in spec.split(',') if p.strip()] if spec else list(STUDY_PARTS)
  for part in parts:
    if part not in STUDY_PARTS:
      hint = [p for p in STUDY_PARTS if p.startswith(part[:3])]
      raise ValueError(
          f"--parts: unknown part '{part}'. The parts are {list(STUDY_PARTS)}"
          + (f" (did you mean '{hint[0]}'?)" if hint else '') + '.'
      )
  return parts


def plan(parts, seeds, runs_dir, extra_bindings=()):
  """{part: [sweep.Run]} of the given parts (a run in two parts counts once,
  in the first)."""
  out, seen = collections.OrderedDict(), set()
  for part in parts:
    runs = []
    for variant in STUDY_PARTS[part]:
      grid = [variant.bindings] if variant.bindings else [[]]
      for run in sweep.plan([variant.gin_file], seeds, grid, list(extra_bindings), runs_dir):
        if run.base_dir not in seen:
          seen.add(run.base_dir)
          runs.append(run)
    out[part] = runs
  return out


def run_key(run):
  return f'{run.point}/{os.path.basename(run.base_dir)}'


def architecture(variant):
  """'big_softmoe' of 'crl_big_softmoe__replay_at_task_switch-clear' (setting
  prefix and grid tags dropped)."""
  return re.sub(r'^(crl|mtrl|reference)_', '', variant.split('__')[0])


def measured_seconds(scores):
  """{variant: mean compute seconds of its runs} from the scores table:
  training steps over their measured rate plus evaluation time, per iteration."""
  if scores is None or not len(scores):
    return {}
  per_iteration = scores.drop_duplicates(['run', 'iteration'])
  steps = 1000.0  # Runner.training_steps of every study config.
  seconds = steps / per_iteration['train_steps_per_second'] + per_iteration['eval_seconds']
  per_run = seconds.groupby(per_iteration['run']).sum()
  variants = per_run.index.str.split('/').str[0]
  return per_run.groupby(variants).mean().to_dict()


DEFAULT_COST_TABLE = os.path.join('docs', 'cost.md')
COST_FAMILY, COST_EXPERTS = 'cartpole_', '4'  # The study's networks: classic control, n = 4.


def cost_ratios(path=DEFAULT_COST_TABLE):
  """{architecture: training-step time over the baseline's} from the measured
  cost table (`python -m moe_dopamine.cost --measure`), its n = 4 classic-
  control rows; {} when the file or its timing columns are missing."""
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    rows = [[c.strip() for c in line.strip().strip('|').split('|')]
            for line in f if line.startswith('|')]
  if not rows or 'x baseline' not in rows[0]:
    return {}
  header = rows[0]
  name, n, ratio = header.index('variant'), header.index('n'), header.index('x baseline')
  out = {}
  for row in rows[1:]:
    if len(row) != len(header) or not row[name].startswith(COST_FAMILY):
      continue
    if row[n] in (COST_EXPERTS, '-'):
      try:
        out[row[name][len(COST_FAMILY):]] = float(row[ratio])
      except ValueError:
        continue
  return out


def _setting(point):
  return point.split('_', 1)[0]


def estimate_seconds(runs, measured, ratios=None):
  """Expected compute seconds of each run: its variant's measured mean, else
  its architecture's (in another setting), else, for an architecture the cost
  table times, the baseline of its setting scaled by the architecture's
  training-step ratio (`ratios`, see cost_ratios) and by how far that ratio
  over-predicts the measured architectures (the median of measured / predicted:
  acting and evaluation cost less than training steps), else the mean of all
  measured runs; None if nothing is measured."""
  ratios = ratios or {}
  by_architecture = collections.defaultdict(list)
  for variant, seconds in measured.items():
    by_architecture[architecture(variant)].append(seconds)
  calibration = []
  for variant, seconds in measured.items():
    baseline = measured.get(f'{_setting(variant)}_{BASELINE}')
    if (baseline and architecture(variant) in ratios and '__' not in variant
        and architecture(variant) != BASELINE):
      calibration.append(seconds / (baseline * ratios[architecture(variant)]))
  scale = statistics.median(calibration) if calibration else 1.0
  fallback = sum(measured.values()) / len(measured) if measured else None
  out = []
  for run in runs:
    arch = architecture(run.point)
    baseline = measured.get(f'{_setting(run.point)}_{BASELINE}')
    if run.point in measured:
      out.append(measured[run.point])
    elif by_architecture.get(arch):
      values = by_architecture[arch]
      out.append(sum(values) / len(values))
    elif baseline and arch in ratios:
      out.append(baseline * ratios[arch] * scale)
    else:
      out.append(fallback)
  return out


def _load_scores(results_dir):
  from moe_dopamine import results  # pylint: disable=g-import-not-at-top
  scores, _ = results.read(results_dir)
  return scores


def describe(planned, done, measured, workers, ratios=None):
  """Lines: per part, runs, done, to do, expected compute; and the total
  with the expected wall time (see estimate_seconds)."""
  lines, total_seconds, total_todo, unmeasured, scaled = [], 0.0, 0, 0, 0
  ratios = ratios or {}
  for part, runs in planned.items():
    todo = [r for r in runs if run_key(r) not in done]
    estimates = estimate_seconds(todo, measured, ratios)
    known = [e for e in estimates if e is not None]
    seconds = sum(known)
    total_seconds += seconds
    total_todo += len(todo)
    measured_architectures = {architecture(v) for v in measured}
    new = [run for run in todo if run.point not in measured
           and architecture(run.point) not in measured_architectures]
    with_cost = [run for run in new if architecture(run.point) in ratios
                 and f'{_setting(run.point)}_{BASELINE}' in measured]
    scaled += len(with_cost)
    unmeasured += len(new) - len(with_cost)
    text = f'  {part}: {len(runs)} runs, {len(runs) - len(todo)} done, {len(todo)} to run'
    if known:
      text += f', ~{seconds / 3600:.1f} h of compute'
    lines.append(text)
  if total_todo and not measured:
    lines.append(f'total: {total_todo} runs to run; the expected time is known once the '
                 'first runs have finished (it comes from their measured times).')
  else:
    wall = total_seconds / max(1, workers) / 3600
    lines.append(f'total: {total_todo} runs to run; expected wall time ~{wall:.1f} h with '
                 f'{workers} worker(s), from the measured time of each variant (or of its '
                 'architecture in the other setting)'
                 + (f'; {scaled} run(s) of architectures not run yet are scaled from the '
                    "baseline's by the cost table's training-step ratio" if scaled else '')
                 + (f'; {unmeasured} run(s) of variants neither run nor in the cost table are '
                    'counted at the mean of the measured runs' if unmeasured else ''))
  return lines


class _CollectingProgress(sweep.Progress):
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


def run(planned, done, results_dir, workers, ray_address, argv):
  todo = [r for runs in planned.values() for r in runs if run_key(r) not in done]
  if not todo:
    print('nothing to run: the results tables hold every run of these parts.')
    return 0
  if not ray_address:
    for r in todo:
      r.threads = sweep.threads_per_run(workers, len(todo))
  code = sweep.launch(todo, workers, ray_address, _CollectingProgress(len(todo), results_dir),
                      argv, module='moe_dopamine.study')
  if code is not None:
    return code
  print(f'all {len(todo)} runs finished and added to {results_dir}')
  return 0


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = cli.ArgumentParser(prog='moe_dopamine.study',
                              description=__doc__.split('\n')[0])
  parser.add_argument('command', choices=['plan', 'run', 'report'])
  parser.add_argument('--parts', default='', help=f'comma-separated, of {list(STUDY_PARTS)}')
  parser.add_argument('--seeds', default=','.join(map(str, DEFAULT_SEEDS)))
  parser.add_argument('--results', default=DEFAULT_RESULTS)
  parser.add_argument('--runs_dir', default=DEFAULT_RUNS)
  parser.add_argument('--out', default=os.path.join('docs', 'study'))
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help='bindings for every run (e.g. smaller budgets for a try-out)')
  parser.add_argument('--workers', type=int, default=os.cpu_count())
  parser.add_argument('--ray_address', default=None)
  parser.add_argument('--cost_table', default=DEFAULT_COST_TABLE,
                      help="measured cost table: its ratios estimate the time of runs whose "
                      "architecture has not run yet")
  args = parser.parse_args(argv)
  if args.command == 'report':
    from moe_dopamine import study_report  # pylint: disable=g-import-not-at-top
    return study_report.main(['--results', args.results, '--out', args.out])
  try:
    parts = parse_parts(args.parts)
    seeds = sweep.parse_seeds(args.seeds)
    if args.workers < 1:
      raise ValueError(f'--workers={args.workers}: at least 1 run must run at a time.')
  except ValueError as error:
    print(f'moe_dopamine.study: error: {error}', file=sys.stderr)
    return 2
  planned = plan(parts, seeds, args.runs_dir, args.gin_bindings)
  scores = _load_scores(args.results)
  done = set(scores['run'].unique()) if len(scores) else set()
  print(f'study: results in {args.results}, run folders in {args.runs_dir}')
  print('\n'.join(describe(planned, done, measured_seconds(scores), args.workers,
                           cost_ratios(args.cost_table))), flush=True)
  if args.ray_address:
    print(f'(on Ray the wall time above assumes {args.workers} runs at a time: pass '
          '--workers=<runs the cluster holds at once> for the cluster\'s estimate)', flush=True)
  if args.command == 'plan':
    return 0
  return run(planned, done, args.results, args.workers, args.ray_address, argv)


if __name__ == '__main__':
  sys.exit(main())
