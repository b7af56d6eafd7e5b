r"""Forward + backward time of the MoE layers on a batch of 128.

  .venv/bin/python benchmarks/moe_layers.py [--repeats=200] [--threads=1]

The layer is the Middle placement's: 512-wide tokens (one per sample), experts
Dense(512, relu) -> Dense(512). The dense reference is one such MLP with the
same active hidden width as TopK (k * 512). Each configuration runs in its own
graph; the figure is the median over `repeats` timed steps of the forward pass
and the gradients of sum(output^2) with respect to every weight, after warm-up
(the optimizer's update, which touches every expert whatever the routing, is
not included). Soft-to-sparse is timed at sparsity 0 (every expert on every
token) and 1 (TopK's k chosen experts).
"""

import argparse
import statistics
import time

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import numpy as np
import tensorflow as tf

from moe_dopamine.networks import moe

BATCH, WIDTH = 128, 512
SETUP = 'benchmark_setup'  # Ops run once after the variables' initialization.


def time_step(make_output, repeats, threads):
  """Median seconds of one forward + backward step."""
  graph = tf.Graph()
  with graph.as_default():
    x = tf.constant(np.random.RandomState(0).normal(size=(BATCH, 1, WIDTH)), tf.float32)
    out = make_output(x)
    loss = tf.reduce_sum(tf.square(out))
    train = tf.gradients(loss, tf.compat.v1.trainable_variables())
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads
    )
    with tf.compat.v1.Session(config=config) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(tf.compat.v1.get_collection(SETUP))
      for _ in range(20):
        sess.run(train)
      times = []
      for _ in range(repeats):
        start = time.perf_counter()
        sess.run(train)
        times.append(time.perf_counter() - start)
  return statistics.median(times)


def dense_mlp(hidden):
  def make(x):
    h = tf.keras.layers.Dense(hidden, activation='relu')(x)
    return tf.keras.layers.Dense(WIDTH)(h)

  return make


def split_experts(num_experts):
  """The floor under TopK k=1: n expert MLPs on an even 128/n rows each, no router."""

  def make(x):
    layer = moe.Experts(num_experts, (WIDTH,), WIDTH)
    layer.build((None, WIDTH))
    groups = tf.split(tf.reshape(x, [-1, WIDTH]), num_experts)
    return tf.concat(layer.call_groups(groups)[0], axis=0)

  return make


def moe_layer(router, num_experts, k, sparsity=None):
  def make(x):
    layer = moe.MoE(num_experts, WIDTH, (WIDTH,), router=router, k=k)
    out = layer(x, training=True)[0]
    if sparsity is not None:
      tf.compat.v1.add_to_collection(SETUP, layer.sparsity.assign(sparsity))
    return out

  return make


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=200)
  parser.add_argument('--threads', type=int, default=1)
  args = parser.parse_args()
  tf.compat.v1.disable_v2_behavior()

  rows = []
  dense_ms = {}
  for k in (1, 2):
    dense_ms[k] = 1e3 * time_step(dense_mlp(k * WIDTH), args.repeats, args.threads)
    rows.append(('dense', '-', k, dense_ms[k]))
  for n in (1, 2, 4, 8):
    for k in (1, 2):
      if k <= n:
        ms = 1e3 * time_step(moe_layer('topk', n, k), args.repeats, args.threads)
        rows.append(('topk', n, k, ms))
    ms = 1e3 * time_step(moe_layer('softmoe', n, 1), args.repeats, args.threads)
    rows.append(('softmoe', n, '-', ms))
    ms = 1e3 * time_step(split_experts(n), args.repeats, args.threads)
    rows.append(('experts only (floor)', n, 1, ms))
    for sparsity in (0.0, 1.0):
      ms = 1e3 * time_step(moe_layer('soft_to_sparse', n, 1, sparsity), args.repeats,
                           args.threads)
      rows.append((f'soft_to_sparse s={sparsity:g}', n, 1, ms))

  print(f'batch {BATCH}, token width {WIDTH}, expert hidden {WIDTH}, '
        f'{args.threads} thread(s), median of {args.repeats} steps')
  print('| layer | n | k | ms / step | x dense (k=1) | x dense (same k) |')
  print('|---|---|---|---|---|---|')
  for name, n, k, ms in rows:
    same_k = dense_ms[k] if k in dense_ms else dense_ms[1]
    print(f'| {name} | {n} | {k} | {ms:.2f} | {ms / dense_ms[1]:.2f} | {ms / same_k:.2f} |')
  topk = {(n, k): ms for name, n, k, ms in rows if name == 'topk'}
  floor = {n: ms for name, n, k, ms in rows if name.startswith('experts only')}
  print(f'\nTopK k=1: n=8 / n=1 = {topk[(8, 1)] / topk[(1, 1)]:.2f} (target <= 1.3); '
        f'the same ratio for the bare expert matmuls: {floor[8] / floor[1]:.2f}')
  for n in (1, 2, 4, 8):
    print(f'TopK k=1 routing overhead at n={n}: {topk[(n, 1)] / floor[n]:.2f} x experts only')
  mixed = {(n, name): ms for name, n, k, ms in rows if name.startswith('soft_to_sparse')}
  for n in (2, 4, 8):
    print(f'soft_to_sparse k=1 at n={n}: s=1 / TopK = '
          f"{mixed[(n, 'soft_to_sparse s=1')] / topk[(n, 1)]:.2f}, s=1 / s=0 = "
          f"{mixed[(n, 'soft_to_sparse s=1')] / mixed[(n, 'soft_to_sparse s=0')]:.2f}")


if __name__ == '__main__':
  main()
