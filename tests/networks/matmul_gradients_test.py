"""matmul_gradients' input gradient against TensorFlow's, in every layout."""

import contextlib

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.networks import matmul_gradients
from moe_dopamine.networks import q_networks
from tests.networks import numpy_networks


def gradients(transpose_a, transpose_b, faster, rows=24, size=256):
  """d sum(y * r) / d (x, W) of y = matmul(x, W) with the given layout."""
  rng = np.random.default_rng(0)
  x_shape = (size, rows) if transpose_a else (rows, size)
  w_shape = (size, size)
  with tf.Graph().as_default():
    x = tf.constant(rng.normal(size=x_shape).astype(np.float32))
    w = tf.constant(rng.normal(size=w_shape).astype(np.float32))
    r = tf.constant(rng.normal(size=(rows, size)).astype(np.float32))
    context = matmul_gradients.faster_matmul_gradients() if faster else contextlib.nullcontext()
    with context:
      y = tf.matmul(x, w, transpose_a=transpose_a, transpose_b=transpose_b)
    grads = tf.gradients(tf.reduce_sum(y * r), [x, w])
    types = [op.get_attr('_gradient_op_type') for op in tf.compat.v1.get_default_graph()
             .get_operations() if op.type == 'MatMul' and op.name.startswith('MatMul')
             and '_gradient_op_type' in op.node_def.attr]
    with tf.compat.v1.Session() as sess:
      return sess.run(grads), types


@pytest.mark.parametrize('transpose_a', [False, True])
@pytest.mark.parametrize('transpose_b', [False, True])
def test_the_gradient_is_tensorflows_in_every_layout(transpose_a, transpose_b):
  (dx, dw), types = gradients(transpose_a, transpose_b, faster=True)
  (dx_tf, dw_tf), stock_types = gradients(transpose_a, transpose_b, faster=False)
  # The override was in force, and only where asked for.
  assert types == [matmul_gradients.GRADIENT_NAME.encode()] and stock_types == []
  np.testing.assert_allclose(dx, dx_tf, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dw, dw_tf, rtol=1e-5, atol=1e-4)


def test_small_kernels_keep_tensorflows_formula_and_large_ones_put_the_kernel_left():
  def gradient_products(size):
    """(output shape, transpose_a, transpose_b) of the gradient's MatMuls."""
    with tf.Graph().as_default():
      x = tf.zeros([8, size])
      with matmul_gradients.faster_matmul_gradients():
        y = tf.matmul(x, tf.ones([size, size]))
      tf.gradients(tf.reduce_sum(y), [x])
      return {(tuple(op.outputs[0].shape.as_list()), op.get_attr('transpose_a'),
               op.get_attr('transpose_b'))
              for op in tf.compat.v1.get_default_graph().get_operations()
              if op.type == 'MatMul' and op.name.startswith('gradients')}

  # dy [8, 64] W^T: TensorFlow's formula; the kernel gradient x^T dy.
  assert gradient_products(64) == {((8, 64), False, True), ((64, 64), True, False)}
  # 256 x 256 = LARGE_KERNEL entries: W dy^T [256, 8], transposed after.
  assert gradient_products(256) == {((256, 8), False, True), ((256, 256), True, False)}


@pytest.mark.parametrize('placement', ['baseline', 'middle', 'big'])
@pytest.mark.parametrize('router', ['softmoe', 'topk'])
def test_a_networks_gradients_are_the_same_with_and_without_it(monkeypatch, placement, router):
  gin.bind_parameter('MoE.router', router)
  states = np.random.default_rng(0).uniform(-1, 1, (16, 4, 1)).astype(np.float32)
  state = tf.compat.v1.placeholder(tf.float32, (None, 4, 1))
  network = q_networks.ClassicControlQNetwork(
      3, placement=placement, num_experts=4, hidden_units=256, expert_hidden_units=256)

  def q_gradients():
    q_values = network(state).q_values
    variables = network.trainable_variables
    return q_values, dict(zip([v.name for v in variables],
                              tf.gradients(tf.reduce_sum(q_values * [[1.0, -2.0, 0.5]]),
                                           variables)))

  faster = q_gradients()
  monkeypatch.setattr(matmul_gradients, 'faster_matmul_gradients', contextlib.nullcontext)
  stock = q_gradients()
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  numpy_networks.randomize(sess, network, seed=1)
  faster, stock = sess.run((faster, stock), {state: states})
  np.testing.assert_allclose(faster[0], stock[0], rtol=1e-5, atol=1e-5)
  for name in stock[1]:
    if stock[1][name] is not None:
      np.testing.assert_allclose(faster[1][name], stock[1][name], rtol=1e-4, atol=1e-4,
                                 err_msg=name)
