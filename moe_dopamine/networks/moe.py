"""Mixture-of-Experts Keras layers: SoftMoE, TopK, hardcoded and random routing.

Shapes: a layer maps tokens [batch, m, d_in] to [batch, m, d_out]; tokens are
routed within their own sample, never across the batch. n = num_experts.

- SoftMoE (Puigcerver et al., 2023): p = ceil(m * capacity_factor / n) slots
  per expert; logits L = X Phi; dispatch = softmax over tokens, combine =
  softmax over slots; expert e processes slots e*p .. e*p + p - 1.
- TopK (Shazeer et al., 2017; Switch for k = 1): linear router without bias,
  softmax over experts, keep the k largest gates. Only the chosen
  (token, expert) pairs are computed, so the cost grows with k, not n.
- Hardcoded: a token of task t goes to expert t mod n with weight 1.
- Random: TopK dispatch through a fixed, untrained random router (a control).

Router context (`router_context_units` c > 0, set by the network for
`task_id_input='router'`): a vector z [batch, c] per sample (the task
one-hot) joins every token of its sample in the router's input only. The
logits are [x, z] W (SoftMoE: [X, 1 z] Phi over the m tokens of a sample;
TopK: [x, z] W per token); the experts, and SoftMoE's slot contents
D^T X, still read the tokens X alone. With SoftMoE and m > 1, z adds the
same offset z Phi_z to a slot's logit for every token of the sample, which
the softmax over tokens cancels: z then shifts the combine weights, not the
dispatch.

Every call returns the output tokens and an `MoEInfo` with the routing
probabilities [batch, m, n], the weighted load-balancing losses, and each
expert's hidden activations under a stable name.

Where this differs from Dopamine's labs/moes (JAX):
- TopK capacity: none by default (no token dropped); with
  topk_capacity_factor c, ceil(m * k * c / n) per expert and sample, first
  choices served first. Dopamine always applies ceil(m * c / n) per sample
  (k not counted) and drops the overflow in token order.
- Balancing losses are computed over all the tokens of the batch; Dopamine
  computes them per sample and averages. The load loss uses Shazeer et al.'s
  leave-one-out threshold with the routed batch's noise; Dopamine uses the
  k-th threshold with fresh noise.
- SoftMoE routing probabilities: combine weights summed over an expert's
  slots (Dopamine: averaged).
- The random router is a frozen linear router with softmax gates (Dopamine:
  fresh Gaussian scores at every call, used as the gates).
"""

import collections
import enum
import math

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.metrics import names
from moe_dopamine.networks import routers


@gin.constants_from_enum(module='moe_dopamine')
class Router(enum.Enum):
  """How an MoE layer routes its tokens (one class each in routers.py)."""
  SOFTMOE = 'softmoe'
  TOPK = 'topk'
  HARDCODED = 'hardcoded'
  RANDOM = 'random'
  SOFT_TO_SPARSE = 'soft_to_sparse'


ROUTERS = {
    Router.SOFTMOE: routers.SoftMoERouter,
    Router.TOPK: routers.TopKRouter,
    Router.HARDCODED: routers.HardcodedRouter,
    Router.RANDOM: routers.RandomRouter,
    Router.SOFT_TO_SPARSE: routers.SoftToSparseRouter,
}

MoEInfo = collections.namedtuple(
    'MoEInfo',
    [
        # [batch, m, n] routing probabilities (SoftMoE: combine weights
        # summed over each expert's slots).
        'router_probs',
        # {'<layer>/<loss>': weighted scalar} load-balancing losses.
        'aux_losses',
        # {names.expert_hidden(...): [s_e, h]} hidden activations of each
        # expert on the inputs it was routed.
        'expert_activations',
        # int [n]: inputs routed to each expert in the batch (SoftMoE: its
        # slots, batch * p).
        'routed_counts',
        # With diagnostics=True only, else {}: each expert's hidden
        # activations on every token of the batch (SoftMoE: its slots, which
        # every token feeds).
        'all_token_activations',
    ],
)


def coefficient_of_variation_squared(x, epsilon=1e-10):
  """CV(x)^2 = var(x) / mean(x)^2 over the last axis (Shazeer et al. 2017)."""
  mean = tf.reduce_mean(x, axis=-1)
  variance = tf.reduce_mean(tf.square(x - mean[..., None]), axis=-1)
  return variance / (tf.square(mean) + epsilon)


