r"""Runs gin files x seeds x a grid of bindings, locally or on a Ray cluster.

  python -m moe_dopamine.sweep --out=runs/study \
      --gin_files=gin_configs/crl_baseline.gin --gin_files=gin_configs/crl_big_softmoe.gin \
      --seeds=0,1,2 [--grid="ClassicControlQNetwork.num_experts=4;8"] \
      [--gin_bindings=Runner.training_steps=500] [--workers=2] [--ray_address=auto]

Each run is `python -m moe_dopamine.train` in its own process, with one
TensorFlow thread per op, in <out>/<gin file>[__<grid values>]/seed_<s>; its
folder records its gin files, bindings and seed (run_info.json). Runs that
finished (finished.json) are skipped on a re-launch; an interrupted run
resumes from its checkpoint. A failed run is reported at the end without
stopping the others; the exit code is 1 if any failed.

Locally, `--workers` processes run at once (default: the number of cores).
With `--ray_address` (an address, 'auto' for a running cluster, or 'local' to
start Ray on this machine), every run is a Ray task needing one CPU; the
repository must be at the same path on every node.
"""

import argparse
import concurrent.futures
import dataclasses
import itertools
import os
import re
import subprocess
import sys
import time
from typing import List

from moe_dopamine import run_folder


@dataclasses.dataclass
class Run:
  gin_files: List[str]
  bindings: List[str]
  seed: int
  base_dir: str

  def command(self):
    return (
        [sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={self.base_dir}']
        + [f'--gin_files={f}' for f in self.gin_files]
        + [f'--gin_bindings={b}' for b in self.bindings]
        + [f'--gin_bindings=MoERunner.seed={self.seed}',
           '--gin_bindings=MoERunner.intra_op_threads=1']
    )

  @property
  def finished(self):
    return os.path.exists(os.path.join(self.base_dir, run_folder.FINISHED))


def parse_grid(specs):
  """['A.x=1;2', 'B.y=3'] -> [['A.x=1', 'B.y=3'], ['A.x=2', 'B.y=3']]."""
  axes = []
  for spec in specs:
    key, sep, values = spec.partition('=')
    if not sep or not values:
      raise ValueError(f"--grid '{spec}' must be Configurable.param=value1;value2")
    axes.append([f'{key.strip()}={v.strip()}' for v in values.split(';')])
  return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def _tag(binding):
  key, _, value = binding.partition('=')
  return f"{key.split('.')[-1]}-{re.sub(r'[^A-Za-z0-9._-]+', '', value)}"


def plan(gin_files, seeds, grid, common_bindings, out):
  """Every run of the sweep, in launch order."""
  runs = []
  for gin_file, combo in itertools.product(gin_files, grid):
    name = os.path.splitext(os.path.basename(gin_file))[0]
    if combo:
      name += '__' + '__'.join(_tag(b) for b in combo)
    for seed in seeds:
      runs.append(Run(
          gin_files=[os.path.abspath(gin_file)],
          bindings=list(common_bindings) + combo,
          seed=seed,
          base_dir=os.path.abspath(os.path.join(out, name, f'seed_{seed}')),
      ))
  return runs


def execute(run):
  """Runs one training process; returns (return code, last lines of its log)."""
  os.makedirs(run.base_dir, exist_ok=True)
  log_path = os.path.join(run.base_dir, run_folder.TRAIN_LOG)
  with open(log_path, 'a') as log:
    code = subprocess.run(
        run.command(), stdout=log, stderr=subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ).returncode
  with open(log_path) as log:
    tail = log.read()[-2000:]
  return code, tail


class Progress:
  """Prints runs done / total, elapsed time and an ETA after each run."""

  def __init__(self, total):
    self.total, self.done, self.start = total, 0, time.time()

  def update(self, run, code):
    self.done += 1
    elapsed = time.time() - self.start
    eta = elapsed / self.done * (self.total - self.done)
    status = 'ok' if code == 0 else f'FAILED (exit {code})'
    print(f'[{self.done}/{self.total}] {status} {run.base_dir}  '
          f'elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min', flush=True)


def run_local(runs, workers, progress):
  failures = []
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    futures = {pool.submit(execute, run): run for run in runs}
    for future in concurrent.futures.as_completed(futures):
      run = futures[future]
      code, tail = future.result()
      progress.update(run, code)
      if code:
        failures.append((run, tail))
  return failures


def run_ray(runs, address, progress):
  import ray  # pylint: disable=g-import-not-at-top

  if address == 'local':
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
  else:
    ray.init(address=address, log_to_driver=False)
  remote_execute = ray.remote(num_cpus=1)(execute)
  pending = {remote_execute.remote(run): run for run in runs}
  failures = []
  try:
    while pending:
      ready, _ = ray.wait(list(pending), num_returns=1)
      run = pending.pop(ready[0])
      try:
        code, tail = ray.get(ready[0])
      except ray.exceptions.RayError as error:
        code, tail = -1, str(error)
      progress.update(run, code)
      if code:
        failures.append((run, tail))
  finally:
    ray.shutdown()
  return failures


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--gin_files', action='append', required=True)
  parser.add_argument('--seeds', default='0', help='comma-separated seeds')
  parser.add_argument('--grid', action='append', default=[],
                      help="Configurable.param=v1;v2 (repeatable: a product)")
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help='bindings for every run')
  parser.add_argument('--out', required=True, help='folder of the sweep')
  parser.add_argument('--workers', type=int, default=os.cpu_count())
  parser.add_argument('--ray_address', default=None,
                      help="Ray cluster address, 'auto', or 'local'")
  args = parser.parse_args(argv)

  try:
    seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
    grid = parse_grid(args.grid)
    for path in args.gin_files:
      if not os.path.isfile(path):
        raise ValueError(f"gin file '{path}' does not exist.")
  except ValueError as error:
    print(f'moe_dopamine.sweep: error: {error}', file=sys.stderr)
    return 2
  runs = plan(args.gin_files, seeds, grid, args.gin_bindings, args.out)
  todo = [run for run in runs if not run.finished]
  print(f'{len(runs)} runs, {len(runs) - len(todo)} already finished, '
        f'{len(todo)} to run ' + (f'on Ray ({args.ray_address})' if args.ray_address
                                 else f'with {args.workers} local workers'), flush=True)
  progress = Progress(len(todo))
  if args.ray_address:
    failures = run_ray(todo, args.ray_address, progress)
  else:
    failures = run_local(todo, args.workers, progress)
  if failures:
    print(f'\n{len(failures)} run(s) failed:')
    for run, tail in failures:
      print(f'--- {run.base_dir} (log: {run.base_dir}/train.log)\n{tail[-600:]}')
    return 1
  print(f'all {len(runs)} runs finished; results in {os.path.abspath(args.out)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
