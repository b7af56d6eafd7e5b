"""The cost table command: rows from the layer shapes of each variant."""

from moe_dopamine import cost
from tests import runs


def test_the_table_has_a_row_per_variant_and_expert_count(capsys, tmp_path):
  out = tmp_path / 'cost.md'
  files = [runs.gin_path('cartpole_baseline.gin'), runs.gin_path('cartpole_big_topk.gin')]
  assert cost.main([f'--gin_files={f}' for f in files] + ['--num_experts=4,8',
                                                          f'--out={out}']) == 0
  table = out.read_text()
  assert table == capsys.readouterr().out
  # The baseline once; Big TopK at n = 4 and 8: 8 whole networks, one active.
  assert '| cartpole_baseline | - | 266,242 | 266,242 | 0.53 | 0.272 |' in table
  assert '| cartpole_big_topk | 8 | 2,129,968 | 266,274 | 0.53 | 0.272 |' in table
  assert table.count('cartpole_baseline') == 1


def test_a_bad_expert_count_is_one_line(capsys):
  assert cost.main(['--num_experts=four']) == 2
  assert 'moe_dopamine.cost: error:' in capsys.readouterr().err
