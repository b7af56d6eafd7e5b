"""MoE layers against a direct NumPy computation of their formulas."""

import math

import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine.networks import moe

BATCH, TOKENS, DIM, OUT = 5, 3, 6, 4


def softmax(x, axis):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def expert_mlp(weights, e, x):
  """Expert e of Experts on x [s, d] in NumPy."""
  kernels, biases = weights
  for i, (k, b) in enumerate(zip(kernels, biases)):
    x = x @ k[e] + b[e]
    if i < len(kernels) - 1:
      x = np.maximum(x, 0.0)
  return x


def build(layer, tokens=TOKENS, dim=DIM, task_ids=None, training=False, seed=0):
  """Runs `layer` on random tokens; returns (inputs, outputs, info, weights, sess)."""
  rng = np.random.RandomState(seed)
  x_value = rng.normal(size=(BATCH, tokens, dim)).astype(np.float32)
  x = tf.compat.v1.placeholder(tf.float32, (None, tokens, dim))
  ids = None if task_ids is None else tf.constant(task_ids)
  out, info = layer(x, task_ids=ids, training=training)
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  # Random biases, so a test cannot pass by ignoring them.
  for biases in layer.experts.biases:
    for bias in biases:
      sess.run(bias.assign(rng.normal(size=bias.shape.as_list()).astype(np.float32)))
  weights = sess.run((layer.experts.kernels, layer.experts.biases))
  out_v, info_v = sess.run((out, info), {x: x_value})
  return x_value, out_v, info_v, weights, (sess, x, out, info)


def numpy_soft_moe(x, phi, weights, n, p, scale=None, router_x=None):
  """Soft MoE of one sample x [m, d] (science.md section 4); the logits read
  router_x (default x), the slots x."""
  router_x = x if router_x is None else router_x
  if scale is None:
    logits = router_x @ phi
  else:
    xn = router_x / np.linalg.norm(router_x, axis=-1, keepdims=True)
    phin = phi / np.linalg.norm(phi, axis=0, keepdims=True)
    logits = scale * (xn @ phin)
  dispatch = softmax(logits, axis=0)
  combine = softmax(logits, axis=1)
  slots = dispatch.T @ x  # [n*p, d]
  slot_out = np.concatenate(
      [expert_mlp(weights, s // p, slots[s : s + 1]) for s in range(n * p)]
  )
  return combine @ slot_out, combine.reshape(len(x), n, p).sum(-1)


@pytest.mark.parametrize('num_experts,tokens', [(2, 3), (4, 3), (3, 7), (1, 2)])
def test_soft_moe_matches_numpy(num_experts, tokens):
  layer = moe.MoE(num_experts, OUT, expert_hidden_units=(8,), router='softmoe')
  x, out, info, weights, (sess, *_) = build(layer, tokens=tokens)
  phi = sess.run(layer.phi)
  p = math.ceil(tokens / num_experts)
  assert phi.shape == (DIM, num_experts * p)
  for b in range(BATCH):
    expected, probs = numpy_soft_moe(x[b], phi, weights, num_experts, p)
    np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.router_probs[b], probs, rtol=1e-5, atol=1e-6)


def test_soft_moe_dispatch_columns_and_combine_rows_sum_to_one():
  logits = tf.constant(np.random.RandomState(1).normal(size=(2, 5, 6)), tf.float32)
  dispatch, combine = tf.compat.v1.Session().run(moe.soft_moe_weights(logits))
  assert dispatch.shape == (2, 6, 5) and combine.shape == (2, 5, 6)
  np.testing.assert_allclose(dispatch.sum(axis=2), np.ones((2, 6)), rtol=1e-6)
  np.testing.assert_allclose(combine.sum(axis=2), np.ones((2, 5)), rtol=1e-6)


def test_soft_moe_normalized_logits_match_numpy():
  layer = moe.MoE(3, OUT, (8,), router='softmoe', normalize_tokens=True)
  x, out, _, weights, (sess, *_) = build(layer)
  sess.run(layer.scale.assign(2.5))
  out = sess.run(build_outputs_again(layer, x))
  phi = sess.run(layer.phi)
  for b in range(BATCH):
    expected, _ = numpy_soft_moe(x[b], phi, weights, 3, 1, scale=2.5)
    np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-5)


