r"""MinAtar training throughput and replay memory.

  .venv/bin/python benchmarks/minatar_speed.py [--iterations=4] [--training_steps=5000] \
      [--game=breakout] [--runs=2]

Runs, alternating, `runs` times each,
- moe_dopamine's MinAtar baseline on one game (gin_configs/minatar_<game>_baseline.gin:
  Dopamine's MinAtar DQN hyperparameters, MinAtar's DQN network Conv(16) ->
  Dense(128) -> Q);
- moe_dopamine's Big SoftMoE on the same game (4 whole networks as experts);
- stock Dopamine's MinAtar DQN: `dopamine.discrete_domains.train` with the
  JAX agent and network of Dopamine's labs/environments/minatar/dqn_<game>.gin
  (Conv(16) -> Q, no hidden layer), written here for dopamine-rl 4.1.2 (whose
  wheel ships no gin files and whose JAX agent's replay is configured through
  `ReplayBuffer.*`), with the same budgets;
then prints each one's training steps per second (the median over iterations
>= 1 of every run, from Dopamine's logs: iteration 0 fills the 1,000-transition
warm-up) and its trainable parameter count, the ratio baseline / stock, and
the memory of a 100,000-transition replay buffer of each observation layout
(measured: the bytes of the stored arrays of Dopamine's buffer as the agent
builds it, next to the resident-memory growth of filling it).

If stock Dopamine cannot run here, the line says why. Budgets are small by
default; absolute figures on a loaded machine are noisy, ratios less so.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from common import median_training_speed
from common import moe_dopamine_command
from common import read_iterations
from common import run_logged
from common import stock_dopamine_command

# This script's name is MinAtar's package name: its folder leaves the import
# path before anything imports `minatar`, or `import minatar` would find it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import gin  # pylint: disable=g-import-not-at-top,g-bad-import-order
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.environments import tasks
from moe_dopamine.cost import resident_mib

GAMES = {spec.gym_id: name for name, spec in tasks.MINATAR_TASKS.items()}

# Dopamine's labs/environments/minatar/dqn_<game>.gin, for dopamine-rl 4.1.2:
# the same agent, network, hyperparameters and environment; the replay buffer
# module of 4.1.2's JAX agent (the file names an older one).
STOCK_MINATAR_GIN = """
import dopamine.discrete_domains.run_experiment
import dopamine.jax.agents.dqn.dqn_agent
import dopamine.jax.replay_memory.replay_buffer
import dopamine.labs.environments.minatar.minatar_env

JaxDQNAgent.observation_shape = %minatar_env.{shape}
JaxDQNAgent.observation_dtype = %minatar_env.DTYPE
JaxDQNAgent.stack_size = 1
JaxDQNAgent.network = @minatar_env.MinatarDQNNetwork
JaxDQNAgent.gamma = 0.99
JaxDQNAgent.update_horizon = 1
JaxDQNAgent.min_replay_history = 1000
JaxDQNAgent.update_period = 4
JaxDQNAgent.target_update_period = 1000
JaxDQNAgent.optimizer = 'adam'
create_optimizer.learning_rate = 0.00025
create_optimizer.eps = 3.125e-4

create_minatar_env.game_name = '{game}'
TrainRunner.create_environment_fn = @minatar_env.create_minatar_env
create_runner.schedule = 'continuous_train'
create_agent.agent_name = 'jax_dqn'
create_agent.debug_mode = True
Runner.num_iterations = 10
Runner.training_steps = 1000000
Runner.max_steps_per_episode = 100000000

ReplayBuffer.max_capacity = 100000
ReplayBuffer.batch_size = 32
"""


def stock_command(base_dir, gin_file, bindings):
  return stock_dopamine_command(base_dir, gin_file) + [f'--gin_bindings={b}' for b in bindings]


def jax_parameters(game):
  """Trainable parameters of Dopamine's MinatarDQNNetwork on `game`."""
  import jax  # pylint: disable=g-import-not-at-top
  from dopamine.labs.environments.minatar import minatar_env  # pylint: disable=g-import-not-at-top
  shape = tasks.MINATAR_TASKS[GAMES[game]].observation_shape
  params = minatar_env.MinatarDQNNetwork(num_actions=6).init(
      jax.random.PRNGKey(0), np.zeros(shape))
  return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))


def moe_dopamine_parameters(base_dir):
  import json  # pylint: disable=g-import-not-at-top
  with open(os.path.join(base_dir, 'run_info.json')) as f:
    return json.load(f)['num_parameters']


