"""Tests of the study figures on small synthetic results tables."""

import os
import re

from matplotlib import collections as mcollections
from matplotlib import colors as mcolors
from matplotlib import image as mimage
from matplotlib import pyplot as plt
import numpy as np
import pandas as pd
import pytest

from moe_dopamine.studies import figures
from moe_dopamine.studies import measurements

ITERATIONS = 12
SWITCH = 6  # The second task's stretch starts here.
SEEDS = (0, 1, 2)
TASKS = ('CartPole', 'MountainCar')
RESAMPLES = 200  # Enough for a band; keeps the tests light.
SAFE = re.compile(r'^[A-Za-z0-9_.-]+$')


def _score(variant, seed, iteration, task):
  """A deterministic score in [0, 1] that differs by variant, seed, task."""
  offset = (sum(map(ord, variant)) % 7) / 20 + 0.03 * seed + (0.1 if task == 'MountainCar' else 0)
  return float(np.clip(offset + 0.04 * iteration, 0.0, 1.0))


def _runs(variant, setting, schedule, tasks=TASKS, seeds=SEEDS):
  rows = []
  for seed in seeds:
    for iteration, train_task in enumerate(schedule):
      for task in tasks:
        rows.append({
            'run': f'{variant}/seed_{seed}', 'variant': variant, 'seed': seed,
            'setting': setting, 'iteration': iteration, 'task': task,
            'train_task': train_task, 'eval_score': _score(variant, seed, iteration, task),
            'dormant_tau0.1': 0.1 + 0.01 * iteration + 0.02 * seed,
        })
  return rows


@pytest.fixture(name='scores')
def fixture_scores():
  forward = ['CartPole'] * SWITCH + ['MountainCar'] * (ITERATIONS - SWITCH)
  reverse = ['MountainCar'] * SWITCH + ['CartPole'] * (ITERATIONS - SWITCH)
  rows = (_runs('crl_baseline', 'crl', forward) + _runs('crl_moe', 'crl', forward)
          + _runs('crl_moe__clear', 'crl', forward) + _runs('crl_reversed', 'crl', reverse)
          + _runs('mtrl_moe', 'mtrl', ['all'] * ITERATIONS))
  for task in TASKS:
    rows += _runs(f'reference_{task.lower()}', 'single', [task] * SWITCH, tasks=(task,))
  return pd.DataFrame(rows)


REFERENCES = {task: f'reference_{task.lower()}' for task in TASKS}


def _png_shape(path):
  assert SAFE.match(os.path.basename(path)), path
  return mimage.imread(path).shape


def _by_gid(axis, gid, kind=None):
  artists = [a for a in axis.get_children() if a.get_gid() == gid]
  return [a for a in artists if kind is None or isinstance(a, kind)]


def _reference_start(axis):
  (line,) = _by_gid(axis, 'reference')
  return line.get_xdata()[0]


def _stretch_colours(axis):
  """{x-centre of each shaded stretch: its RGB}; a stretch start..stop-1
  spans start - 0.5 .. stop - 0.5."""
  out = {}
  for patch in _by_gid(axis, 'stretch'):
    if hasattr(patch, 'get_width'):  # A Rectangle (matplotlib >= 3.9).
      start, stop = patch.get_x(), patch.get_x() + patch.get_width()
    else:  # A Polygon.
      start, stop = np.min(patch.get_xy()[:, 0]), np.max(patch.get_xy()[:, 0])
    out[round((start + stop) / 2, 1)] = mcolors.to_rgb(patch.get_facecolor())
  return out


def test_task_colour_depends_only_on_the_task():
  forward = [figures.task_colour(t) for t in ('CartPole', 'MountainCar', 'Pong')]
  backward = [figures.task_colour(t) for t in ('Pong', 'MountainCar', 'CartPole')][::-1]
  assert forward == backward
  assert figures.task_colour('CartPole') != figures.task_colour('MountainCar')
  assert mcolors.is_color_like(figures.task_colour('Pong'))


