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

A hidden MoE replaces Dense + relu: its output goes through relu. Its experts
are Dense(expert_hidden_units, relu) then Dense back to the token width. Vector
features are split into `num_tokens` equal tokens (1 = the whole vector); the
output layer's tokens each give Q-values, averaged over tokens.

With `task_id_in_observation`, the last feature of the observation is the
task id (used by hardcoded routing), not an input feature.
"""

import enum

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.agents import recycling
from moe_dopamine.networks import moe
from moe_dopamine.networks import types


@gin.constants_from_enum(module='moe_dopamine')
class Placement(enum.Enum):
  BASELINE = 'baseline'
  MIDDLE = 'middle'
  FINAL = 'final'
  ALL = 'all'
  BIG = 'big'
  BASELINE_SCALED = 'baseline_scaled'
  SEPARATE = 'separate'


@gin.configurable
class ClassicControlQNetwork(tf.keras.Model):
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
      min_vals=None,
      max_vals=None,
      num_tasks=1,
      task_id_in_observation=False,
      name=None,
  ):
    """Creates the network.

    Args:
      num_actions: int, number of Q-values.
      placement: Placement or its name (see the module docstring).
      num_experts: int >= 1, experts per MoE layer (separate: forced to
        num_tasks).
      hidden_units: int, width of the baseline's hidden layers.
      num_hidden_layers: int >= 1, hidden layers of the baseline.
      expert_hidden_units: int, hidden width of a layer-replacing expert.
      num_tokens: int >= 1, tokens a feature vector is split into.
      min_vals: None or array, per-feature minimum for the [-1, 1] rescale.
      max_vals: None or array, per-feature maximum.
      num_tasks: int, number of tasks the observations come from.
      task_id_in_observation: bool, the observation's last feature is the
        task id.
      name: str, Keras name; Dopamine passes 'Online' and 'Target'.
    """
    super().__init__(name=name)
    self.placement = config.parse_choice(
        Placement, placement, 'ClassicControlQNetwork.placement'
    )
    if num_hidden_layers < 1:
      raise ValueError(
          f'ClassicControlQNetwork.num_hidden_layers must be >= 1, got {num_hidden_layers}.'
      )
    if not isinstance(num_tokens, int) or num_tokens < 1:
      raise ValueError(
          f'ClassicControlQNetwork.num_tokens must be an integer >= 1, got {num_tokens!r}.'
      )
    if self.placement == Placement.SEPARATE:
      num_experts = num_tasks
    if not isinstance(num_experts, int) or num_experts < 1:
      raise ValueError(
          f'ClassicControlQNetwork.num_experts must be an integer >= 1, got {num_experts!r}.'
      )
    self.num_actions = num_actions
    self.num_experts = num_experts
    self.num_tokens = num_tokens
    self.num_tasks = num_tasks
    self.task_id_in_observation = task_id_in_observation
    self.min_vals = None if min_vals is None else np.asarray(min_vals, np.float32)
    self.max_vals = None if max_vals is None else np.asarray(max_vals, np.float32)
    if self.placement == Placement.BASELINE_SCALED:
      hidden_units *= num_experts
    self.hidden_units = hidden_units

    moe_positions = {
        Placement.MIDDLE: {num_hidden_layers - 1},
        Placement.FINAL: {num_hidden_layers},
        Placement.ALL: set(range(num_hidden_layers + 1)),
    }.get(self.placement, set())
    self.big_moe = None
    self.stack = []  # (name, layer, is_moe) in order; the last is the output.
    if self.placement in (Placement.BIG, Placement.SEPARATE):
      router = moe.Router.HARDCODED if self.placement == Placement.SEPARATE else None
      self.big_moe = self._make_moe(
          'big',
          output_units=num_actions,
          expert_hidden_units=(hidden_units,) * num_hidden_layers,
          router=router,
      )
      self._check_hardcoded(self.big_moe)
    else:
      for i in range(num_hidden_layers + 1):
        is_output = i == num_hidden_layers
        layer_name = 'output' if is_output else f'hidden_{i}'
        units = num_actions if is_output else hidden_units
        if i in moe_positions:
          layer = self._make_moe(
              layer_name,
              output_units=units if is_output else units // num_tokens,
              expert_hidden_units=(expert_hidden_units,),
          )
          self._check_hardcoded(layer)
          if not is_output and units % num_tokens:
            raise ValueError(
                f'ClassicControlQNetwork.num_tokens={num_tokens} does not divide '
                f'the width {units} of layer {layer_name}.'
            )
        else:
          layer = tf.keras.layers.Dense(
              units, activation=None if is_output else tf.nn.relu, name=layer_name
          )
        self.stack.append((layer_name, layer, i in moe_positions))
    logging.info(
        'ClassicControlQNetwork %s: placement=%s num_experts=%d num_tokens=%d',
        name,
        self.placement.value,
        num_experts,
        num_tokens,
    )

  def moe_layers(self):
    """The network's MoE layers, in order."""
    if self.big_moe is not None:
      return [self.big_moe]
    return [layer for _, layer, is_moe in self.stack if is_moe]

  def recyclable_layers(self):
    """The hidden layers ReDo can recycle, as `recycling.RecyclableLayer`s.

    Dense hidden layers and every expert's hidden layers; a hidden MoE's
    output (e.g. Middle's 'hidden_1') too, when there is one token per sample.
    Call after the network is built.
    """
    layers = []
    for layer in self.moe_layers():
      experts = layer.experts
      for e in range(layer.num_experts):
        for j in range(len(experts.kernels) - 1):
          layers.append(recycling.RecyclableLayer(
              name=f'{layer.name}/expert_{e}/hidden_{j}',
              units=int(experts.kernels[j][e].shape[1]),
              incoming=[(experts.kernels[j][e], 1)],
              biases=[experts.biases[j][e]],
              outgoing=[(experts.kernels[j + 1][e], 0)],
          ))
    if self.big_moe is not None or self.num_tokens != 1:
      return layers
    for (name, layer, is_moe), (_, reader, reader_is_moe) in zip(
        self.stack[:-1], self.stack[1:]
    ):
      if is_moe:
        incoming = [(k, 1) for k in layer.experts.kernels[-1]]
        biases = list(layer.experts.biases[-1])
      else:
        incoming, biases = [(layer.kernel, 1)], [layer.bias]
      if reader_is_moe:
        outgoing = [(k, 0) for k in reader.experts.kernels[0]]
        outgoing += [(w, 0) for w in reader.router_weights()]
      else:
        outgoing = [(reader.kernel, 0)]
      layers.append(recycling.RecyclableLayer(
          name=name, units=self.hidden_units, incoming=incoming,
          biases=biases, outgoing=outgoing,
      ))
    return layers

  def _make_moe(self, layer_name, output_units, expert_hidden_units, router=None):
    kwargs = {} if router is None else {'router': router}
    return moe.MoE(
        num_experts=self.num_experts,
        output_units=output_units,
        expert_hidden_units=expert_hidden_units,
        name=layer_name,
        **kwargs,
    )

  def _check_hardcoded(self, layer):
    if layer.router == moe.Router.HARDCODED and self.num_experts < self.num_tasks:
      raise ValueError(
          f'hardcoded routing with num_experts={self.num_experts} < '
          f'num_tasks={self.num_tasks} would make tasks share experts. Fix: set '
          f'ClassicControlQNetwork.num_experts >= {self.num_tasks}.'
      )

  def _tokens(self, x):
    width = int(x.shape[-1])
    if width % self.num_tokens:
      raise ValueError(
          f'ClassicControlQNetwork.num_tokens={self.num_tokens} does not divide '
          f'the input width {width}.'
      )
    return tf.reshape(x, [-1, self.num_tokens, width // self.num_tokens])

  def call(self, state, training=None):
    """state [batch, D(+1), stack] -> QNetworkOutput."""
    x = tf.cast(state, tf.float32)
    x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
    x, task_ids = observation.split_task_id(x, self.task_id_in_observation)
    if self.min_vals is not None:
      x = observation.rescale_features(x, self.min_vals, self.max_vals)
    aux_losses, router_probs, activations = {}, {}, {}

    def run_moe(layer, inputs):
      out, info = layer(self._tokens(inputs), task_ids=task_ids, training=training)
      aux_losses.update(info.aux_losses)
      router_probs[layer.name] = info.router_probs
      activations.update(info.expert_activations)
      return out

    if self.big_moe is not None:
      q_values = tf.reduce_mean(run_moe(self.big_moe, x), axis=1)
    else:
      for layer_name, layer, is_moe in self.stack[:-1]:
        if is_moe:
          x = tf.nn.relu(tf.reshape(run_moe(layer, x), [-1, self.hidden_units]))
        else:
          x = layer(x)
        activations[layer_name] = x
      _, output_layer, is_moe = self.stack[-1]
      if is_moe:
        q_values = tf.reduce_mean(run_moe(output_layer, x), axis=1)
      else:
        q_values = output_layer(x)
    return types.make_output(q_values, aux_losses, router_probs, activations)
