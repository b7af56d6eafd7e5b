"""ReDo recycling (Sokar et al., 2023) as graph ops over any described network.

A network describes each hidden layer whose neurons can be recycled as a
`RecyclableLayer`: the activation's name, and the variables that feed a
neuron (incoming kernels with the neuron's axis, biases) and that read it
(outgoing kernels with the neuron's axis). Recycling the neurons in a mask
re-initializes their incoming weights, zeroes their biases and outgoing
weights, and zeroes the optimizer's slots (Adam's moments) of all of those.
"""

import collections

import tensorflow as tf

RecyclableLayer = collections.namedtuple(
    'RecyclableLayer', ['name', 'units', 'incoming', 'biases', 'outgoing']
)


def _along(mask, variable, axis):
  """The [units] mask broadcast along `axis` of `variable`."""
  shape = [1] * variable.shape.rank
  shape[axis] = -1
  return tf.broadcast_to(tf.reshape(mask, shape), variable.shape)


class Recycler:
  """Builds, once, the ops that recycle masked neurons of each layer."""

  def __init__(self, layers, optimizer):
    self.layers = list(layers)
    self.mask_phs = {}
    ops = []
    for layer in self.layers:
      mask = tf.compat.v1.placeholder(tf.bool, [layer.units], f'redo_mask_{len(self.mask_phs)}')
      self.mask_phs[layer.name] = mask
      targets = []
      for variable, axis in layer.incoming:
        fresh = tf.keras.initializers.GlorotUniform()(variable.shape)
        ops.append(variable.assign(tf.where(_along(mask, variable, axis), fresh, variable)))
        targets.append((variable, axis))
      for variable in layer.biases:
        ops.append(variable.assign(tf.where(mask, tf.zeros_like(variable), variable)))
        targets.append((variable, 0))
      for variable, axis in layer.outgoing:
        zeros = tf.zeros_like(variable)
        ops.append(variable.assign(tf.where(_along(mask, variable, axis), zeros, variable)))
        targets.append((variable, axis))
      for variable, axis in targets:
        for slot_name in optimizer.get_slot_names():
          slot = optimizer.get_slot(variable, slot_name)
          if slot is not None:
            ops.append(
                slot.assign(tf.where(_along(mask, slot, axis), tf.zeros_like(slot), slot))
            )
    self.op = tf.group(*ops)

  def recycle(self, sess, masks):
    """Runs the ops; masks: {layer name: bool [units]} (missing = none)."""
    feed = {
        ph: masks.get(name, [False] * ph.shape[0])
        for name, ph in self.mask_phs.items()
    }
    sess.run(self.op, feed)
