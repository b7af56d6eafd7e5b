r"""moe_dopamine's baseline against stock Dopamine DQN on CartPole, same session.

  .venv/bin/python benchmarks/vs_stock_dopamine.py [--iterations=30] [--seeds=3]

Runs, alternating, stock `dopamine.discrete_domains.train` with Dopamine's
dqn_cartpole.gin and `moe_dopamine.train` with gin_configs/cartpole_baseline.gin
(the same hyperparameters and network; both on CartPole-v1 with its 500-step
limit and a 1000-step evaluation budget), then prints
- training steps per second of each (median over iterations >= 1 of every
  run, read from Dopamine's logs) and the ratio ours / stock;
- the evaluation return of the last iteration of every run, their mean with a
  95% bootstrap CI over seeds (a range below 5 seeds), and a Mann-Whitney U
  test of the two sets of final returns.

Stock Dopamine's dqn_cartpole.gin imports `gin.tf.external_configurables`,
which no longer imports on TensorFlow >= 2.16; the stock run registers the same
TF1 optimizers with core gin instead and is otherwise untouched.
"""

import argparse
import os
import sys
import tempfile

from scipy import stats as stats_lib

from common import median_training_speed
from common import moe_dopamine_command
from common import read_iterations
from common import run_logged
from common import stock_dopamine_command

from moe_dopamine.metrics import continual

# Dopamine's dqn_cartpole.gin (dopamine-rl 4.1.2), less the broken import; its
# network is gym_lib.CartpoleDQNNetwork (the wheel has no legacy variant).
STOCK_CARTPOLE_GIN = """
import dopamine.discrete_domains.gym_lib
import dopamine.discrete_domains.run_experiment
import dopamine.tf.agents.dqn.dqn_agent
import dopamine.tf.replay_memory.circular_replay_buffer

DQNAgent.observation_shape = %gym_lib.CARTPOLE_OBSERVATION_SHAPE
DQNAgent.observation_dtype = %gym_lib.CARTPOLE_OBSERVATION_DTYPE
DQNAgent.stack_size = %gym_lib.CARTPOLE_STACK_SIZE
DQNAgent.network = @gym_lib.CartpoleDQNNetwork
DQNAgent.gamma = 0.99
DQNAgent.update_horizon = 1
DQNAgent.min_replay_history = 500
DQNAgent.update_period = 4
DQNAgent.target_update_period = 100
DQNAgent.epsilon_fn = @dopamine.tf.agents.dqn.dqn_agent.identity_epsilon
DQNAgent.tf_device = '/cpu:*'
DQNAgent.optimizer = @tf.train.AdamOptimizer()

tf.train.AdamOptimizer.learning_rate = 0.001
tf.train.AdamOptimizer.epsilon = 0.0003125

create_gym_environment.environment_name = 'CartPole'
create_gym_environment.version = 'v1'
run_experiment.create_agent.agent_name = 'dqn'
Runner.create_environment_fn = @gym_lib.create_gym_environment
Runner.num_iterations = 500
Runner.training_steps = 1000
Runner.evaluation_steps = 1000
Runner.max_steps_per_episode = 500

WrappedReplayBuffer.replay_capacity = 50000
WrappedReplayBuffer.batch_size = 128
"""



def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--iterations', type=int, default=30)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--out', default=None, help='folder for the runs')
  args = parser.parse_args()
  out = os.path.abspath(args.out or tempfile.mkdtemp(prefix='vs_stock_'))
  os.makedirs(out, exist_ok=True)
  stock_gin = os.path.join(out, 'dqn_cartpole_stock.gin')
  with open(stock_gin, 'w') as f:
    f.write(STOCK_CARTPOLE_GIN)
  iterations = f'Runner.num_iterations={args.iterations}'

  results = {'stock': [], 'moe_dopamine': []}
  for seed in range(args.seeds):
    # Alternate who goes first, so drift in machine load hits both.
    order = ['stock', 'moe_dopamine'] if seed % 2 == 0 else ['moe_dopamine', 'stock']
    for name in order:
      base_dir = os.path.join(out, f'{name}_{seed}')
      if name == 'stock':
        command = stock_dopamine_command(base_dir, stock_gin) + [f'--gin_bindings={iterations}']
      else:
        command = moe_dopamine_command(
            base_dir, 'gin_configs/cartpole_baseline.gin',
            [iterations, f'MoERunner.seed={seed}', 'MoERunner.evaluation_episodes=None'])
      run_logged(command, base_dir + '.log')
      stats = read_iterations(base_dir)
      results[name].append(stats)
      print(f'{name} seed {seed}: final eval return '
            f'{stats[-1]["eval_average_return"][0]:.1f}', flush=True)

  print(f'\nCartPole, {args.iterations} iterations x 1000 training steps, '
        f'{args.seeds} runs each; runs in {out}')
  speed, finals = {}, {}
  for name, runs in results.items():
    speed[name] = median_training_speed(runs)
    finals[name] = [stats[-1]['eval_average_return'][0] for stats in runs]
    summary = continual.format_over_seeds(continual.over_seeds(finals[name]), 1)
    print(f'{name:>13}: {speed[name]:7.1f} training steps/s (median); final eval '
          f'returns {", ".join(f"{r:.1f}" for r in finals[name])}: {summary}')
  print(f'ratio moe_dopamine / stock training steps per second: '
        f'{speed["moe_dopamine"] / speed["stock"]:.2f} (target >= 2)')
  test = stats_lib.mannwhitneyu(finals['moe_dopamine'], finals['stock'])
  print(f'final returns, Mann-Whitney U test moe_dopamine vs stock: p = {test.pvalue:.2f} '
        '(a large p: no evidence that they differ)')


if __name__ == '__main__':
  main()