def test_band_of_constant_seeds_is_that_value():
  frame = pd.DataFrame({'run': ['a', 'b', 'c'] * 2, 'iteration': [0] * 3 + [1] * 3,
                        'eval_score': [0.25] * 3 + [0.5] * 3})
  iterations, mean, low, high = figures.band(frame, resamples=RESAMPLES)
  np.testing.assert_array_equal(iterations, [0, 1])
  for got in (mean, low, high):
    np.testing.assert_allclose(got, [0.25, 0.5], rtol=0, atol=1e-12)


def test_band_of_two_seeds_brackets_the_mean():
  frame = pd.DataFrame({'run': ['a', 'b'], 'iteration': [3, 3], 'eval_score': [0.2, 0.8]})
  _, mean, low, high = figures.band(frame, resamples=RESAMPLES)
  assert low[0] <= mean[0] <= high[0]
  assert low[0] < high[0]
  assert mean[0] == pytest.approx(0.5)


def test_curves_place_the_reference_at_the_stretch_and_the_baseline_everywhere(scores, tmp_path):
  variants = ['crl_baseline', 'crl_moe', 'crl_reversed', 'mtrl_moe']
  paths, axes = figures.curves(
      scores, variants, 'crl_baseline', REFERENCES, str(tmp_path / 'curves crl'),
      labels={'crl_moe': 'MoE'}, resamples=RESAMPLES, return_axes=True)
  assert [os.path.basename(p) for p in paths] == [
      'curves_crl_CartPole.png', 'curves_crl_MountainCar.png']
  for path in paths:
    height, width, _ = _png_shape(path)
    assert width >= 700 and height >= 300
  # The reference starts where the panel's variant first trains the task.
  assert _reference_start(axes['CartPole']['crl_moe']) == 0
  assert _reference_start(axes['MountainCar']['crl_moe']) == SWITCH
  assert _reference_start(axes['MountainCar']['crl_reversed']) == 0
  assert _reference_start(axes['CartPole']['crl_reversed']) == SWITCH
  assert _reference_start(axes['MountainCar']['mtrl_moe']) == 0
  (reference,) = _by_gid(axes['MountainCar']['crl_moe'], 'reference')
  assert len(reference.get_xdata()) == SWITCH  # As many iterations as the reference has.
  for task in TASKS:
    for variant, axis in axes[task].items():
      bands = {gid: len(_by_gid(axis, gid, mcollections.PolyCollection))
               for gid in ('variant_band', 'baseline_band', 'reference_band')}
      expected_variant = 0 if variant == 'crl_baseline' else 1
      assert bands == {'variant_band': expected_variant, 'baseline_band': 1,
                       'reference_band': 1}, (task, variant)
      assert axis.get_ylim()[1] >= 1.1
      assert 'MoE (n=3)' in axes[task]['crl_moe'].get_title()
  # Labels on the outer panels; one legend for the figure, none on the data.
  first = axes['CartPole']['crl_baseline']
  assert first.get_ylabel() == 'normalized score'
  assert first.get_xlabel() == 'iteration (1,000 training steps)'
  assert len(first.figure.legends) == 1
  assert all(axis.get_legend() is None for axis in axes['CartPole'].values())
  # Stretch labels sit above the data (scores <= 1) in axes coordinates.
  low, high = first.get_ylim()
  for text in _by_gid(first, 'stretch_label'):
    assert text.get_position()[1] > (1.0 - low) / (high - low)
  # A task keeps its shade whatever the order: CartPole first, then second.
  forward = _stretch_colours(axes['CartPole']['crl_moe'])
  reverse = _stretch_colours(axes['CartPole']['crl_reversed'])
  assert forward[2.5] == reverse[8.5] == mcolors.to_rgb(figures.task_colour('CartPole'))
  assert forward[8.5] == reverse[2.5] == mcolors.to_rgb(figures.task_colour('MountainCar'))
  assert plt.get_fignums() == []  # Nothing left open in pyplot.


