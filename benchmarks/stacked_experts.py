r"""Experts' variables stacked per layer against one variable per expert.

  .venv/bin/python benchmarks/stacked_experts.py [--rounds=10] [--steps=50]

The package gives each expert its own kernel and bias per layer
(`moe.Experts`: n variables per layer, n Adam updates, n reads). The
alternative measured here stores each layer as one variable [n, fan_in,
fan_out] (and [n, fan_out] for its bias), unstacked per call (TensorFlow's
Unpack along the first axis shares the variable's buffer; its gradient is one
Pack) so that every path of the layers runs unchanged on the slices: one
variable, one read and one Adam update per layer instead of n. For each
variant both agents are built in this process as a run builds them
(moe_dopamine.cost.build_agent, one thread), their replay buffers filled
alike, then `rounds` times `steps` training steps and 5 x `steps` greedy
actions with each, alternating which goes first; medians and the median of
the per-round ratios (paired).
"""


import common  # The repository on the path; legacy Keras first.

import tensorflow as tf

from moe_dopamine import cost
from moe_dopamine.networks import minatar_q_networks
from moe_dopamine.networks import moe

VARIANTS = ['crl_big_topk.gin', 'crl_big_softmoe.gin', 'crl_final_topk.gin',
            'minatar_crl_big_topk.gin', 'minatar_crl_big_softmoe.gin',
            'minatar_crl_middle_topk.gin']


def stacked_build(self, input_shape):
  """Experts.build with one variable per layer: kernel [n, fan_in, fan_out]
  (each expert's slice initialised as its own kernel would be), bias [n, fan_out]."""
  n = self.num_experts
  self.stacked_kernels, self.stacked_biases = [], []
  for i, (fan_in, fan_out) in enumerate(self.layer_shapes(int(input_shape[-1]))):
    def initializer(shape, dtype=None, one=self.kernel_initializer(i), size=(fan_in, fan_out)):
      return tf.stack([one(size, dtype) for _ in range(shape[0])])
    self.stacked_kernels.append(
        self.add_weight(f'kernel_{i}', shape=(n, fan_in, fan_out), initializer=initializer))
    self.stacked_biases.append(
        self.add_weight(f'bias_{i}', shape=(n, fan_out), initializer='zeros'))
  tf.keras.layers.Layer.build(self, input_shape)


def unstacking(method):
  """`method` run on per-expert slices of the stacked variables (the lists
  kernels[i][e] and biases[i][e] that every path of the layers reads)."""
  def call(self, *args, **kwargs):
    n = self.num_experts
    # Not tracked by Keras: per-call tensors, not weights.
    object.__setattr__(self, 'kernels', [tf.unstack(k, num=n) for k in self.stacked_kernels])
    object.__setattr__(self, 'biases', [tf.unstack(b, num=n) for b in self.stacked_biases])
    return method(self, *args, **kwargs)
  return call


STACKED = [
    (moe.Experts, 'build', stacked_build),
    (moe.Experts, 'call_groups', unstacking(moe.Experts.call_groups)),
    (minatar_q_networks.ConvExperts, 'call_groups',
     unstacking(minatar_q_networks.ConvExperts.call_groups)),
    (minatar_q_networks.ConvExperts, 'call_shared',
     unstacking(minatar_q_networks.ConvExperts.call_shared)),
]


def main():
  args = common.paired_benchmark_args(__doc__, [
      'variant',
      'training ms, per expert',
      'training ms, stacked',
      'stacked / per expert',
      'acting ms, per expert',
      'acting ms, stacked',
      'stacked / per expert',
  ])
  for gin_file in VARIANTS:
    agents = {'per expert': common.patched_agent(gin_file),
              'stacked': common.patched_agent(gin_file, STACKED)}
    print(common.agent_row(gin_file[:-4], agents, 'per expert', 'stacked', args.rounds,
                           args.steps, warmup=cost.WARMUP_CALLS), flush=True)


if __name__ == '__main__':
  main()
