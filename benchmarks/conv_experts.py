r"""MinAtar whole-network experts: convolution against patches times a matrix.

  .venv/bin/python benchmarks/conv_experts.py [--rounds=10] [--steps=50]

`ConvExperts` (the Big placement's experts, whole MinAtar networks) computes
each expert's conv layer with tf.nn.conv2d. The same layer can be written as
a matmul of the expert's kernel with every position's 3 x 3 patch
(tf.image.extract_patches), which is what this benchmark compares against.
For each variant it builds both agents in this process as a run builds them
(moe_dopamine.cost.build_agent, one thread), fills both replay buffers alike,
then `rounds` times runs `steps` training steps and 5 x `steps` greedy
actions with each, alternating which goes first. Prints the medians and the
median of the per-round ratios (paired, so drift of the machine cancels).
"""


import common  # The repository on the path; legacy Keras first.

import tensorflow as tf

from moe_dopamine import cost
from moe_dopamine.networks import minatar_q_networks

BREAKOUT = ["MultiTaskEnvironment.task_names = ['Breakout']"]
VARIANTS = [
    ('minatar_crl_big_softmoe.gin', BREAKOUT),
    ('minatar_crl_big_topk.gin', BREAKOUT),
    ('minatar_crl_big_hardcoded.gin', []),  # One expert per game: the three games.
]


def patch_feature_maps(self, flat, kernel, bias, nonempty=False):
  """The conv layer as extracted patches times the flattened kernel."""
  del nonempty  # Patches and matmuls take empty batches.
  h, w, c = self.screen_shape
  k = self.kernel_size
  patches = tf.image.extract_patches(
      tf.reshape(flat, [-1, h, w, c]), sizes=[1, k, k, 1], strides=[1, 1, 1, 1],
      rates=[1, 1, 1, 1], padding='SAME')
  maps = tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(patches, [-1, k * k * c]), kernel),
                                   bias))
  return tf.reshape(maps, [-1, h * w, int(kernel.shape[-1])])


def main():
  args = common.paired_benchmark_args(__doc__, [
      'variant',
      'training ms, patches',
      'training ms, conv',
      'conv / patches',
      'acting ms, patches',
      'acting ms, conv',
      'conv / patches',
  ])
  patch = [(minatar_q_networks.ConvExperts, '_feature_maps', patch_feature_maps)]
  for gin_file, bindings in VARIANTS:
    variant = cost.Variant(gin_file, [cost.gin_path(gin_file)], bindings)
    agents = {'patches': common.patched_agent(variant, patch),
              'conv': common.patched_agent(variant)}
    print(common.agent_row(gin_file[:-4], agents, 'patches', 'conv', args.rounds, args.steps),
          flush=True)


if __name__ == '__main__':
  main()
