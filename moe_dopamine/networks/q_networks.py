"""Classic-control Q-networks with an MoE in a chosen place.

The baseline is Dopamine's `BasicDiscreteDomainNetwork`: cast to float32,
flatten, rescale each feature to [-1, 1] with min/max, Dense(512, relu),
Dense(512, relu), Dense(num_actions). A placement says what becomes an MoE:

| placement       | MoE                                                      |
|-----------------|----------------------------------------------------------|
| baseline        | none                                                     |
| middle          | the penultimate layer (the last hidden Dense)            |
| final           | the output layer (experts output num_actions values)     |
| all             | every Dense layer                                        |
| big             | one MoE whose experts are whole baseline networks        |
| baseline_scaled | none; hidden widths x num_experts (a parameter control)  |
| separate        | big with hardcoded routing and one expert per task       |

Big differs from Dopamine's labs/moes Big network (Atari), which runs
SoftMoE over the raw-pixel tokens of its input, with square slot images
through a shared torso and head: here the MoE's tokens are the feature vector
(one per sample, or `num_tokens`) and it mixes the Q-values of whole
networks.

A hidden MoE replaces Dense + relu. As in Dopamine's labs/moes networks, the
MoE's output is used as it is (no relu after it; `relu_after_moe=True` adds
one). Its experts are Dense(expert_hidden_units, relu) then Dense back to the
token width. Vector
features are split into `num_tokens` equal tokens (1 = the whole vector); the
output layer's tokens each give Q-values, averaged over tokens.

With `task_id_in_observation`, the last feature of the observation is the
task id (used by hardcoded routing), not an input feature.

What else of the task id the network reads is one binding,
`task_id_input` (`TaskIdInput`, shared with the MinAtar network), with
o = one_hot(task id, num_tasks) and x the rescaled features:
- 'none' (default): nothing; only hardcoded routing sees the id.
- 'network': the network's input is [x, o], D + num_tasks wide: the first
  Dense computes relu([x, o] W + b) (num_tasks x hidden_units more weights),
  Big's every expert and its router read [x, o], and so do the first MoE's
  tokens (all); as multi-task RL baselines condition a network on the task.
- 'router': every MoE layer's router reads [token, o] (logits [x, o] W,
  num_tasks more rows: n * p per SoftMoE router, n per TopK router); the
  experts, and SoftMoE's slot contents, read the token alone (moe.py).
  Refused without a learned router (baseline, baseline_scaled, separate,
  hardcoded or frozen routing).
Any value but 'none' needs the id in the observation (task_id_in_observation).

Parameter-matched control: `parameter_matched_to=<placement>` (with placement
'baseline') gives the baseline the hidden width whose trainable parameter
count is closest to that placement's at the same settings.

`PlacementQNetwork` is what this network and the MinAtar one
(`minatar_q_networks.MinAtarQNetwork`) share: the checks of the shared
arguments, parameter matching, MoE layers and their hardcoded-routing check,
the experts' recyclable layers, and the call's MoE bookkeeping.
"""

import enum

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.metrics import names
from moe_dopamine.networks import matmul_gradients
from moe_dopamine.networks import moe
from moe_dopamine.networks import types


@gin.constants_from_enum(module='moe_dopamine')
class Placement(enum.Enum):
  """Which part of the Q-network is an MoE, or which control network it is
  (see the module docstring)."""
  BASELINE = 'baseline'
  MIDDLE = 'middle'
  FINAL = 'final'
  ALL = 'all'
  BIG = 'big'
  BASELINE_SCALED = 'baseline_scaled'
  SEPARATE = 'separate'


@gin.constants_from_enum(module='moe_dopamine')
class TaskIdInput(enum.Enum):
  """What of the task id a network reads besides hardcoded routing (see the
  module docstring)."""
  NONE = 'none'
  NETWORK = 'network'  # A one-hot of the id in the network's input.
  ROUTER = 'router'  # A one-hot of the id in every router's input only.


# Placements without a router that learns from its input.
_UNROUTED = (Placement.BASELINE, Placement.BASELINE_SCALED, Placement.SEPARATE)


