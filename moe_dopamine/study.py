r"""Plans, runs and reports any study spec (moe_dopamine.studies).

  python -m moe_dopamine.study plan   [--spec=studies/classic_control.toml] [--parts=a,b] [--seeds=0-4]
  python -m moe_dopamine.study run    [--spec=...] [--workers=2 | --ray_address=auto] [--time_limit=2h]
  python -m moe_dopamine.study report [--spec=...]

A study is one TOML spec (format: moe_dopamine/studies/spec.py): its parts
(variants: a gin file and bindings), seeds, final-value window and
pre-registered comparisons per claim. `plan` prints the runs of each part,
how many the results tables already hold and the expected wall time of the
rest; `run` runs the missing ones (local processes or Ray), adding each run
to the results tables as it finishes, so a study resumes where it stopped,
on this machine or another; `report` regenerates the report from the tables
and the spec alone. The default spec is the classic-control study.
"""

import dataclasses
import os
import sys

from moe_dopamine import cli
from moe_dopamine.studies import engine
from moe_dopamine.studies import spec as spec_lib

DEFAULT_SPEC = os.path.join('studies', 'classic_control.toml')


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = cli.ArgumentParser(prog='moe_dopamine.study', description=__doc__.split('\n')[0])
  parser.add_argument('command', choices=['plan', 'run', 'report'])
  parser.add_argument('--spec', default=DEFAULT_SPEC, help='the study spec (TOML)')
  parser.add_argument('--parts', default='', help='comma-separated parts (default: all)')
  parser.add_argument('--seeds', default='',
                      help="only these of the parts' seeds, e.g. 0,1 or 5-29")
  parser.add_argument('--results', default=None, help="results tables (default: the spec's)")
  parser.add_argument('--runs_dir', default=None, help="run folders (default: the spec's)")
  parser.add_argument('--out', default=None, help="report folder (default: the spec's)")
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help='bindings for every run (e.g. smaller budgets for a try-out)')
  parser.add_argument('--workers', type=int, default=os.cpu_count())
  parser.add_argument('--ray_address', default=None)
  parser.add_argument('--cost_table', default=None,
                      help="measured cost CSV whose ratios estimate runs of variants not run "
                      "yet (default: cost.csv in the spec's report folder)")
  parser.add_argument('--no_figures', action='store_true',
                      help='report: tables only, to TABLES.md beside the report (its README.md '
                      'and figures stay as they are)')
  parser.add_argument('--time_limit', default=None,
                      help="run: start only runs expected to end within this time (e.g. "
                      "150m, 2.5h, 2h30m; local runs), leaving the rest for the next call")
  args = parser.parse_args(argv)
  try:
    study = spec_lib.load(args.spec)
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    engine.check_parts(study, parts)
    seeds = spec_lib.parse_seeds(args.seeds, "--seeds") if args.seeds else None
    if args.workers < 1:
      raise ValueError(f'--workers={args.workers}: at least 1 run must run at a time.')
    time_limit = cli.parse_duration(args.time_limit, '--time_limit') if args.time_limit else None
    if time_limit is not None and args.ray_address:
      raise ValueError('--time_limit applies to local runs; on Ray, use the cluster\'s own '
                       'job limits (every run is submitted at once).')
  except (ValueError, spec_lib.SpecError) as error:
    print(f'moe_dopamine.study: error: {error}', file=sys.stderr)
    return 2
  overrides = {k: v for k, v in (('results', args.results), ('runs_dir', args.runs_dir),
                                 ('out', args.out)) if v}
  if overrides:
    study = dataclasses.replace(study, **overrides)
  if args.command == 'report':
    with cli.stderr_without_noise():  # TensorFlow's and gym's import-time banners.
      from moe_dopamine.studies import report  # pylint: disable=g-import-not-at-top
    path = report.build(study, draw=not args.no_figures)
    print(f'wrote {path}')
    return 0
  planned = engine.plan(study, parts, seeds, args.gin_bindings)
  done, scores = engine.done_runs(study, study.results)
  print(f'study {study.name} ({study.path}): results in {study.results}, run folders in '
        f'{study.runs_dir}')
  measured = engine.measured_seconds(scores)
  ratios = engine.cost_ratios(args.cost_table or engine.cost_table(study))
  print('\n'.join(engine.describe(planned, done, measured, args.workers, ratios)), flush=True)
  if args.ray_address:
    print(f'(on Ray the wall time above assumes {args.workers} runs at a time: pass '
          "--workers=<runs the cluster holds at once> for the cluster's estimate)", flush=True)
  if args.command == 'plan':
    return 0
  return engine.run(planned, done, study.results, args.workers, args.ray_address, argv,
                    time_limit, measured, ratios)


if __name__ == '__main__':
  sys.exit(main())