def build_outputs_again(layer, x):
  return layer(tf.constant(x), training=False)[0]


def test_soft_moe_with_capacity_factor_two_has_more_slots():
  layer = moe.MoE(2, OUT, (8,), router='softmoe', capacity_factor=2.0)
  x, out, _, weights, (sess, *_) = build(layer, tokens=3)
  phi = sess.run(layer.phi)
  assert phi.shape == (DIM, 2 * 3)  # p = ceil(3 * 2 / 2) = 3.
  expected, _ = numpy_soft_moe(x[0], phi, weights, 2, 3)
  np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-5)


def test_soft_moe_with_one_token_is_softmax_gating_of_all_experts():
  layer = moe.MoE(4, OUT, (8,), router='softmoe')
  x, out, _, weights, (sess, *_) = build(layer, tokens=1)
  phi = sess.run(layer.phi)
  for b in range(BATCH):
    gates = softmax(x[b, 0] @ phi, axis=0)
    expected = sum(gates[e] * expert_mlp(weights, e, x[b]) for e in range(4))
    np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-5)


def numpy_top_k(x, router_kernel, weights, k, renormalize=False, router_x=None):
  """TopK MoE of tokens x [T, d]: sum over the k largest gates g_e f_e(x),
  the gates from router_x (default x)."""
  gates = softmax((x if router_x is None else router_x) @ router_kernel, axis=-1)
  out = []
  for t in range(len(x)):
    chosen = np.argsort(-gates[t])[:k]
    kept = gates[t, chosen]
    if renormalize:
      kept = kept / kept.sum()
    out.append(
        sum(g * expert_mlp(weights, e, x[t : t + 1])[0] for g, e in zip(kept, chosen))
    )
  return np.array(out), gates


@pytest.mark.parametrize('num_experts,k', [(4, 1), (4, 2), (4, 3), (4, 4), (1, 1), (8, 2)])
@pytest.mark.parametrize('renormalize', [False, True])
def test_top_k_matches_numpy(num_experts, k, renormalize):
  # k = 1 with renormalized gates needs a balancing loss (see the next test).
  balance = 0.01 if renormalize and k == 1 else 0.0
  layer = moe.MoE(
      num_experts, OUT, (8,), router='topk', k=k, renormalize_gates=renormalize,
      switch_loss_weight=balance,
  )
  x, out, info, weights, (sess, *_) = build(layer)
  router_kernel = sess.run(layer.router_kernel)
  expected, gates = numpy_top_k(
      x.reshape(-1, DIM), router_kernel, weights, k, renormalize
  )
  np.testing.assert_allclose(out.reshape(-1, OUT), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      info.router_probs.reshape(-1, num_experts), gates, rtol=1e-5, atol=1e-6
  )


def test_top_k_with_k_equal_n_is_the_dense_softmax_mixture():
  layer = moe.MoE(3, OUT, (8,), router='topk', k=3)
  x, out, _, weights, (sess, *_) = build(layer)
  gates = softmax(x.reshape(-1, DIM) @ sess.run(layer.router_kernel), axis=-1)
  flat = x.reshape(-1, DIM)
  dense = sum(gates[:, e : e + 1] * expert_mlp(weights, e, flat) for e in range(3))
  np.testing.assert_allclose(out.reshape(-1, OUT), dense, rtol=1e-5, atol=1e-5)


def test_top_one_sends_each_token_to_its_largest_gate_only():
  layer = moe.MoE(4, OUT, (8,), router='topk', k=1)
  x, out, info, weights, _ = build(layer)
  flat, probs = x.reshape(-1, DIM), info.router_probs.reshape(-1, 4)
  for t, chosen in enumerate(probs.argmax(-1)):
    only_chosen = probs[t, chosen] * expert_mlp(weights, chosen, flat[t : t + 1])[0]
    np.testing.assert_allclose(out.reshape(-1, OUT)[t], only_chosen, rtol=1e-5, atol=1e-5)