def test_curves_reject_an_unknown_variant(scores, tmp_path):
  with pytest.raises(ValueError, match='crl_typo'):
    figures.curves(scores, ['crl_typo'], 'crl_baseline', REFERENCES, str(tmp_path / 'c'))


def test_overlay_draws_every_arm_in_one_panel(scores, tmp_path):
  arms = {'replay kept': 'crl_moe', 'replay cleared': 'crl_moe__clear'}
  paths, axes = figures.overlay(scores, arms, REFERENCES, str(tmp_path / 'overlay'),
                                resamples=RESAMPLES, return_axes=True)
  assert len(paths) == len(TASKS)
  for path in paths:
    height, width, _ = _png_shape(path)
    assert width >= 700 and height >= 300
  for task in TASKS:
    axis = axes[task]
    assert len(_by_gid(axis, 'arm_band', mcollections.PolyCollection)) == len(arms)
    colours = {mcolors.to_hex(line.get_color()) for line in _by_gid(axis, 'arm')}
    assert len(colours) == len(arms)
    assert len(_by_gid(axis, 'reference_band', mcollections.PolyCollection)) == 1
  assert _reference_start(axes['MountainCar']) == SWITCH


def test_dormant_marks_switches_and_draws_the_baseline_in_every_panel(scores, tmp_path):
  frame = figures.dormant_frame(scores)
  variants = ['crl_baseline', 'crl_moe', 'crl_reversed']
  path, axes = figures.dormant(frame, variants, 'crl_baseline', str(tmp_path / 'dormant.png'),
                               resamples=RESAMPLES, return_axes=True)
  height, width, _ = _png_shape(path)
  assert width >= 700 and height >= 300
  baseline_colours = set()
  for variant in variants:
    axis = axes[variant]
    (band,) = _by_gid(axis, 'baseline_band', mcollections.PolyCollection)
    baseline_colours.add(mcolors.to_hex(band.get_facecolor()[0], keep_alpha=False))
    (switch,) = _by_gid(axis, 'switch')
    assert switch.get_xdata()[0] == SWITCH - 0.5
  assert baseline_colours == {figures.BASELINE_COLOUR.lower()}
  assert len({axis.get_ylim() for axis in axes.values()}) == 1  # Shared y.
  _, no_schedule = figures.dormant(frame.drop(columns='train_task'), variants, 'crl_baseline',
                                   str(tmp_path / 'plain.png'), resamples=RESAMPLES,
                                   return_axes=True)
  assert not _by_gid(no_schedule['crl_moe'], 'switch')


def test_usage_draws_one_heatmap_per_seed(tmp_path):
  rows = []
  for seed in SEEDS:
    for iteration in (5, 11):
      for layer in ('hidden_1', 'output'):
        for task in TASKS:
          for expert in range(4):
            rows.append({'run': f'crl_moe/seed_{seed}', 'variant': 'crl_moe', 'seed': seed,
                         'setting': 'crl', 'iteration': iteration, 'task': task,
                         'layer': layer, 'expert': expert, 'usage': 0.25,
                         'top1': float(expert == (seed + iteration) % 4)})
  experts = pd.DataFrame(rows)
  path, axes = figures.usage(experts, 'crl_moe', str(tmp_path / 'usage crl_moe.png'),
                             return_axes=True)
  assert os.path.basename(path) == 'usage_crl_moe.png'
  height, width, _ = _png_shape(path)
  assert width >= 700 and height >= 300
  assert sorted(axes) == sorted((layer, seed) for layer in ('hidden_1', 'output')
                                for seed in SEEDS)
  for (_, seed), axis in axes.items():
    (image,) = _by_gid(axis, 'heatmap')
    assert image.get_clim() == (0, 1)
    matrix = np.asarray(image.get_array())
    assert matrix.shape == (len(TASKS), 4)
    # Each seed at its own last iteration, not averaged with the others.
    np.testing.assert_array_equal(matrix[0], np.eye(4)[(seed + 11) % 4])
    assert all(text.get_fontsize() >= 8 for text in axis.texts)
  figure = next(iter(axes.values())).figure
  assert len(figure.axes) == len(axes) + 1  # One colour bar.


