"""The screening: prefixes of single-task runs, the learned criterion, the choice."""

import os

import numpy as np
import pandas as pd
import pytest

from moe_dopamine.studies import screening
from moe_dopamine.studies import spec as spec_lib
from moe_dopamine.studies import tables
from tests import runs as test_runs

SPEC = os.path.join(test_runs.REPO, 'studies', 'minatar.toml')
SCREEN = spec_lib.Screening(part='screening', iteration_steps=10, stretches=(50, 100, 150),
                            window=2, sigmas=3.0, min_ratio=2.0, min_seeds=4)
RANDOM = {'A': np.array([0.0, 1.0, 2.0, 1.0]), 'B': np.array([1.0, 1.0, 3.0, 3.0])}


def _scores(curves):
  """curves: {(task, seed): [return at iteration 0, 1, ...]}."""
  rows = [{'task': task, 'seed': seed, 'iteration': i, 'eval_return': value,
           'eval_episodes': 10.0}
          for (task, seed), values in curves.items() for i, value in enumerate(values)]
  return pd.DataFrame(rows)


def test_the_threshold_is_the_larger_of_the_two_bars():
  # mean 1, sd sqrt(2/3): 3 standard errors of a 20-episode mean is 0.548 above.
  assert screening.learned_threshold(RANDOM['A'], 20, 3.0, 1.5) == pytest.approx(
      1 + 3 * np.sqrt(2 / 3) / np.sqrt(20))
  assert screening.learned_threshold(RANDOM['A'], 20, 3.0, 2.0) == pytest.approx(2.0)
  # A negative random return: above it by (ratio - 1) times its size.
  assert screening.learned_threshold([-600.0, -600.0], 20, 3.0, 1.5) == pytest.approx(-300.0)


def test_a_stretch_reads_the_last_window_of_evaluations_within_it():
  scores = _scores({('A', 0): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]})
  values = screening.final_values(scores, 50, 10, 2)
  assert values == {('A', 0): (3.5, 20.0)}  # Iterations 3 and 4: steps 40-50.
  assert screening.final_values(scores, 150, 10, 3) == {('A', 0): (13.0, 30.0)}
  # A run that has not reached the stretch has no value for it.
  assert screening.final_values(_scores({('A', 0): [0, 1, 2, 3]}), 50, 10, 2) == {}


def _grid():
  curves = {}
  for seed in range(5):
    curves[('A', seed)] = [0.5] * 3 + [5.0] * 12           # learned by step 50
    late = seed < 4                                         # 4 seeds learn B at 100
    curves[('B', seed)] = [1.0] * 8 + [9.0 if late else 2.0] * 7
  return curves


def test_the_shortest_stretch_every_task_passes_is_chosen_with_exact_rates():
  result = screening.table(_scores(_grid()), SCREEN, seeds=range(5), random_returns=RANDOM)
  by = result.set_index(['task', 'stretch'])
  assert by.loc[('A', 50), 'learned'] == 5 and by.loc[('A', 50), 'passes']
  assert by.loc[('B', 50), 'learned'] == 0 and not by.loc[('B', 50), 'passes']
  assert by.loc[('B', 100), 'learned'] == 4 and by.loc[('B', 100), 'passes']
  lines = tables.screening_lines(result, SCREEN.min_seeds)
  # The rate with its Clopper-Pearson 95% interval (4 of 5: 0.28 to 0.99).
  assert '| B | 100 | 4/5 = 0.80 [0.28, 0.99] | 9.00 | 4.00 | yes |' in lines
  assert by.loc[('B', 100), 'threshold'] == pytest.approx(4.0)  # 2 x the random mean.
  assert screening.choose(result) == screening.Choice(100, True, [], [])


def test_a_stretch_is_pending_until_every_seed_reached_it_and_failures_are_named():
  curves = _grid()
  curves[('B', 0)] = curves[('B', 0)][:9]  # Seed 0 of B is still running.
  result = screening.table(_scores(curves), SCREEN, seeds=range(5), random_returns=RANDOM)
  by = result.set_index(['task', 'stretch'])
  # 3 of the 4 seeds there learned B at 100 (seed 4 did not): seed 0 decides.
  assert by.loc[('B', 100), 'passes'] is None
  assert screening.choose(result) == screening.Choice(None, False, [100, 150], [])
  # 0 of 4 at 50 cannot reach 4 of 5: decided before the last seed.
  assert by.loc[('B', 50), 'passes'] == False  # pylint: disable=g-explicit-bool-comparison
  curves[('A', 4)] = curves[('A', 4)][:4]  # A's seed 4 has not reached 50 yet...
  result = screening.table(_scores(curves), SCREEN, seeds=range(5), random_returns=RANDOM)
  # ...but 4 of A's seeds learned it: A passes at 50 already.
  assert result.set_index(['task', 'stretch']).loc[('A', 50), 'passes'] == True  # pylint: disable=g-explicit-bool-comparison
  failing = _grid()
  for seed in range(5):
    failing[('B', seed)] = [1.0] * 15
  result = screening.table(_scores(failing), SCREEN, seeds=range(5), random_returns=RANDOM)
  assert screening.choose(result) == screening.Choice(150, False, [], ['B'])


