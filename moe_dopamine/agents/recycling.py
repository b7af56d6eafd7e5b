"""ReDo recycling (Sokar et al., 2023) as graph ops over any described network.

A network describes each hidden layer whose neurons can be recycled as a
`types.RecyclableLayer`. Recycling the neurons in a mask
- re-initializes their incoming weights with a fresh Glorot-uniform draw (a
  stateful random op: every recycling draws new values; with the run's graph
  seed the sequence of draws is repeatable),
- zeroes their biases and their outgoing weights,
- zeroes the optimizer's slots (Adam's moments) of all of those entries.

One variable can play several roles (an expert's first kernel is the
incoming kernel of the expert's hidden layer and the outgoing kernel of the
layer before the MoE), so all edits of a variable are composed into a single
assign: separate assigns of one variable in one step would race, and the last
one to run would undo the others.
"""

import collections

import numpy as np
import tensorflow as tf


def _along(mask, variable, axis):
  """The [units] mask broadcast along `axis` of `variable`."""
  shape = [1] * variable.shape.rank
  shape[axis] = -1
  return tf.broadcast_to(tf.reshape(mask, shape), variable.shape)


def _glorot_uniform(shape):
  """A fresh Glorot-uniform draw of a kernel's shape [fan_in, fan_out]."""
  fan_in, fan_out = int(shape[0]), int(shape[-1])
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.random.uniform(shape, -limit, limit)


class Recycler:
  """Builds, once, the ops that recycle masked neurons of each layer."""

  def __init__(self, layers, optimizer):
    self.layers = list(layers)
    self.mask_phs = {}
    # variable -> [(mask broadcast to its shape, replacement or None = zero)].
    edits = collections.defaultdict(list)
    variables = {}
    for i, layer in enumerate(self.layers):
      mask = tf.compat.v1.placeholder(tf.bool, [layer.units], f'redo_mask_{i}')
      self.mask_phs[layer.name] = mask
      for variable, axis in layer.incoming:
        edits[variable.ref()].append((_along(mask, variable, axis), 'fresh'))
        variables[variable.ref()] = variable
      for variable in layer.biases:
        edits[variable.ref()].append((mask, 'zero'))
        variables[variable.ref()] = variable
      for variable, axis in layer.outgoing:
        edits[variable.ref()].append((_along(mask, variable, axis), 'zero'))
        variables[variable.ref()] = variable
    ops = []
    for ref, variable_edits in edits.items():
      variable = variables[ref]
      value = variable.read_value() if hasattr(variable, 'read_value') else variable
      for mask, kind in variable_edits:
        replacement = (
            _glorot_uniform(variable.shape) if kind == 'fresh' else tf.zeros_like(value)
        )
        value = tf.where(mask, replacement, value)
      ops.append(variable.assign(value))
      touched = tf.reduce_any([tf.reshape(m, [-1]) for m, _ in variable_edits], axis=0)
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
