"""The report's table cells."""

import numpy as np
import pandas as pd

from moe_dopamine.metrics import continual
from moe_dopamine.studies import spec as spec_lib
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


def test_an_exploratory_table_gives_each_comparison_its_reason():

  waiting = spec_lib.Comparison('a', 'b', 'P', 'greater', reason='as first registered', runs=30)
  record = {'comparison': waiting, 'label': waiting.label, 'n_a': 3, 'n_b': 3,
            'verdict': 'waiting: 3 of 30 runs a side'}
  header, _, row = tables.comparison_table([record], adjusted=False, reasons=True)
  assert header.endswith('| why |') and row.endswith('| as first registered |')
  assert row.count('|') == header.count('|')
  plain = tables.comparison_table([record], adjusted=False)
  assert 'why' not in plain[0] and 'as first registered' not in plain[2]
