"""The cost table command: rows from the layer shapes of each variant."""

import pytest

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


def test_minatar_gin_files_give_rows_of_their_games(capsys):
  files = [runs.gin_path('minatar_breakout_baseline.gin'),
           runs.gin_path('minatar_crl_big_topk.gin')]
  assert cost.main([f'--gin_files={f}' for f in files] + ['--num_experts=8']) == 0
  table = capsys.readouterr().out
  # Breakout: conv 2*100*9*4*16, Dense 2*1600*128, output 2*128*6 = 526,336
  # FLOPs; a batch of 32.
  assert '| minatar_breakout_baseline | - | 206,294 | 206,294 | 0.53 | 0.067 |' in table
  # Three games (6 channels): 8 whole networks of 206,582 parameters and a
  # router on the 600 screen values; one network runs, 583,936 FLOPs.
  assert '| minatar_crl_big_topk | 8 | 1,657,456 | 211,382 | 0.59 | 0.076 |' in table


def test_the_minatar_family_is_every_placement_and_router_on_breakout():
  variants = cost.default_variants('minatar')
  assert [v.name for v in variants] == ['minatar_breakout_baseline'] + [
      f'minatar_breakout_{p}_{r}' for p in ('middle', 'final', 'all', 'big')
      for r in ('softmoe', 'topk')]
  # Middle TopK on Breakout's 10 x 10 x 4 screens: conv 592 parameters, a
  # router 16 x 4, 4 experts 16 -> 128 -> 16 (4,240 each), Dense(1600 -> 6);
  # FLOPs 115,200 + 2*100*16*4 + 100 * 8,192 + 2*1600*6 = 966,400.
  # Activations per screen: feature maps 1,600, router logits 100 * 4, each
  # token's expert 128 + 16, the MoE's output 1,600, the Q-values 6: 18,006.
  # Bytes: acting 4 (27,222 + 2 * 18,006) = 252,936; a training step on a
  # batch of 32, 4 (11 * 27,222 + 6 * 32 * 18,006) = 15,026,376.
  [variant] = [v for v in variants if v.name == 'minatar_breakout_middle_topk']
  row = cost.table(cost.rows([variant], [4], False, 0)).splitlines()[-1]
  assert row == ('| minatar_breakout_middle_topk | 4 | 27,222 | 27,222 | 0.97 | 0.124 '
                 '| 0.25 | 15.0 |')


def test_the_study_family_is_every_crl_config_at_its_own_expert_count():
  variants = cost.default_variants('study')
  names = [v.name for v in variants]
  assert len(names) >= 13 and all(n.startswith('crl_') for n in names)
  assert {'crl_big_hardcoded', 'crl_big_soft_to_sparse', 'crl_baseline',
          'crl_baseline_matched'} <= set(names)
  chosen = [v for v in variants if v.name in ('crl_baseline', 'crl_big_hardcoded')]
  lines = cost.table(cost.rows(chosen, [None], False, 0)).splitlines()[2:]
  # The study's baseline: 4 inputs (MountainCar's 2 padded), 512, 512, the
  # union's 3 actions; 2 * 265,728 multiply-adds, a batch of 128.
  # Activations 512 + 512 + 3; bytes: acting 4 (266,755 + 2 * 1,027),
  # training 4 (11 * 266,755 + 6 * 128 * 1,027).
  assert lines[0] == '| crl_baseline | - | 266,755 | 266,755 | 0.53 | 0.272 | 1.08 | 14.9 |'
  # Hardcoded routing: one baseline-sized network per task (n = 2, not the
  # file's 4), of which a sample runs one, with no router; its activations
  # are the expert's 1,027 and the MoE's output 3, and a training step reads
  # and updates both networks: 4 (11 * 533,510 + 6 * 128 * 1,030).
  assert lines[1] == '| crl_big_hardcoded | 2 | 533,510 | 266,755 | 0.53 | 0.272 | 1.08 | 26.6 |'


def test_rows_survive_the_csv_file(tmp_path):
  rows = [dict(variant='crl_baseline', n='-', parameters=266755, active=266755,
               **{'acting MFLOP': 0.531456, 'training-step GFLOP': 0.272105472,
                  'train ms': 4.03, 'act ms': 0.148, 'peak RSS MiB': 1470.5}),
          dict(variant='crl_big_topk', n=4, parameters=1067036, active=266771,
               **{'acting MFLOP': 0.531488, 'training-step GFLOP': 0.272121856,
                  'train ms': 6.91, 'act ms': 0.265, 'peak RSS MiB': 1476.0})]
  cost.write_csv(rows, tmp_path / 'cost.csv')
  back = cost.read_csv(tmp_path / 'cost.csv')
  assert back == rows
  # The ratios are to the baseline's row.
  assert '| crl_big_topk | 4 | 1,067,036 | 266,771 | 0.53 | 0.272 | 6.91 | 1.71 | 0.265 | 1.79 |' \
      in cost.table(back)


