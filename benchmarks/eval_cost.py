r"""What evaluation costs in an iteration at the default settings.

  .venv/bin/python benchmarks/eval_cost.py [--iterations=10]

Runs the CRL baseline (CartPole then MountainCar, each evaluated for 10
episodes every iteration, 1000 training steps per iteration) for
`iterations` iterations, half on each task, and prints per iteration the
evaluation time (both tasks), the training time and the evaluation's share of
the two (target < 25%).
"""

import argparse
import os
import statistics
import tempfile

from common import moe_dopamine_command
from common import read_iterations
from common import run_logged

from moe_dopamine.metrics import names


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--iterations', type=int, default=10)
  args = parser.parse_args()
  out = tempfile.mkdtemp(prefix='eval_cost_')
  base_dir = os.path.join(out, 'crl_baseline')
  run_logged(moe_dopamine_command(base_dir, 'gin_configs/crl_baseline.gin', [
      f'MultiTaskEnvironment.iterations_per_task={max(1, args.iterations // 2)}',
      'MoERunner.intra_op_threads=1', 'MoERunner.seed=0',
  ]), base_dir + '.log')
  iterations = read_iterations(base_dir)[1:]  # Iteration 0 fills the replay.
  shares = []
  print('| iteration | evaluation s | training s | evaluation share |')
  print('|---|---|---|---|')
  for i, stats in enumerate(iterations, start=1):
    evaluation = stats[names.EVAL_SECONDS][0]
    steps = sum(stats['train_episode_lengths'])
    training = steps / stats['train_average_steps_per_second'][0]
    shares.append(evaluation / (evaluation + training))
    print(f'| {i} | {evaluation:.2f} | {training:.2f} | {shares[-1]:.0%} |')
  print(f'median evaluation share of an iteration: {statistics.median(shares):.0%} '
        f'(target < 25%); runs in {out}')


if __name__ == '__main__':
  main()
