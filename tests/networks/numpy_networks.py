"""NumPy forward passes of the placements, written from the architecture
tables (science.md sections 2-4, the networks' module docstrings), to check
the networks' wiring numerically: which layer is an MoE, what its tokens are,
how the experts and routers combine, where the relus are."""

import math

import numpy as np
import tensorflow as tf

# Which layers each placement makes an MoE (science.md section 2).
CLASSIC_MOE_LAYERS = {
    'baseline': set(), 'baseline_scaled': set(), 'middle': {'hidden_1'},
    'final': {'output'}, 'all': {'hidden_0', 'hidden_1', 'output'},
}
MINATAR_MOE_LAYERS = {
    'baseline': set(), 'baseline_scaled': set(), 'middle': {'hidden_0'},
    'final': {'output'}, 'all': {'hidden_0', 'output'},
}


def randomize(sess, network, sparsity=0.5, seed=0):
  """Gives every weight (biases too) a random value, so that no term of the
  forward pass is zero by initialisation; soft-to-sparse layers get s."""
  rng = np.random.default_rng(seed)
  for variable in network.variables:
    if variable.name.split('/')[-1].startswith('sparsity'):
      sess.run(variable.assign(sparsity))
    else:
      shape = variable.shape.as_list()
      sess.run(variable.assign(rng.normal(0.0, 0.3, shape).astype(np.float32)))


def relu(x):
  return np.maximum(x, 0.0)


def softmax(x, axis=-1):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def dense(layer, sess, x, activation=True):
  kernel, bias = sess.run([layer.kernel, layer.bias])
  y = x @ kernel + bias
  return relu(y) if activation else y