def soft_moe_weights(logits):
  """SoftMoE (dispatch, combine) from logits [batch, m tokens, n*p slots].

  dispatch [batch, n*p, m]: softmax over tokens, so each slot's row sums to
  1 (slot-major, as the slots' product reads it: slots = dispatch @ tokens).
  combine [batch, m, n*p]: softmax over slots, so each token's row sums to 1.
  """
  return tf.nn.softmax(tf.transpose(logits, [0, 2, 1])), tf.nn.softmax(logits)


class Experts(tf.keras.layers.Layer):
  """n independent MLPs d_in -> hidden_units... -> output_units.

  Each expert owns its variables, so one expert runs on its own group of
  tokens without touching the others' weights (`call_groups`: a routed
  group of any size, or SoftMoE's slots); stacking the kernels into one
  batched matmul would copy every expert's weights at every call (and their
  gradients back), which costs more than the loop.
  """

  def __init__(self, num_experts, hidden_units, output_units, **kwargs):
    super().__init__(**kwargs)
    self.num_experts = num_experts
    self.hidden_units = tuple(hidden_units)
    self.output_units = output_units

  def layer_shapes(self, input_width):
    """(fan_in, fan_out) of each layer of an expert."""
    widths = (input_width,) + self.hidden_units + (self.output_units,)
    return list(zip(widths[:-1], widths[1:]))

  def kernel_initializer(self, layer):
    """The initializer of layer `layer`'s kernels."""
    del layer  # Glorot-uniform for every layer of an MLP.
    return tf.keras.initializers.GlorotUniform()

  def build(self, input_shape):
    shapes = self.layer_shapes(int(input_shape[-1]))
    # kernels[i][e], biases[i][e]: layer i of expert e.
    self.kernels = [[] for _ in shapes]
    self.biases = [[] for _ in shapes]
    for e in range(self.num_experts):
      for i, (fan_in, fan_out) in enumerate(shapes):
        self.kernels[i].append(
            self.add_weight(
                f'expert_{e}/kernel_{i}',
                shape=(fan_in, fan_out),
                initializer=self.kernel_initializer(i),
            )
        )
        self.biases[i].append(
            self.add_weight(
                f'expert_{e}/bias_{i}', shape=(fan_out,), initializer='zeros'
            )
        )
    super().build(input_shape)

  def call_shared(self, x):
    """Every expert on the same tokens x [s, d_in] -> (list of n [s, d_out],
    hiddens). Subclasses whose first layer runs faster as one op over every
    expert's kernels (ConvExperts) override it."""
    return self.call_groups([x] * self.num_experts, nonempty=True)

  def call_groups(self, groups, nonempty=False):  # pylint: disable=unused-argument
    """groups: list of n tensors [s_e, d_in] -> (list of [s_e, d_out], hiddens).

    hiddens[e][j] is expert e's j-th hidden layer on its own tokens.
    `nonempty`: no group is empty (every expert of SoftMoE gets its slots),
    which subclasses whose ops fail on an empty batch can rely on.
    """
    outputs, hiddens = [], []
    for e, x in enumerate(groups):
      x, expert_hiddens = self.dense_one(e, x, 0, [])
      outputs.append(x)
      hiddens.append(expert_hiddens)
    return outputs, hiddens

  def dense_one(self, e, x, start, hiddens):
    """Layers start.. of expert e, x [s_e, d] -> ([s_e, d_out], hiddens
    with each hidden layer's [s_e, h] appended)."""
    for i in range(start, len(self.kernels)):
      # bias_add, not +: TensorFlow fuses MatMul, BiasAdd and Relu into one op.
      x = tf.nn.bias_add(tf.matmul(x, self.kernels[i][e]), self.biases[i][e])
      if i < len(self.kernels) - 1:
        x = tf.nn.relu(x)
        hiddens.append(x)
    return x, hiddens


# Set by the network that owns the layer: a gin binding would be overridden.
NETWORK_OWNED = {
    'num_experts': 'ClassicControlQNetwork.num_experts',
    'output_units': "the network (the layer's place in it)",
    'expert_hidden_units': 'ClassicControlQNetwork.expert_hidden_units',
    'experts': "the network (MinAtarQNetwork's big placement: whole conv networks)",
    'router_context_units': "ClassicControlQNetwork.task_id_input or "
                            "MinAtarQNetwork.task_id_input ('router')",
}


