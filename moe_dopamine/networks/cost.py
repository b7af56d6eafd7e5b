"""Analytic compute cost of a built ClassicControlQNetwork or MinAtarQNetwork.

FLOPs count the matrix products, 2 per multiply-add (the usual convention);
biases, activations and softmaxes are left out (a few percent at these
widths). Per sample, with n experts, tokens m of width d and an expert MLP
f with widths d -> h... -> o:
- Dense(in, out): 2 in out.
- Conv (k x k, C_in -> C_out channels, output H_out x W_out): the product of
  each output position's k x k x C_in patch with the kernel,
  2 H_out W_out k k C_in C_out.
- SoftMoE: router 2 m (d + c) (n p); slot inputs 2 (n p) m d; experts
  n p flops(f); combine 2 m (n p) o; p = slots per expert.
- TopK / random: router 2 m (d + c) n; experts m k flops(f) (only the chosen
  ones).
- Soft-to-sparse: router 2 m (d + c) n; experts m n flops(f) while its
  sparsity s < 1 (every expert on every token); at s = 1 (`fully_sparse`)
  TopK's m k flops(f).
- Hardcoded: experts m flops(f).
c is the router context's width (the task one-hot with
task_id_input='router', else 0): the router reads [token, one-hot], the
experts the token. With task_id_input='network' the one-hot is part of the
input, so it is in the first layer's fan-in: D + num_tasks for classic
control's first Dense (or Big's experts and router: d = D + num_tasks), and
C + num_tasks input channels for the MinAtar conv (the task planes).
A MinAtar MoE that reads the conv output [h, w, C] sees the tokens of its
tokenization (minatar_q_networks.tokens_of): per_pixel, m = h w tokens of
d = C; per_feature_map, m = C tokens of d = h w; per_sample, one token of
h w C. Every other MinAtar MoE (final, all's output, big, separate) sees one
token per sample. Big's experts (`ConvExperts`) are whole baseline networks
on the flattened screen (d = h w C), so f is a baseline's conv, dense layer
and output: SoftMoE on that one token runs every expert, TopK k of them,
hardcoded one.
A DQN training step on a batch B costs about B (3 F_online + F_target):
the online forward pass, its backward pass (twice the forward), and the
target network's forward pass on the next states.

Memory traffic (`training_step_bytes`, `acting_bytes`), 4 bytes per float:
activations are counted per sample as the elements each layer writes (a
Dense layer its outputs; a conv its feature maps; an MoE its router logits,
SoftMoE's slot inputs, every expert's hidden layers and outputs on the
tokens or slots it runs, and the combined outputs). A training step on a
batch of B, where every expert receives tokens (so every parameter P is
read):
- the online forward pass, its backward pass and the target's forward pass
  read the weights (3 P); the backward pass writes a gradient per weight
  (P); Adam reads weight, gradient and both moments and writes weight and
  moments (7 P): 11 P;
- activations: the online forward pass writes them, its backward pass reads
  them twice (the relu's mask and the weight gradient) and writes their
  gradients, and the target network writes and reads its own: 6 B X.
Acting on one state reads the active parameters A and writes and reads its
activations: A + 2 X.

Active parameters are the ones a single sample's forward pass touches: for
TopK and random routers, the router plus k experts per token (at most n);
hardcoded, one expert; SoftMoE and soft-to-sparse, every expert. A router's
are (d + c) (n p) (SoftMoE) or (d + c) n. A conv's are its kernel and
biases, k k C_in C_out + C_out.
"""

import collections

import numpy as np
import tensorflow as tf

from moe_dopamine.networks import minatar_q_networks
from moe_dopamine.networks import moe


def mlp_flops(widths):
  """2 * sum of in * out over the consecutive widths of an MLP."""
  return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def mlp_parameters(widths):
  return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def conv_flops(out_height, out_width, kernel_size, in_channels, out_channels):
  """2 H_out W_out k k C_in C_out: at each output position, a Dense from the
  k x k x C_in patch to the C_out channels."""
  patch = kernel_size * kernel_size * in_channels
  return out_height * out_width * mlp_flops([patch, out_channels])


def conv_parameters(kernel_size, in_channels, out_channels):
  """A conv's kernel and biases: a Dense from its patch to its channels."""
  return mlp_parameters([kernel_size * kernel_size * in_channels, out_channels])


def _is_conv(experts):
  return isinstance(experts, minatar_q_networks.ConvExperts)


