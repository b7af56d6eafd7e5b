r"""Achieved GFLOP/s of a DQN training step, next to the machine's matmul rate.

  .venv/bin/python benchmarks/train_step_flops.py [--threads=1] [--repeats=200]

For the CartPole baseline and Big (SoftMoE, TopK k=1) at n = 4 and 8, builds
the agent as a run does (batch 128), fills its replay buffer, and times the
training step (sampling, forward, backward, Adam; median over `repeats`).
The FLOPs of a step come from moe_dopamine.networks.cost (matrix products
only). The reference rate is TensorFlow's fp32 matmul of the same shapes as
the baseline's widest layer ([128, 512] x [512, 512]) and of a large square
one ([1024, 1024] x [1024, 1024]), with the same thread count.
"""

import argparse
import os
import statistics
import time

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.networks import cost

VARIANTS = [
    ('baseline', 'cartpole_baseline.gin', []),
    ('big softmoe n=4', 'cartpole_big_softmoe.gin', ['ClassicControlQNetwork.num_experts=4']),
    ('big softmoe n=8', 'cartpole_big_softmoe.gin', ['ClassicControlQNetwork.num_experts=8']),
    ('big topk k=1 n=4', 'cartpole_big_topk.gin', ['ClassicControlQNetwork.num_experts=4']),
    ('big topk k=1 n=8', 'cartpole_big_topk.gin', ['ClassicControlQNetwork.num_experts=8']),
]


def session_config(threads):
  return tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads
  )


def median_seconds(fn, repeats):
  for _ in range(10):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_rate(m, k, n, threads, repeats):
  with tf.Graph().as_default():
    a = tf.Variable(np.random.normal(size=(m, k)).astype(np.float32))
    b = tf.Variable(np.random.normal(size=(k, n)).astype(np.float32))
    product = tf.reduce_sum(tf.matmul(a, b))
    with tf.compat.v1.Session(config=session_config(threads)) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      run = sess.make_callable(product)
      return 2 * m * k * n / median_seconds(run, repeats) / 1e9


def train_step_rate(gin_file, bindings, threads, repeats):
  gin.clear_config()
  config.load_gin_configs([os.path.join(config.GIN_CONFIGS_DIR, gin_file)], bindings)
  with tf.Graph().as_default():
    environment = multitask.MultiTaskEnvironment()
    agent = factory.create_agent(
        tf.compat.v1.Session(config=session_config(threads)), environment
    )
    agent._sess.run(tf.compat.v1.global_variables_initializer())  # pylint: disable=protected-access
    observation = environment.reset()
    for step in range(2000):  # Random play fills the replay buffer.
      action = np.random.randint(environment.num_actions)
      next_observation, reward, done, _ = environment.step(action)
      agent._replay.add(observation[:, None], action, reward, done)  # pylint: disable=protected-access
      observation = environment.reset() if done else next_observation
    seconds = median_seconds(agent._run_train_op, repeats)  # pylint: disable=protected-access
    flops = cost.training_step_flops(agent.online_convnet, agent._replay.batch_size)  # pylint: disable=protected-access
    return seconds, flops


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--threads', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=200)
  args = parser.parse_args()
  tf.compat.v1.disable_v2_behavior()
  config.register_external_configurables()
  layer_rate = matmul_rate(128, 512, 512, args.threads, args.repeats)
  square_rate = matmul_rate(1024, 1024, 1024, args.threads, max(20, args.repeats // 10))
  print(f'fp32 matmul, {args.threads} thread(s): [128,512]x[512,512] {layer_rate:.1f} '
        f'GFLOP/s; [1024,1024]x[1024,1024] {square_rate:.1f} GFLOP/s')
  print('| variant | GFLOP per step | ms per step | GFLOP/s | % of the [128,512]x[512,512] rate |')
  print('|---|---|---|---|---|')
  shares = {}
  for name, gin_file, bindings in VARIANTS:
    seconds, flops = train_step_rate(gin_file, bindings, args.threads, args.repeats)
    rate = flops / seconds / 1e9
    shares[name] = rate / layer_rate
    print(f'| {name} | {flops / 1e9:.3f} | {seconds * 1e3:.2f} | {rate:.1f} | '
          f'{100 * rate / layer_rate:.0f}% |', flush=True)
  big = min(v for k, v in shares.items() if k.startswith('big softmoe'))
  print(f'Big SoftMoE (n = 4 and 8), lowest share of the matmul rate: {big:.0%} '
        '(target >= 30%)')


if __name__ == '__main__':
  main()