class PlacementQNetwork(tf.keras.Model):
  """What the Q-networks with an MoE placement share (not gin-configurable).

  A subclass's constructor checks its arguments through `_check_placement`,
  `_check_experts`, `_check_widths` and `_check_task_id_input` (in that
  order, its own checks in between), sets `_constructor_args`, and
  implements `_make_layers`, `_layers_in_order`, `_matched_width`,
  `_network_input` and `_q_values`. Error messages name the subclass's
  arguments with the prefix given to `_check_placement`.
  """

  def _check_placement(self, prefix, placement):
    """Sets the error-message prefix ('<Network>.') and the placement."""
    self._prefix = prefix
    self.placement = config.parse_choice(Placement, placement, prefix + 'placement')

  def _check_experts(self, num_experts, num_tasks):
    """Sets num_tasks and num_experts (separate: one expert per task)."""
    self.num_tasks = config.check_int(num_tasks, 'num_tasks', minimum=1)
    if self.placement == Placement.SEPARATE:
      num_experts = self.num_tasks
    self.num_experts = config.check_int(
        num_experts, self._prefix + 'num_experts', minimum=1
    )

  def _check_widths(self, num_actions, hidden_units, expert_hidden_units,
                    relu_after_moe, parameter_matched_to, task_id_in_observation):
    """Sets the widths, relu_after_moe, parameter_matched_to and the task id
    layout; baseline_scaled multiplies the hidden width by num_experts."""
    prefix = self._prefix
    hidden_units = config.check_int(hidden_units, prefix + 'hidden_units', minimum=1)
    self.expert_hidden_units = config.check_int(
        expert_hidden_units, prefix + 'expert_hidden_units', minimum=1
    )
    self.relu_after_moe = config.check_bool(relu_after_moe, prefix + 'relu_after_moe')
    self.parameter_matched_to = None
    if parameter_matched_to is not None:
      self.parameter_matched_to = config.parse_choice(
          Placement, parameter_matched_to, prefix + 'parameter_matched_to'
      )
      if self.placement != Placement.BASELINE:
        raise config.ConfigError(
            f'{prefix}parameter_matched_to={self.parameter_matched_to.value!r} '
            f'needs placement=\'baseline\' (got {self.placement.value!r}): it '
            'sets the width of a baseline.'
        )
    self.num_actions = num_actions
    self.task_id_in_observation = task_id_in_observation
    if self.placement == Placement.BASELINE_SCALED:
      hidden_units *= self.num_experts
    self.hidden_units = hidden_units
    self.big_moe = None

  def _check_task_id_input(self, task_id_input):
    """Sets task_id_input; refuses a one-hot of an id the observations lack,
    and 'router' for a network without a learned router."""
    binding = self._prefix + 'task_id_input'
    self.task_id_input = config.parse_choice(TaskIdInput, task_id_input, binding)
    value = self.task_id_input.value
    if self.task_id_input != TaskIdInput.NONE and not self.task_id_in_observation:
      raise config.ConfigError(
          f'{binding}={value!r} needs the task id in the observation, and these '
          'observations carry none (task_id_in_observation=False: not a '
          f"MultiTaskEnvironment run). Fix: {binding}='none', or build the "
          "run's tasks with MultiTaskEnvironment."
      )
    if self.task_id_input == TaskIdInput.ROUTER and self.placement in _UNROUTED:
      raise config.ConfigError(
          f"{binding}='router' gives the task id to the routers, and "
          f'placement={self.placement.value!r} has no learned router. Fix: '
          f"{binding}='network' (the id in the network's input), or an MoE "
          "placement with a learned router ('middle', 'final', 'all', 'big')."
      )

  @property
  def task_input_units(self):
    """Width of the task one-hot in the network's input ('network')."""
    return self.num_tasks if self.task_id_input == TaskIdInput.NETWORK else 0

  @property
  def router_context_units(self):
    """Width of the task one-hot in each router's input ('router')."""
    return self.num_tasks if self.task_id_input == TaskIdInput.ROUTER else 0

  def _shared_constructor_args(self):
    """The checked arguments every subclass's constructor takes (for
    `_constructor_args`)."""
    return dict(
        num_actions=self.num_actions,
        num_experts=self.num_experts,
        hidden_units=self.hidden_units,
        expert_hidden_units=self.expert_hidden_units,
        relu_after_moe=self.relu_after_moe,
        num_tasks=self.num_tasks,
        task_id_in_observation=self.task_id_in_observation,
        task_id_input=self.task_id_input,
    )

  @property
  def _matched_to_name(self):
    """parameter_matched_to's name, or None (for the logs)."""
    if self.parameter_matched_to is None:
      return None
    return self.parameter_matched_to.value

  @property
  def is_big(self):
    """The network is one MoE of whole networks (big, separate)."""
    return self.placement in (Placement.BIG, Placement.SEPARATE)

  def _feature_width(self, input_shape):
    """Features of a state of `input_shape`, without the task id."""
    return int(np.prod(input_shape[1:])) - int(self.task_id_in_observation)

  def _input_width(self, input_shape):
    """What the first layer reads: the features and the task one-hot
    ('network')."""
    return self._feature_width(input_shape) + self.task_input_units

  def build(self, input_shape):
    """Makes the layers; a parameter-matched baseline first finds its width."""
    if self.parameter_matched_to is not None:
      target = self._parameter_count_of(self.parameter_matched_to, input_shape)
      self.hidden_units = self._matched_width(target, input_shape)
      logging.info(
          '%s %s: width %d matches the %d parameters of %s',
          type(self).__name__, self.name, self.hidden_units, target,
          self.parameter_matched_to.value,
      )
    self._make_layers()
    self.built = True

  def _parameter_count_of(self, placement, input_shape):
    """Trainable parameters of this network's class with `placement`.

    Built in a scratch graph with the same arguments (and so the same MoE gin
    bindings) on states of `input_shape`.
    """
    with tf.Graph().as_default():
      network = type(self)(
          placement=placement, parameter_matched_to=None,
          **self._constructor_args, name='parameter_count',
      )
      network(tf.zeros([1] + [int(d) for d in input_shape[1:]]))
      return count_parameters(network)

  def _make_moe(self, layer_name, output_units, expert_hidden_units, router=None,
                experts=None):
    """An MoE layer of num_experts experts; router None leaves it to gin."""
    kwargs = {} if router is None else {'router': router}
    layer = moe.MoE(
        num_experts=self.num_experts,
        output_units=output_units,
        expert_hidden_units=expert_hidden_units,
        experts=experts,
        router_context_units=self.router_context_units,
        name=layer_name,
        **kwargs,
    )
    if self.router_context_units and not layer.learns_routing:
      raise config.ConfigError(
          f"{self._prefix}task_id_input='router' gives the task id to the routers, "
          f'and MoE {layer_name} has router={layer.router.value!r}'
          f'{"" if layer.router_trainable else " (frozen)"}, which learns nothing '
          "from its input. Fix: MoE.router='softmoe', 'topk' or 'soft_to_sparse' "
          f"with MoE.router_trainable=True, or {self._prefix}task_id_input="
          "'network'."
      )
    if layer.router == moe.Router.HARDCODED and self.num_experts < self.num_tasks:
      raise config.ConfigError(
          f'hardcoded routing with num_experts={self.num_experts} < '
          f'num_tasks={self.num_tasks} would make tasks share experts. Fix: set '
          f'{self._prefix}num_experts >= {self.num_tasks}, or use '
          "placement='separate' (one expert per task)."
      )
    return layer

  def _make_big_moe(self, expert_hidden_units, experts=None):
    """The big placement's MoE 'big' (separate: hardcoded routing)."""
    router = moe.Router.HARDCODED if self.placement == Placement.SEPARATE else None
    return self._make_moe(
        'big', self.num_actions, expert_hidden_units, router, experts
    )

  def moe_layers(self):
    """The network's MoE layers, in order (after the network is built)."""
    if self.big_moe is not None:
      return [self.big_moe]
    return [l for l in self._layers_in_order() if isinstance(l, moe.MoE)]

  def ignored_bindings(self):
    """{'Configurable.parameter': why} of the parameters this network was
    given but does not use under its placement, and the routing parameters
    none of its MoE layers uses (see moe_dopamine.bindings). Call after the
    network is built."""
    prefix, placement = self._prefix, self.placement.value
    ignored = {}
    layers = self.moe_layers()
    if layers:
      # A routing parameter is unused if every MoE layer ignores it.
      common = set(layers[0].ignored_bindings())
      for layer in layers[1:]:
        common &= set(layer.ignored_bindings())
      ignored.update({k: layers[0].ignored_bindings()[k] for k in common})
    no_moe = self.parameter_matched_to is None and not layers
    if no_moe:
      why = f"placement '{placement}' has no MoE layer"
      for parameter in self._moe_only_parameters():
        ignored[prefix + parameter] = why
      if self.placement == Placement.BASELINE:
        ignored[prefix + 'num_experts'] = why
    if self.is_big:
      ignored[prefix + 'expert_hidden_units'] = (
          f"placement '{placement}': each expert is a whole network of "
          f'{prefix}hidden_units')
    if not self._has_hidden_moe():
      ignored.setdefault(prefix + 'relu_after_moe', (
          f"placement '{placement}' has no hidden MoE layer (its output MoE, "
          'if any, gives Q-values)'))
    if self.placement == Placement.SEPARATE:
      why = "placement 'separate' has one expert per task, routed by task id"
      ignored[prefix + 'num_experts'] = why
      ignored['MoE.router'] = why
    return ignored

  def _moe_only_parameters(self):
    """This network's parameters that only its MoE layers read."""
    return ['expert_hidden_units', 'relu_after_moe']

  def _has_hidden_moe(self):
    """Whether a hidden layer (not the output) is an MoE."""
    return self.placement in (Placement.MIDDLE, Placement.ALL)

  def _first_recyclable_expert_layer(self, experts):
    """The first hidden layer of `experts` that ReDo can recycle."""
    del experts  # Every hidden layer of an MLP expert is.
    return 0

  def _expert_recyclable_layers(self):
    """Every expert's recyclable hidden layers, as `types.RecyclableLayer`s."""
    layers = []
    for layer in self.moe_layers():
      experts = layer.experts
      first = self._first_recyclable_expert_layer(experts)
      for e in range(layer.num_experts):
        for j in range(first, len(experts.kernels) - 1):
          layers.append(types.RecyclableLayer(
              name=names.expert_hidden(layer.name, e, j),
              units=int(experts.kernels[j][e].shape[1]),
              incoming=[(experts.kernels[j][e], 1)],
              biases=[experts.biases[j][e]],
              outgoing=[(experts.kernels[j + 1][e], 0)],
          ))
    return layers

  # Plain Python control flow over settings, never over tensors: autograph's
  # conversion (seconds per network) has nothing to convert.
  @tf.autograph.experimental.do_not_convert
  def call(self, state, training=None, diagnostics=False):
    """state [batch, features(+1), stack] -> QNetworkOutput.

    Every matrix product takes matmul_gradients' faster input gradient.

    Args:
      state: the observations (see the subclass's `_q_values`).
      training: bool, router noise on (the replayed batch of a train step).
      diagnostics: bool, also run every expert on the whole batch (see
        types.QNetworkOutput); for measurements only.
    """
    with matmul_gradients.faster_matmul_gradients():
      return self._forward(state, training, diagnostics)

  @tf.autograph.experimental.do_not_convert
  def _forward(self, state, training, diagnostics):
    x = tf.cast(state, tf.float32)
    x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
    x, task_ids = observation.split_task_id(x, self.task_id_in_observation)
    task_one_hot = self._task_one_hot(task_ids)
    is_router = self.task_id_input == TaskIdInput.ROUTER
    router_context = task_one_hot if is_router else None
    x = self._network_input(x, None if is_router else task_one_hot)
    aux_losses, router_probs, activations = {}, {}, {}
    routed_activations, routed_counts = {}, {}

    def run_moe(layer, tokens):
      out, info = layer(
          tokens, task_ids=task_ids, training=training, diagnostics=diagnostics,
          router_context=router_context,
      )
      aux_losses.update(info.aux_losses)
      router_probs[layer.name] = info.router_probs
      if diagnostics:
        activations.update(info.all_token_activations)
        routed_activations.update(info.expert_activations)
        routed_counts[layer.name] = info.routed_counts
      else:
        activations.update(info.expert_activations)
      return out

    q_values = self._q_values(x, run_moe, activations)
    return types.make_output(
        q_values, aux_losses, router_probs, activations, routed_activations,
        routed_counts,
    )

  def _task_one_hot(self, task_ids):
    """one_hot(task ids, num_tasks) [batch, num_tasks]; None with 'none' (no
    op: the default graph is the one without task input)."""
    if self.task_id_input == TaskIdInput.NONE:
      return None
    return tf.one_hot(task_ids, self.num_tasks)


