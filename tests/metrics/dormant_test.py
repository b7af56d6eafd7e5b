"""Dormant scores on crafted activations with known answers."""

import numpy as np
import pytest

from moe_dopamine.metrics import dormant


def test_a_dead_neuron_is_dormant_at_every_tau():
  activations = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
  # mean |h| = [2, 0, 2]; layer mean 4/3; s = [1.5, 0, 1.5].
  np.testing.assert_allclose(dormant.neuron_scores(activations), [1.5, 0.0, 1.5])
  for tau in (0.0, 0.025, 0.1):
    np.testing.assert_array_equal(dormant.dormant_mask(activations, tau), [False, True, False])


def test_a_neuron_at_exactly_tau_times_the_mean_is_dormant():
  # Four neurons with mean |h| = [0.1, 1.3, 1.3, 1.3] * c; layer mean = c:
  # neuron 0 scores exactly 0.1.
  activations = np.array([[0.1, 1.3, 1.3, 1.3], [-0.1, -1.3, 1.3, -1.3]]) * 8.0
  scores = dormant.neuron_scores(activations)
  assert scores[0] == pytest.approx(0.1)
  assert dormant.dormant_mask(activations, 0.1)[0]
  assert not dormant.dormant_mask(activations, 0.0999)[0]


def test_signs_do_not_cancel():
  activations = np.array([[-1.0, 1.0], [1.0, 1.0]])
  np.testing.assert_allclose(dormant.neuron_scores(activations), [1.0, 1.0])


def test_a_conv_feature_map_is_one_neuron():
  activations = np.zeros((2, 3, 3, 2))  # batch, h, w, channels
  activations[..., 0] = 1.0
  activations[0, 1, 1, 1] = 9.0  # One active position: mean 0.5, not dead.
  np.testing.assert_allclose(dormant.neuron_scores(activations), [4 / 3, 2 / 3])


def test_fractions_per_layer_expert_and_overall():
  layers = {
      'hidden_0': np.array([[1.0, 1.0, 0.0, 1.0]]),  # 1 of 4 dormant.
      'big/expert_0/hidden_0': np.array([[1.0, 1.0]]),  # 0 of 2.
      'big/expert_1/hidden_0': np.array([[0.0, 3.0]]),  # 1 of 2.
  }
  stats = dormant.dormant_fractions(layers, taus=(0.0,))
  assert stats['dormant_fraction_tau0.0/hidden_0'] == 0.25
  assert stats['dormant_fraction_tau0.0/big/expert_0/hidden_0'] == 0.0
  assert stats['dormant_fraction_tau0.0/big/expert_1/hidden_0'] == 0.5
  assert stats['dormant_fraction_tau0.0'] == pytest.approx(2 / 8)


def test_an_unused_expert_is_not_dormant_it_is_unused():
  layers = {
      'hidden_0': np.array([[1.0, 1.0, 0.0, 1.0]]),
      'big/expert_0/hidden_0': np.array([[1.0, 1.0]]),
      'big/expert_1/hidden_0': np.array([[0.0, 0.0]]),  # Never routed to.
      'big/expert_2/hidden_0': np.array([[0.0, 0.0]]),  # Never routed to.
  }
  counts = {'big': [5, 0, 0, 3]}
  unused = dormant.unused_experts(counts)
  assert unused == {('big', 1), ('big', 2)}
  stats = dormant.dormant_fractions(layers, taus=(0.0,), unused=unused)
  assert 'dormant_fraction_tau0.0/big/expert_1/hidden_0' not in stats
  assert stats['dormant_fraction_tau0.0'] == pytest.approx(1 / 6)  # Not 5 / 10.
  assert dormant.unused_expert_fractions(counts) == {
      'unused_expert_fraction/big': 0.5, 'unused_expert_fraction': 0.5,
  }


def test_routed_fractions_have_their_own_names():
  stats = dormant.routed_dormant_fractions({'m/expert_0/hidden_0': np.array([[0.0, 1.0]])},
                                           taus=(0.1,))
  assert stats == {'routed_dormant_fraction_tau0.1/m/expert_0/hidden_0': 0.5,
                   'routed_dormant_fraction_tau0.1': 0.5}


def test_a_layer_without_activations_has_no_score():
  with pytest.raises(ValueError, match='no activations'):
    dormant.neuron_scores(np.zeros((0, 3)))


def test_the_overall_fraction_is_the_units_weighted_mean_of_the_layers():
  # Fails for an overall fraction that averages layer fractions unweighted, or
  # for missing unit counts (a pooling could not be recomputed).
  rng = np.random.default_rng(0)
  wide = np.abs(rng.normal(size=(8, 30)))
  wide[:, :3] = 0.0  # 3 of 30 dead.
  narrow = np.abs(rng.normal(size=(8, 4)))
  narrow[:, :2] = 0.0  # 2 of 4 dead.
  stats = dormant.dormant_fractions({'a': wide, 'b/expert_0/hidden_0': narrow}, taus=(0.0,))
  assert stats['dormant_units/a'] == 30 and stats['dormant_units/b/expert_0/hidden_0'] == 4
  assert stats['dormant_units'] == 34
  assert stats['dormant_fraction_tau0.0'] == pytest.approx(5 / 34)
  layer_mean = (stats['dormant_fraction_tau0.0/a'] * 30
                + stats['dormant_fraction_tau0.0/b/expert_0/hidden_0'] * 4) / 34
  assert stats['dormant_fraction_tau0.0'] == pytest.approx(layer_mean)
  unused = dormant.dormant_fractions(
      {'a': wide, 'b/expert_0/hidden_0': narrow}, taus=(0.0,), unused={('b', 0)})
  assert unused['dormant_units'] == 30 and 'dormant_units/b/expert_0/hidden_0' not in unused