def test_top_k_capacity_drops_the_overflow_to_zero():
  layer = moe.MoE(2, OUT, (8,), router='topk', k=1, topk_capacity_factor=1.0)
  x = tf.compat.v1.placeholder(tf.float32, (None, 4, DIM))
  out, _ = layer(x)
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  # A router that sends every token to expert 0.
  kernel = np.zeros((DIM, 2), np.float32)
  kernel[0, 0] = 10.0
  sess.run(layer.router_kernel.assign(kernel))
  tokens = np.ones((2, 4, DIM), np.float32)
  tokens[1] *= 2.0
  out_v = sess.run(out, {x: tokens})
  # Capacity ceil(4 * 1 * 1.0 / 2) = 2 tokens per expert and sample: the first
  # two tokens of each sample are served, the last two get zeros.
  assert layer.capacity(4) == 2
  assert np.abs(out_v[:, :2]).sum(-1).min() > 0
  np.testing.assert_array_equal(out_v[:, 2:], 0.0)


def numpy_top_k_with_capacity(x, router_kernel, weights, k, capacity):
  """TopK of one sample x [m, d] where each expert serves at most `capacity`
  (rank, token) choices, first-ranked choices first, then in token order."""
  gates = softmax(x @ router_kernel, axis=-1)
  chosen = np.argsort(-gates, axis=-1, kind='stable')[:, :k]
  served = np.zeros(router_kernel.shape[1], int)
  out = np.zeros((len(x), OUT))
  for rank in range(k):
    for t in range(len(x)):
      e = chosen[t, rank]
      if served[e] < capacity:
        served[e] += 1
        out[t] += gates[t, e] * expert_mlp(weights, e, x[t : t + 1])[0]
  return out


def test_top_two_capacity_serves_first_choices_before_second_ones():
  # 4 experts, k = 2, 6 tokens, factor 0.5: capacity ceil(6 * 2 * 0.5 / 4) = 2.
  # Every token's first choice is expert 0 or 1 and its second choice expert
  # 1 or 0, so both experts overflow and some tokens lose one or both choices.
  layer = moe.MoE(4, OUT, (8,), router='topk', k=2, topk_capacity_factor=0.5)
  x = tf.compat.v1.placeholder(tf.float32, (None, 6, DIM))
  out, _ = layer(x)
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  rng = np.random.RandomState(3)
  kernel = rng.normal(size=(DIM, 4)).astype(np.float32) * 0.1
  kernel[:, 0] += 3.0
  kernel[:, 1] += 2.0
  sess.run(layer.router_kernel.assign(kernel))
  weights = sess.run((layer.experts.kernels, layer.experts.biases))
  tokens = np.abs(rng.normal(size=(2, 6, DIM))).astype(np.float32) + 0.5
  out_v = sess.run(out, {x: tokens})
  assert layer.capacity(6) == 2
  for b in range(2):
    expected = numpy_top_k_with_capacity(tokens[b], kernel, weights, 2, capacity=2)
    np.testing.assert_allclose(out_v[b], expected, rtol=1e-4, atol=1e-5)
  # Tokens 0 and 1 get both choices; 2 and 3 only lose to capacity; 4 and 5
  # get nothing.
  np.testing.assert_array_equal(out_v[:, 4:], 0.0)


def test_hardcoded_routing_never_drops_a_token():
  # 6 tokens and 2 experts: with TopK's capacity rule, a factor of 1 would
  # let each expert take 3 of a sample's 6 tokens; hardcoded routing has no
  # capacity, every token reaches its task's expert.
  layer = moe.MoE(2, OUT, (8,), router='hardcoded', topk_capacity_factor=1.0)
  task_ids = np.array([0, 1, 1, 0, 0], np.int32)
  x, out, _, weights, _ = build(layer, tokens=6, task_ids=task_ids)
  for b, task in enumerate(task_ids):
    np.testing.assert_allclose(out[b], expert_mlp(weights, task, x[b]), rtol=1e-5, atol=1e-5)
  assert 'MoE.topk_capacity_factor' in layer.ignored_bindings()