def test_the_minatar_spec_registers_its_screening():
  study = spec_lib.load(SPEC, root=test_runs.REPO)
  assert study.screening.part == 'screening'
  assert study.screening.stretches == (100000, 200000, 300000, 400000)
  assert [v.bindings for v in study.part('screening').variants] == [
      ("MultiTaskEnvironment.task_names=['Breakout']",),
      ("MultiTaskEnvironment.task_names=['SpaceInvaders']",),
      ("MultiTaskEnvironment.task_names=['Asterix']",)]


@pytest.mark.parametrize('change, message', [
    ({'stretches': [100000, 155000]}, 'not whole numbers of iterations'),
    ({'min_seeds': 6}, "min_seeds=6 but part 'screening' has 5 seeds"),
    ({'part': 'grid'}, "part 'grid' is not a part of the spec"),
    ({'window': 20}, 'is longer than the stretch'),
    ({'stretches': [200000, 100000]}, 'must be increasing'),
])
def test_a_bad_screening_table_is_refused_with_its_fix(tmp_path, change, message):
  head, table = open(SPEC).read().split('[screening]')
  for key, value in change.items():
    table = '\n'.join(f'{key} = {value!r}'.replace("'", '"') if line.startswith(f'{key} =')
                      else line for line in table.splitlines())
  text = head + '[screening]' + table
  path = tmp_path / 'spec.toml'
  path.write_text(text)
  with pytest.raises(spec_lib.SpecError, match=message.replace('(', r'\(')):
    spec_lib.load(str(path), root=test_runs.REPO)


def test_the_report_shows_the_rates_the_choice_and_the_curves(tmp_path):
  from moe_dopamine import results  # pylint: disable=g-import-not-at-top
  from moe_dopamine.studies import report  # pylint: disable=g-import-not-at-top
  spec = tmp_path / 'spec.toml'
  spec.write_text(
      '[study]\nname = "screen"\nseeds = [0, 1, 2, 3, 4]\nwindow = 5\n'
      f'results = "{tmp_path}/results"\nout = "{tmp_path}/report"\n'
      '[[part]]\nname = "screening"\nvariants = [\n'
      '  {gin = "minatar_screening", bindings = ["MultiTaskEnvironment.task_names=[\'Breakout\']"]},\n'
      '  {gin = "minatar_screening", bindings = ["MultiTaskEnvironment.task_names=[\'Asterix\']"]},\n]\n'
      '[screening]\npart = "screening"\niteration_steps = 10\n'
      'stretches = [50, 100, 150]\nwindow = 2\nsigmas = 3.0\nmin_ratio = 2.0\n'
      'min_seeds = 4\n')
  study = spec_lib.load(str(spec), root=test_runs.REPO)
  curves = {}
  for seed in range(5):
    curves[('Breakout', seed)] = [0.0] * 3 + [5.0] * 12
    curves[('Asterix', seed)] = [0.0] * 8 + [9.0 if seed < 4 else 0.0] * 7
  frame = _scores(curves)
  names = {task: f"minatar_screening__task_names-{task}" for task in ('Breakout', 'Asterix')}
  frame = frame.assign(variant=frame['task'].map(names),
                       run=[f'{names[t]}/seed_{s}' for t, s in zip(frame['task'], frame['seed'])])
  assert set(names.values()) <= set(study.variant_names())
  scores = pd.DataFrame(frame, columns=results.SCORE_COLUMNS).assign(
      setting='single', train_task=frame['task'], eval_score=0.0, num_parameters=1)
  results.add(str(tmp_path / 'results'), [(scores,)])
  text = open(report.build(study)).read()
  assert '| Asterix | 100 | 4/5 = 0.80 [0.28, 0.99] | 9.00 |' in text
  assert '| Asterix | 50 | 0/5 = 0.00 [0.00, 0.52] |' in text
  assert '**Chosen: 100 training steps per task**' in text
  assert (tmp_path / 'report' / 'figures' / 'screening_screening.png').exists()
  assert '## Verdicts' not in text  # No claim is registered yet.
