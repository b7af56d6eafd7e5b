"""A faster gradient for TensorFlow's MatMul on CPU: the same values.

For y = x W (x [M, K], W [K, N]) TensorFlow computes the input gradient as
dx = dy W^T, a product whose right operand is the transposed kernel. On CPU
that is the slow layout for TensorFlow's matrix kernels: measured with
`benchmarks/train_step_flops.py`, dy W^T runs at about half the rate of the
same product written with the kernel on the left, dx = (W dy^T)^T, at
M = 128 rows (a batch), and at about a fifth at M = 16 to 32 (the rows a
TopK expert gets of a batch). Within `faster_matmul_gradients()`, every
MatMul op created of a kernel with at least LARGE_KERNEL entries computes
its input gradient that way; the kernel gradient x^T dy is TensorFlow's
own. Smaller kernels (MinAtar's per-pixel experts, routers, output layers),
where the extra transpose costs more than it saves, and transposed products
(transpose_a or transpose_b set) keep TensorFlow's formulas.

Graph mode only (Dopamine's TF agents build their networks in a graph):
the override is recorded on each op when it is created.
"""

import contextlib

import tensorflow as tf

GRADIENT_NAME = 'MoEDopamineMatMul'
# Entries of a kernel from which its input gradient is computed as (W dy^T)^T
# (a 256 x 256 kernel; the layers of 512 units have 262,144).
LARGE_KERNEL = 2 ** 16


@tf.RegisterGradient(GRADIENT_NAME)
def _matmul_gradient(op, dy):
  """Gradients of MatMul with respect to both inputs."""
  x, kernel = op.inputs
  transpose_a, transpose_b = op.get_attr('transpose_a'), op.get_attr('transpose_b')
  if not transpose_a and not transpose_b and _entries(kernel) >= LARGE_KERNEL:
    # dx = dy W^T, computed as (W dy^T)^T: the kernel is the left operand.
    return (tf.transpose(tf.matmul(kernel, dy, transpose_b=True)),
            tf.matmul(x, dy, transpose_a=True))
  if not transpose_a and not transpose_b:
    return tf.matmul(dy, kernel, transpose_b=True), tf.matmul(x, dy, transpose_a=True)
  if not transpose_a and transpose_b:  # y = x W^T.
    return tf.matmul(dy, kernel), tf.matmul(dy, x, transpose_a=True)
  if transpose_a and not transpose_b:  # y = x^T W.
    return tf.matmul(kernel, dy, transpose_b=True), tf.matmul(x, dy)
  # y = x^T W^T.
  return (tf.matmul(kernel, dy, transpose_a=True, transpose_b=True),
          tf.matmul(dy, x, transpose_a=True, transpose_b=True))


def _entries(tensor):
  """Entries of a tensor of known static shape (0 if unknown)."""
  shape = tensor.shape
  if shape.rank is None or not shape.is_fully_defined():
    return 0
  return shape.num_elements()


def faster_matmul_gradients():
  """A context in which the MatMul ops created take `_matmul_gradient`
  (a no-op outside graph mode)."""
  if tf.executing_eagerly():
    return contextlib.nullcontext()
  return tf.compat.v1.get_default_graph().gradient_override_map(
      {'MatMul': GRADIENT_NAME})
