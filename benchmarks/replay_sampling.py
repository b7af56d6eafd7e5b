r"""Replay sampling: the package's vectorized sampler against Dopamine's own.

  .venv/bin/python benchmarks/replay_sampling.py [--capacity=100000] [--repeats=2000]

Fills Dopamine's OutOfGraphReplayBuffer with MinAtar-sized transitions (a
[10, 10, 7] bool screen) in episodes of 10-300 steps, most ending in a
terminal and some in a time-out (so the episode-end rule is exercised), then
times `sample_transition_batch` (batch 32, the MinAtar DQN's; and 128 with
3-step returns, the classic-control study's) of the same buffer with
Dopamine's sampler and with the package's (agents/replay.py), alternating
the two, and prints the medians and their ratio. A training step samples
once, so this is what sampling adds to every step.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import moe_dopamine  # pylint: disable=unused-import,g-import-not-at-top  # Legacy Keras first.
from dopamine.tf.replay_memory import circular_replay_buffer  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from moe_dopamine.agents import replay  # pylint: disable=g-import-not-at-top


def filled_buffer(capacity, batch_size, horizon, seed=0):
  rng = np.random.default_rng(seed)
  np.random.seed(seed)
  buffer = circular_replay_buffer.OutOfGraphReplayBuffer(
      observation_shape=(10, 10, 7), stack_size=1, replay_capacity=capacity,
      batch_size=batch_size, update_horizon=horizon, gamma=0.99, observation_dtype=np.bool_)
  screen = rng.random((10, 10, 7)) < 0.1
  added, episodes = 0, 0
  while added < capacity + capacity // 10:  # Wrapped around: the buffer is full.
    length = int(rng.integers(10, 300))
    timed_out = rng.random() < 0.2
    for step in range(length):
      last = step == length - 1
      buffer.add(screen, int(rng.integers(3)), float(rng.random() < 0.05),
                 last and not timed_out, episode_end=last)
    added += length
    episodes += 1
  return buffer, episodes


def median_us(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e6 * statistics.median(times)


def compare(capacity, batch_size, horizon, repeats):
  buffer, episodes = filled_buffer(capacity, batch_size, horizon)
  stock = circular_replay_buffer.OutOfGraphReplayBuffer
  ours = replay.VectorizedReplayBuffer
  timings = {'dopamine': [], 'moe_dopamine': []}
  for _ in range(5):  # Alternate, so that load drifts hit both alike.
    for name, cls in (('dopamine', stock), ('moe_dopamine', ours)):
      buffer.__class__ = cls
      timings[name].append(median_us(buffer.sample_transition_batch, repeats // 5))
  buffer.__class__ = stock
  dopamine, package = (statistics.median(timings[k]) for k in ('dopamine', 'moe_dopamine'))
  print(f'capacity {capacity:,} ({len(buffer.episode_end_indices):,} episode ends of '
        f'{episodes:,} episodes), batch {batch_size}, {horizon}-step returns: '
        f'Dopamine {dopamine:.0f} us, moe_dopamine {package:.0f} us per batch, '
        f'ratio {package / dopamine:.3f}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--capacity', type=int, default=100000)
  parser.add_argument('--repeats', type=int, default=2000)
  args = parser.parse_args()
  compare(args.capacity, 32, 1, args.repeats)
  compare(min(args.capacity, 50000), 128, 3, args.repeats)


if __name__ == '__main__':
  main()