def test_the_iteration_label_gives_the_steps_the_runs_took_per_iteration():
  # Fails if the label is fixed at classic control's 1,000 steps.
  assert figures.iteration_label(pd.DataFrame({'train_steps': [10075.0, 10012.0, 9990.0]})) == (
      'iteration (10,000 training steps)')
  assert figures.iteration_label(pd.DataFrame({'x': [1]})) == 'iteration (1,000 training steps)'


def test_usage_wraps_many_seeds_onto_rows_per_layer(tmp_path):
  # 12 seeds at 5 per row: 3 rows of heatmaps per layer, the last with 2.
  rows = [{'run': f'crl_moe/seed_{seed}', 'variant': 'crl_moe', 'seed': seed, 'setting': 'crl',
           'iteration': 3, 'task': task, 'layer': layer, 'expert': expert, 'usage': 0.25,
           'top1': float(expert == seed % 4)}
          for seed in range(12) for layer in ('hidden_1', 'output') for task in TASKS
          for expert in range(4)]
  path, axes = figures.usage(pd.DataFrame(rows), 'crl_moe', str(tmp_path / 'wrap.png'),
                             return_axes=True, per_row=5)
  height, width, _ = _png_shape(path)
  assert height > width / 3  # Not one long strip.
  assert len(axes) == 24
  figure = axes[('output', 0)].figure
  # 2 layers x 3 rows x 5 columns, 6 of them blank, plus the colour bar.
  assert len(figure.axes) == 2 * 3 * 5 + 1
  assert sum(not axis.axison for axis in figure.axes[:-1]) == 2 * 3
  positions = {key: axis.get_position() for key, axis in axes.items()}
  # Seed 5 starts the second row of its layer, below seed 0, and the output
  # layer's rows all lie below the hidden layer's.
  assert positions[('hidden_1', 5)].y0 < positions[('hidden_1', 0)].y0
  assert positions[('hidden_1', 5)].x0 == positions[('hidden_1', 0)].x0
  assert max(p.y1 for (layer, _), p in positions.items() if layer == 'output') < min(
      p.y0 for (layer, _), p in positions.items() if layer == 'hidden_1') + 1e-6
  np.testing.assert_array_equal(
      np.asarray(_by_gid(axes[('output', 7)], 'heatmap')[0].get_array())[0], np.eye(4)[3])


def test_aligned_usage_draws_the_matched_mean_per_layer(tmp_path):
  # Each seed routes task t to expert (t + seed) % 4: matched, every run
  # sends each task to one expert of its own, so the mean is a permutation
  # matrix of ones; the unmatched mean would be 0.25 everywhere.
  rows = []
  for seed in SEEDS:
    for layer in ('hidden_1', 'output'):
      for t, task in enumerate(TASKS):
        for expert in range(4):
          rows.append({'run': f'crl_moe/seed_{seed}', 'variant': 'crl_moe', 'seed': seed,
                       'setting': 'crl', 'iteration': 11, 'task': task, 'layer': layer,
                       'expert': expert, 'usage': 0.25, 'top1': float(expert == (t + seed) % 4)})
  by_layer = measurements.aligned_usage(pd.DataFrame(rows), 'crl_moe')
  assert sorted(by_layer) == ['hidden_1', 'output']
  path, axes = figures.aligned_usage(by_layer, 'crl_moe', str(tmp_path / 'aligned.png'),
                                     return_axes=True)
  assert os.path.exists(path)
  for layer, axis in axes.items():
    tasks, aligned, seeds = by_layer[layer]
    assert tasks == sorted(TASKS) and seeds == list(SEEDS)
    (image,) = _by_gid(axis, 'heatmap')
    mean = np.asarray(image.get_array())
    assert mean.shape == (len(TASKS), 4)
    np.testing.assert_allclose(mean.max(axis=1), 1.0)
    assert len({int(np.argmax(row)) for row in mean}) == len(TASKS)
