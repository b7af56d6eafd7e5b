"""ReDo recycling (Sokar et al., 2023) as graph ops over any described network.

A network describes each hidden layer whose neurons can be recycled as a
`types.RecyclableLayer`. Recycling the neurons in a mask
- re-initializes their incoming weights with a fresh Glorot-uniform draw (a
  stateful random op: every recycling draws new values; with the run's graph
  seed the sequence of draws is repeatable),
- zeroes their biases and their outgoing weights,
- zeroes the optimizer's slots (Adam's moments) of all of those entries.

A neuron may be a conv filter: its incoming kernel is the conv's (a
[k, k, c, filters] kernel along axis 3, drawn with Keras' conv fans, or a
flattened one with its fans given), and a dense kernel reading the flattened
feature maps [positions * filters] holds its outgoing weights once per
position (an outgoing entry (kernel, axis, positions)).

One variable can play several roles (an expert's first kernel is the
incoming kernel of the expert's hidden layer and the outgoing kernel of the
layer before the MoE), so all edits of a variable are composed into a single
assign: separate assigns of one variable in one step would race, and the last
one to run would undo the others.
"""

import collections

import numpy as np
import tensorflow as tf


def _along(mask, variable, axis, tiles=1):
  """The [units] mask broadcast along `axis` of `variable`, repeated `tiles`
  times along it first (entry t * units + u of the axis belongs to unit u:
  a flattened [positions, units] feature map read by a dense kernel)."""
  if tiles > 1:
    mask = tf.tile(mask, [tiles])
  shape = [1] * variable.shape.rank
  shape[axis] = -1
  return tf.broadcast_to(tf.reshape(mask, shape), variable.shape)


def glorot_fans(shape):
  """Keras' (fan_in, fan_out) of a kernel: [in, out], or a conv kernel
  [k, ..., k, in, out] whose fans count the receptive field too."""
  receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
  return int(shape[-2]) * receptive, int(shape[-1]) * receptive


def _glorot_uniform(shape, fans=None):
  """A fresh Glorot-uniform draw of a kernel's shape (fans: glorot_fans of
  the shape unless given)."""
  fan_in, fan_out = fans or glorot_fans(shape)
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.random.uniform(shape, -limit, limit)


def _parts(entry, default):
  """(variable, axis, extra) of a (variable, axis[, extra]) entry."""
  return (entry[0], entry[1], entry[2] if len(entry) > 2 else default)


class Recycler:
  """Builds, once, the ops that recycle masked neurons of each layer."""

  def __init__(self, layers, optimizer):
    self.layers = list(layers)
    self.mask_phs = {}
    # variable -> [(mask broadcast to its shape, 'fresh' or 'zero', Glorot fans or None)].
    edits = collections.defaultdict(list)
    variables = {}
    for i, layer in enumerate(self.layers):
      mask = tf.compat.v1.placeholder(tf.bool, [layer.units], f'redo_mask_{i}')
      self.mask_phs[layer.name] = mask
      for entry in layer.incoming:
        variable, axis, fans = _parts(entry, None)
        edits[variable.ref()].append((_along(mask, variable, axis), 'fresh', fans))
        variables[variable.ref()] = variable
      for variable in layer.biases:
        edits[variable.ref()].append((mask, 'zero', None))
        variables[variable.ref()] = variable
      for entry in layer.outgoing:
        variable, axis, tiles = _parts(entry, 1)
        edits[variable.ref()].append((_along(mask, variable, axis, tiles), 'zero', None))
        variables[variable.ref()] = variable
    ops = []
    for ref, variable_edits in edits.items():
      variable = variables[ref]
      value = variable.read_value() if hasattr(variable, 'read_value') else variable
      for mask, kind, fans in variable_edits:
        replacement = (
            _glorot_uniform(variable.shape, fans) if kind == 'fresh' else tf.zeros_like(value)
        )
        value = tf.where(mask, replacement, value)
      ops.append(variable.assign(value))
      touched = tf.reduce_any([tf.reshape(m, [-1]) for m, _, _ in variable_edits], axis=0)
      touched = tf.reshape(touched, variable.shape)
      for slot_name in optimizer.get_slot_names():
        slot = optimizer.get_slot(variable, slot_name)
        if slot is not None:
          ops.append(slot.assign(tf.where(touched, tf.zeros_like(slot), slot)))
    self.op = tf.group(*ops)

  def recycle(self, sess, masks):
    """Runs the ops; masks: {layer name: bool [units]} (missing = none)."""
    feed = {
        ph: masks.get(name, np.zeros(ph.shape[0], bool))
        for name, ph in self.mask_phs.items()
    }
    sess.run(self.op, feed)
