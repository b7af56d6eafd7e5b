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


def test_equivalence_sentences_follow_the_tost_and_the_difference_at_the_studys_alpha():
  """Catches a hard-coded 0.05 (alpha = 0.1 here) and 'nor different' said of
  a difference whose own p is below alpha."""
  comparison = spec_lib.Comparison('crl_a', 'crl_b', 'P', 'greater', margin=0.1)

  def record(tost_p, p):
    return {'comparison': comparison, 'label': 'crl_a vs crl_b, P', 'tost_p': tost_p,
            'p': p, 'n_a': 30, 'n_b': 30}

  equivalent, different, neither = tables.equivalence_lines(
      [record(0.08, 0.9), record(0.6, 0.02), record(0.6, 0.5), {'tost_p': None}], alpha=0.1)
  assert equivalent.endswith('p = 0.0800: equivalent within the margin.')
  assert 'not shown equivalent; the difference has p = 0.0200 before any adjustment' in different
  assert 'nor different' not in different
  assert 'not shown equivalent (nor different: p = 0.5000)' in neither