def test_the_minatar_study_family_is_every_minatar_crl_config_on_its_three_games():
  variants = cost.default_variants('minatar_study')
  names = [v.name for v in variants]
  assert all(n.startswith('minatar_crl_') for n in names)
  assert {'minatar_crl_baseline', 'minatar_crl_big_hardcoded',
          'minatar_crl_baseline_task_id'} <= set(names)
  chosen = [v for v in variants if v.name in ('minatar_crl_baseline', 'minatar_crl_big_hardcoded')]
  lines = cost.table(cost.rows(chosen, [None], False, 0)).splitlines()[2:]
  # SpaceInvaders' 6 channels (Breakout and Asterix padded to them): a 3 x 3
  # conv 6 -> 16 (880), 1,600 -> 128 (204,928), 128 -> MinAtar's 6 actions
  # (774). Breakout alone reads 4 channels: 206,294.
  assert lines[0].startswith('| minatar_crl_baseline | - | 206,582 | 206,582 |')
  # Hardcoded routing: one such network per game, the file's n = 3.
  assert lines[1].startswith('| minatar_crl_big_hardcoded | 3 | 619,746 | 206,582 |')


def test_the_study_family_keeps_each_files_experts_and_adds_full_sparsity(
    monkeypatch, capsys):
  chosen = [cost.file_variant(runs.gin_path(f'crl_big_{r}.gin'))
            for r in ('topk', 'soft_to_sparse')]
  monkeypatch.setattr(cost, 'default_variants', lambda family: chosen)
  assert cost.main(['--family=study']) == 0
  lines = capsys.readouterr().out.splitlines()
  # 4 experts, as base/moe.gin sets them; a router on the 4 inputs; TopK
  # runs 1 baseline-sized expert, soft-to-sparse all 4 until s = 1.
  expert = 2 * 265728
  def has_row(start):
    return any(line.startswith(start) for line in lines)

  assert has_row('| crl_big_topk | 4 | 1,067,036 | 266,771 | 0.53 | 0.272 |')
  assert has_row(f'| crl_big_soft_to_sparse | 4 | 1,067,036 | 1,067,036 | '
                 f'{(32 + 4 * expert) / 1e6:.2f} | {128 * 4 * (32 + 4 * expert) / 1e9:.3f} |')
  assert has_row('| crl_big_soft_to_sparse (s = 1) | 4 | 1,067,036 | 266,771 | 0.53 | 0.272 |')


def test_a_short_run_is_measured_in_its_own_process():
  before = cost.peak_mib()
  train_ms, act_ms, peak, parts = cost.measured_apart(
      cost.file_variant(runs.gin_path('crl_big_soft_to_sparse.gin')), None, 2, True)
  assert 0 < act_ms < train_ms
  # The child's own peak: TensorFlow and one agent, not this process's.
  assert 100 < peak and peak != before
  # Traced: a training step's products, Adam and (TopK at s = 1) dispatch.
  assert parts['train products ms'] > 0 and parts['train Adam ms'] > 0
  assert parts['train dispatch ms'] > 0 and parts['act dispatch ms'] > 0
  assert parts['train ops'] > parts['act ops'] > 10


def test_a_floor_is_the_slower_of_arithmetic_and_memory_traffic():
  limits = cost.MachineLimits(matmul_flops_per_s=50e9, call_s=30e-6,
                              bandwidth=((1e6, 40e9), (16e6, 10e9), (256e6, 5e9)))
  row = {'training-step GFLOP': 0.5, 'training-step MB': 20.0, 'train ms': 20.0,
         'acting MFLOP': 1.0, 'acting MB': 2.0, 'act ms': 0.46}
  floors = cost.floors(row, limits)
  # Training: 0.5 GFLOP at 50 GFLOP/s (10 ms) beats 20 MB at 10 GB/s (the
  # 16 MB set's rate: 2 ms).
  assert floors['train floor ms'] == pytest.approx(10.0)
  assert floors['train x floor'] == pytest.approx(2.0)
  # Acting: the call, then 2 MB at 40 GB/s (the 1 MB set's rate: 0.05 ms)
  # beats 1 MFLOP (0.02 ms).
  assert floors['act floor ms'] == pytest.approx(0.08)
  assert floors['act x floor'] == pytest.approx(0.46 / 0.08)
  # Beyond every measured set, the largest set's rate; below, the smallest's.
  assert cost.bytes_per_second(limits, 1e9) == 5e9
  assert cost.bytes_per_second(limits, 1e3) == 40e9


