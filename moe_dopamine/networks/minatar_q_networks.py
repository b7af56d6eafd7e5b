"""MinAtar Q-networks with an MoE in a chosen place.

The baseline is MinAtar's example DQN network (Young & Tian 2019): the
observation's screen [10, 10, C] (`observation.screen_of`), Conv(16, 3 x 3,
stride 1, 'same' padding as Dopamine's MinAtar network, relu), flatten,
Dense(128, relu), Dense(num_actions). The conv is the torso; a placement says
what becomes an MoE (the same names as the classic-control network,
q_networks.Placement):

| placement       | MoE                                                         |
|-----------------|-------------------------------------------------------------|
| baseline        | none                                                        |
| middle          | the Dense(128) after the torso; its tokens are the torso's  |
|                 | output, cut by `tokenization`                               |
| final           | the output layer (one token: the 128 hidden features)       |
| all             | both: middle's MoE, then an output MoE on its flattened     |
|                 | output (one token)                                          |
| big             | one MoE whose experts are whole baseline networks (conv,    |
|                 | dense, output) on the whole observation (one token)         |
| baseline_scaled | none; the hidden width x num_experts (a parameter control)  |
| separate        | big with hardcoded routing and one expert per task          |

Tokenization of the torso's output h [10, 10, 16] (one gin binding,
`MinAtarQNetwork.tokenization`; Dopamine's labs/moes routing types):
- 'per_pixel' (PerConv): one token per spatial position, 100 tokens of 16
  channels;
- 'per_feature_map' (PerFeat): one token per channel, 16 tokens of 100
  values;
- 'per_sample' (PerSamp): one token, the 1600 flattened values.
As in Dopamine's labs/moes networks, a hidden MoE's experts are
Dense(expert_hidden_units, relu) then Dense back to the token size, and the
MoE's output tokens are flattened (no relu unless `relu_after_moe`) into the
layer that follows. The tokenization applies to the MoE that reads the torso
(middle, all); final, big and separate route one token per sample whatever
it is set to.

The task id is the observation's last element (`moe_dopamine.observation`);
hardcoded routing reads it. What else of it the network reads is
`MinAtarQNetwork.task_id_input` (q_networks.TaskIdInput, as for classic
control), with o = one_hot(task id, num_tasks):
- 'none' (default): nothing.
- 'network': o as num_tasks constant input planes, the screen
  [10, 10, C] becoming [10, 10, C + num_tasks] with plane C + t equal to o_t
  at every position. The conv then computes
  relu(conv(screen, K_s) + conv(planes, K_o) + b), so the torso, and all
  that follows, is conditioned on the task (k k num_tasks filters more
  weights; Big's every expert and its router read the planes too). Planes
  are the standard way to give a conv net a per-sample scalar (AlphaGo's
  colour-to-play plane, CoordConv); appending o to the flattened feature maps
  instead would condition only the layers after the torso, and not Big's
  conv. Near the border the 'same' zero padding leaves part of a plane's
  patch empty, so a plane also marks the border, as a zero-padded conv
  does anyway.
- 'router': o joins every MoE layer's router input only, [token, o] for each
  of the layer's tokens (middle: each of the 100 per-pixel tokens); the
  experts read the tokens alone (moe.py). Refused without a learned router.

Diagnostics: the torso's feature maps are the hidden layer 'conv_0', each
of its 16 channels one neuron (metrics.dormant averages over the batch and
the positions); a big expert's conv is its hidden layer 0. ReDo recycles a
dormant filter too (`recyclable_layers`): fresh conv weights, a zero bias,
and zero outgoing weights at each of the 100 positions it feeds.

Parameter-matched control: `parameter_matched_to=<placement>` (with placement
'baseline') gives the baseline the hidden width whose trainable parameter
count is closest to that placement's at the same settings.
"""

import enum

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.environments import minatar_games
from moe_dopamine.metrics import names
from moe_dopamine.networks import moe
from moe_dopamine.networks import q_networks
from moe_dopamine.networks import types

Placement = q_networks.Placement


@gin.constants_from_enum(module='moe_dopamine')
class Tokenization(enum.Enum):
  """How the torso's feature maps [h, w, c] become an MoE's tokens."""
  PER_PIXEL = 'per_pixel'  # PerConv: h * w tokens of c channels.
  PER_FEATURE_MAP = 'per_feature_map'  # PerFeat: c tokens of h * w values.
  PER_SAMPLE = 'per_sample'  # PerSamp: one token of h * w * c values.