def conv_same(screens, kernel, bias):
  """[b, h, w, c] -> relu(3x3 'same' conv) [b, h * w, f]; kernel [k, k, c, f]."""
  k = kernel.shape[0]
  b, h, w, c = screens.shape
  padded = np.pad(screens, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  out = np.zeros((b, h, w, kernel.shape[-1]))
  for i in range(h):
    for j in range(w):
      patch = padded[:, i:i + k, j:j + k, :]
      out[:, i, j] = np.einsum('bxyc,xycf->bf', patch, kernel) + bias
  return relu(out).reshape(b, h * w, -1)


def expert(layer, weights, e, x, screen_shape=None):
  """Expert e of `layer` on tokens x [s, d]: an MLP (relu between layers),
  or with screen_shape a whole MinAtar network (conv first)."""
  kernels, biases = weights
  start = 0
  if screen_shape is not None:
    h, w, c = screen_shape
    kernel = kernels[0][e].reshape(3, 3, c, -1)
    x = conv_same(x.reshape(-1, h, w, c), kernel, biases[0][e]).reshape(len(x), -1)
    start = 1
  for i in range(start, len(kernels)):
    x = x @ kernels[i][e] + biases[i][e]
    if i < len(kernels) - 1:
      x = relu(x)
  return x


def moe(layer, sess, tokens, task_ids, screen_shape=None):
  """The MoE layer on tokens [b, m, d] (science.md section 4)."""
  weights = sess.run((layer.experts.kernels, layer.experts.biases))
  n, router = layer.num_experts, layer.router.value
  b, m, _ = tokens.shape
  out = []
  for sample in range(b):
    x = tokens[sample]
    f = [expert(layer, weights, e, x, screen_shape) for e in range(n)]  # [n][m, o]
    if router == 'softmoe':
      phi = sess.run(layer.phi)
      p = int(math.ceil(m * layer.capacity_factor / n))
      logits = x @ phi  # [m, n * p]
      dispatch, combine = softmax(logits, axis=0), softmax(logits, axis=1)
      slots = dispatch.T @ x
      slot_out = np.stack([expert(layer, weights, s // p, slots[s:s + 1], screen_shape)[0]
                           for s in range(n * p)])
      out.append(combine @ slot_out)
      continue
    if router == 'hardcoded':
      chosen = int(task_ids[sample]) % n
      out.append(f[chosen])
      continue
    gates = softmax(x @ sess.run(layer.router_kernel))  # [m, n]
    top = np.argsort(-gates, axis=1)[:, :layer.k]
    mask = np.zeros_like(gates)
    np.put_along_axis(mask, top, 1.0, axis=1)
    if router == 'soft_to_sparse':
      s = sess.run(layer.sparsity)
      mix = (1 - s) * gates + s * gates * mask
    else:  # topk
      mix = gates * mask
    out.append(sum(mix[:, e:e + 1] * f[e] for e in range(n)))
  return np.stack(out)


def classic_forward(network, sess, states):
  """ClassicControlQNetwork: (Q-values [b, A], hidden activations)."""
  x = states.reshape(len(states), -1).astype(np.float64)
  task_ids = np.zeros(len(x), int)
  if network.task_id_in_observation:
    x, task_ids = x[:, :-1], np.round(x[:, -1]).astype(int)
  m = network.num_tokens
  placement = network.placement.value
  if placement in ('big', 'separate'):
    out = moe(network.big_moe, sess, x.reshape(len(x), m, -1), task_ids)
    return out.mean(axis=1), {}
  layers = {name: layer for name, layer, _ in network.stack}
  activations = {}
  names = [f'hidden_{i}' for i in range(network.num_hidden_layers)] + ['output']
  for name in names:
    layer = layers[name]
    if name in CLASSIC_MOE_LAYERS[placement]:
      out = moe(layer, sess, x.reshape(len(x), m, -1), task_ids)
      x = out.mean(axis=1) if name == 'output' else out.reshape(len(x), -1)
    else:
      x = dense(layer, sess, x, activation=name != 'output')
    activations[name] = x
  return x, activations


def minatar_tokens(maps, tokenization):
  """Feature maps [b, h * w, f] -> tokens (science.md section 3)."""
  if tokenization == 'per_pixel':
    return maps
  if tokenization == 'per_feature_map':
    return maps.transpose(0, 2, 1)
  return maps.reshape(len(maps), 1, -1)


def minatar_forward(network, sess, states):
  """MinAtarQNetwork: Q-values [b, A]."""
  x = states.reshape(len(states), -1).astype(np.float64)
  x, task_ids = x[:, :-1], np.round(x[:, -1]).astype(int)
  screen_shape = network.screen_shape
  placement = network.placement.value
  if placement in ('big', 'separate'):
    out = moe(network.big_moe, sess, x[:, None, :], task_ids, screen_shape)
    return out.mean(axis=1)
  kernel, bias = sess.run([network.conv.kernel, network.conv.bias])
  maps = conv_same(x.reshape((len(x),) + tuple(screen_shape)), kernel, bias)
  if 'hidden_0' in MINATAR_MOE_LAYERS[placement]:
    out = moe(network.hidden, sess, minatar_tokens(maps, network.tokenization.value), task_ids)
    x = out.reshape(len(x), -1)
  else:
    x = dense(network.hidden, sess, maps.reshape(len(x), -1))
  if 'output' in MINATAR_MOE_LAYERS[placement]:
    return moe(network.output_layer, sess, x[:, None, :], task_ids).mean(axis=1)
  return dense(network.output_layer, sess, x, activation=False)


def run(network, states):
  """Builds `network` on `states` in a session, randomizes its weights and
  returns (session, Q-values, activations)."""
  state = tf.compat.v1.placeholder(tf.float32, (None,) + states.shape[1:])
  output = network(state)
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  randomize(sess, network)
  q_values, activations = sess.run((output.q_values, output.activations), {state: states})
  return sess, q_values, activations


def conv_patches(screens, kernel_size):
  """(TensorFlow) [N, h, w, c] -> [N, h * w, k * k * c]: each position's k x k
  neighbourhood ('same' zero padding, stride 1), ordered (row, column,
  channel) as a [k, k, c, filters] conv kernel flattens."""
  k = kernel_size
  patches = tf.image.extract_patches(
      screens, sizes=[1, k, k, 1], strides=[1, 1, 1, 1], rates=[1, 1, 1, 1], padding='SAME')
  h, w = int(screens.shape[1]), int(screens.shape[2])
  return tf.reshape(patches, [-1, h * w, k * k * int(screens.shape[3])])
