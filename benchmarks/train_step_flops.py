r"""Achieved GFLOP/s of a DQN training step, next to the machine's matmul rate.

  .venv/bin/python benchmarks/train_step_flops.py [--threads=1] [--repeats=200]

For the CartPole baseline and Big (SoftMoE, TopK k=1) at n = 4 and 8, builds
the agent as a run does (batch 128; moe_dopamine.cost's helpers), fills its
replay buffer, and times the training step (sampling, forward, backward, Adam; median over `repeats`).
The FLOPs of a step come from moe_dopamine.networks.cost (matrix products
only). The reference rate is TensorFlow's fp32 matmul of the same shapes as
the baseline's widest layer ([128, 512] x [512, 512]) and of a large square
one ([1024, 1024] x [1024, 1024]), with the same thread count. A sweep over
the rows M of the products a training step makes shows TensorFlow's own rate
at each shape: the forward product [M, 512] x [512, 512] and the kernel
gradient [M, 512]^T x [M, 512] (M = 16 or 32 is what each of 8 or 4 TopK
experts gets of a batch of 128). An action's products have one row: their
rate, in GB/s of weights read, beside NumPy's on the same matrices.
"""

import argparse
import os

# NumPy's one-row products on one thread (before NumPy loads its BLAS).
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import cost as cost_lib
from moe_dopamine.networks import cost

VARIANTS = [
    ('baseline', 'cartpole_baseline.gin', 4),
    ('big softmoe n=4', 'cartpole_big_softmoe.gin', 4),
    ('big softmoe n=8', 'cartpole_big_softmoe.gin', 8),
    ('big topk k=1 n=4', 'cartpole_big_topk.gin', 4),
    ('big topk k=1 n=8', 'cartpole_big_topk.gin', 8),
]


def session_config(threads):
  return tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads
  )


def matmul_rate(m, k, n, threads, repeats, kernel_gradient=False):
  """GFLOP/s of [m, k] x [k, n]; with kernel_gradient, of [k, m]^T x [k, n]
  (a weight gradient: k rows contracted)."""
  with tf.Graph().as_default():
    if kernel_gradient:
      a = tf.Variable(np.random.normal(size=(k, m)).astype(np.float32))
    else:
      a = tf.Variable(np.random.normal(size=(m, k)).astype(np.float32))
    b = tf.Variable(np.random.normal(size=(k, n)).astype(np.float32))
    product = tf.reduce_sum(tf.matmul(a, b, transpose_a=kernel_gradient)[:1, :1])
    with tf.compat.v1.Session(config=session_config(threads)) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      run = sess.make_callable(product)
      return 2 * m * k * n / (cost_lib.median_ms(run, repeats) / 1e3) / 1e9


def one_row_rates(width, threads, repeats, count=8):
  """(TensorFlow GB/s, NumPy GB/s) of weights read by a one-row product
  [1, width] x [width, width] (an action's matrix-vector product): `count`
  products of different weight matrices in one session call, less the cost
  of a call that feeds the row and reads none of them, against NumPy's
  x @ W over the same matrices (its BLAS on one thread)."""
  rng = np.random.default_rng(0)
  weights = [rng.normal(size=(width, width)).astype(np.float32) for _ in range(count)]
  row = rng.normal(size=(1, width)).astype(np.float32)
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [1, width])
    products = tf.add_n([tf.reduce_sum(tf.matmul(x, tf.Variable(w))) for w in weights])
    with tf.compat.v1.Session(config=session_config(threads)) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      with_products = sess.make_callable(products, [x])
      empty = sess.make_callable(tf.reduce_sum(x), [x])
      seconds = (cost_lib.median_ms(lambda: with_products(row), repeats)
                 - cost_lib.median_ms(lambda: empty(row), repeats)) / 1e3 / count
  numpy_seconds = cost_lib.median_ms(lambda: [row @ w for w in weights], repeats) / 1e3 / count
  moved = 4 * width * width
  return moved / seconds / 1e9, moved / numpy_seconds / 1e9


def train_step_rate(gin_file, num_experts, threads, repeats):
  """(seconds, FLOPs) of one training step of the variant, built as a run does."""
  agent, environment = cost_lib.build_agent(
      os.path.join(config.GIN_CONFIGS_DIR, gin_file), num_experts, threads
  )
  train_ms, _ = cost_lib.measure(agent, environment, repeats)
  flops = cost.training_step_flops(agent.online_convnet, agent._replay.batch_size)  # pylint: disable=protected-access
  return train_ms / 1e3, flops


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
  print('| rows M | [M,512]x[512,512] GFLOP/s | [M,512]^T x [M,512] GFLOP/s |')
  print('|---|---|---|')
  for rows in (1, 16, 32, 64, 128, 512):
    forward = matmul_rate(rows, 512, 512, args.threads, args.repeats)
    gradient = matmul_rate(512, rows, 512, args.threads, args.repeats, kernel_gradient=True)
    print(f'| {rows} | {forward:.1f} | {gradient:.1f} |', flush=True)
  print()
  print('One-row products (an action), GB/s of weights read:')
  print('| width | TensorFlow | NumPy |')
  print('|---|---|---|')
  for width in (512, 1024, 2048):
    tf_rate, numpy_rate = one_row_rates(width, args.threads, args.repeats)
    print(f'| {width} | {tf_rate:.1f} | {numpy_rate:.1f} |', flush=True)
  print()
  print('| variant | GFLOP per step | ms per step | GFLOP/s | % of the [128,512]x[512,512] rate |')
  print('|---|---|---|---|---|')
  shares = {}
  for name, gin_file, num_experts in VARIANTS:
    seconds, flops = train_step_rate(gin_file, num_experts, args.threads, args.repeats)
    rate = flops / seconds / 1e9
    shares[name] = rate / layer_rate
    print(f'| {name} | {flops / 1e9:.3f} | {seconds * 1e3:.2f} | {rate:.1f} | '
          f'{100 * rate / layer_rate:.0f}% |', flush=True)
  big = min(v for k, v in shares.items() if k.startswith('big softmoe'))
  print(f'Big SoftMoE (n = 4 and 8), lowest share of the matmul rate: {big:.0%} '
        '(target >= 30%)')


if __name__ == '__main__':
  main()