def _dense_widths(experts):
  """The widths of an expert's dense layers (a conv expert's after its conv:
  the flattened feature maps, the hidden layers, the output)."""
  kernels = experts.kernels
  first = 1 if _is_conv(experts) else 0
  return [int(kernels[first][0].shape[0])] + [int(k[0].shape[1]) for k in kernels[first:]]


def token_width(experts):
  """d, the width of the tokens the experts read."""
  if _is_conv(experts):
    return int(np.prod(experts.screen_shape))
  return _dense_widths(experts)[0]


def expert_flops(experts):
  """flops(f), one expert on one token: its conv (conv experts) then its
  dense layers."""
  flops = mlp_flops(_dense_widths(experts))
  if _is_conv(experts):
    h, w, c = experts.screen_shape
    flops += conv_flops(h, w, experts.kernel_size, c, experts.filters)
  return flops


def expert_parameters(experts):
  """Parameters of one expert."""
  parameters = mlp_parameters(_dense_widths(experts))
  if _is_conv(experts):
    parameters += conv_parameters(
        experts.kernel_size, experts.screen_shape[-1], experts.filters
    )
  return parameters


def _experts_per_token(layer, fully_sparse=False):
  """Experts each token runs through: sparse routers' k, or n for
  soft-to-sparse unless `fully_sparse` (s = 1: its k) (hardcoded: 1;
  SoftMoE has slots instead)."""
  if layer.router == moe.Router.HARDCODED:
    return 1
  if layer.router == moe.Router.SOFT_TO_SPARSE and not fully_sparse:
    return layer.num_experts
  return layer.k


def router_columns(layer, num_tokens):
  """Columns of the router's kernel: n p slots (SoftMoE), n, or 0 (no
  router weights: hardcoded)."""
  if layer.router == moe.Router.HARDCODED:
    return 0
  if layer.router == moe.Router.SOFTMOE:
    return layer.num_experts * layer.num_slots(num_tokens)
  return layer.num_experts


def router_parameters(layer, num_tokens):
  """(d + c) x its columns: the router reads a token of d and the context's c."""
  d = token_width(layer.experts) + layer.router_context_units
  return d * router_columns(layer, num_tokens)


def moe_flops(layer, num_tokens, fully_sparse=False):
  """FLOPs per sample of an MoE layer on `num_tokens` tokens."""
  d, o, n = token_width(layer.experts), layer.experts.output_units, layer.num_experts
  expert = expert_flops(layer.experts)
  router = 2 * num_tokens * router_parameters(layer, num_tokens)
  if layer.router == moe.Router.SOFTMOE:
    slots = n * layer.num_slots(num_tokens)
    return router + 2 * slots * num_tokens * d + slots * expert + 2 * num_tokens * slots * o
  if layer.router == moe.Router.HARDCODED:
    return num_tokens * expert
  return router + num_tokens * _experts_per_token(layer, fully_sparse) * expert


def moe_active_parameters(layer, num_tokens, fully_sparse=False):
  """Parameters one sample's forward pass uses in an MoE layer."""
  router = router_parameters(layer, num_tokens)
  if layer.router == moe.Router.SOFTMOE:
    used = layer.num_experts
  elif layer.router == moe.Router.HARDCODED:
    used = 1  # Every token of a sample goes to its task's expert.
  else:
    used = min(layer.num_experts, num_tokens * _experts_per_token(layer, fully_sparse))
  return router + used * expert_parameters(layer.experts)


def expert_activations(experts):
  """Elements one expert writes on one token: its feature maps (conv
  experts), then each dense layer's outputs."""
  elements = sum(_dense_widths(experts)[1:])
  if _is_conv(experts):
    h, w, _ = experts.screen_shape
    elements += h * w * experts.filters
  return elements


def moe_activations(layer, num_tokens, fully_sparse=False):
  """Elements per sample an MoE layer writes (see the module docstring)."""
  d, o, n = token_width(layer.experts), layer.experts.output_units, layer.num_experts
  expert = expert_activations(layer.experts)
  if layer.router == moe.Router.SOFTMOE:
    slots = n * layer.num_slots(num_tokens)
    return num_tokens * slots + slots * d + slots * expert + num_tokens * o
  if layer.router == moe.Router.HARDCODED:
    return num_tokens * expert + num_tokens * o
  return num_tokens * n + num_tokens * _experts_per_token(layer, fully_sparse) * expert + (
      num_tokens * o)