config.SET_ELSEWHERE.update({('MoE', k): v for k, v in NETWORK_OWNED.items()})


@gin.configurable(denylist=list(NETWORK_OWNED))
class MoE(tf.keras.layers.Layer):
  """A Mixture-of-Experts layer with a choice of router.

  The network that owns the layer fixes its structure (num_experts, the
  experts' widths, output size); gin fixes the routing.
  """

  # SoftMoE with one token per sample takes _soft_route_one_token; True runs
  # the general slot computation instead (equivalence tests, benchmarks).
  general_soft_route = False

  def __init__(
      self,
      num_experts,
      output_units,
      expert_hidden_units=(512,),
      router=Router.SOFTMOE,
      k=1,
      capacity_factor=1.0,
      topk_capacity_factor=None,
      normalize_tokens=False,
      noise_std=0.0,
      renormalize_gates=False,
      router_trainable=True,
      switch_loss_weight=0.0,
      importance_loss_weight=0.0,
      load_loss_weight=0.0,
      experts=None,
      router_context_units=0,
      **kwargs,
  ):
    """Creates the layer.

    Args:
      num_experts: int >= 1, n.
      output_units: int, width of each output token.
      expert_hidden_units: tuple of ints, hidden widths of each expert MLP.
      router: Router or its name: 'softmoe', 'topk', 'hardcoded', 'random'.
      k: int in [1, n], experts per token for 'topk' and 'random'.
      capacity_factor: float > 0, SoftMoE slots per expert are
        ceil(m * capacity_factor / n).
      topk_capacity_factor: None (no limit) or float > 0, TopK and random
        routing: each expert takes at most ceil(m * k * factor / n) tokens
        of a sample; the rest pass zeros. Higher-ranked choices are served
        first. Hardcoded routing never drops a token.
      normalize_tokens: bool, SoftMoE: l2-normalize tokens and Phi's columns
        for the logits, times a learned scale initialised at 1.
      noise_std: float >= 0, Gaussian noise of std noise_std / n added to the
        router logits in training only.
      renormalize_gates: bool, TopK: divide the kept gates by their sum.
      router_trainable: bool, False freezes the router at its random init.
      switch_loss_weight: float, alpha of the Switch loss alpha*n*sum f_i P_i.
      importance_loss_weight: float, weight of CV(importance)^2.
      load_loss_weight: float, weight of CV(load)^2 (needs noise, TopK).
      experts: None (MLP experts from expert_hidden_units and output_units),
        or an `Experts` layer to use instead (e.g. whole conv networks).
      router_context_units: int >= 0, width c of the per-sample context the
        router reads beside each token (0: the token alone; see the module
        docstring).
      **kwargs: Keras layer arguments (name).
    """
    super().__init__(**kwargs)
    self.router = config.parse_choice(Router, router, 'MoE.router')
    router_class = ROUTERS[self.router]
    self.num_experts = config.check_int(num_experts, 'MoE.num_experts', minimum=1)
    self.output_units = output_units
    self.router_context_units = config.check_int(
        router_context_units, 'MoE.router_context_units', minimum=0
    )
    self.k = 1
    if router_class.uses_k:
      self.k = config.check_int(k, 'MoE.k')
      if not 1 <= self.k <= self.num_experts:
        raise config.ConfigError(
            f'MoE.k={self.k} is out of range: k must be in [1, num_experts='
            f'{self.num_experts}]. Fix: bind MoE.k to at most {self.num_experts}, '
            'or raise the number of experts.'
        )
    self.capacity_factor = config.check_float(
        capacity_factor, 'MoE.capacity_factor', minimum=0.0, strict_minimum=True
    )
    self.topk_capacity_factor = topk_capacity_factor
    if topk_capacity_factor is not None:
      self.topk_capacity_factor = config.check_float(
          topk_capacity_factor, 'MoE.topk_capacity_factor', minimum=0.0,
          strict_minimum=True,
      )
    self.noise_std = config.check_float(noise_std, 'MoE.noise_std', minimum=0.0)
    self.normalize_tokens = config.check_bool(normalize_tokens, 'MoE.normalize_tokens')
    self.renormalize_gates = config.check_bool(renormalize_gates, 'MoE.renormalize_gates')
    self.router_trainable = (
        config.check_bool(router_trainable, 'MoE.router_trainable')
        and not router_class.frozen
    )
    self.loss_weights = {
        name: config.check_float(weight, f'MoE.{name}_weight', minimum=0.0)
        for name, weight in (
            ('switch_loss', switch_loss_weight),
            ('importance_loss', importance_loss_weight),
            ('load_loss', load_loss_weight),
        )
    }
    if self.loss_weights['load_loss'] > 0 and (
        not router_class.has_load_loss or self.noise_std <= 0
    ):
      raise config.ConfigError(
          'MoE.load_loss_weight > 0 needs router=topk and MoE.noise_std > 0 '
          '(the load loss is the expected load under router noise).'
      )
    self.routing = router_class(self)
    self.routing.check()
    logging.info(
        'MoE %s: router=%s num_experts=%d k=%d capacity_factor=%s '
        'topk_capacity_factor=%s normalize_tokens=%s noise_std=%s '
        'renormalize_gates=%s router_trainable=%s loss_weights=%s '
        'expert_hidden_units=%s output_units=%s router_context_units=%d',
        self.name, self.router.value, self.num_experts, self.k,
        self.capacity_factor, self.topk_capacity_factor, self.normalize_tokens,
        self.noise_std, self.renormalize_gates, self.router_trainable,
        self.loss_weights, tuple(expert_hidden_units), output_units,
        self.router_context_units,
    )
    if experts is None:
      experts = Experts(num_experts, expert_hidden_units, output_units, name='experts')
    self.experts = experts

  def ignored_bindings(self):
    """{'MoE.parameter': why} of the routing parameters this layer's router
    does not use (see moe_dopamine.bindings)."""
    return {f'MoE.{parameter}': why for parameter, why in self.routing.ignores.items()}

  def router_weights(self):
    """The router's weight matrices (rows = token features); [] if none."""
    return self.routing.weights()

  def router_context_weights(self):
    """The router's weights for its context's rows; [] without a context."""
    return self.routing.context_weights()

  @property
  def learns_routing(self):
    """The routing is learned from the router's input (not hardcoded by the
    task id, nor a frozen random router)."""
    return self.routing.reads_inputs and self.router_trainable

  def num_slots(self, num_tokens):
    """SoftMoE slots per expert, p = ceil(m * capacity_factor / n)."""
    return int(math.ceil(num_tokens * self.capacity_factor / self.num_experts))

  def build(self, input_shape):
    num_tokens, token_size = int(input_shape[1]), int(input_shape[2])
    self.experts.build((None, token_size))
    self.routing.build(num_tokens, token_size, self.router_context_units)
    super().build(input_shape)

  # Plain Python control flow over settings, never over tensors: autograph's
  # conversion (seconds per network) has nothing to convert.
  @tf.autograph.experimental.do_not_convert
  def call(self, tokens, task_ids=None, training=None, diagnostics=False,
           router_context=None):
    """Routes tokens [batch, m, d] to the experts.

    Args:
      tokens: float tensor [batch, m, d_in].
      task_ids: int tensor [batch]; required by the hardcoded router.
      training: bool, router noise is only added when True.
      diagnostics: bool, also return every expert's activations on all tokens (sparse routers then run every expert on
        every token: for measurements, not for training).
      router_context: float tensor [batch, router_context_units], what the
        router reads beside each token of the sample; None without a context.

    Returns:
      (outputs [batch, m, output_units], MoEInfo).
    """
    router_inputs = self._router_inputs(tokens, router_context)
    router_logits = None
    if self.routing.soft:
      outputs, probs, hiddens, counts = self._soft_route(tokens, router_inputs, training)
      all_hiddens = hiddens
    else:
      outputs, probs, hiddens, router_logits, counts, flat = self._sparse_route(
          tokens, router_inputs, task_ids, training
      )
      all_hiddens = self._every_expert_on(flat) if diagnostics else None
    return outputs, MoEInfo(
        router_probs=probs,
        aux_losses=self._balancing_losses(probs, router_logits),
        expert_activations=self._named(hiddens),
        routed_counts=counts,
        all_token_activations=self._named(all_hiddens) if diagnostics else {},
    )

  def _router_inputs(self, tokens, router_context):
    """[batch, m, d] tokens -> the router's inputs: the tokens, or with a
    context z [batch, c] each token followed by its sample's z, [batch, m, d + c]."""
    if (router_context is None) != (self.router_context_units == 0):
      raise ValueError(
          f'MoE {self.name} has router_context_units={self.router_context_units}; '
          f'got router_context={router_context!r}.'
      )
    if router_context is None:
      return tokens
    context = tf.tile(router_context[:, None, :], [1, int(tokens.shape[1]), 1])
    return tf.concat([tokens, tf.cast(context, tokens.dtype)], axis=-1)

  def _named(self, hiddens):
    """{names.expert_hidden(layer, e, j): hiddens[e][j]}."""
    return {
        names.expert_hidden(self.name, e, j): h
        for e, expert_hiddens in enumerate(hiddens)
        for j, h in enumerate(expert_hiddens)
    }

  def _every_expert_on(self, flat):
    """Each expert's hidden activations on all tokens [T, d]: [n][j] -> [T, h]."""
    _, hiddens = self.experts.call_shared(flat)
    return hiddens

  def _soft_route(self, x, router_inputs, training):
    num_tokens = int(x.shape[1])
    if num_tokens == 1 and not self.general_soft_route:
      return self._soft_route_one_token(x, router_inputs, training)
    p = self.num_slots(num_tokens)
    n, d = self.num_experts, int(x.shape[2])
    dispatch, combine = soft_moe_weights(self.routing.slot_logits(router_inputs, training))
    slots = tf.matmul(dispatch, x)  # [b, n*p, d]: expert e's slots are e*p..(e+1)*p-1.
    batch = tf.shape(x)[0]
    # Expert e runs on its p slots of every sample, [b*p, d] (row = sample * p + slot).
    groups = [tf.reshape(s, [-1, d]) for s in tf.split(slots, n, axis=1)]
    expert_out, hiddens = self.experts.call_groups(groups, nonempty=True)
    slot_out = tf.concat(
        [tf.reshape(o, [batch, p, self.output_units]) for o in expert_out], axis=1)
    outputs = tf.matmul(combine, slot_out)
    probs = tf.reduce_sum(tf.reshape(combine, [batch, num_tokens, n, p]), axis=-1)
    counts = tf.fill([n], batch * p)
    return outputs, probs, hiddens, counts

  def _soft_route_one_token(self, x, router_inputs, training):
    """_soft_route for one token per sample (m = 1), the same outputs and
    gradients: every slot's dispatch weight is a softmax over one token,
    exactly 1 with a zero gradient, so each of an expert's p slots holds the
    token itself. Each expert runs once on the tokens (Experts.call_shared:
    no dispatch product, no input gradient for a first layer on the
    observation), and its output is weighted by its slots' summed combine
    weights, which are the router probabilities."""
    p = self.num_slots(1)
    _, combine = soft_moe_weights(self.routing.slot_logits(router_inputs, training))
    batch = tf.shape(x)[0]
    probs = tf.reduce_sum(tf.reshape(combine, [batch, 1, self.num_experts, p]), axis=-1)
    expert_out, hiddens = self.experts.call_shared(tf.reshape(x, [batch, int(x.shape[2])]))
    outputs = tf.matmul(probs, tf.stack(expert_out, axis=1))  # [b, 1, n] x [b, n, o].
    counts = tf.fill([self.num_experts], batch * p)
    return outputs, probs, hiddens, counts

  def _sparse_route(self, x, router_inputs, task_ids, training):
    batch = tf.shape(x)[0]
    num_tokens, token_size = int(x.shape[1]), int(x.shape[2])
    flat = tf.reshape(x, [-1, token_size])  # [T, d], T = batch * m.
    flat_router_inputs = flat
    if self.router_context_units:
      flat_router_inputs = tf.reshape(
          router_inputs, [-1, token_size + self.router_context_units]
      )
    probs, top_idx, top_gates, router_logits = self.routing.select(
        flat_router_inputs, task_ids, training
    )

    # One row per (choice rank, token): higher-ranked choices come first so
    # they win the capacity of an expert.
    expert_idx = tf.reshape(tf.transpose(top_idx), [-1])
    gates = tf.reshape(tf.transpose(top_gates), [-1])
    choices = int(top_idx.shape[1])  # k, or n for a router that mixes all.
    token_idx = tf.tile(tf.range(tf.shape(flat)[0]), [choices])
    # The (rank, token) rows to compute: within their expert's capacity, and
    # of a non-zero gate for a router that names every expert (a NaN stays).
    keeps = []
    if self.topk_capacity_factor is not None and self.routing.has_capacity:
      keeps.append(self._within_capacity(expert_idx, batch, num_tokens))
    if self.routing.drops_zero_gates:
      keeps.append(tf.not_equal(gates, 0.0))
    if keeps:
      keep = tf.reduce_all(tf.stack(keeps), axis=0)
      expert_idx, gates, token_idx = (
          tf.boolean_mask(t, keep) for t in (expert_idx, gates, token_idx))

    rows = tf.range(tf.shape(expert_idx)[0])
    groups = tf.dynamic_partition(
        tf.gather(flat, token_idx), expert_idx, self.num_experts
    )
    group_rows = tf.dynamic_partition(rows, expert_idx, self.num_experts)
    group_out, hiddens = self.experts.call_groups(groups)
    choice_out = tf.dynamic_stitch(group_rows, group_out) * gates[:, None]
    outputs = tf.math.unsorted_segment_sum(
        choice_out, token_idx, num_segments=tf.shape(flat)[0]
    )
    outputs = tf.reshape(outputs, [batch, num_tokens, self.output_units])
    probs = tf.reshape(probs, [batch, num_tokens, self.num_experts])
    counts = tf.math.unsorted_segment_sum(
        tf.ones_like(expert_idx), expert_idx, self.num_experts
    )
    return outputs, probs, hiddens, router_logits, counts, flat

  def capacity(self, num_tokens):
    """TopK tokens per expert and sample, ceil(m * k * factor / n)."""
    return int(
        math.ceil(
            num_tokens * self.k * self.topk_capacity_factor / self.num_experts
        )
    )

  def _within_capacity(self, expert_idx, batch, num_tokens):
    """Which (rank, token) rows fit in their expert's per-sample capacity."""
    # Rows are ordered rank-major: reshape to [k, batch, m] to count per sample.
    one_hot = tf.reshape(
        tf.one_hot(expert_idx, self.num_experts, dtype=tf.int32),
        [self.k, batch, num_tokens, self.num_experts],
    )
    per_sample = tf.reshape(
        tf.transpose(one_hot, [1, 0, 2, 3]),
        [batch, self.k * num_tokens, self.num_experts],
    )
    position = tf.cumsum(per_sample, axis=1) - 1
    position = tf.reduce_sum(position * per_sample, axis=-1)  # [b, k*m]
    position = tf.reshape(
        tf.transpose(tf.reshape(position, [batch, self.k, num_tokens]), [1, 0, 2]),
        [-1],
    )
    return position < self.capacity(num_tokens)

  def _balancing_losses(self, probs, router_logits):
    losses = {}
    flat = tf.reshape(probs, [-1, self.num_experts])
    if self.loss_weights['switch_loss'] > 0:
      top1 = tf.one_hot(tf.argmax(flat, axis=-1), self.num_experts)
      fraction = tf.stop_gradient(tf.reduce_mean(top1, axis=0))
      mean_prob = tf.reduce_mean(flat, axis=0)
      losses['switch_loss'] = self.num_experts * tf.reduce_sum(
          fraction * mean_prob
      )
    if self.loss_weights['importance_loss'] > 0:
      losses['importance_loss'] = coefficient_of_variation_squared(
          tf.reduce_sum(flat, axis=0)
      )
    if self.loss_weights['load_loss'] > 0:
      losses['load_loss'] = coefficient_of_variation_squared(
          tf.reduce_sum(self._expected_load(*router_logits), axis=0)
      )
    return {
        f'{self.name}/{name}': self.loss_weights[name] * value
        for name, value in losses.items()
    }

  def _expected_load(self, clean, noisy):
    """P(expert i is among the top k | other noise fixed), per token [T, n]."""
    std = self.noise_std / self.num_experts
    top_values, _ = tf.math.top_k(noisy, k=min(self.k + 1, self.num_experts))
    threshold_if_in = top_values[:, -1:] if self.k < self.num_experts else (
        tf.fill(tf.shape(noisy[:, :1]), -np.inf)
    )
    threshold_if_out = top_values[:, self.k - 1 : self.k]
    is_in = noisy > threshold_if_in
    def normal_cdf(z):
      return 0.5 * (1.0 + tf.math.erf(z / (std * math.sqrt(2.0))))

    return tf.where(
        is_in,
        normal_cdf(clean - threshold_if_in),
        normal_cdf(clean - threshold_if_out),
    )
