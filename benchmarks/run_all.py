r"""Runs every benchmark and rewrites benchmarks/README.md with the figures.

  .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark runs in its own process, one after the other (the machine
should be otherwise idle: compared runs alternate inside each benchmark, but
absolute figures move with load). --quick uses small budgets to check that
everything runs; the README figures come from the full settings.
"""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (title, what it shows, script, full arguments, quick arguments)
BENCHMARKS = [
    ('Training throughput and returns against stock Dopamine',
     'CartPole-v1 baseline, the same hyperparameters and algorithm as stock '
     "Dopamine's TF DQN (dqn_cartpole.gin), alternated runs; final evaluation "
     'returns over seeds show that both learn alike.',
     'vs_stock_dopamine.py', ['--iterations=30', '--seeds=5'],
     ['--iterations=3', '--seeds=2']),
    ('Cost over a long run',
     'Time per iteration at the start and the end of a long run, checkpoint '
     '(.meta) size and peak memory.',
     'long_run.py', ['--iterations=200'], ['--iterations=20']),
    ('Evaluation cost',
     'Evaluation (10 episodes of each of 2 tasks, side by side) against training '
     '(1000 steps) in the iterations of a default CRL run.',
     'eval_cost.py', ['--iterations=10'], ['--iterations=4']),
    ('GFLOP/s of a training step',
     'Analytic FLOPs of a training step over its measured time, next to the '
     "machine's fp32 matmul rate (1 thread).",
     'train_step_flops.py', ['--repeats=200'], ['--repeats=20']),
    ('Faster matmul gradients',
     "Training-step time with the package's MatMul input gradient, (W dy^T)^T, "
     "against TensorFlow's dy W^T, two agents per variant in one process, "
     'alternated (1 thread).',
     'matmul_gradients.py', ['--rounds=10', '--steps=50'], ['--rounds=2', '--steps=5']),
    ('MinAtar experts: convolution against patches',
     "Training-step and acting time of the Big placement's whole-network experts with "
     'their conv layer as tf.nn.conv2d (the package) against extracted patches times the '
     'flattened kernel, two agents per variant in one process, alternated (1 thread).',
     'conv_experts.py', ['--rounds=10', '--steps=50'], ['--rounds=2', '--steps=5']),
    ('MoE paths against the ones they replaced',
     "Training-step and acting time with SoftMoE's products as matmuls and each expert's "
     'slots split from the slot tensor, one-token SoftMoE running each expert once, conv '
     'experts on shared screens as one convolution and routed conv experts padded with a '
     'split, against the einsum, transpose, per-expert convolution and strided-slice paths '
     'they replaced, two agents per variant in one process, alternated (1 thread).',
     'moe_paths.py', ['--rounds=10', '--steps=50'], ['--rounds=2', '--steps=5']),
    ('Session calls in the calling thread',
     "Greedy-action and training-step time with the session running a call's ops in the "
     "calling thread (the agent's acting calls) against handing them to TensorFlow's "
     'inter-op pool, two callables of the same fetch, alternated (1 thread).',
     'session_calls.py', ['--rounds=10', '--steps=50'], ['--rounds=2', '--steps=5']),
    ('Stacked expert variables',
     "Training-step and acting time with each layer's experts stored as one stacked "
     'variable [n, fan_in, fan_out], unstacked per call, against one variable per expert '
     '(the package), two agents per variant in one process, alternated (1 thread).',
     'stacked_experts.py', ['--rounds=10', '--steps=50'], ['--rounds=2', '--steps=5']),
    ('Where a training step goes',
     'Op time of a training step by op type (FULL_TRACE), XLA auto-clustering against '
     "TensorFlow's default executor (fresh processes, alternated), and MinAtar's conv "
     'layer as tf.nn.conv2d against patch matmuls (1 thread).',
     'step_profile.py', ['--steps=20', '--rounds=3'], ['--steps=2', '--rounds=1']),
    ('Replay sampling',
     "One batch from a full replay buffer with the package's vectorized sampler "
     "against Dopamine's, alternated on the same buffer (MinAtar-sized screens).",
     'replay_sampling.py', ['--repeats=2000'], ['--repeats=100']),
    ('MoE layer cost',
     'Forward + backward time of one MoE layer (batch 128, width 512, 1 thread).',
     'moe_layers.py', ['--repeats=200'], ['--repeats=20']),
    ('MinAtar',
     "Training steps/s on MinAtar Breakout of the MinAtar baseline, of Big SoftMoE "
     "and of stock Dopamine's MinAtar DQN (the JAX labs agent), alternated; the "
     'memory of a 100,000-transition replay buffer.',
     'minatar_speed.py', ['--iterations=4', '--training_steps=5000', '--runs=3'],
     ['--iterations=2', '--training_steps=2000', '--runs=1']),
    ('Sweep scaling',
     'Runs per hour of a local sweep with 1 worker and with one worker per core.',
     'sweep_scaling.py', ['--runs=4', '--iterations=4'], ['--runs=2', '--iterations=2']),
]


