"""The study engine: plans of any spec, what is done, expected times."""

import os

import numpy as np
import pandas as pd
import pytest

from moe_dopamine import study as study_command
from moe_dopamine import sweep
from moe_dopamine.studies import engine
from moe_dopamine.studies import spec as spec_lib
from tests import runs as test_runs

SHIPPED = os.path.join(test_runs.REPO, 'studies', 'classic_control.toml')


def shipped(tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  study = spec_lib.load(SHIPPED, root=test_runs.REPO)
  return dataclasses.replace(study, runs_dir=str(tmp_path))


def test_the_plan_has_every_part_its_seeds_and_no_run_twice(tmp_path):
  planned = engine.plan(shipped(tmp_path))
  counts = {part: len(runs) for part, runs in planned.items()}
  assert counts['protocol'] == 2 * 5 and counts['crl_headline'] == 3 * 5
  # The Middle reruns come first, so the placements part keeps the others.
  assert counts['mtrl_headline'] == 5 * 5 and counts['dormant_reruns'] == 4 * 5
  assert counts['crl_placements'] == counts['mtrl_placements'] == 4 * 5
  keys = [engine.run_key(r) for runs in planned.values() for r in runs]
  assert len(keys) == len(set(keys)) == 150 + 285
  assert 'crl_big_softmoe__replay_at_task_switch-clear/seed_4' in keys
  only = engine.plan(shipped(tmp_path), parts=['protocol'], seeds=[1])
  assert [engine.run_key(r) for r in only['protocol']] == [
      'reference_cartpole/seed_1', 'reference_mountaincar/seed_1']


def test_an_unknown_part_is_named_with_the_parts(tmp_path):
  with pytest.raises(ValueError, match=r"unknown part\(s\) \['crl_headlines'\]"):
    engine.check_parts(shipped(tmp_path), ['protocol', 'crl_headlines'])


def measured_table():
  rows = []
  for run, variant, rate in (('crl_baseline/seed_0', 'crl_baseline', 1000.0),
                             ('crl_baseline/seed_1', 'crl_baseline', 500.0),
                             ('crl_big_softmoe/seed_0', 'crl_big_softmoe', 100.0)):
    for iteration in range(4):
      for task in ('CartPole', 'MountainCar'):
        rows.append(dict(run=run, variant=variant, iteration=iteration, task=task,
                         train_steps_per_second=rate, eval_seconds=0.5))
  return pd.DataFrame(rows)


def test_times_come_from_measured_runs_then_the_cost_table(tmp_path):
  measured = engine.measured_seconds(measured_table())
  # 4 iterations x (1000 steps / rate + 0.5 s of evaluation).
  assert measured['crl_baseline'] == pytest.approx(((4 * 1.5) + (4 * 2.5)) / 2)
  assert measured['crl_big_softmoe'] == pytest.approx(4 * 10.5)
  cost = tmp_path / 'cost.csv'
  cost.write_text('variant,n,parameters,train ms,act ms\ncrl_baseline,-,1,2.0,0.1\n'
                  'crl_big_softmoe,4,4,8.0,0.4\ncrl_big_topk,4,4,4.0,0.2\n'
                  'crl_big_soft_to_sparse (s = 1),4,4,3.0,0.2\n')
  ratios = engine.cost_ratios(str(cost))
  assert ratios['crl_big_topk'] == 2.0 and ratios['mtrl_big_topk'] == 2.0
  assert 'crl_big_soft_to_sparse (s = 1)' not in ratios
  planned = engine.plan(shipped(tmp_path), parts=['crl_headline', 'crl_placements'], seeds=[0])
  runs = [r for part in planned.values() for r in part]
  by_point = dict(zip([r.point for r in runs], engine.estimate_seconds(runs, measured, ratios)))
  assert by_point['crl_baseline'] == measured['crl_baseline']
  # Big SoftMoE took 42 s where its ratio predicts 8 x 4 = 32: scale 42 / 32.
  assert by_point['crl_big_topk'] == pytest.approx(8 * 2 * 42 / 32)
  assert by_point['crl_all_softmoe'] == pytest.approx(25.0)  # Not in the table: the mean.
  lines = engine.describe(planned, {'crl_baseline/seed_0'}, measured, 2, ratios)
  assert lines[0].startswith('  crl_headline: 3 runs, 1 done, 2 to run')
  assert 'expected wall time' in lines[-1] and 'with 2 run(s) at a time' in lines[-1]
  assert engine.cost_ratios(str(tmp_path / 'missing.csv')) == {}


def test_a_run_paused_for_a_few_iterations_is_timed_at_its_usual_rate():
  # Fails if each iteration's own rate is used: the paused iteration (10
  # steps/s) would add 100 s of compute the run never did.
  table = measured_table()
  table = table[table['run'] == 'crl_big_softmoe/seed_0'].copy()
  table.loc[table['iteration'] == 2, 'train_steps_per_second'] = 10.0
  assert engine.measured_seconds(table)['crl_big_softmoe'] == pytest.approx(4 * 10.5)


def test_a_minatar_variant_is_estimated_from_its_own_setting_baseline(tmp_path):
  # Fails if the baseline of 'minatar_crl_big_softmoe' is looked up as
  # 'minatar_baseline' (the first word), or MinAtar ratios leak into classic ones.
  assert engine.baseline_of('minatar_crl_big_softmoe') == 'minatar_crl_baseline'
  assert engine.baseline_of('mtrl_big_topk') == 'mtrl_baseline'
  cost = tmp_path / 'cost.csv'
  cost.write_text('variant,n,parameters,train ms,act ms\nminatar_crl_baseline,-,1,2.0,0.1\n'
                  'minatar_crl_big_softmoe,4,4,10.0,0.4\ncrl_baseline,-,1,4.0,0.1\n'
                  'crl_big_softmoe,4,4,8.0,0.4\n')
  ratios = engine.cost_ratios(str(cost))
  assert ratios['minatar_crl_big_softmoe'] == 5.0
  assert ratios['minatar_mtrl_big_softmoe'] == 5.0
  assert ratios['mtrl_big_softmoe'] == 2.0
  measured = {'minatar_crl_baseline': 100.0}
  run = sweep.Run(gin_files=[], bindings=[], seed=0,
                  base_dir=str(tmp_path / 'minatar_crl_big_softmoe' / 'seed_0'))
  assert engine.estimate_seconds([run], measured, ratios) == [500.0]


def test_with_nothing_measured_the_time_is_said_to_be_unknown(tmp_path):
  planned = engine.plan(shipped(tmp_path), parts=['protocol'], seeds=[0])
  assert 'known once the first runs have finished' in engine.describe(planned, set(), {}, 2)[-1]


def test_a_part_that_requires_the_dormant_table_reruns_runs_logged_without_it(tmp_path):
  # Fails if a rerun part takes an old run (no per-layer dormant rows) as done.
  from moe_dopamine import results  # pylint: disable=g-import-not-at-top
  from tests.studies import synthetic  # pylint: disable=g-import-not-at-top
  scores = synthetic.table({'crl_middle_topk': 0.5}, seeds=[0, 1], noise=0.0)
  dormant = pd.DataFrame([dict(run='crl_middle_topk/seed_1', variant='crl_middle_topk', seed=1,
                               setting='crl', iteration=0, layer='hidden_0', units=512,
                               **{'dormant_tau0.025': 0.1, 'dormant_tau0.1': 0.2})],
                         columns=results.DORMANT_COLUMNS)
  results.add(str(tmp_path / 'results'), [(scores, pd.DataFrame(columns=results.EXPERT_COLUMNS),
                                           dormant)])
  study = shipped(tmp_path)
  done, _ = engine.done_runs(study, str(tmp_path / 'results'))
  assert done['dormant_reruns'] == {'crl_middle_topk/seed_1'}
  assert 'crl_middle_topk/seed_0' in done['crl_placements']
  planned = engine.plan(study, parts=['dormant_reruns'], seeds=[0, 1])
  lines = engine.describe(planned, done, {}, 2)
  assert lines[0].startswith('  dormant_reruns: 8 runs, 1 done, 7 to run')


def test_runs_launch_seed_by_seed_across_variants_and_parts(tmp_path):
  planned = engine.plan(shipped(tmp_path), parts=['power_crl', 'task_id_crl'])
  order = engine.launch_order([r for runs in planned.values() for r in runs])
  assert [r.seed for r in order] == sorted(r.seed for r in order)
  seed_5 = [engine.run_key(r) for r in order if r.seed == 5]
  # Within a seed, the spec's order: every variant of the first part, then the next.
  assert seed_5 == [f'{v}/seed_5' for v in (
      'crl_baseline', 'crl_baseline_matched', 'crl_big_softmoe', 'crl_big_topk',
      'crl_final_topk', 'crl_big_hardcoded',
      'crl_baseline__task_id_input-network',
      'crl_big_softmoe__task_id_input-router')]
  # The task-conditioned controls' seeds 0-4 come before any seed 5.
  assert [r.seed for r in order[:10]] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_a_parts_gin_files_follow_each_variants_own_and_keep_its_name(tmp_path):
  path = tmp_path / 'spec.toml'
  path.write_text('[study]\nname = "p"\nseeds = [0]\nwindow = 1\n'
                  '[[part]]\nname = "a"\nvariants = ["crl_baseline"]\n'
                  'gin_files = ["base/protocol.gin"]\n')
  import dataclasses  # pylint: disable=g-import-not-at-top
  study = dataclasses.replace(spec_lib.load(str(path), root=test_runs.REPO),
                              runs_dir=str(tmp_path / 'runs'))
  assert study.part('a').gin_files == (os.path.join('gin_configs', 'base', 'protocol.gin'),)
  (run,) = engine.plan(study)['a']
  assert engine.run_key(run) == 'crl_baseline/seed_0'
  assert [os.path.relpath(g, test_runs.REPO) for g in run.gin_files] == [
      os.path.join('gin_configs', 'crl_baseline.gin'),
      os.path.join('gin_configs', 'base', 'protocol.gin')]
  assert run.command()[4:6] == [f'--gin_files={g}' for g in run.gin_files]
  path.write_text(path.read_text().replace('base/protocol.gin', 'base/nothing.gin'))
  with pytest.raises(spec_lib.SpecError, match=r"gin file 'gin_configs/base/nothing.gin' does "
                                                r"not exist"):
    spec_lib.load(str(path), root=test_runs.REPO)


def test_a_runs_time_counts_its_own_training_steps():
  table = measured_table()
  # Tables written before train_steps was recorded: 1,000 steps an iteration.
  assert engine.run_seconds(table)['crl_big_softmoe/seed_0'] == pytest.approx(4 * 10.5)
  table['train_steps'] = 10000.0  # MinAtar's iterations: 10,000 steps each.
  table.loc[table['iteration'] == 0, 'train_steps'] = np.nan  # One row from an older table.
  assert engine.run_seconds(table)['crl_big_softmoe/seed_0'] == pytest.approx(
      10.5 + 3 * (100 + 0.5))


def test_the_results_record_each_iterations_training_steps():
  from moe_dopamine import results  # pylint: disable=g-import-not-at-top
  # pylint: disable=protected-access
  assert results._train_steps({'train_episode_lengths': [400, 350, 252]}) == 1002.0
  assert np.isnan(results._train_steps({}))
  assert 'train_steps' in results.SCORE_COLUMNS


def test_a_runs_time_includes_the_checkpoints_its_iterations_logged():
  table = measured_table()
  counted = 4 * 10.5  # Big SoftMoE: 4 x (1000 steps / 100 per second + 0.5).
  big = table['run'] == 'crl_big_softmoe/seed_0'
  # Each iteration took 12.6 s in all: 2.1 s of checkpoint and logging; one
  # iteration was paused for a minute, which the median ignores.
  table.loc[big, 'iteration_seconds'] = 12.6
  table.loc[big & (table['iteration'] == 2), 'iteration_seconds'] = 72.6
  seconds = engine.run_seconds(table)
  assert seconds['crl_big_softmoe/seed_0'] == pytest.approx(counted * 1.2)
  assert seconds['crl_baseline/seed_0'] == pytest.approx(4 * 1.5)  # Not logged: as counted.


def test_the_time_split_shares_each_runs_iterations_among_phases():
  table = measured_table()
  assert not len(engine.time_split(table))  # Nothing logged: no split.
  big = table['run'] == 'crl_big_softmoe/seed_0'
  for column, value in (('training_seconds', 6.0), ('acting_seconds', 3.0),
                        ('diagnostics_seconds', 0.5), ('eval_seconds', 0.5),
                        ('checkpoint_seconds', 1.0), ('iteration_seconds', 12.0)):
    table.loc[big, column] = value
  # One iteration paused for a minute while training: the medians ignore it.
  paused = big & (table['iteration'] == 1)
  table.loc[paused, 'training_seconds'] = 66.0
  table.loc[paused, 'iteration_seconds'] = 72.0
  split = engine.time_split(table)
  assert list(split.index) == ['crl_big_softmoe']  # Only the run that logged them.
  row = split.loc['crl_big_softmoe']
  # 4 x (1000 steps / 100 per second + 0.5 s) x 12 / 10.5.
  assert row['runs'] == 1 and row['minutes'] == pytest.approx(4 * 12.0 / 60)
  assert row['training'] == pytest.approx(0.5) and row['acting'] == pytest.approx(0.25)
  assert row['checkpoint'] == pytest.approx(1 / 12) and row['other'] == pytest.approx(1 / 12)


def test_a_time_limit_starts_only_runs_expected_to_end_within_it(tmp_path):
  planned = engine.plan(shipped(tmp_path), parts=['power_crl'], seeds=[20])
  runs = planned['power_crl'][:3]
  now = [100.0]
  estimates = {engine.run_key(runs[0]): 600.0, engine.run_key(runs[1]): 1200.0,
               engine.run_key(runs[2]): None}
  may_start = engine.within(900.0, estimates, clock=lambda: now[0])
  assert may_start(runs[0]) and not may_start(runs[1])
  assert may_start(runs[2])  # Not estimated: starts while time is left.
  now[0] += 400.0  # 500 s left.
  assert not may_start(runs[0]) and may_start(runs[2])
  now[0] += 600.0  # Past the limit.
  assert not may_start(runs[2])


def test_runs_a_time_limit_refuses_are_left_unstarted(tmp_path):
  # Fails if a refused run is started anyway or dropped without a word.
  planned = engine.plan(shipped(tmp_path), parts=['power_crl'], seeds=[20])
  runs = planned['power_crl'][:2]

  class NoStop:
    signum = None

  updates = []

  class Quiet:
    def update(self, run, code):
      updates.append((run, code))

  outcome = sweep.run_local(runs, 2, Quiet(), NoStop(), may_start=lambda run: False)
  assert outcome.deferred == runs and not outcome.finished and not updates
  assert not any(os.path.exists(r.base_dir) for r in runs)


def test_the_study_refuses_a_time_limit_on_ray_and_a_bad_one(capsys):
  assert study_command.main(['run', '--time_limit=2h', '--ray_address=auto']) == 2
  assert '--time_limit applies to local runs' in capsys.readouterr().err
  assert study_command.main(['plan', '--time_limit=tomorrow']) == 2
  assert "--time_limit='tomorrow' is not a duration" in capsys.readouterr().err
