r"""Where a training step's time goes, and what TensorFlow's alternatives give.

  .venv/bin/python benchmarks/step_profile.py [--steps=20] [--rounds=3]

Three measurements, on one thread, each variant built as a run builds it
(moe_dopamine.cost.build_agent, the replay filled with 1,000 random
transitions):

1. Per op type: one training step traced with TensorFlow's FULL_TRACE
   (`steps` traced steps after a warm-up), its ops' summed time by type,
   the number of ops, and the step's wall time untraced. Shows which share
   is matrix products and convolutions, and at what rate they run.
2. XLA: the same variants' training step and greedy action in fresh
   processes with and without XLA auto-clustering on the CPU
   (TF_XLA_FLAGS=--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit), alternated
   over `rounds`; paired ratios XLA / default.
   2b. The same for TensorFlow without its oneDNN kernels
   (TF_ENABLE_ONEDNN_OPTS=0, Eigen's kernels instead), on the profiled
   variants.
3. MinAtar's conv layer (3 x 3, 4 -> 16 channels, 10 x 10, SAME, a batch of
   32): tf.nn.conv2d against the same layer as a matmul of 3 x 3 patches
   (nine shifted slices, or tf.image.extract_patches), forward and the
   kernel's gradient (a first layer needs no input gradient), with the
   outputs checked equal.
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

import common  # pylint: disable=unused-import  # The repository on the path; legacy Keras first.

import numpy as np
import tensorflow as tf

from moe_dopamine import cost

VARIANTS = ['crl_baseline.gin', 'crl_big_softmoe.gin', 'minatar_crl_baseline.gin',
            'minatar_crl_big_softmoe.gin']
# Profiled only (their op types: the MinAtar MoE rows' "other ops" and dispatch).
PROFILED = VARIANTS + ['minatar_crl_middle_softmoe.gin', 'minatar_crl_big_topk.gin']
XLA_FLAGS = '--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit'


def op_profile(gin_file, steps):
  """(wall ms of a step, {op type: (ms per step, ops per step)}, ops per step)."""
  agent, environment = cost.build_agent(cost.gin_path(gin_file), None)
  cost.fill_replay(agent, environment, seed=0)
  wall = cost.median_ms(agent._run_train_op, 200)  # pylint: disable=protected-access
  memory = agent._replay.memory  # pylint: disable=protected-access
  feeds = [agent._replay.transition[e.name] for e in memory.get_transition_elements()]  # pylint: disable=protected-access
  options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
  times, counts = collections.Counter(), collections.Counter()
  for step in range(steps + 5):
    metadata = tf.compat.v1.RunMetadata()
    agent._sess.run(agent._train_op, dict(zip(feeds, memory.sample_transition_batch())),  # pylint: disable=protected-access
                    options=options, run_metadata=metadata)
    if step < 5:
      continue
    for device in metadata.step_stats.dev_stats:
      for node in device.node_stats:
        times[cost.op_type(node)] += node.all_end_rel_micros
        counts[cost.op_type(node)] += 1
  by_type = {t: (times[t] / steps / 1e3, counts[t] / steps) for t in times}
  return wall, by_type, sum(counts.values()) / steps


def print_profile(gin_file, steps):
  wall, by_type, ops = op_profile(gin_file, steps)
  total = sum(ms for ms, _ in by_type.values())
  heavy = sum(ms for t, (ms, _) in by_type.items()
              if 'MatMul' in t or 'Conv2D' in t or t == 'Einsum')
  print(f'\n{gin_file}: step {wall:.2f} ms untraced; {ops:.0f} ops, {total:.2f} ms of op time '
        f'(products and convolutions {heavy:.2f} ms, {100 * heavy / total:.0f}%)')
  for op_type, (ms, n) in sorted(by_type.items(), key=lambda kv: -kv[1][0])[:12]:
    print(f'  {op_type:28s} {ms:7.3f} ms  {n:4.0f} ops')


# Executor settings compared with TensorFlow's defaults, each in fresh
# processes: {name: environment variables}.
SETTINGS = {
    'XLA': {'TF_XLA_FLAGS': XLA_FLAGS},
    'oneDNN off': {'TF_ENABLE_ONEDNN_OPTS': '0'},
}


def _timed_child(gin_file, changes):
  env = dict(os.environ)
  for setting in SETTINGS.values():
    for name in setting:
      env.pop(name, None)
  env.update(changes)
  out = subprocess.run([sys.executable, __file__, f'--child={gin_file}'], env=env,
                       capture_output=True, text=True, check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def compare_setting(gin_file, name, rounds):
  """Paired ratios setting / default of the training step and the greedy
  action, fresh processes, the order alternated each round."""
  ratios = {'train': [], 'act': []}
  for r in range(rounds):
    order = (False, True) if r % 2 == 0 else (True, False)
    got = {on: _timed_child(gin_file, SETTINGS[name] if on else {}) for on in order}
    for key in ratios:
      ratios[key].append(got[True][key] / got[False][key])
  print(f'  {gin_file}: {name} / default, training step '
        f'{statistics.median(ratios["train"]):.2f}, greedy action '
        f'{statistics.median(ratios["act"]):.2f} (median of {rounds} paired rounds)')


def conv_layers(batch=32, size=10, channels=4, filters=16, k=3):
  """{name: fn(x, kernel [k*k*c, f]) -> [b, h, w, f]} of the same SAME conv."""
  def conv2d(x, kernel):
    return tf.nn.conv2d(x, tf.reshape(kernel, [k, k, channels, filters]), 1, 'SAME')

  def slices(x, kernel):
    padded = tf.pad(x, [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]])
    patches = tf.concat([padded[:, i:i + size, j:j + size, :]
                         for i in range(k) for j in range(k)], axis=-1)
    return tf.reshape(tf.matmul(tf.reshape(patches, [-1, k * k * channels]), kernel),
                      [-1, size, size, filters])

  def extracted(x, kernel):
    patches = tf.image.extract_patches(x, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], 'SAME')
    return tf.reshape(tf.matmul(tf.reshape(patches, [-1, k * k * channels]), kernel),
                      [-1, size, size, filters])

  shapes = ([batch, size, size, channels], [k * k * channels, filters])
  return {'tf.nn.conv2d': conv2d, 'nine slices + matmul': slices,
          'extract_patches + matmul': extracted}, shapes


def compare_convs(repeats=300):
  layers, (x_shape, k_shape) = conv_layers()
  rng = np.random.default_rng(0)
  x_value = rng.uniform(size=x_shape).astype(np.float32)
  k_value = rng.normal(size=k_shape).astype(np.float32)
  flops = 2 * np.prod(x_shape[:3]) * k_shape[0] * k_shape[1]
  outputs = {}
  for name, layer in layers.items():
    with tf.Graph().as_default():
      # Variables, not constants: Grappler would fold a constant's patches.
      x, kernel = tf.Variable(x_value, trainable=False), tf.Variable(k_value)
      y = tf.nn.relu(layer(x, kernel))
      (grad,) = tf.gradients(tf.reduce_sum(y * y), [kernel])
      sess = tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(
          intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
      sess.run(tf.compat.v1.global_variables_initializer())
      forward = sess.make_callable(tf.reduce_sum(y))
      both = sess.make_callable([tf.reduce_sum(y), tf.reduce_sum(grad)])
      fwd_ms, both_ms = cost.median_ms(forward, repeats), cost.median_ms(both, repeats)
      outputs[name] = sess.run([y, grad])
    print(f'  {name:26s} forward {fwd_ms:.3f} ms ({flops / fwd_ms / 1e6:.1f} GFLOP/s), '
          f'forward + kernel gradient {both_ms:.3f} ms')
  reference = outputs['tf.nn.conv2d']
  for name, values in outputs.items():
    for got, want in zip(values, reference):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max(),
                                 err_msg=name)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
  parser.add_argument('--conv_only', action='store_true', help='measurement 3 only')
  args = parser.parse_args()
  tf.compat.v1.disable_v2_behavior()
  if args.conv_only:
    compare_convs()
    return
  if args.child:
    train_ms, act_ms, _, _ = cost.measured_run(cost.gin_path(args.child), None, 40)
    print(json.dumps({'train': train_ms, 'act': act_ms}))
    return
  start = time.time()
  print('1. Op time of one training step, by op type (FULL_TRACE, one thread)')
  for gin_file in PROFILED:
    print_profile(gin_file, args.steps)
  print('\n2. XLA auto-clustering on the CPU against TensorFlow\'s default executor')
  for gin_file in VARIANTS:
    compare_setting(gin_file, 'XLA', args.rounds)
  print('\n2b. TensorFlow without its oneDNN kernels (TF_ENABLE_ONEDNN_OPTS=0: Eigen\'s) '
        'against the default')
  for gin_file in PROFILED:
    compare_setting(gin_file, 'oneDNN off', args.rounds)
  print('\n3. MinAtar\'s conv layer (batch 32, 10 x 10 x 4 -> 16, 3 x 3), one thread')
  compare_convs()
  print(f'\n({time.time() - start:.0f} s)')


if __name__ == '__main__':
  main()
