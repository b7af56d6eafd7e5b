"""Routers of the MoE layer: one small class per router, one interface.

A router owns its weights (created on the MoE layer, so Keras tracks them)
and decides where tokens go. Two dispatch styles exist:
- soft (SoftMoE): `slot_logits(router_inputs, training)` gives logits
  [batch, m, n * p]; the layer mixes tokens into slots and back;
- sparse (everything else): `select(flat_router_inputs, task_ids, training)`
  gives, per token, the routing probabilities over experts [T, n], the chosen
  experts [T, k] and their gates [T, k]; only those (token, expert) pairs are
  computed.
A router's input is the token, or [token, context] when the layer has a
router context (a network's task one-hot, `router_context_units` c > 0): the
logits are then [x, z] W over a kernel of d + c rows, kept as two variables,
the token's rows W_x [d, .] (`weights`, what ReDo edits with the token's
features) and the context's rows W_z [c, .] (`context_weights`), so that
[x, z] W = x W_x + z W_z. Both are drawn as the rows of one kernel of fan-in
d + c; without a context W_x is exactly the router's usual kernel.
Adding a router is adding a class here and a member to `moe.Router`.
"""

import tensorflow as tf

from moe_dopamine import config


def noisy(layer, logits, training):
  """Logits plus N(0, (noise_std / n)^2) noise in training."""
  if layer.noise_std > 0 and training:
    logits += tf.random.normal(tf.shape(logits)) * (layer.noise_std / layer.num_experts)
  return logits


def kernel_rows_initializer(rows, fan_in, divisor=1):
  """Truncated-normal variance scaling for `rows` rows of a kernel whose
  fan-in is `fan_in`: variance 1 / (fan_in * divisor), whatever the rows
  (Keras' initializer reads the fan-in from the variable's own shape)."""
  return tf.keras.initializers.VarianceScaling(
      scale=rows / (fan_in * divisor), mode='fan_in', distribution='truncated_normal'
  )


class Router:
  """The interface (and the defaults) of a router."""

  soft = False  # Slot dispatch (SoftMoE) rather than sparse dispatch.
  # Whether the routing is computed from the router's input (through weights);
  # the hardcoded router reads only the task id.
  reads_inputs = True
  uses_k = False  # Whether MoE.k applies.
  frozen = False  # Weights never trained (a control).
  # Whether the load loss applies: it is the expected load under router noise.
  has_load_loss = False
  # Sparse dispatch: whether MoE.topk_capacity_factor limits the tokens an
  # expert takes (TopK and random routing only).
  has_capacity = False
  # Sparse dispatch: whether (token, expert) pairs of gate 0 are left out
  # (for a router that names every expert but gives some of them nothing).
  drops_zero_gates = False

  # {MoE parameter: why this router does not use it} (see
  # moe_dopamine.bindings: a binding nothing uses is refused).
  ignores = {}

  def __init__(self, layer):
    self.layer = layer
    self.context_kernel = None  # W_z, with a router context.

  def check(self):
    """Raises config.ConfigError for settings this router cannot honour."""

  def build(self, num_tokens, token_size, context_size=0):
    """Creates the router's weights on the layer."""

  def weights(self):
    """The router's weight matrices (rows = token features)."""
    return []

  def context_weights(self):
    """The router's weights for its context's rows, W_z ([] if none)."""
    return [] if self.context_kernel is None else [self.context_kernel]

  def add_kernel(self, name, token_size, context_size, columns, divisor, trainable):
    """Adds W_x `name` [token_size, columns] and, with a context, W_z
    `name`_context [context_size, columns]: the rows of one kernel of fan-in
    token_size + context_size, variance 1 / (fan-in * divisor). Returns W_x."""
    fan_in = token_size + context_size
    kernel = self.layer.add_weight(
        name, shape=(token_size, columns),
        initializer=kernel_rows_initializer(token_size, fan_in, divisor),
        trainable=trainable,
    )
    if context_size:
      self.context_kernel = self.layer.add_weight(
          f'{name}_context', shape=(context_size, columns),
          initializer=kernel_rows_initializer(context_size, fan_in, divisor),
          trainable=trainable,
      )
    return kernel

  def kernel(self):
    """W over the router's input: W_x, or [W_x; W_z] with a context."""
    rows = self.weights() + self.context_weights()
    return rows[0] if len(rows) == 1 else tf.concat(rows, axis=0)