LayerCost = collections.namedtuple('LayerCost', ['flops', 'active', 'activations'])


def moe_cost(layer, num_tokens, fully_sparse=False):
  """LayerCost per sample of an MoE layer; soft-to-sparse at s = 1 if
  `fully_sparse`, else while s < 1."""
  return LayerCost(moe_flops(layer, num_tokens, fully_sparse),
                   moe_active_parameters(layer, num_tokens, fully_sparse),
                   moe_activations(layer, num_tokens, fully_sparse))


def dense_cost(layer):
  """LayerCost per sample of a Dense layer."""
  widths = layer.kernel.shape.as_list()
  return LayerCost(mlp_flops(widths), mlp_parameters(widths), widths[-1])


def conv_cost(layer, input_shape):
  """LayerCost per sample of a Conv2D layer on inputs [h, w, C]."""
  kernel_size, _, in_channels, out_channels = layer.kernel.shape.as_list()
  output_shape = layer.compute_output_shape(tf.TensorShape([None] + list(input_shape)))
  out_height, out_width = output_shape.as_list()[1:3]
  return LayerCost(
      conv_flops(out_height, out_width, kernel_size, in_channels, out_channels),
      conv_parameters(kernel_size, in_channels, out_channels),
      out_height * out_width * out_channels)


def conv_output_tokens(network):
  """The number of tokens the MoE reading a MinAtar network's conv output
  sees per sample, as `tokens_of` cuts it."""
  output_shape = network.conv.compute_output_shape(
      tf.TensorShape([None] + list(network.input_screen_shape))
  )
  with tf.Graph().as_default():
    tokens = minatar_q_networks.tokens_of(tf.zeros(output_shape.as_list()[1:])[None],
                                          network.tokenization)
  return int(tokens.shape[1])


def layer_costs(network, fully_sparse=False):
  """The LayerCost per sample of each layer of a built network, in order
  (soft-to-sparse layers at s = 1 if `fully_sparse`)."""
  if isinstance(network, minatar_q_networks.MinAtarQNetwork):
    if network.big_moe is not None:
      return [moe_cost(network.big_moe, 1, fully_sparse)]
    costs = [conv_cost(network.conv, network.input_screen_shape)]
    if network.hidden_is_moe:
      costs.append(moe_cost(network.hidden, conv_output_tokens(network), fully_sparse))
    else:
      costs.append(dense_cost(network.hidden))
    if network.output_is_moe:
      costs.append(moe_cost(network.output_layer, 1, fully_sparse))
    else:
      costs.append(dense_cost(network.output_layer))
    return costs
  if network.big_moe is not None:
    return [moe_cost(network.big_moe, network.num_tokens, fully_sparse)]
  return [moe_cost(layer, network.num_tokens, fully_sparse) if is_moe else dense_cost(layer)
          for _, layer, is_moe in network.stack]


def forward_cost(network, fully_sparse=False):
  """(FLOPs, active parameters) per sample of a built ClassicControlQNetwork
  or MinAtarQNetwork (soft-to-sparse layers at s = 1 if `fully_sparse`)."""
  costs = layer_costs(network, fully_sparse)
  return sum(c.flops for c in costs), sum(c.active for c in costs)


def activations(network, fully_sparse=False):
  """Activation elements per sample of a forward pass, X."""
  return sum(c.activations for c in layer_costs(network, fully_sparse))


def training_step_flops(network, batch_size, fully_sparse=False):
  """About batch_size * (3 forward passes of the online network + one of the
  target network): forward, backward (2x) and the bootstrap target."""
  return batch_size * 4 * forward_cost(network, fully_sparse)[0]


BYTES_PER_FLOAT = 4


def training_step_bytes(network, batch_size, fully_sparse=False):
  """Bytes a training step reads and writes: 4 (11 P + 6 B X), see the
  module docstring."""
  parameters = sum(int(np.prod(v.shape)) for v in network.trainable_variables)
  return BYTES_PER_FLOAT * (
      11 * parameters + 6 * batch_size * activations(network, fully_sparse))


def acting_bytes(network, fully_sparse=False):
  """Bytes choosing one action reads and writes: 4 (A + 2 X)."""
  active = forward_cost(network, fully_sparse)[1]
  return BYTES_PER_FLOAT * (active + 2 * activations(network, fully_sparse))
