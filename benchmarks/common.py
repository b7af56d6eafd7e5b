"""Helpers shared by the benchmarks: run a training command, read its logs,
time alternatives paired in one process."""

import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import moe_dopamine  # pylint: disable=unused-import,g-import-not-at-top  # Legacy Keras first.
from moe_dopamine.metrics import run_logs  # pylint: disable=g-import-not-at-top


def run_logged(command, log_path):
  """Runs `command` from the repository root, its output into `log_path`."""
  with open(log_path, 'w') as log:
    subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)


def moe_dopamine_command(base_dir, gin_file, bindings=()):
  return [sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={base_dir}',
          f'--gin_files={gin_file}'] + [f'--gin_bindings={b}' for b in bindings]


def read_iterations(base_dir):
  """Per-iteration statistics of a run (the package's one log reader)."""
  return run_logs.load_iterations(base_dir)


def median_training_speed(runs):
  """Median training steps/s over iterations >= 1 (iteration 0 fills the
  replay buffer before training starts) of every run."""
  return statistics.median(
      it['train_average_steps_per_second'][0] for its in runs for it in its[1:]
  )


def stock_dopamine_command(base_dir, gin_file):
  """The command running stock `dopamine.discrete_domains.train` on a gin
  file, with the TF1 optimizers registered with core gin (Dopamine's own gin
  files import gin.tf.external_configurables, which TensorFlow >= 2.16 lacks)."""
  main = (
      'import os\n'
      "os.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
      'import gin\n'
      'import tensorflow as tf\n'
      'for optimizer in (tf.compat.v1.train.AdamOptimizer, tf.compat.v1.train.RMSPropOptimizer):\n'
      "  gin.external_configurable(optimizer, module='tf.train')\n"
      'from absl import app\n'
      'from dopamine.discrete_domains import train\n'
      'app.run(train.main)\n'
  )
  return [sys.executable, '-c', main, f'--base_dir={base_dir}', f'--gin_files={gin_file}']


def seconds_per_call(fn, calls):
  start = time.perf_counter()
  for _ in range(calls):
    fn()
  return (time.perf_counter() - start) / calls


def paired_times(fns, rounds, calls, warmup=5):
  """{name: [seconds per call, one per round]} of the callables `fns` ({name:
  fn}), each warmed up with `warmup` calls, then `rounds` times `calls` calls
  each, alternating which goes first: drift of the machine hits all alike."""
  for fn in fns.values():
    seconds_per_call(fn, warmup)
  times = {name: [] for name in fns}
  for i in range(rounds):
    names = list(fns) if i % 2 == 0 else list(fns)[::-1]
    for name in names:
      times[name].append(seconds_per_call(fns[name], calls))
  return times


def paired_ratio(times, new, old):
  """Median over rounds of times[new] / times[old]."""
  return statistics.median(n / o for n, o in zip(times[new], times[old]))


def paired_cells(fns, old, new, rounds, calls, warmup=5, digits=2):
  """Table cells of two alternatives timed by paired_times: the median ms of
  `old` and of `new` per call, and the paired ratio new / old."""
  times = paired_times(fns, rounds, calls, warmup=warmup)
  return [f'{1e3 * statistics.median(times[old]):.{digits}f}',
          f'{1e3 * statistics.median(times[new]):.{digits}f}',
          f'{paired_ratio(times, new, old):.2f}']


def patched_agent(variant, patches=(), num_experts=None):
  """(agent, one state) for a variant (a gin file name or a cost.Variant),
  built as a run builds it (moe_dopamine.cost.build_agent, one thread) with
  `patches`, (owner, attribute, value) triples, in place while it is built
  and restored after; its replay buffer holds 1,000 transitions and the
  state is shaped for a greedy action."""
  from moe_dopamine import cost  # pylint: disable=g-import-not-at-top  # TensorFlow only when used.
  if isinstance(variant, str):
    variant = cost.gin_path(variant)
  saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
  for owner, name, value in patches:
    setattr(owner, name, value)
  try:
    agent, environment = cost.build_agent(variant, num_experts)
  finally:
    for owner, name, value in saved:
      setattr(owner, name, value)
  observation = cost.fill_replay(agent, environment, seed=0)
  return agent, observation[None, :, None, None]


def agent_row(label, agents, old, new, rounds, steps, warmup=5):
  """A Markdown table row: training steps (`steps` per round) then greedy
  actions (5 x `steps`) of agents[old] and agents[new] ((agent, state)
  pairs), each as paired_cells."""
  train = {name: agent._run_train_op for name, (agent, _) in agents.items()}  # pylint: disable=protected-access
  act = {name: (lambda a=agent, s=state: a._greedy_action(s))  # pylint: disable=protected-access
         for name, (agent, state) in agents.items()}
  cells = ([label] + paired_cells(train, old, new, rounds, steps, warmup)
           + paired_cells(act, old, new, rounds, 5 * steps, warmup))
  return '| ' + ' | '.join(cells) + ' |'


def paired_benchmark_args(doc, header):
  """--rounds and --steps of a paired benchmark (described by the first line
  of `doc`), with TensorFlow in graph mode and the table's `header` columns
  printed as a Markdown header."""
  import argparse  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=doc.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=10)
  parser.add_argument('--steps', type=int, default=50)
  args = parser.parse_args()
  tf.compat.v1.disable_v2_behavior()
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  return args