class SoftMoERouter(Router):
  """SoftMoE (Puigcerver et al., 2023): logits X Phi over n * p slots.

  The layer reports each expert's combine weights summed over its p slots as
  its routing probability (Dopamine's labs/moes averages them over the slots).

  Phi [d, n * p] is initialised as Dopamine's labs/moes Phi [d, n, p] under
  lecun_normal (truncated normal, variance 1 / (d * n)); with
  normalize_tokens, logits = scale * l2norm(X) l2norm(Phi) (over d). With a
  router context z, X is [X, z] and Phi is [Phi; Phi_context] throughout
  (d + c rows, variance 1 / ((d + c) n)).
  """

  soft = True
  ignores = {
      'k': 'SoftMoE routing has no k (it applies to topk, random and soft_to_sparse)',
      'topk_capacity_factor': 'SoftMoE routing drops no token (its capacity is capacity_factor)',
      'renormalize_gates': 'SoftMoE routing has no kept gates to renormalize',
  }

  def build(self, num_tokens, token_size, context_size=0):
    layer = self.layer
    layer.phi = self.add_kernel(
        'phi', token_size, context_size,
        columns=layer.num_experts * layer.num_slots(num_tokens),
        divisor=layer.num_experts, trainable=layer.router_trainable,
    )
    if layer.normalize_tokens:
      layer.scale = layer.add_weight(
          'scale', shape=(), initializer='ones', trainable=layer.router_trainable
      )

  def weights(self):
    return [self.layer.phi]

  def slot_logits(self, router_inputs, training):
    layer = self.layer
    phi = self.kernel()
    if layer.normalize_tokens:
      logits = layer.scale * tf.tensordot(
          tf.math.l2_normalize(router_inputs, axis=-1),
          tf.math.l2_normalize(phi, axis=0), 1)
    else:
      logits = tf.tensordot(router_inputs, phi, 1)  # [b, m, d] x [d, s]: one matmul.
    return noisy(layer, logits, training)


class TopKRouter(Router):
  """TopK (Shazeer et al., 2017): softmax(x W) over experts, keep the k
  largest gates (optionally renormalized to sum to 1)."""

  uses_k = True
  has_load_loss = True
  has_capacity = True
  ignores = {
      'capacity_factor': "capacity_factor sets SoftMoE's slots (topk: topk_capacity_factor)",
      'normalize_tokens': "normalize_tokens applies to SoftMoE's logits",
  }

  def check(self):
    layer = self.layer
    balancing = any(w > 0 for w in layer.loss_weights.values())
    if layer.k == 1 and layer.renormalize_gates and not balancing:
      raise config.ConfigError(
          'MoE.renormalize_gates=True with router=topk and k=1 makes the kept '
          'gate identically 1, so the router gets no gradient from the TD loss '
          'and stays at its random initialisation. Fix: MoE.renormalize_gates='
          'False, k >= 2, or a balancing loss (e.g. MoE.switch_loss_weight=0.01).'
      )

  def build(self, num_tokens, token_size, context_size=0):
    layer = self.layer
    # LeCun normal (variance 1 / fan-in) over the token and its context.
    layer.router_kernel = self.add_kernel(
        'router_kernel', token_size, context_size, columns=layer.num_experts,
        divisor=1, trainable=layer.router_trainable and not self.frozen,
    )

  def weights(self):
    return [self.layer.router_kernel]

  def select(self, flat, task_ids, training):
    """(probs [T, n], experts [T, k], gates [T, k], (clean, noisy) logits)
    from the flat router inputs [T, d(+c)]."""
    layer = self.layer
    clean = tf.matmul(flat, self.kernel())
    logits = noisy(layer, clean, training)
    probs = tf.nn.softmax(logits)
    gates, experts = tf.math.top_k(probs, k=layer.k)
    if layer.renormalize_gates:
      gates /= tf.reduce_sum(gates, axis=-1, keepdims=True)
    return probs, experts, gates, (clean, logits)