def test_hardcoded_routing_sends_each_task_to_its_expert():
  task_ids = np.array([0, 1, 2, 3, 5], np.int32)
  layer = moe.MoE(4, OUT, (8,), router='hardcoded')
  x, out, info, weights, _ = build(layer, task_ids=task_ids)
  for b, task in enumerate(task_ids):
    np.testing.assert_allclose(
        out[b], expert_mlp(weights, task % 4, x[b]), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(
        info.router_probs[b], np.tile(np.eye(4)[task % 4], (TOKENS, 1))
    )


def test_experts_start_from_different_weights():
  layer = moe.MoE(3, OUT, (8,), router='softmoe')
  _, _, _, (kernels, _), _ = build(layer)
  for first in range(3):
    for second in range(first + 1, 3):
      assert not np.allclose(kernels[0][first], kernels[0][second])


def test_random_router_is_frozen():
  layer = moe.MoE(4, OUT, (8,), router='random', k=2)
  build(layer)
  assert layer.router_kernel not in layer.trainable_weights
  assert layer.router_kernel in layer.non_trainable_weights


@pytest.mark.parametrize('router,router_weight', [('softmoe', 'phi'), ('topk', 'router_kernel')])
def test_gradients_reach_router_and_every_expert(router, router_weight):
  layer = moe.MoE(2, OUT, (8,), router=router, k=2)
  _, _, _, _, (sess, x, out, _) = build(layer)
  # The router and every layer of every expert.
  variables = [getattr(layer, router_weight)] + [
      kernel for kernels in layer.experts.kernels for kernel in kernels
  ]
  assert len(variables) == 1 + 2 * 2
  grads = tf.gradients(tf.reduce_sum(tf.square(out)), variables)
  values = sess.run(grads, {x: np.random.RandomState(2).normal(size=(BATCH, TOKENS, DIM))})
  for variable, grad in zip(variables, values):
    assert np.abs(grad).sum() > 0, variable.name


def test_switch_and_importance_losses_match_their_formulas():
  layer = moe.MoE(
      4, OUT, (8,), router='topk', switch_loss_weight=0.01, importance_loss_weight=0.5
  )
  _, _, info, _, _ = build(layer)
  probs = info.router_probs.reshape(-1, 4)
  fraction = np.bincount(probs.argmax(-1), minlength=4) / len(probs)
  switch = 0.01 * 4 * np.sum(fraction * probs.mean(0))
  importance = probs.sum(0)
  cv2 = importance.var() / importance.mean() ** 2
  assert info.aux_losses[f'{layer.name}/switch_loss'] == pytest.approx(switch, rel=1e-5)
  assert info.aux_losses[f'{layer.name}/importance_loss'] == pytest.approx(0.5 * cv2, rel=1e-4)


def numpy_expected_load(clean, noisy, k, std):
  """P(expert i stays in the top k when only its own noise is redrawn)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  load = np.zeros_like(clean)
  for t in range(len(clean)):
    for i in range(clean.shape[1]):
      others = np.sort(np.delete(noisy[t], i))[::-1]
      threshold = others[k - 1]  # The k-th largest of the other experts.
      load[t, i] = stats.norm.cdf((clean[t, i] - threshold) / std)
  return load


@pytest.mark.parametrize('k', [1, 2])
def test_load_loss_matches_its_formula(k):
  with pytest.raises(ValueError, match='noise_std'):
    moe.MoE(4, OUT, router='topk', load_loss_weight=1.0)
  layer = moe.MoE(4, OUT, (8,), router='topk', k=k, noise_std=2.0, load_loss_weight=0.3)
  rng = np.random.RandomState(5)
  clean = rng.normal(size=(6, 4)).astype(np.float32)
  noisy = (clean + rng.normal(size=(6, 4)) * 0.5).astype(np.float32)
  load = layer._expected_load(tf.constant(clean), tf.constant(noisy))
  probs = tf.nn.softmax(tf.constant(noisy))
  loss = layer._balancing_losses(probs, (tf.constant(clean), tf.constant(noisy)))
  with tf.compat.v1.Session() as sess:
    load, loss = sess.run((load, loss))
  expected = numpy_expected_load(clean, noisy, k, std=2.0 / 4)
  np.testing.assert_allclose(load, expected, rtol=1e-4, atol=1e-5)
  per_expert = expected.sum(0)
  cv2 = per_expert.var() / per_expert.mean() ** 2
  assert loss == {f'{layer.name}/load_loss': pytest.approx(0.3 * cv2, rel=1e-3)}
  assert cv2 > 0.01  # Uneven loads: the check above is not 0 == 0.


def test_random_router_matches_numpy_top_k_with_its_frozen_kernel():
  layer = moe.MoE(4, OUT, (8,), router='random', k=2)
  x, out, info, weights, (sess, *_) = build(layer)
  kernel = sess.run(layer.router_kernel)
  expected, gates = numpy_top_k(x.reshape(-1, DIM), kernel, weights, 2, False)
  np.testing.assert_allclose(out.reshape(-1, OUT), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(info.router_probs.reshape(-1, 4), gates, rtol=1e-5, atol=1e-6)


def test_losses_are_off_by_default():
  _, _, info, _, _ = build(moe.MoE(4, OUT, (8,), router='topk'))
  assert info.aux_losses == {}


def test_router_noise_only_in_training():
  layer = moe.MoE(4, OUT, (8,), router='topk', noise_std=4.0)
  x = tf.constant(np.ones((BATCH, TOKENS, DIM), np.float32))
  eval_probs = layer(x, training=False)[1].router_probs
  train_probs = layer(x, training=True)[1].router_probs
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  e1, e2, t1 = sess.run(eval_probs), sess.run(eval_probs), sess.run(train_probs)
  np.testing.assert_array_equal(e1, e2)
  assert not np.allclose(e1, t1)


def test_expert_activations_have_stable_names():
  layer = moe.MoE(2, OUT, (8, 5), router='softmoe', name='big')
  _, _, info, _, _ = build(layer)
  assert sorted(info.expert_activations) == [
      f'big/expert_{e}/hidden_{j}' for e in range(2) for j in range(2)
  ]
  assert info.expert_activations['big/expert_1/hidden_1'].shape[-1] == 5


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'router': 'topk', 'k': 0}, r'MoE.k=0 is out of range: k must be in \[1, num_experts=4\]'),
        ({'router': 'topk', 'k': 5}, r'MoE.k=5 is out of range'),
        ({'router': 'softmax'}, r"MoE.router='softmax' is not one of \['softmoe', 'topk'"),
        ({'capacity_factor': 0}, 'capacity_factor=0 must be > 0'),
        ({'noise_std': -1.0}, 'noise_std=-1.0 must be >= 0'),
        ({'router': 'topk', 'k': 'two'}, "MoE.k='two' must be an integer"),
        ({'router': 'topk', 'k': 1.5}, 'MoE.k=1.5 must be an integer'),
        ({'noise_std': 'high'}, "MoE.noise_std='high' must be a number"),
        ({'normalize_tokens': 1}, 'MoE.normalize_tokens=1 must be True or False'),
        ({'router': 'topk', 'k': 1, 'renormalize_gates': True},
         'router gets no gradient from the TD loss'),
    ],
)
def test_bad_layer_settings_fail_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    moe.MoE(4, OUT, **kwargs)


def test_zero_experts_fail_at_construction():
  with pytest.raises(config.ConfigError, match='num_experts=0 must be >= 1'):
    moe.MoE(0, OUT)


def test_a_renormalized_top_one_gate_is_constant_so_the_router_learns_nothing():
  # Why the combination above is refused: the gradient is exactly zero.
  layer = moe.MoE(4, OUT, (8,), router='topk', k=1, renormalize_gates=True,
                  switch_loss_weight=1e-9)
  x = tf.constant(np.random.RandomState(0).normal(size=(BATCH, TOKENS, DIM)), tf.float32)
  out, _ = layer(x)
  grad = tf.gradients(tf.reduce_sum(out), [layer.router_kernel])[0]
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    np.testing.assert_allclose(sess.run(grad), 0.0, atol=1e-6)  # g / g, up to rounding.


def test_soft_moe_phi_has_dopamines_variance():
  # Dopamine's Phi (d, n, p) under lecun_normal: variance 1 / (d * n).
  d, n = 512, 8
  layer = moe.MoE(n, OUT, (8,), router='softmoe')
  layer(tf.zeros([2, 1, d]))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    phi = sess.run(layer.phi)
  assert phi.shape == (d, n)
  assert phi.std() == pytest.approx(1.0 / math.sqrt(d * n), rel=0.05)


@pytest.mark.parametrize('router', ['topk', 'hardcoded', 'random'])
def test_diagnostics_run_every_expert_on_every_token(router):
  layer = moe.MoE(3, OUT, (8,), router=router, k=1, name='m')
  rng = np.random.RandomState(2)
  x_value = rng.normal(size=(BATCH, TOKENS, DIM)).astype(np.float32)
  task_ids = np.zeros(BATCH, np.int32)  # Hardcoded: every token to expert 0.
  _, info = layer(tf.constant(x_value), task_ids=tf.constant(task_ids), diagnostics=True)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    info, weights = sess.run((info, (layer.experts.kernels, layer.experts.biases)))
  flat = x_value.reshape(-1, DIM)
  assert info.routed_counts.sum() == BATCH * TOKENS
  if router == 'hardcoded':
    np.testing.assert_array_equal(info.routed_counts, [BATCH * TOKENS, 0, 0])
  for e in range(3):
    kernels, biases = weights
    expected = np.maximum(flat @ kernels[0][e] + biases[0][e], 0.0)
    np.testing.assert_allclose(
        info.all_token_activations[f'm/expert_{e}/hidden_0'], expected, rtol=1e-5, atol=1e-5
    )
    assert len(info.expert_activations[f'm/expert_{e}/hidden_0']) == info.routed_counts[e]


@pytest.mark.parametrize('sparsity', [0.0, 0.5, 1.0])
def test_soft_to_sparse_mixes_soft_gating_and_top_k(sparsity):
  layer = moe.MoE(4, OUT, (8,), router='soft_to_sparse', k=2)
  x_value, _, _, weights, (sess, x, out, _) = build(layer, tokens=1)
  sess.run(layer.sparsity.assign(sparsity))
  out_v = sess.run(out, {x: x_value}).reshape(-1, OUT)
  kernel = sess.run(layer.router_kernel)
  flat = x_value.reshape(-1, DIM)
  soft = np.stack([
      sum(g * expert_mlp(weights, e, flat[t : t + 1])[0]
          for e, g in enumerate(softmax(flat[t] @ kernel, axis=-1)))
      for t in range(len(flat))
  ])
  top_k, _ = numpy_top_k(flat, kernel, weights, 2)
  np.testing.assert_allclose(out_v, (1 - sparsity) * soft + sparsity * top_k,
                             rtol=1e-4, atol=1e-5)


def test_soft_to_sparse_at_zero_is_soft_moe_with_one_token():
  # SoftMoE's combine weights for m = 1 (one slot per expert) with Phi = W.
  soft = moe.MoE(4, OUT, (8,), router='softmoe')
  mixed = moe.MoE(4, OUT, (8,), router='soft_to_sparse', k=1)
  x = tf.constant(np.random.RandomState(3).normal(size=(BATCH, 1, DIM)), tf.float32)
  soft_out, _ = soft(x)
  mixed_out, _ = mixed(x)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(mixed.router_kernel.assign(soft.phi))
    for mine, theirs in zip(mixed.experts.weights, soft.experts.weights):
      sess.run(mine.assign(theirs))
    np.testing.assert_allclose(*sess.run([mixed_out, soft_out]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('sparsity', [0.5, 1.0])
def test_soft_to_sparse_computes_only_the_chosen_experts_once_fully_sparse(sparsity):
  # At s = 1 it is TopK with the kept gates as they are: the same outputs,
  # the same gradients, and only each token's k chosen experts computed.
  mixed = moe.MoE(4, OUT, (8,), router='soft_to_sparse', k=2)
  top_k = moe.MoE(4, OUT, (8,), router='topk', k=2, renormalize_gates=False)
  x = tf.constant(np.random.RandomState(4).normal(size=(BATCH, TOKENS, DIM)), tf.float32)
  (mixed_out, mixed_info), (top_out, top_info) = mixed(x), top_k(x)
  mixed_grads = tf.gradients(tf.reduce_sum(tf.square(mixed_out)), mixed.trainable_weights)
  top_grads = tf.gradients(tf.reduce_sum(tf.square(top_out)), top_k.trainable_weights)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(mixed.sparsity.assign(sparsity))
    for mine, theirs in zip(mixed.trainable_weights, top_k.trainable_weights):
      sess.run(mine.assign(theirs))
    got, want = sess.run([(mixed_out, mixed_info, mixed_grads),
                          (top_out, top_info, top_grads)])
  counts = got[1].routed_counts
  hidden = [got[1].expert_activations[f'{mixed.name}/expert_{e}/hidden_0'] for e in range(4)]
  assert [len(h) for h in hidden] == list(counts)
  if sparsity < 1:
    np.testing.assert_array_equal(counts, [BATCH * TOKENS] * 4)  # Every expert, every token.
    assert not np.allclose(got[0], want[0], atol=1e-3)
    return
  np.testing.assert_array_equal(counts, want[1].routed_counts)
  assert counts.sum() == 2 * BATCH * TOKENS
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
  for mine, theirs in zip(got[2], want[2]):
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


# A router context z [batch, c] (the network's task one-hot with
# task_id_input='router') joins each token in the router's input only.
CONTEXT = 3


def run_with_context(layer, tokens=TOKENS, seed=5):
  """(x [B, m, d], z [B, c], outputs, MoEInfo, experts' weights, router kernel
  [W_x; W_z]) for one-hots z of varied tasks."""
  rng = np.random.RandomState(seed)
  x = rng.normal(size=(BATCH, tokens, DIM)).astype(np.float32)
  z = np.eye(CONTEXT, dtype=np.float32)[np.arange(BATCH) % CONTEXT]
  out, info = layer(tf.constant(x), router_context=tf.constant(z))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    for biases in layer.experts.biases:
      for bias in biases:
        sess.run(bias.assign(rng.normal(size=bias.shape.as_list()).astype(np.float32)))
    values = sess.run((out, info, (layer.experts.kernels, layer.experts.biases),
                       layer.router_weights() + layer.router_context_weights()))
  out, info, weights, (token_rows, context_rows) = values
  return x, z, out, info, weights, np.concatenate([token_rows, context_rows])


@pytest.mark.parametrize('normalize', [False, True])
def test_soft_moe_router_context_enters_the_logits_not_the_slots(normalize):
  # Fails if z is mixed into the slots (the experts would see it), if a
  # sample gets another sample's z, or if the context rows are ignored.
  layer = moe.MoE(2, OUT, (8,), router='softmoe', router_context_units=CONTEXT,
                  normalize_tokens=normalize)
  x, z, out, info, weights, phi = run_with_context(layer)
  assert phi.shape == (DIM + CONTEXT, 2 * 2)  # p = ceil(3 / 2) = 2.
  assert layer.experts.kernels[0][0].shape.as_list() == [DIM, 8]
  for b in range(BATCH):
    router_x = np.concatenate([x[b], np.tile(z[b], (TOKENS, 1))], axis=1)
    expected, probs = numpy_soft_moe(x[b], phi, weights, 2, 2,
                                     scale=1.0 if normalize else None, router_x=router_x)
    np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.router_probs[b], probs, rtol=1e-5, atol=1e-6)


def test_top_k_router_context_enters_the_gates_not_the_experts():
  layer = moe.MoE(4, OUT, (8,), router='topk', k=2, router_context_units=CONTEXT)
  x, z, out, info, weights, kernel = run_with_context(layer)
  assert kernel.shape == (DIM + CONTEXT, 4)
  router_x = np.concatenate([x, np.repeat(z[:, None], TOKENS, axis=1)], axis=2)
  expected, gates = numpy_top_k(x.reshape(-1, DIM), kernel, weights, 2,
                                router_x=router_x.reshape(-1, DIM + CONTEXT))
  np.testing.assert_allclose(out.reshape(-1, OUT), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(info.router_probs.reshape(-1, 4), gates, rtol=1e-5, atol=1e-6)


def test_router_context_rows_are_drawn_as_rows_of_one_kernel_over_token_and_context():
  # Phi over [token, context] has fan-in d + c: variance 1 / ((d + c) n) in
  # both parts (drawing the context rows with their own fan-in c would give
  # them 1 / (c n), 2.5 times more here).
  d, c, n, m = 60, 40, 4, 64
  layer = moe.MoE(n, 2, (2,), router='softmoe', router_context_units=c)
  layer(tf.zeros([1, m, d]), router_context=tf.zeros([1, c]))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    phi, phi_context = sess.run(layer.router_weights() + layer.router_context_weights())
  assert phi.shape == (d, n * 16) and phi_context.shape == (c, n * 16)
  for rows in (phi, phi_context):
    assert rows.std() == pytest.approx(1.0 / math.sqrt((d + c) * n), rel=0.1)


def test_a_layer_with_a_router_context_needs_one():
  layer = moe.MoE(2, OUT, (8,), router='softmoe', router_context_units=CONTEXT)
  with pytest.raises(ValueError, match='router_context_units=3; got router_context=None'):
    layer(tf.zeros([1, TOKENS, DIM]))
