"""Analytic compute cost of a built ClassicControlQNetwork.

FLOPs count the matrix products, 2 per multiply-add (the usual convention);
biases, activations and softmaxes are left out (a few percent at these
widths). Per sample, with n experts, tokens m of width d and an expert MLP
f with widths d -> h... -> o:
- Dense(in, out): 2 in out.
- SoftMoE: router 2 m d (n p); slot inputs 2 (n p) m d; experts n p flops(f);
  combine 2 m (n p) o; p = slots per expert.
- TopK / random: router 2 m d n; experts m k flops(f) (only the chosen ones).
- Hardcoded: experts m flops(f).
A DQN training step on a batch B costs about B (3 F_online + F_target):
the online forward pass, its backward pass (twice the forward), and the
target network's forward pass on the next states.

Active parameters are the ones a single sample's forward pass touches: for
sparse routers, the router plus k experts per token (at most n).
"""

import numpy as np

from moe_dopamine.networks import moe


def mlp_flops(widths):
  """2 * sum of in * out over the consecutive widths of an MLP."""
  return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def mlp_parameters(widths):
  return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _expert_widths(layer):
  kernels = layer.experts.kernels
  return [int(kernels[0][0].shape[0])] + [int(k[0].shape[1]) for k in kernels]


def moe_flops(layer, num_tokens):
  """FLOPs per sample of an MoE layer on `num_tokens` tokens."""
  widths = _expert_widths(layer)
  d, o, n = widths[0], widths[-1], layer.num_experts
  expert = mlp_flops(widths)
  if layer.router == moe.Router.SOFTMOE:
    slots = n * layer.num_slots(num_tokens)
    return 2 * num_tokens * d * slots * 2 + slots * expert + 2 * num_tokens * slots * o
  if layer.router == moe.Router.HARDCODED:
    return num_tokens * expert
  return 2 * num_tokens * d * n + num_tokens * layer.k * expert


def moe_active_parameters(layer, num_tokens):
  """Parameters one sample's forward pass uses in an MoE layer."""
  widths = _expert_widths(layer)
  router = sum(int(np.prod(w.shape.as_list())) for w in layer.router_weights())
  if layer.router == moe.Router.SOFTMOE:
    used = layer.num_experts
  elif layer.router == moe.Router.HARDCODED:
    used = 1
  else:
    used = min(layer.num_experts, num_tokens * layer.k)
  return router + used * mlp_parameters(widths)


def forward_cost(network):
  """(FLOPs, active parameters) per sample of a built ClassicControlQNetwork."""
  flops, active = 0, 0
  if network.big_moe is not None:
    return (moe_flops(network.big_moe, network.num_tokens),
            moe_active_parameters(network.big_moe, network.num_tokens))
  for _, layer, is_moe in network.stack:
    if is_moe:
      flops += moe_flops(layer, network.num_tokens)
      active += moe_active_parameters(layer, network.num_tokens)
    else:
      fan_in, fan_out = layer.kernel.shape.as_list()
      flops += 2 * fan_in * fan_out
      active += fan_in * fan_out + fan_out
  return flops, active


def training_step_flops(network, batch_size):
  """About batch_size * (3 forward passes of the online network + one of the
  target network): forward, backward (2x) and the bootstrap target."""
  return batch_size * 4 * forward_cost(network)[0]