class RandomRouter(TopKRouter):
  """TopK dispatch through a fixed, untrained random router (a control).

  Unlike Dopamine's labs/moes RandomRouter, which draws fresh Gaussian scores
  at every call and uses them, unnormalized, as the gates, this router is a
  frozen linear router with softmax gates: TopK with its router left at its
  random initialisation, so it isolates what learning the router brings.
  """

  frozen = True
  has_load_loss = False
  ignores = dict(
      TopKRouter.ignores,
      router_trainable='the random router is always frozen',
  )

  def check(self):
    pass  # The router never learns: a constant gate costs it nothing.


class HardcodedRouter(Router):
  """Task-id routing: a token of task t goes to expert t mod n, gate 1.

  Every token goes to its task's expert: no capacity, no token dropped.
  """

  ignores = {
      parameter: 'hardcoded routing sends every token to its task\'s expert ('
      + why + ')'
      for parameter, why in (
          ('k', 'one expert per token'),
          ('capacity_factor', 'no slots'),
          ('topk_capacity_factor', 'no capacity: no token is dropped'),
          ('normalize_tokens', 'no logits'),
          ('noise_std', 'no logits'),
          ('renormalize_gates', 'its one gate is 1'),
          ('router_trainable', 'no router weights'),
          ('load_loss_weight', 'no router noise'),
      )
  }

  reads_inputs = False

  def select(self, flat, task_ids, training):
    layer = self.layer
    if task_ids is None:
      raise config.ConfigError('the hardcoded router needs task_ids.')
    tokens_per_sample = tf.shape(flat)[0] // tf.shape(task_ids)[0]
    expert = tf.math.floormod(tf.cast(task_ids, tf.int32), layer.num_experts)
    expert = tf.repeat(expert, tokens_per_sample)  # [T]
    probs = tf.one_hot(expert, layer.num_experts)
    return probs, expert[:, None], tf.ones_like(probs[:, :1]), None


class SoftToSparseRouter(TopKRouter):
  """A router that moves from soft to sparse routing as its sparsity grows.

  With g = softmax(x W + noise) over the n experts and M_k(g) the mask of
  the k largest gates, the weights are
    w = (1 - s) g + s (g * M_k(g)),   s in [0, 1] the layer's `sparsity`.
  s = 0 is dense softmax gating: SoftMoE's combine weights for one token per
  sample (one slot per expert, Phi = W); s = 1 is TopK's selection (the kept
  gates, not renormalized). Every expert is computed while s < 1; at s = 1
  the pairs of gate 0 are left out, so only the k chosen experts of each
  token are computed and routed (the outputs and gradients are the same:
  a left-out pair's gate and its derivative are 0), as TopK computes them.
  The agent sets s on a schedule (MoEDQNAgent.sparsity_anneal_steps), and
  can make the routing soft again after each task switch.
  """

  has_load_loss = False
  has_capacity = False
  drops_zero_gates = True
  ignores = dict(
      TopKRouter.ignores,
      renormalize_gates="soft_to_sparse weighs the experts by g, never renormalized",
  )

  def check(self):
    if self.layer.topk_capacity_factor is not None:
      raise config.ConfigError(
          'MoE.topk_capacity_factor applies to topk and random routing; '
          "router='soft_to_sparse' mixes every expert until it is fully sparse. "
          'Fix: MoE.topk_capacity_factor=None.'
      )

  def build(self, num_tokens, token_size, context_size=0):
    super().build(num_tokens, token_size, context_size)
    layer = self.layer
    layer.sparsity = layer.add_weight(
        'sparsity', shape=(), initializer='zeros', trainable=False
    )

  def select(self, flat, task_ids, training):
    layer = self.layer
    probs, _, _, logits = super().select(flat, task_ids, training)
    _, top = tf.math.top_k(probs, k=layer.k)
    mask = tf.reduce_sum(tf.one_hot(top, layer.num_experts), axis=1)
    weights = (1.0 - layer.sparsity) * probs + layer.sparsity * probs * mask
    experts = tf.tile(tf.range(layer.num_experts)[None], [tf.shape(flat)[0], 1])
    return weights, experts, weights, logits
