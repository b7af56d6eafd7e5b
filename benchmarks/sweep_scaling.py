r"""How a local sweep scales with its workers on this machine.

  .venv/bin/python benchmarks/sweep_scaling.py [--runs=4] [--iterations=4]

Runs the same sweep (the CartPole baseline, `runs` seeds, `iterations`
iterations each) with 1 worker and with one worker per core, alternating
twice, and prints the runs per hour of each and their ratio (target >= 1.8
with 2 workers on 2 cores). Each run's TensorFlow thread count is the sweep's
own choice (cores // workers).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO


def sweep_seconds(out, workers, runs, iterations):
  command = [
      sys.executable, '-m', 'moe_dopamine.sweep', f'--out={out}',
      '--gin_files=gin_configs/cartpole_baseline.gin',
      f'--seeds={",".join(str(s) for s in range(runs))}', f'--workers={workers}',
      f'--gin_bindings=Runner.num_iterations={iterations}',
  ]
  start = time.perf_counter()
  subprocess.run(command, cwd=REPO, check=True, capture_output=True)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--runs', type=int, default=4)
  parser.add_argument('--iterations', type=int, default=4)
  parser.add_argument('--repeats', type=int, default=2)
  args = parser.parse_args()
  cores = os.cpu_count()
  out = tempfile.mkdtemp(prefix='sweep_scaling_')
  seconds = {1: [], cores: []}
  for repeat in range(args.repeats):
    for workers in ((1, cores) if repeat % 2 == 0 else (cores, 1)):
      folder = os.path.join(out, f'w{workers}_r{repeat}')
      seconds[workers].append(sweep_seconds(folder, workers, args.runs, args.iterations))
  per_hour = {w: 3600 * args.runs / statistics.median(s) for w, s in seconds.items()}
  print(f'{args.runs} runs of {args.iterations} iterations, {cores} cores; runs in {out}')
  for workers, rate in per_hour.items():
    print(f'{workers} worker(s): {rate:.0f} runs/hour '
          f'(median of {", ".join(f"{s:.1f}" for s in seconds[workers])} s)')
  print(f'scaling {cores} workers / 1 worker: {per_hour[cores] / per_hour[1]:.2f} '
        '(target >= 1.8 on 2 cores)')


if __name__ == '__main__':
  main()
