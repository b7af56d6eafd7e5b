"""Dormant neurons (Sokar, Agarwal, Castro, Evci, 2023, "ReDo").

For a hidden layer with H neurons and a batch B of states:
  s_i = mean_{x in B} |h_i(x)| / ((1/H) sum_k mean_{x in B} |h_k(x)|)
and neuron i is tau-dormant iff s_i <= tau (Dopamine's labs/redo
`estimate_neuron_score`). Activations are post-activation; all axes but the
last are averaged, so a conv feature map counts as one neuron. Only units
that pass through a ReLU are neurons in this sense: the networks leave a
hidden MoE's linear output out of the layers they report (as Dopamine's
labs/moes scores only the experts' hidden activations), so a Middle MoE is
measured by its experts' hidden layers.

Experts. The reported `dormant_fraction_tau*` measures every expert's hidden
layers on the whole batch, whatever the router (SoftMoE experts see their
slots, which every state feeds; TopK, random and hardcoded experts are run on
every token), so SoftMoE and TopK are measured alike: it says what the
expert's neurons do on the state distribution. `routed_dormant_fraction_tau*`
is the same score on the tokens actually routed to each expert. An expert
that received no token in the batch is not made of dormant neurons: it is
counted in `unused_expert_fraction` and left out of both dormant fractions.
A soft-to-sparse router routes every token to every expert while its
sparsity s < 1 and, at s = 1, only to the chosen ones, as TopK does: its
routed fraction and unused experts mean TopK's from then on.
"""

import numpy as np

from moe_dopamine.metrics import names

DEFAULT_TAUS = (0.0, 0.025, 0.1)


def neuron_scores(activations):
  """s_i for every neuron of one layer; activations [..., H]."""
  activations = np.asarray(activations, np.float64)
  units = activations.shape[-1]
  if activations.size == 0:
    raise ValueError('no activations: a layer that saw no input has no score.')
  mean_abs = np.abs(activations.reshape(-1, units)).mean(axis=0)
  layer_mean = mean_abs.mean()
  if layer_mean == 0.0:
    return np.zeros(units)
  return mean_abs / layer_mean


def dormant_mask(activations, tau):
  """Bool [H]: which neurons are tau-dormant."""
  return neuron_scores(activations) <= tau


def unused_experts(routed_counts):
  """The (moe layer, expert) pairs that received no token.

  Args:
    routed_counts: {moe layer: [n] tokens routed to each expert}.
  """
  return {
      (layer, e)
      for layer, counts in routed_counts.items()
      for e, count in enumerate(counts)
      if count == 0
  }


def _fractions(layer_activations, taus, unused, key_fn, units_fn=None):
  out = {}
  kept = {
      name: values
      for name, values in layer_activations.items()
      if names.parse_expert_hidden(name) not in unused
  }
  if units_fn is not None:
    for name, activations in kept.items():
      out[units_fn(name)] = int(np.shape(activations)[-1])
    if kept:
      out[units_fn(None)] = int(sum(np.shape(a)[-1] for a in kept.values()))
  for tau in taus:
    dormant, total = 0, 0
    for name, activations in kept.items():
      mask = dormant_mask(activations, tau)
      out[key_fn(tau, name)] = float(mask.mean())
      dormant += int(mask.sum())
      total += mask.size
    if total:
      out[key_fn(tau, None)] = dormant / total
  return out


def dormant_fractions(layer_activations, taus=DEFAULT_TAUS, unused=frozenset()):
  """Dormant fractions per layer and over all neurons.

  Args:
    layer_activations: {layer name: activations [..., H]}; expert hidden
      layers are named as `names.expert_hidden`.
    taus: thresholds.
    unused: set of (moe layer, expert) to leave out (see `unused_experts`).

  Returns:
    {names.dormant_fraction(tau): overall fraction,
     names.dormant_fraction(tau, layer): fraction of the layer,
     names.dormant_units(layer): the layer's neurons, names.dormant_units():
     all of them}; the overall fraction is the unit-weighted mean of the
    layers', so any other pooling can be recomputed from these.
  """
  return _fractions(layer_activations, taus, unused, names.dormant_fraction,
                    names.dormant_units)


def routed_dormant_fractions(layer_activations, taus=DEFAULT_TAUS, unused=frozenset()):
  """As `dormant_fractions`, under the routed-only names."""
  return _fractions(layer_activations, taus, unused, names.routed_dormant_fraction)


def unused_expert_fractions(routed_counts):
  """{names.unused_experts(layer): fraction, names.unused_experts(): overall}."""
  out = {}
  unused, total = 0, 0
  for layer, counts in routed_counts.items():
    idle = int(np.sum(np.asarray(counts) == 0))
    out[names.unused_experts(layer)] = idle / len(counts)
    unused += idle
    total += len(counts)
  if total:
    out[names.unused_experts()] = unused / total
  return out
