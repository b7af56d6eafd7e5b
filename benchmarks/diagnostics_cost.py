r"""Training throughput with the diagnostics logger at its default period, and without.

  .venv/bin/python benchmarks/diagnostics_cost.py [--gin_file=...] [--iterations=6] [--rounds=2]

Runs, alternating, the same experiment with MoEDQNAgent's default
diagnostics_period and with diagnostics_period=0, and prints the median
training steps per second of each and the slowdown (target: under 5%).
"""

import argparse
import os
import tempfile

from common import median_training_speed
from common import moe_dopamine_command
from common import read_iterations
from common import run_logged


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--gin_file', default='gin_configs/cartpole_middle_softmoe.gin')
  parser.add_argument('--iterations', type=int, default=6)
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  out = os.path.abspath(args.out or tempfile.mkdtemp(prefix='diagnostics_cost_'))
  os.makedirs(out, exist_ok=True)
  variants = {'with logger': [], 'without': ['MoEDQNAgent.diagnostics_period=0']}
  runs = {name: [] for name in variants}
  for round_index in range(args.rounds):
    order = list(variants) if round_index % 2 == 0 else list(variants)[::-1]
    for name in order:
      base_dir = os.path.join(out, f'{name.replace(" ", "_")}_{round_index}')
      bindings = [f'Runner.num_iterations={args.iterations}',
                  f'MoERunner.seed={round_index}'] + variants[name]
      run_logged(moe_dopamine_command(base_dir, args.gin_file, bindings), base_dir + '.log')
      runs[name].append(read_iterations(base_dir))
  speed = {name: median_training_speed(r) for name, r in runs.items()}
  print(f'{args.gin_file}: {args.rounds} runs x {args.iterations} iterations each')
  for name, value in speed.items():
    print(f'{name:>12}: {value:.1f} training steps/s (median)')
  print(f'slowdown with the logger: {100 * (1 - speed["with logger"] / speed["without"]):.1f}% '
        '(target < 5%)')


if __name__ == '__main__':
  main()