def markdown(lines):
  """A benchmark's printed lines as Markdown: tables as they are, other lines
  as list items."""
  out, in_table = [], False
  for line in lines:
    is_table = line.startswith('|')
    if is_table != in_table and out:
      out.append('')
    out.append(line if is_table else f'- {line}')
    in_table = is_table
  return out


def summary(sections):
  """One table of the figures that have a target, from the sections' lines."""
  rows = []
  for section in sections:
    title = section.split('\n', 1)[0].lstrip('# ')
    for line in section.splitlines():
      if '(target' in line:
        rows.append(f"| {title} | {line.lstrip('- ').strip()} |")
  return '\n'.join(['| benchmark | figure (and its target) |', '|---|---|'] + rows) + '\n'


def machine():
  model = platform.processor() or 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  memory = ''
  try:
    with open('/proc/meminfo') as f:
      total_kib = int(f.readline().split()[1])
    memory = f', {total_kib / 2**20:.0f} GiB'
  except (OSError, ValueError, IndexError):
    pass
  return f'{model}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--only', action='append', default=[],
                      help='run only this script (e.g. long_run.py) and replace its '
                           'section of the existing README (repeatable)')
  args = parser.parse_args()
  readme = os.path.join(HERE, 'README.md')
  previous = {}
  measured_on = f'measured on {datetime.date.today()}, {machine()}.'
  if args.only and os.path.exists(readme):
    with open(readme) as f:
      text = f.read()
    for section in text.split('\n## ')[1:]:
      previous[section.split('\n', 1)[0]] = '## ' + section.rstrip('\n') + '\n'
    kept = re.search(r'measured on [^\n]*?\.(?= |\n)', text)
    if kept:  # The kept sections' day and machine; a rerun section names its own.
      measured_on = kept.group(0)
  sections = []
  for title, what, script, full, quick in BENCHMARKS:
    if args.only and script not in args.only and title in previous:
      sections.append(previous[title])
      continue
    arguments = quick if args.quick else full
    command = [sys.executable, script] + arguments
    shown = ' '.join(['.venv/bin/python', f'benchmarks/{script}'] + arguments)
    print(f'== {shown}', flush=True)
    start = time.time()
    result = subprocess.run(command, cwd=HERE, capture_output=True, text=True)
    output = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode:
      output += ['', f'FAILED (exit code {result.returncode}):'] + result.stderr.splitlines()[-15:]
    print('\n'.join(output), flush=True)
    sections.append(
        f'## {title}\n\n{what}\n\n`{shown}` ({time.time() - start:.0f} s'
        + (f'; {datetime.date.today()}, {machine()}' if args.only else '') + ')\n\n'
        + '\n'.join(markdown(output)) + '\n'
    )
  header = (
      '# Benchmarks\n\n'
      f'Regenerate with `.venv/bin/python benchmarks/run_all.py`'
      f'{" --quick" if args.quick else ""}; '
      f'{measured_on}'
      + (' A section whose command names a day was measured then.' if args.only else '')
      + '\n'
      'Compared runs alternate inside each benchmark; absolute times on a shared '
      'machine are noisy, ratios less so.\n\n'
  ) + summary(sections) + '\n'

  with open(readme, 'w') as f:
    f.write(header + '\n'.join(sections))
  print(f'wrote {os.path.join(HERE, "README.md")}')


if __name__ == '__main__':
  main()
