"""The plotter on small synthetic logs: the files and the table it makes."""

import json
import os
import pickle

import matplotlib.axes
import numpy as np

from moe_dopamine import plot
from moe_dopamine import run_folder


def write_run(path, gin_file, seed, scale):
  os.makedirs(path / 'logs')
  data = {}
  for i in range(6):
    data[f'iteration_{i}'] = {
        'train_task': [0 if i < 3 else 1],
        'eval_average_return': [0.0],
        'eval_average_return_CartPole': [100.0 * scale * (i + 1)],
        'eval_normalized_score_CartPole': [min(1.0, 0.2 * scale * (i + 1))],
        'eval_average_return_MountainCar': [-200.0 + 10 * i],
        'eval_normalized_score_MountainCar': [0.1 * i],
        'dormant_fraction_tau0.025': [0.1 * scale],
        'dormant_fraction_tau0.1': [0.2 * scale],
    }
    if i < 5:  # The last iteration measured no diagnostics.
      data[f'iteration_{i}'].update({
          'expert_usage_CartPole/big': [0.7, 0.1, 0.1, 0.1],
          'expert_usage_MountainCar/big': [0.1, 0.1, 0.1, 0.7],
          'expert_top1_CartPole/big': [1.0, 0.0, 0.0, 0.0],
          'expert_top1_MountainCar/big': [0.0, 0.0, 0.0, 1.0],
      })
  with open(path / 'logs' / 'log_5', 'wb') as f:
    pickle.dump(data, f)
  with open(path / run_folder.RUN_INFO, 'w') as f:
    json.dump({'gin_files': [gin_file], 'gin_bindings': [f'MoERunner.seed={seed}'],
               'task_names': ['CartPole', 'MountainCar'], 'num_parameters': 1000 + seed}, f)


def test_plotter_writes_figures_and_a_summary(tmp_path, capsys):
  sweep_dir = tmp_path / 'sweep'
  for seed, scale in enumerate([1.0, 0.5]):
    write_run(sweep_dir / 'big' / f'seed_{seed}', '/g/crl_big_softmoe.gin', seed, scale)
  write_run(sweep_dir / 'base' / 'seed_0', '/g/crl_baseline.gin', 0, 0.25)
  os.makedirs(sweep_dir / 'base' / 'seed_1' / 'logs')  # Killed before iteration 0.
  out = tmp_path / 'report'
  assert plot.main([str(sweep_dir), '--out', str(out), '--last', '1']) == 0
  printed = capsys.readouterr()
  assert 'skipping' in printed.err
  files = set(os.listdir(out))
  assert {'curves_CartPole.png', 'curves_MountainCar.png', 'dormant.png',
          'summary.md', 'expert_usage_crl_big_softmoe.png', 'expert_usage_crl_baseline.png'} <= files
  summary = (out / 'summary.md').read_text()
  lines = summary.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith('| variant | runs'))
  end = lines.index('', start)
  columns = lines[start].split(' | ')
  rows = {line.split(' | ')[0][2:]: line.split(' | ') for line in lines[start + 2:end]}
  big, base = rows['crl_big_softmoe'], rows['crl_baseline']
  assert big[columns.index('parameters')] == '1,000, 1,001'
  # The last CartPole score of crl_big_softmoe: min(1, 1.2) and 0.6, two
  # seeds: a range, not an interval.
  assert big[columns.index('CartPole score')] == '0.80 (range 0.60 to 1.00, n=2)'
  assert base[columns.index('CartPole score')] == '0.30 (range 0.30 to 0.30, n=1)'
  # P = mean over tasks of the last score: (1.0 + 0.5) / 2 = 0.75 and
  # (0.6 + 0.5) / 2 = 0.55; mean 0.65.
  assert big[columns.index('P')] == '0.65 (range 0.55 to 0.75, n=2)'
  assert 'IQM' in summary and 'P(variant > crl_baseline)' in summary
  assert '![dormant](dormant.png)' in summary
  assert ('wrote 2 curve figure(s), 1 dormant-neuron figure, 2 expert-usage figure(s)'
          in printed.out)
  (scores, experts), _ = plot.load([str(sweep_dir / 'big' / 'seed_0')])
  assert set(scores['variant']) == {'crl_big_softmoe'}
  # The last iteration measured no usage: the heatmap's data is the one before.
  last = experts[experts['iteration'] == experts['iteration'].max()]
  assert set(last['iteration']) == {4}
  np.testing.assert_allclose(last[last['task'] == 'MountainCar'].sort_values('expert')['usage'],
                             [0.1, 0.1, 0.1, 0.7])


def test_runs_of_two_sweeps_with_the_same_layout_stay_apart(tmp_path):
  for sweep in ('a', 'b'):
    write_run(tmp_path / sweep / 'big' / 'seed_0', '/g/crl_big_softmoe.gin', 0, 1.0)
  (scores, _), _ = plot.load([str(tmp_path / 'a'), str(tmp_path / 'b')])
  assert scores['run'].nunique() == 2
  assert len(scores) == 2 * 6 * 2


def test_plotter_says_when_there_is_nothing_to_read(tmp_path, capsys):
  assert plot.main([str(tmp_path), '--out', str(tmp_path / 'o')]) == 2
  assert 'no run folder' in capsys.readouterr().err




def test_an_unseeded_run_counts_as_one_and_every_figure_is_reported(
    tmp_path, capsys, monkeypatch):
  run = tmp_path / 'run'
  write_run(run, '/g/crl_big_softmoe.gin', 0, 1.0)
  info = json.loads((run / run_folder.RUN_INFO).read_text())
  info['gin_bindings'] = []  # Unseeded: run_info.json says "seed": null.
  info['seed'] = None
  (run / run_folder.RUN_INFO).write_text(json.dumps(info))
  titles = []
  set_title = matplotlib.axes.Axes.set_title
  monkeypatch.setattr(matplotlib.axes.Axes, 'set_title',
                      lambda self, label, *a, **k: titles.append(label) or set_title(
                          self, label, *a, **k))
  assert plot.main([str(run), '--out', str(tmp_path / 'report')]) == 0
  assert 'crl_big_softmoe (n=1)' in titles and not any('(n=0)' in t for t in titles)
  printed = capsys.readouterr().out
  assert ('wrote 2 curve figure(s), 1 dormant-neuron figure, 1 expert-usage figure(s) '
          'and summary.md') in printed