def test_the_machine_limits_are_measured():
  limits = cost.measure_limits_apart(repeats=2)
  assert 1e9 < limits.matmul_flops_per_s < 1e13
  sizes = [size for size, _ in limits.bandwidth]
  assert sizes == sorted(sizes) and sizes[-1] >= 256 * 2 ** 20
  assert all(1e8 < rate < 1e12 for _, rate in limits.bandwidth)
  assert 0 < limits.call_s < 0.01
  assert 'GFLOP/s' in cost.describe_limits(limits)


@pytest.mark.parametrize('kind, group', [
    ('_MklNativeFusedMatMul', 'products'), ('_MklMatMul', 'products'),
    ('_MklNativeConv2DBackpropFilter', 'products'), ('BatchMatMulV2', 'products'),
    ('ResourceApplyAdam', 'Adam'), ('GatherV2', 'dispatch'),
    ('DynamicPartition', 'dispatch'), ('ParallelDynamicStitch', 'dispatch'),
    ('TopKV2', 'dispatch'), ('SplitV', 'dispatch'), ('ReadVariableOp', 'other ops'),
    ('Relu', 'other ops'), ('OneHot', 'other ops'),  # Dopamine's own action one-hot.
])
def test_a_traced_op_falls_in_its_group(kind, group):
  assert cost.op_group(kind) == group


def _row(**times):
  row = {'training-step GFLOP': 0.2, 'acting MFLOP': 0.5, 'train ms': 4.0,
         'train floor ms': 1.0, 'train x floor': 4.0, 'act ms': 0.3, 'act floor ms': 0.1,
         'act x floor': 3.0, 'session call ms': 0.05, 'train ops': 100, 'act ops': 30}
  for prefix, groups in (('train', cost.TRAIN_GROUPS), ('act', cost.ACT_GROUPS)):
    for group in groups + (cost.OUTSIDE_OPS,):
      row[f'{prefix} {group} ms'] = times.get(f'{prefix} {group}', 0.0)
  return row


def test_a_row_is_bound_by_the_part_furthest_beyond_its_allowance():
  # Products of 0.2 GFLOP in 1.5 ms run at 133 GFLOP/s: 0.5 ms beyond the
  # floor's 1 ms, less than dispatch's 1.2 ms (which the floor allows none of).
  row = _row(**{'train products': 1.5, 'train dispatch': 1.2, 'train Adam': 0.8,
                'train other ops': 0.3, 'train outside ops': 0.2,
                'act products': 0.1, 'act other ops': 0.08, 'act outside ops': 0.12})
  assert cost.bound_by(row, 'train') == 'dispatch'
  row['train dispatch ms'] = 0.4
  assert cost.bound_by(row, 'train') == 'Adam'
  row['train products ms'] = 2.6
  assert cost.bound_by(row, 'train') == 'products at 77 GFLOP/s'
  # Acting: the products are allowed the floor less the call (0.05 ms), the
  # outside-ops time the call: 0.05 and 0.07 beyond, other ops 0.08.
  assert cost.bound_by(row, 'act') == 'other ops'
  row['act outside ops ms'] = 0.2
  assert cost.bound_by(row, 'act') == 'outside ops'
  row['act x floor'] = 1.9
  assert cost.bound_by(row, 'act') == 'within 2x'


def test_the_breakdown_table_gives_percent_of_the_measured_time():
  row = dict(_row(**{'train products': 2.0, 'train Adam': 1.0, 'train other ops': 0.6,
                     'train outside ops': 0.4, 'act products': 0.15,
                     'act other ops': 0.1, 'act outside ops': 0.05}),
             variant='v', n=4)
  [header, _, line] = cost.breakdown_table([row]).splitlines()
  cells = dict(zip(header.strip('| ').split(' | '), line.strip('| ').split(' | ')))
  assert cells['train products %'] == '50' and cells['train Adam %'] == '25'
  assert cells['train outside ops %'] == '10' and cells['act products %'] == '50'
  assert cells['train bound by'] == 'products at 100 GFLOP/s'
  assert cost.breakdown_table([{'variant': 'v'}]) == ''