def replay_memory(task_names, capacity=100000):
  """(stored MiB, resident MiB growth) of a filled replay of `capacity`
  transitions of a MultiTaskEnvironment over `task_names`, as the agent
  builds it (observation dtype from the environment)."""
  gin.clear_config()
  config.load_gin_configs(
      [os.path.join(config.GIN_CONFIGS_DIR, 'minatar_breakout_baseline.gin')],
      [f'WrappedReplayBuffer.replay_capacity={capacity}'])
  with tf.Graph().as_default():
    environment = multitask.MultiTaskEnvironment(task_names=task_names)
    agent = factory.create_agent(tf.compat.v1.Session(), environment)
    memory = agent._replay.memory  # pylint: disable=protected-access
    before = resident_mib()
    observation = environment.reset()
    for i in range(capacity):  # Touch every page of the storage.
      memory.add(observation[:, None], i % 3, 0.0, False)
    grown = resident_mib() - before
    stored = sum(a.nbytes for a in memory._store.values()) / 2**20  # pylint: disable=protected-access
  gin.clear_config()
  return stored, grown, environment.observation_dtype, environment.observation_shape


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--iterations', type=int, default=4)
  parser.add_argument('--training_steps', type=int, default=5000)
  parser.add_argument('--game', default='breakout', choices=sorted(GAMES))
  parser.add_argument('--runs', type=int, default=2)
  parser.add_argument('--out', default=None, help='folder for the runs')
  args = parser.parse_args()
  out = os.path.abspath(args.out or tempfile.mkdtemp(prefix='minatar_'))
  os.makedirs(out, exist_ok=True)
  name = GAMES[args.game]
  ours_gin = f'gin_configs/minatar_{args.game}_baseline.gin'
  budget = [f'Runner.num_iterations={args.iterations}',
            f'Runner.training_steps={args.training_steps}']
  ours = budget + ['MoERunner.evaluation_episodes=2']  # Training steps/s only.
  variants = {
      'baseline': ours + ['MoERunner.seed={seed}'],
      'big_softmoe': ours + ['MoERunner.seed={seed}',
                             "MinAtarQNetwork.placement='big'", "MoE.router='softmoe'",
                             'MinAtarQNetwork.num_experts=4'],
  }
  stock_gin = os.path.join(out, f'dqn_{args.game}_stock.gin')
  shape = f'{args.game.upper()}_SHAPE'
  with open(stock_gin, 'w') as f:
    f.write(STOCK_MINATAR_GIN.format(shape=shape, game=args.game))

  results = {name_: [] for name_ in list(variants) + ['stock']}
  parameters = {}
  stock_problem = None
  for run in range(args.runs):
    order = list(results) if run % 2 == 0 else list(reversed(results))
    for variant in order:
      base_dir = os.path.join(out, f'{variant}_{run}')
      if variant == 'stock':
        if stock_problem:
          continue
        try:
          run_logged(stock_command(base_dir, stock_gin, budget), base_dir + '.log')
          results['stock'].append(read_iterations(base_dir))
          parameters['stock'] = jax_parameters(args.game)
        except (subprocess.CalledProcessError, OSError, ValueError, ImportError) as error:
          with open(base_dir + '.log') as log:
            last = [l for l in log.read().splitlines() if l.strip()][-1:]
          stock_problem = f'{type(error).__name__}: {" ".join(last) or error}'
        continue
      bindings = [b.format(seed=run) for b in variants[variant]]
      command = moe_dopamine_command(base_dir, ours_gin, bindings)
      if variant == 'big_softmoe':  # The MoE knobs' file after the game's.
        after = command.index(f'--gin_files={ours_gin}') + 1
        command.insert(after, '--gin_files=gin_configs/base/minatar_moe.gin')
      run_logged(command, base_dir + '.log')
      results[variant].append(read_iterations(base_dir))
      parameters[variant] = moe_dopamine_parameters(base_dir)

  print(f'MinAtar {name}, {args.iterations} iterations x {args.training_steps} '
        f'training steps, {args.runs} runs each, alternated; runs in {out}')
  print('| agent | network | parameters | training steps/s (median) |')
  print('|---|---|---|---|')
  labels = {
      'baseline': ('moe_dopamine baseline (TF)', 'Conv(16) -> Dense(128) -> Q'),
      'big_softmoe': ('moe_dopamine Big SoftMoE (TF)', '4 x baseline, SoftMoE'),
      'stock': ("stock Dopamine MinAtar DQN (JAX)", 'Conv(16) -> Q'),
  }
  speed = {}
  for variant, runs in results.items():
    agent, network = labels[variant]
    if not runs:
      print(f'| {agent} | {network} | - | could not run here: {stock_problem} |')
      continue
    speed[variant] = median_training_speed(runs)
    print(f'| {agent} | {network} | {parameters[variant]:,} | {speed[variant]:.0f} |')
  if 'stock' in speed:
    print(f'ratio baseline / stock training steps per second: '
          f'{speed["baseline"] / speed["stock"]:.2f} (the networks differ: ours has '
          'the 128-unit hidden layer of MinAtar\'s DQN)')
  print(f'ratio Big SoftMoE / baseline training steps per second: '
        f'{speed["big_softmoe"] / speed["baseline"]:.2f}')
  for task_names in ([name], ['Breakout', 'SpaceInvaders', 'Asterix']):
    stored, grown, dtype, shape = replay_memory(task_names)
    print(f'replay of 100,000 transitions, {"+".join(task_names)} (observations '
          f'{shape[0]} x {np.dtype(dtype).name}): {stored:.0f} MiB stored, resident '
          f'memory +{grown:.0f} MiB when filled')


if __name__ == '__main__':
  tf.get_logger().setLevel('ERROR')  # TF1 deprecation notes of the replay build.
  tf.compat.v1.disable_v2_behavior()
  main()
