r"""Cost over a long run: time per iteration, checkpoint size and memory.

  .venv/bin/python benchmarks/long_run.py [--iterations=200] [--out=DIR]

Runs the CartPole baseline and Big SoftMoE with 8 experts on CartPole for
`iterations` short iterations each (100 training steps in episodes capped at
20 steps, one evaluation episode), one after the other, and prints for each
- the wall time per iteration (logging and checkpointing included: the time
  between consecutive checkpoints) over the second 10% of the iterations
  (the replay buffer, of 2000 transitions, is full by then) and the last 10%,
  and their ratio, and the end over the start of a line fitted through every
  iteration after the replay fills, the slowest 10% left out (target <= 1.1:
  the graph is finalized, so nothing may grow per iteration);
- the size of the newest TensorFlow `.meta` file at the start and the end;
- the peak resident memory (RSS) of the process over the first and the last
  10% of the run.
"""

import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from common import REPO
from common import moe_dopamine_command

SHORT = [
    'Runner.training_steps=100',
    # Episodes capped at 20 steps: the work per iteration stays the same as
    # the agent learns, so any growth comes from the run's own bookkeeping.
    'Runner.max_steps_per_episode=20',
    # A replay buffer full after 20 iterations: checkpointing a fuller buffer
    # costs more (Dopamine compresses every array), which is not growth.
    'WrappedReplayBuffer.replay_capacity=2000',
    'MoERunner.evaluation_episodes=1',
    'DQNAgent.min_replay_history=50',
    'MoERunner.intra_op_threads=1',
    'MoERunner.seed=0',
]
VARIANTS = {
    'cartpole_baseline': ('gin_configs/cartpole_baseline.gin', []),
    'cartpole_big_softmoe_n8': (
        'gin_configs/cartpole_big_softmoe.gin',
        ['ClassicControlQNetwork.num_experts=8'],
    ),
}


def rss_kib(pid):
  """Resident memory of a live process in KiB (None once it has exited)."""
  with open(f'/proc/{pid}/status') as f:
    match = re.search(r'VmRSS:\s+(\d+)', f.read())
  return int(match.group(1)) if match else None


def checkpoint_times(checkpoint_dir):
  """{iteration: modification time of ckpt.<iteration>}."""
  out = {}
  for path in glob.glob(os.path.join(checkpoint_dir, 'ckpt.*')):
    match = re.search(r'ckpt\.(\d+)$', path)
    if match:
      out[int(match.group(1))] = os.path.getmtime(path)
  return out


def run(name, gin_file, bindings, iterations, out):
  base_dir = os.path.join(out, name)
  command = moe_dopamine_command(
      base_dir, gin_file, SHORT + bindings + [f'Runner.num_iterations={iterations}']
  )
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  checkpoints = os.path.join(base_dir, 'checkpoints')
  times, memory, meta = {}, [], {}
  done = threading.Event()

  def watch():
    while not done.is_set():
      try:
        rss = rss_kib(process.pid)
        if rss is not None:
          memory.append((len(times), rss))
      except (FileNotFoundError, ProcessLookupError):
        pass
      if os.path.isdir(checkpoints):
        # Dopamine keeps only the last few checkpoints: record them as they come.
        try:
          for iteration, mtime in checkpoint_times(checkpoints).items():
            times.setdefault(iteration, mtime)
        except FileNotFoundError:
          pass
        try:  # Dopamine deletes old checkpoints as it goes.
          metas = glob.glob(os.path.join(checkpoints, '*.meta'))
          if metas:
            newest = max(metas, key=os.path.getmtime)
            meta.setdefault(len(times), os.path.getsize(newest))
        except FileNotFoundError:
          pass
      time.sleep(0.02)

  watcher = threading.Thread(target=watch)
  watcher.start()
  code = process.wait()
  done.set()
  watcher.join()
  if code:
    sys.exit(f'{name} failed with exit code {code}; run the command to see why: '
             + ' '.join(command))
  iterations_seen = sorted(times)
  durations = [times[i] - times[i - 1] for i in iterations_seen[1:] if i - 1 in times]
  tenth = max(1, len(durations) // 10)
  first = statistics.median(durations[tenth:2 * tenth])
  last = statistics.median(durations[-tenth:])
  # A straight line through every iteration after the replay is full (robust
  # to a few slow iterations on a shared machine): its end over its start.
  steady = np.asarray(durations[tenth:], float)
  x = np.arange(len(steady))
  keep = steady <= np.quantile(steady, 0.9)  # Drop the slowest 10% (noise).
  slope, intercept = np.polyfit(x[keep], steady[keep], 1)
  trend = (intercept + slope * x[-1]) / intercept
  cut = max(1, len(iterations_seen) // 10)
  early = max(m for i, m in memory if i <= cut)
  late = max(m for i, m in memory if i >= len(iterations_seen) - cut)
  meta_sizes = [meta[k] for k in sorted(meta)]
  return {
      'first_s': first, 'last_s': last, 'ratio': last / first, 'trend': trend,
      'meta_start_kb': meta_sizes[0] / 1024, 'meta_end_kb': meta_sizes[-1] / 1024,
      'rss_early_mib': early / 1024, 'rss_late_mib': late / 1024,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--iterations', type=int, default=200)
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  out = os.path.abspath(args.out or tempfile.mkdtemp(prefix='long_run_'))
  print(f'{args.iterations} iterations of 100 training steps each; runs in {out}')
  print('| variant | s/iteration, second 10% | last 10% | last / second | fitted end / start '
        '| .meta KB start -> end | peak RSS MiB, first 10% -> last 10% |')
  print('|---|---|---|---|---|---|---|')
  results = {}
  for name, (gin_file, bindings) in VARIANTS.items():
    r = results[name] = run(name, gin_file, bindings, args.iterations, out)
    print(f"| {name} | {r['first_s']:.3f} | {r['last_s']:.3f} | {r['ratio']:.2f} | "
          f"{r['trend']:.2f} | "
          f"{r['meta_start_kb']:.0f} -> {r['meta_end_kb']:.0f} | "
          f"{r['rss_early_mib']:.0f} -> {r['rss_late_mib']:.0f} |", flush=True)
  worst = max(r['trend'] for r in results.values())
  print(f'largest time per iteration, end / start of the run (line fitted through every '
        f'iteration after the replay fills): {worst:.2f} (target <= 1.1)')


if __name__ == '__main__':
  main()