def recyclable_output(name, units, layer, reader):
  """The `types.RecyclableLayer` of the hidden layer `name`: the output of
  `layer` (a Dense or an MoE), which `reader` (a Dense or an MoE) reads."""
  if isinstance(layer, moe.MoE):
    incoming = [(k, 1) for k in layer.experts.kernels[-1]]
    biases = list(layer.experts.biases[-1])
  else:
    incoming, biases = [(layer.kernel, 1)], [layer.bias]
  if isinstance(reader, moe.MoE):
    outgoing = [(k, 0) for k in reader.experts.kernels[0]]
    outgoing += [(w, 0) for w in reader.router_weights()]
  else:
    outgoing = [(reader.kernel, 0)]
  return types.RecyclableLayer(
      name=name, units=units, incoming=incoming, biases=biases,
      outgoing=outgoing,
  )


@gin.configurable
class ClassicControlQNetwork(PlacementQNetwork):
  """Dopamine's classic-control DQN network with an MoE placement."""

  def __init__(
      self,
      num_actions,
      placement=Placement.BASELINE,
      num_experts=4,
      hidden_units=512,
      num_hidden_layers=2,
      expert_hidden_units=512,
      num_tokens=1,
      relu_after_moe=False,
      parameter_matched_to=None,
      min_vals=None,
      max_vals=None,
      num_tasks=1,
      task_id_in_observation=False,
      task_id_input=TaskIdInput.NONE,
      name=None,
  ):
    """Creates the network (its layers are made when it first sees a state).

    Args:
      num_actions: int, number of Q-values.
      placement: Placement or its name (see the module docstring).
      num_experts: int >= 1, experts per MoE layer (separate: forced to
        num_tasks).
      hidden_units: int, width of the baseline's hidden layers.
      num_hidden_layers: int >= 1, hidden layers of the baseline.
      expert_hidden_units: int, hidden width of a layer-replacing expert.
      num_tokens: int >= 1, tokens a feature vector is split into.
      relu_after_moe: bool, apply relu to a hidden MoE's output.
      parameter_matched_to: None, or a Placement (or its name): with
        placement 'baseline', the hidden width becomes the one whose
        parameter count is closest to that placement's.
      min_vals: None or array, per-feature minimum for the [-1, 1] rescale.
      max_vals: None or array, per-feature maximum.
      num_tasks: int, number of tasks the observations come from.
      task_id_in_observation: bool, the observation's last feature is the
        task id.
      task_id_input: TaskIdInput or its name: 'none', 'network' (a one-hot
        of the task id appended to the rescaled features) or 'router' (to
        every router's input only); see the module docstring.
      name: str, Keras name; Dopamine passes 'Online' and 'Target'.
    """
    super().__init__(name=name)
    prefix = 'ClassicControlQNetwork.'
    self._check_placement(prefix, placement)
    self.num_hidden_layers = config.check_int(
        num_hidden_layers, prefix + 'num_hidden_layers', minimum=1
    )
    self.num_tokens = config.check_int(num_tokens, prefix + 'num_tokens', minimum=1)
    self._check_experts(num_experts, num_tasks)
    self._check_widths(
        num_actions, hidden_units, expert_hidden_units, relu_after_moe,
        parameter_matched_to, task_id_in_observation,
    )
    self._check_task_id_input(task_id_input)
    self.min_vals = None if min_vals is None else np.asarray(min_vals, np.float32)
    self.max_vals = None if max_vals is None else np.asarray(max_vals, np.float32)
    self.moe_positions = {
        Placement.MIDDLE: {self.num_hidden_layers - 1},
        Placement.FINAL: {self.num_hidden_layers},
        Placement.ALL: set(range(self.num_hidden_layers + 1)),
    }.get(self.placement, set())
    if self.num_tokens > 1:
      for i in self.moe_positions - {self.num_hidden_layers}:
        if self.hidden_units % self.num_tokens:
          raise config.ConfigError(
              f'{prefix}num_tokens={self.num_tokens} does not divide the width '
              f'{self.hidden_units} of layer hidden_{i}.'
          )
    self.stack = []  # (name, layer, is_moe) in order; the last is the output.
    self._constructor_args = dict(
        self._shared_constructor_args(),
        num_hidden_layers=self.num_hidden_layers,
        num_tokens=self.num_tokens,
    )
    logging.info(
        'ClassicControlQNetwork %s: placement=%s num_experts=%d num_tokens=%d '
        'hidden_units=%d num_hidden_layers=%d expert_hidden_units=%d '
        'relu_after_moe=%s parameter_matched_to=%s task_id_input=%s',
        name,
        self.placement.value,
        self.num_experts,
        self.num_tokens,
        self.hidden_units,
        self.num_hidden_layers,
        self.expert_hidden_units,
        self.relu_after_moe,
        self._matched_to_name,
        self.task_id_input.value,
    )

  def _matched_width(self, target, input_shape):
    return matched_width(
        target, self._input_width(input_shape), self.num_actions,
        self.num_hidden_layers,
    )

  def _moe_only_parameters(self):
    return super()._moe_only_parameters() + ['num_tokens']

  def _make_layers(self):
    hidden_units = self.hidden_units
    if self.is_big:
      self.big_moe = self._make_big_moe((hidden_units,) * self.num_hidden_layers)
      return
    for i in range(self.num_hidden_layers + 1):
      is_output = i == self.num_hidden_layers
      layer_name = 'output' if is_output else f'hidden_{i}'
      units = self.num_actions if is_output else hidden_units
      if i in self.moe_positions:
        layer = self._make_moe(
            layer_name,
            output_units=units if is_output else units // self.num_tokens,
            expert_hidden_units=(self.expert_hidden_units,),
        )
      else:
        layer = tf.keras.layers.Dense(
            units, activation=None if is_output else tf.nn.relu, name=layer_name
        )
      self.stack.append((layer_name, layer, i in self.moe_positions))

  def _layers_in_order(self):
    return [layer for _, layer, _ in self.stack]

  def recyclable_layers(self):
    """The hidden layers ReDo can recycle, as `types.RecyclableLayer`s.

    Dense hidden layers and every expert's hidden layers; a hidden MoE's
    output (e.g. Middle's 'hidden_1') too when a ReLU follows it
    (`relu_after_moe`) and there is one token per sample: a linear output is
    not a neuron. Call after the network is built.
    """
    layers = self._expert_recyclable_layers()
    if self.big_moe is not None or self.num_tokens != 1:
      return layers
    for (name, layer, is_moe), (_, reader, _) in zip(self.stack[:-1], self.stack[1:]):
      if not is_moe or self.relu_after_moe:
        layers.append(recyclable_output(name, self.hidden_units, layer, reader))
    return layers

  def _tokens(self, x):
    width = int(x.shape[-1])
    if width % self.num_tokens:
      raise config.ConfigError(
          f'ClassicControlQNetwork.num_tokens={self.num_tokens} does not divide '
          f'the input width {width}.'
      )
    return tf.reshape(x, [-1, self.num_tokens, width // self.num_tokens])

  def _network_input(self, features, task_one_hot):
    """Features [batch, D] (a state without its task id) -> what the first
    layer reads: the features rescaled to [-1, 1], then the task one-hot
    [batch, num_tasks] if given ('network')."""
    x = features
    if self.min_vals is not None:
      x = observation.rescale_features(x, self.min_vals, self.max_vals)
    if task_one_hot is None:
      return x
    return tf.concat([x, task_one_hot], axis=-1)

  def _q_values(self, x, run_moe, activations):
    """The network's input [batch, D(+num_tasks)] (`_network_input`) ->
    Q-values; `run_moe(layer, tokens)` runs an MoE and keeps its extras,
    `activations` keeps the hidden layers'."""
    if self.big_moe is not None:
      return tf.reduce_mean(run_moe(self.big_moe, self._tokens(x)), axis=1)
    for layer_name, layer, is_moe in self.stack[:-1]:
      if is_moe:
        x = tf.reshape(run_moe(layer, self._tokens(x)), [-1, self.hidden_units])
        if self.relu_after_moe:
          x = tf.nn.relu(x)
      else:
        x = layer(x)
      # Only units behind a ReLU are neurons in ReDo's sense: a hidden MoE's
      # linear output is not scored (its experts' hidden layers are).
      if not is_moe or self.relu_after_moe:
        activations[layer_name] = x
    _, output_layer, is_moe = self.stack[-1]
    if is_moe:
      return tf.reduce_mean(run_moe(output_layer, self._tokens(x)), axis=1)
    return output_layer(x)


def closest_width(count, target, root):
  """The width next to `root` (at least 1) whose `count(width)` is closest
  to target."""
  candidates = {max(1, int(np.floor(root))), max(1, int(np.ceil(root)))}
  return min(sorted(candidates), key=lambda w: abs(count(w) - target))


def matched_width(target, input_width, num_actions, num_hidden_layers):
  """The hidden width w whose baseline parameter count is closest to target.

  A baseline of L hidden layers of width w has
  (L - 1) w^2 + (input_width + L + num_actions) w + num_actions parameters.
  """
  layers = num_hidden_layers

  def count(w):
    return (layers - 1) * w * w + (input_width + layers + num_actions) * w + num_actions

  a, b, c = layers - 1, input_width + layers + num_actions, num_actions - target
  if a:
    root = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
  else:
    root = -c / b
  return closest_width(count, target, root)


def count_parameters(model):
  """Number of trainable scalars of a built Keras model."""
  return int(
      sum(np.prod(v.shape.as_list()) for v in model.trainable_variables)
  )