def tokens_of(feature_maps, tokenization):
  """[batch, h, w, c] feature maps -> [batch, m, d] tokens (see Tokenization)."""
  h, w, c = (int(d) for d in feature_maps.shape[1:])
  if tokenization == Tokenization.PER_PIXEL:
    return tf.reshape(feature_maps, [-1, h * w, c])
  if tokenization == Tokenization.PER_FEATURE_MAP:
    return tf.transpose(tf.reshape(feature_maps, [-1, h * w, c]), [0, 2, 1])
  return tf.reshape(feature_maps, [-1, 1, h * w * c])


class ConvExperts(moe.Experts):
  """n independent whole MinAtar networks on flat screens [h * w * c]:
  conv (filters, k x k, 'same', stride 1, relu), flatten, the hidden Dense
  layers (relu), then output_units.

  Every layer's kernel is a matrix: the conv's, `kernels[0][e]`, is
  [k * k * c, filters], a Conv2D kernel [k, k, c, filters] flattened (rows
  ordered by kernel row, column, channel) and initialised as Keras
  initialises that kernel; it is reshaped back to run as a convolution.
  Hidden layer 0 is the feature maps [s, h * w, filters].
  """

  def __init__(self, num_experts, screen_shape, filters, kernel_size, hidden_units,
               output_units, **kwargs):
    super().__init__(num_experts, hidden_units, output_units, **kwargs)
    self.screen_shape = tuple(int(d) for d in screen_shape)
    self.filters = filters
    self.kernel_size = kernel_size

  def layer_shapes(self, input_width):
    h, w, c = self.screen_shape
    if input_width != h * w * c:
      raise ValueError(
          f'ConvExperts on screens {self.screen_shape} take {h * w * c} features, '
          f'got {input_width}.'
      )
    k = self.kernel_size
    widths = (h * w * self.filters,) + self.hidden_units + (self.output_units,)
    return [(k * k * c, self.filters)] + list(zip(widths[:-1], widths[1:]))

  def kernel_initializer(self, layer):
    if layer:
      return super().kernel_initializer(layer)
    k, c = self.kernel_size, self.screen_shape[-1]
    glorot = tf.keras.initializers.GlorotUniform()

    def conv_kernel(shape, dtype=None):
      # Conv2D's Glorot fans: k*k*c in, k*k*filters out.
      return tf.reshape(glorot([k, k, c, self.filters], dtype), shape)

    return conv_kernel

  def _feature_maps(self, flat, kernel, bias, nonempty=False):
    """flat [s, h*w*c] -> relu(conv) [s, h*w, f] for a kernel [k*k*c, f]: a
    convolution, not a matmul over extracted patches (TensorFlow's patch
    extraction on the CPU costs several times the convolution).
    TensorFlow's oneDNN convolution gradients fail on an empty batch, which a
    routed expert can get: unless `nonempty`, one zero screen is appended and
    its maps dropped (with a split, whose gradient is a concat: a strided
    slice's gradient op costs several times more)."""
    h, w, c = self.screen_shape
    k, filters = self.kernel_size, int(kernel.shape[-1])
    screens = tf.reshape(flat, [-1, h, w, c])
    if not nonempty:
      screens = tf.concat([screens, tf.zeros([1, h, w, c], screens.dtype)], 0)
    maps = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(
        screens, tf.reshape(kernel, [k, k, c, filters]), strides=1, padding='SAME'),
        bias))
    if not nonempty:
      maps, _ = tf.split(maps, [-1, 1], axis=0)
    return tf.reshape(maps, [-1, h * w, filters])

  def _rest(self, e, maps):
    """Expert e's layers after the conv, on its maps [s, h*w, filters]."""
    flat = tf.reshape(maps, [-1, int(maps.shape[1]) * self.filters])
    return self.dense_one(e, flat, 1, [maps])

  def call_groups(self, groups, nonempty=False):
    outputs, hiddens = [], []
    for e, x in enumerate(groups):
      out, expert_hiddens = self._rest(
          e, self._feature_maps(x, self.kernels[0][e], self.biases[0][e], nonempty))
      outputs.append(out)
      hiddens.append(expert_hiddens)
    return outputs, hiddens

  def call_shared(self, x):
    """Every expert on the same screens: one convolution with every expert's
    filters side by side (the same maps as one convolution each), then each
    expert's own layers on its share of the channels."""
    kernel = tf.concat(self.kernels[0], axis=1)  # [k*k*c, n * filters]
    bias = tf.concat(self.biases[0], axis=0)
    maps = tf.split(self._feature_maps(x, kernel, bias, nonempty=True), self.num_experts,
                    axis=-1)
    outputs, hiddens = [], []
    for e, expert_maps in enumerate(maps):
      out, expert_hiddens = self._rest(e, expert_maps)
      outputs.append(out)
      hiddens.append(expert_hiddens)
    return outputs, hiddens


