r"""The cost of every network variant, as a Markdown table.

  python -m moe_dopamine.cost [--gin_files=gin_configs/cartpole_big_softmoe.gin ...] \
      [--num_experts=4,8] [--measure] [--out=cost.md]

One row per gin file and number of experts (default: every single-task
CartPole placement x router, n = 4 and 8): trainable parameters, parameters
active in one forward pass, FLOPs of an acting forward pass and of a training
step (moe_dopamine.networks.cost: analytic, from the layer shapes). With
--measure, also the median time of a training step (sampling, forward,
backward, Adam) and of choosing an action, on one thread, each with its ratio
to the baseline's, and the process's resident memory once the variant is built
and trained (variants are built one after the other in one process, so it
includes what earlier ones left behind).
"""

import argparse
import glob
import os
import statistics
import sys
import time

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.networks import cost
from moe_dopamine.networks import q_networks


def default_gin_files():
  files = sorted(glob.glob(os.path.join(config.GIN_CONFIGS_DIR, 'cartpole_*.gin')))
  return [f for f in files if not f.endswith('_scaled.gin')]


def build_agent(gin_file, num_experts, threads=1):
  """The variant's agent, as a run builds it, in a fresh graph and session."""
  gin.clear_config()
  config.load_gin_configs([gin_file], [f'ClassicControlQNetwork.num_experts={num_experts}'])
  graph = tf.Graph()
  with graph.as_default():
    session = tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads))
    environment = multitask.MultiTaskEnvironment()
    agent = factory.create_agent(session, environment)
    session.run(tf.compat.v1.global_variables_initializer())
  return agent, environment


def resident_mib():
  """This process's resident memory now (Linux), in MiB."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) / 1024
  return float('nan')


def median_ms(fn, repeats):
  for _ in range(5):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def measure(agent, environment, repeats):
  """(ms per training step, ms per action) after filling the replay."""
  observation = environment.reset()
  for _ in range(1000):
    action = np.random.randint(environment.num_actions)
    next_observation, reward, done, _ = environment.step(action)
    agent._replay.add(observation[:, None], action, reward, done)  # pylint: disable=protected-access
    observation = environment.reset() if done else next_observation
  state = observation[None, :, None, None]
  train_ms = median_ms(agent._run_train_op, repeats)  # pylint: disable=protected-access
  act_ms = median_ms(lambda: agent._greedy_action(state), repeats * 5)  # pylint: disable=protected-access
  return train_ms, act_ms


def rows(gin_files, experts, measured, repeats):
  out = []
  for gin_file in gin_files:
    for num_experts in experts:
      agent, environment = build_agent(gin_file, num_experts)
      network = agent.online_convnet
      if network.placement == q_networks.Placement.BASELINE and num_experts != experts[0]:
        continue  # The baseline does not depend on n.
      flops, active = cost.forward_cost(network)
      row = {
          'variant': os.path.splitext(os.path.basename(gin_file))[0],
          'n': '-' if network.placement == q_networks.Placement.BASELINE else num_experts,
          'parameters': q_networks.count_parameters(network),
          'active': active,
          'acting MFLOP': flops / 1e6,
          'training-step GFLOP': cost.training_step_flops(
              network, agent._replay.batch_size) / 1e9,  # pylint: disable=protected-access
      }
      if measured:
        row['train ms'], row['act ms'] = measure(agent, environment, repeats)
        row['RSS MiB'] = resident_mib()
      out.append(row)
  return out


def table(result):
  baseline = next((r for r in result if r['n'] == '-'), None)
  header = ['variant', 'n', 'parameters', 'active', 'acting MFLOP', 'training-step GFLOP']
  if 'train ms' in result[0]:
    header += ['train ms', 'x baseline', 'act ms', 'x baseline ', 'RSS MiB']
  lines = ['| ' + ' | '.join(h.strip() for h in header) + ' |',
           '|' + '---|' * len(header)]
  for r in result:
    cells = [r['variant'], str(r['n']), f"{r['parameters']:,}", f"{r['active']:,}",
             f"{r['acting MFLOP']:.2f}", f"{r['training-step GFLOP']:.3f}"]
    if 'train ms' in r:
      cells += [f"{r['train ms']:.2f}",
                f"{r['train ms'] / baseline['train ms']:.2f}" if baseline else '-',
                f"{r['act ms']:.3f}",
                f"{r['act ms'] / baseline['act ms']:.2f}" if baseline else '-',
                f"{r['RSS MiB']:.0f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--gin_files', action='append', default=None)
  parser.add_argument('--num_experts', default='4,8')
  parser.add_argument('--measure', action='store_true')
  parser.add_argument('--repeats', type=int, default=100)
  parser.add_argument('--out', default=None, help='also write the table to this file')
  args = parser.parse_args(argv)
  tf.compat.v1.disable_v2_behavior()
  try:
    experts = [int(n) for n in args.num_experts.split(',')]
    result = rows(args.gin_files or default_gin_files(), experts, args.measure, args.repeats)
  except (ValueError, config.ConfigError) as error:
    print(f'moe_dopamine.cost: error: {error}', file=sys.stderr)
    return 2
  text = table(result)
  if args.measure:
    text = (f'Measured with `python -m moe_dopamine.cost --measure --repeats={args.repeats}` '
            f'on {os.cpu_count()} cores, 1 thread per variant.\n\n' + text)
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
