"""The report's table cells."""

import numpy as np
import pandas as pd

from moe_dopamine.metrics import continual
from moe_dopamine.studies import tables


def _rows(aucs):
  return pd.DataFrame({'variant': 'crl_big_topk', 'auc:MountainCar': aucs})


REFERENCES = {'crl_big_topk': {'MountainCar': [0.2, 0.4]}}  # Mean AUC 0.3.


def test_forward_transfer_below_five_runs_is_the_range_of_the_runs():
  # FT = (AUC - 0.3) / 0.7: 0.65 -> +0.50, 0.44 -> +0.20, 0.37 -> +0.10.
  cell = tables.transfer_cell(_rows([0.65, 0.44, 0.37]), 'MountainCar', REFERENCES)
  assert cell == '+0.27 (range +0.10 to +0.50, n=3)'


def test_forward_transfer_from_five_runs_is_an_interval_resampling_the_references():
  aucs = [0.65, 0.44, 0.3, 0.5, 0.58]
  cell = tables.transfer_cell(_rows(aucs), 'MountainCar', REFERENCES)
  mean, low, high = continual.transfer_over_seeds(aucs, REFERENCES['crl_big_topk']['MountainCar'])
  assert cell == f'{mean:+.2f} [{low:+.2f}, {high:+.2f}]'
  assert np.isclose(mean, np.mean((np.array(aucs) - 0.3) / 0.7))
  assert '(range' not in cell and low < mean < high


def test_forward_transfer_without_a_reference_is_not_available():
  assert tables.transfer_cell(_rows([0.5] * 5), 'MountainCar', {}) == 'n/a'
