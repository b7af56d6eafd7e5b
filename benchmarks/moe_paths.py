r"""The MoE layers' paths against the ones they replaced, on whole training steps.

  .venv/bin/python benchmarks/moe_paths.py [--rounds=10] [--steps=50]

Four paths of the package, each against what it replaced:
- SoftMoE's products as matmuls (the logits one matmul over every token,
  the slots dispatch @ tokens with the dispatch weights computed slot-major,
  the outputs combine @ slot outputs) and each expert's slots split from the
  slot tensor, instead of einsums and transposes to and from [n, b * p, d];
- SoftMoE with one token per sample (classic control's Middle and Big, the
  Big placement on MinAtar): every dispatch weight is exactly 1, so each
  expert runs once on the tokens themselves (`MoE._soft_route_one_token`)
  instead of on slots built by a dispatch product (`general_soft_route`);
- whole MinAtar networks as experts on the same screens (Big SoftMoE, and the
  sparse routers' diagnostics): one convolution with every expert's filters
  side by side (`ConvExperts.call_shared`) instead of one each;
- a routed conv expert's padding screen dropped with a split instead of a
  strided slice, whose gradient op is several times slower (Big TopK and
  hardcoded routing on MinAtar).
For each variant it builds both agents in this process as a run builds them
(moe_dopamine.cost.build_agent, one thread; the "before" agent with the old
paths patched in), fills both replay buffers alike, then `rounds` times runs
`steps` training steps and 5 x `steps` greedy actions with each, alternating
which goes first. Prints the medians and the median of the per-round ratios
(paired, so drift of the machine cancels).
"""


import common  # The repository on the path; legacy Keras first.

import tensorflow as tf

from moe_dopamine import cost
from moe_dopamine.networks import minatar_q_networks
from moe_dopamine.networks import moe
from moe_dopamine.networks import routers

VARIANTS = ['minatar_crl_big_softmoe.gin', 'minatar_crl_big_topk.gin',
            'minatar_crl_big_hardcoded.gin', 'minatar_crl_middle_softmoe.gin',
            'minatar_crl_all_softmoe.gin', 'minatar_crl_baseline.gin', 'crl_big_softmoe.gin',
            'crl_middle_softmoe.gin']


def strided_feature_maps(self, flat, kernel, bias, nonempty=False):
  """ConvExperts._feature_maps with the padding screen dropped by a strided
  slice (maps[:-1])."""
  h, w, c = self.screen_shape
  k, filters = self.kernel_size, int(kernel.shape[-1])
  screens = tf.reshape(flat, [-1, h, w, c])
  if not nonempty:
    screens = tf.concat([screens, tf.zeros([1, h, w, c], screens.dtype)], 0)
  maps = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(
      screens, tf.reshape(kernel, [k, k, c, filters]), strides=1, padding='SAME'), bias))
  if not nonempty:
    maps = maps[:-1]
  return tf.reshape(maps, [-1, h * w, filters])


def einsum_slot_logits(self, router_inputs, training):
  """SoftMoERouter.slot_logits as an einsum."""
  layer, phi = self.layer, self.kernel()
  if layer.normalize_tokens:
    logits = layer.scale * tf.einsum('bmd,ds->bms', tf.math.l2_normalize(router_inputs, axis=-1),
                                     tf.math.l2_normalize(phi, axis=0))
  else:
    logits = tf.einsum('bmd,ds->bms', router_inputs, phi)
  return routers.noisy(layer, logits, training)


def einsum_soft_route(self, x, router_inputs, training):
  """MoE._soft_route with einsums, softmax over axis 1 and the experts'
  inputs and outputs transposed to and from [n, b * p, d]."""
  num_tokens, n, d = int(x.shape[1]), self.num_experts, int(x.shape[2])
  p = self.num_slots(num_tokens)
  logits = self.routing.slot_logits(router_inputs, training)
  dispatch, combine = tf.nn.softmax(logits, axis=1), tf.nn.softmax(logits, axis=2)
  slots = tf.einsum('bms,bmd->bsd', dispatch, x)
  batch = tf.shape(x)[0]
  expert_in = tf.reshape(tf.transpose(tf.reshape(slots, [batch, n, p, -1]), [1, 0, 2, 3]),
                         [n, -1, d])
  expert_out, hiddens = self.experts.call_groups(tf.unstack(expert_in, num=n), nonempty=True)
  slot_out = tf.reshape(
      tf.transpose(tf.reshape(tf.stack(expert_out), [n, batch, p, -1]), [1, 0, 2, 3]),
      [batch, n * p, self.output_units])
  outputs = tf.einsum('bms,bso->bmo', combine, slot_out)
  probs = tf.reduce_sum(tf.reshape(combine, [batch, num_tokens, n, p]), axis=-1)
  return outputs, probs, hiddens, tf.fill([n], batch * p)


BEFORE = [
    (routers.SoftMoERouter, 'slot_logits', einsum_slot_logits),
    (moe.MoE, '_soft_route', einsum_soft_route),
    (moe.MoE, 'general_soft_route', True),
    (minatar_q_networks.ConvExperts, 'call_shared', moe.Experts.call_shared),
    (minatar_q_networks.ConvExperts, '_feature_maps', strided_feature_maps),
]


def main():
  args = common.paired_benchmark_args(__doc__, [
      'variant',
      'training ms, before',
      'training ms, now',
      'now / before',
      'acting ms, before',
      'acting ms, now',
      'now / before',
  ])
  for gin_file in VARIANTS:
    agents = {'before': common.patched_agent(gin_file, BEFORE),
              'now': common.patched_agent(gin_file)}
    # Warm-up: a fresh session's first steps run slower.
    print(common.agent_row(gin_file[:-4], agents, 'before', 'now', args.rounds, args.steps,
                           warmup=cost.WARMUP_CALLS), flush=True)


if __name__ == '__main__':
  main()
