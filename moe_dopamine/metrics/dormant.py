"""Dormant neurons (Sokar, Agarwal, Castro, Evci, 2023, "ReDo").

For a hidden layer with H neurons and a batch B of states:
  s_i = mean_{x in B} |h_i(x)| / ((1/H) sum_k mean_{x in B} |h_k(x)|)
and neuron i is tau-dormant iff s_i <= tau. Activations are post-activation;
all axes but the last are averaged, so a conv feature map counts as one
neuron. A layer that saw no input in the batch (an expert no token was
routed to) has every neuron dormant.
"""

import numpy as np

DEFAULT_TAUS = (0.0, 0.025, 0.1)


def neuron_scores(activations):
  """s_i for every neuron of one layer; activations [..., H]."""
  activations = np.asarray(activations, np.float64)
  units = activations.shape[-1]
  if activations.size == 0:
    return np.zeros(units)
  mean_abs = np.abs(activations.reshape(-1, units)).mean(axis=0)
  layer_mean = mean_abs.mean()
  if layer_mean == 0.0:
    return np.zeros(units)
  return mean_abs / layer_mean


def dormant_mask(activations, tau):
  """Bool [H]: which neurons are tau-dormant."""
  return neuron_scores(activations) <= tau


def dormant_fractions(layer_activations, taus=DEFAULT_TAUS):
  """Statistics dict of dormant fractions, per layer and over all neurons.

  Args:
    layer_activations: {layer name: activations [..., H]}.
    taus: thresholds.

  Returns:
    {'dormant_fraction_tau<tau>': overall fraction,
     'dormant_fraction_tau<tau>/<layer>': fraction of the layer}.
  """
  out = {}
  for tau in taus:
    dormant, total = 0, 0
    for name, activations in layer_activations.items():
      mask = dormant_mask(activations, tau)
      out[f'dormant_fraction_tau{tau}/{name}'] = float(mask.mean())
      dormant += int(mask.sum())
      total += mask.size
    out[f'dormant_fraction_tau{tau}'] = dormant / total if total else 0.0
  return out