@gin.configurable
class MinAtarQNetwork(q_networks.PlacementQNetwork):
  """MinAtar's DQN network with an MoE placement (see the module docstring)."""

  def __init__(
      self,
      num_actions,
      placement=Placement.BASELINE,
      tokenization=Tokenization.PER_PIXEL,
      num_experts=4,
      filters=16,
      kernel_size=3,
      hidden_units=128,
      expert_hidden_units=128,
      relu_after_moe=False,
      parameter_matched_to=None,
      num_tasks=1,
      task_id_in_observation=False,
      task_id_input=q_networks.TaskIdInput.NONE,
      name=None,
  ):
    """Creates the network (its layers are made when it first sees a state).

    Args:
      num_actions: int, number of Q-values.
      placement: Placement or its name (see the module docstring).
      tokenization: Tokenization or its name: 'per_pixel', 'per_feature_map'
        or 'per_sample', the tokens of the MoE that reads the torso.
      num_experts: int >= 1, experts per MoE layer (separate: forced to
        num_tasks).
      filters: int, feature maps of the conv torso (16).
      kernel_size: int, the conv's kernel is kernel_size x kernel_size (3).
      hidden_units: int, width of the dense hidden layer (128).
      expert_hidden_units: int, hidden width of a layer-replacing expert.
      relu_after_moe: bool, apply relu to a hidden MoE's output.
      parameter_matched_to: None, or a Placement (or its name): with
        placement 'baseline', the hidden width becomes the one whose
        parameter count is closest to that placement's.
      num_tasks: int, number of tasks the observations come from.
      task_id_in_observation: bool, the observation's last feature is the
        task id.
      task_id_input: TaskIdInput or its name: 'none', 'network' (a one-hot of
        the task id as constant input planes of the screen) or 'router' (to
        every router's input only); see the module docstring.
      name: str, Keras name; Dopamine passes 'Online' and 'Target'.
    """
    super().__init__(name=name)
    prefix = 'MinAtarQNetwork.'
    self._check_placement(prefix, placement)
    self.tokenization = config.parse_choice(
        Tokenization, tokenization, prefix + 'tokenization'
    )
    self._check_experts(num_experts, num_tasks)
    self.filters = config.check_int(filters, prefix + 'filters', minimum=1)
    self.kernel_size = config.check_int(kernel_size, prefix + 'kernel_size', minimum=1)
    self._check_widths(
        num_actions, hidden_units, expert_hidden_units, relu_after_moe,
        parameter_matched_to, task_id_in_observation,
    )
    self._check_task_id_input(task_id_input)
    self.screen_shape = None  # [h, w, C], from the first state seen.
    # [h, w, C(+num_tasks)]: the screen and the task planes ('network').
    self.input_screen_shape = None
    self.conv = None
    self.hidden = None  # Dense or MoE after the torso (None for big).
    self.output_layer = None  # Dense or MoE.
    self._constructor_args = dict(
        self._shared_constructor_args(),
        tokenization=self.tokenization,
        filters=self.filters,
        kernel_size=self.kernel_size,
    )
    logging.info(
        'MinAtarQNetwork %s: placement=%s tokenization=%s num_experts=%d '
        'filters=%d kernel_size=%d hidden_units=%d expert_hidden_units=%d '
        'relu_after_moe=%s parameter_matched_to=%s task_id_input=%s',
        name, self.placement.value, self.tokenization.value, self.num_experts,
        self.filters, self.kernel_size, self.hidden_units,
        self.expert_hidden_units, self.relu_after_moe, self._matched_to_name,
        self.task_id_input.value,
    )

  def ignored_bindings(self):
    ignored = super().ignored_bindings()
    if not self.hidden_is_moe and self.parameter_matched_to is None:
      ignored['MinAtarQNetwork.tokenization'] = (
          f"placement '{self.placement.value}' has no MoE reading the conv "
          "output (tokenization applies to 'middle' and 'all')")
    return ignored

  @property
  def hidden_is_moe(self):
    return self.placement in (Placement.MIDDLE, Placement.ALL)

  @property
  def output_is_moe(self):
    return self.placement in (Placement.FINAL, Placement.ALL)

  def _screen_shape(self, input_shape):
    width = self._feature_width(input_shape)
    h, w = minatar_games.SCREEN
    if width % (h * w):
      raise config.ConfigError(
          f'MinAtarQNetwork needs flattened {h} x {w} x C screens; got {width} '
          'features. Is the environment a MinAtar MultiTaskEnvironment?'
      )
    return (h, w, width // (h * w))

  def build(self, input_shape):
    """Finds the screen shape, then makes the layers (see
    PlacementQNetwork.build)."""
    self.screen_shape = self._screen_shape(input_shape)
    h, w, c = self.screen_shape
    self.input_screen_shape = (h, w, c + self.task_input_units)
    super().build(input_shape)

  def _matched_width(self, target, input_shape):
    del input_shape  # Read by build into input_screen_shape.
    return matched_width(
        target, self.input_screen_shape, self.filters, self.kernel_size,
        self.num_actions,
    )

  def _make_layers(self):
    h, w, _ = self.screen_shape
    if self.is_big:
      experts = ConvExperts(
          self.num_experts, self.input_screen_shape, self.filters, self.kernel_size,
          (self.hidden_units,), self.num_actions, name='experts',
      )
      self.big_moe = self._make_big_moe((self.hidden_units,), experts)
      return
    self.conv = tf.keras.layers.Conv2D(
        self.filters, self.kernel_size, strides=1, padding='same',
        activation=tf.nn.relu, name='conv_0',
    )
    if self.hidden_is_moe:
      token_size = {
          Tokenization.PER_PIXEL: self.filters,
          Tokenization.PER_FEATURE_MAP: h * w,
          Tokenization.PER_SAMPLE: h * w * self.filters,
      }[self.tokenization]
      self.hidden = self._make_moe('hidden_0', token_size, (self.expert_hidden_units,))
    else:
      self.hidden = tf.keras.layers.Dense(
          self.hidden_units, activation=tf.nn.relu, name='hidden_0'
      )
    if self.output_is_moe:
      self.output_layer = self._make_moe(
          'output', self.num_actions, (self.expert_hidden_units,)
      )
    else:
      self.output_layer = tf.keras.layers.Dense(self.num_actions, name='output')

  def _layers_in_order(self):
    return [self.hidden, self.output_layer]

  def _first_recyclable_expert_layer(self, experts):
    # A conv expert's layer 0 is its feature maps: _conv_recyclable_layers.
    return 1 if isinstance(experts, ConvExperts) else 0

  def _conv_recyclable_layers(self):
    """The feature maps as `types.RecyclableLayer`s: the torso's conv_0, or
    each big expert's hidden layer 0. A filter's outgoing weights are the
    rows of its channel at every position of the flattened maps that a dense
    kernel reads, or its channel's rows of a per-pixel MoE's experts and
    router. Per-feature-map tokens make each filter a token, with no weights
    of its own to reset: conv_0 is left out there."""
    h, w, c = self.input_screen_shape
    positions, k = h * w, self.kernel_size
    if self.big_moe is not None:
      experts = self.big_moe.experts
      return [types.RecyclableLayer(
          name=names.expert_hidden(self.big_moe.name, e, 0),
          units=self.filters,
          incoming=[(experts.kernels[0][e], 1, (k * k * c, k * k * self.filters))],
          biases=[experts.biases[0][e]],
          outgoing=[(experts.kernels[1][e], 0, positions)],
      ) for e in range(self.big_moe.num_experts)]
    if not self.hidden_is_moe:
      outgoing = [(self.hidden.kernel, 0, positions)]
    elif self.tokenization == Tokenization.PER_PIXEL:
      outgoing = [(kernel, 0) for kernel in self.hidden.experts.kernels[0]]
      outgoing += [(weights, 0) for weights in self.hidden.router_weights()]
    elif self.tokenization == Tokenization.PER_SAMPLE:
      outgoing = [(kernel, 0, positions) for kernel in self.hidden.experts.kernels[0]]
      outgoing += [(weights, 0, positions) for weights in self.hidden.router_weights()]
    else:
      return []
    return [types.RecyclableLayer(
        name='conv_0', units=self.filters, incoming=[(self.conv.kernel, 3)],
        biases=[self.conv.bias], outgoing=outgoing,
    )]

  def recyclable_layers(self):
    """The hidden layers ReDo can recycle, as `types.RecyclableLayer`s.

    The conv's feature maps (each filter one neuron; see the module
    docstring), every expert's hidden layers, the Dense hidden layer after
    the torso, and a hidden MoE's output when it is one token per sample
    ('per_sample') and a ReLU follows it (`relu_after_moe`). Call after the
    network is built.
    """
    layers = self._conv_recyclable_layers() + self._expert_recyclable_layers()
    if self.big_moe is not None:
      return layers
    if self.hidden_is_moe:
      if self.tokenization != Tokenization.PER_SAMPLE or not self.relu_after_moe:
        return layers
      units = int(self.hidden.experts.kernels[-1][0].shape[1])
    else:
      units = self.hidden_units
    layers.append(q_networks.recyclable_output(
        'hidden_0', units, self.hidden, self.output_layer
    ))
    return layers

  def _network_input(self, features, task_one_hot):
    """Features [batch, h*w*C] (a state [batch, h*w*C(+1), stack] in
    MultiTaskEnvironment's MinAtar layout, without its task id) -> the
    flattened screens the network reads: the features, or with the task
    one-hot [batch, num_tasks] ('network') the screens with the task planes,
    [batch, h*w*(C + num_tasks)]."""
    if task_one_hot is None:
      return features
    h, w, _ = self.screen_shape
    planes = tf.tile(task_one_hot[:, None, None, :], [1, h, w, 1])
    screens = tf.concat([observation.screen_of(features, self.screen_shape), planes], -1)
    return tf.reshape(screens, [-1, int(np.prod(self.input_screen_shape))])

  def _q_values(self, x, run_moe, activations):
    """Flattened screens [batch, h*w*C'] (`_network_input`) -> Q-values;
    `run_moe(layer, tokens)` runs an MoE and keeps its extras, `activations`
    keeps the hidden layers'."""
    if self.big_moe is not None:
      return tf.reduce_mean(run_moe(self.big_moe, x[:, None, :]), axis=1)
    maps = self.conv(observation.screen_of(x, self.input_screen_shape))
    activations['conv_0'] = maps
    if self.hidden_is_moe:
      out = run_moe(self.hidden, tokens_of(maps, self.tokenization))
      x = tf.reshape(out, [-1, int(np.prod(out.shape[1:]))])
      if self.relu_after_moe:
        x = tf.nn.relu(x)
    else:
      x = self.hidden(tf.reshape(maps, [-1, int(np.prod(maps.shape[1:]))]))
    # A hidden MoE's linear output is not a neuron (see q_networks).
    if not self.hidden_is_moe or self.relu_after_moe:
      activations['hidden_0'] = x
    if self.output_is_moe:
      return tf.reduce_mean(run_moe(self.output_layer, x[:, None, :]), axis=1)
    return self.output_layer(x)


def baseline_parameters(width, screen_shape, filters, kernel_size, num_actions):
  """Parameters of the baseline with hidden width `width`:
  conv (k k c f + f) + dense (h w f width + width) + output (width A + A)."""
  h, w, c = screen_shape
  conv = kernel_size * kernel_size * c * filters + filters
  return conv + (h * w * filters + 1 + num_actions) * width + num_actions


def matched_width(target, screen_shape, filters, kernel_size, num_actions):
  """The hidden width whose baseline parameter count is closest to target
  (the count is linear in the width)."""
  def count(width):
    return baseline_parameters(width, screen_shape, filters, kernel_size, num_actions)

  slope = count(1) - count(0)
  return q_networks.closest_width(count, target, (target - count(0)) / slope)
