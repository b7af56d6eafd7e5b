"""Synthetic results tables for the study tests: CRL runs over two tasks,
single-task reference runs, MTRL runs, with known scores."""

import numpy as np
import pandas as pd

from moe_dopamine import results

TASKS = ['CartPole', 'MountainCar']
STRETCH = 8


def crl_rows(variant, seed, level, dormant=0.2, setting='crl', noise=0.0):
  """A run whose score on each task ramps to `level` in its stretch; in CRL
  CartPole then drops to level / 2 while MountainCar trains."""
  rng = np.random.default_rng(seed)
  rows = []
  for iteration in range(2 * STRETCH):
    train_task = TASKS[iteration // STRETCH] if setting == 'crl' else results.MTRL_TASK
    for task in TASKS:
      if setting == 'mtrl' or task == 'CartPole':
        score = level * min(1.0, (iteration + 1) / STRETCH)
        if setting == 'crl' and iteration >= STRETCH:
          score = level / 2
      else:
        score = level * min(1.0, max(0, iteration - STRETCH + 1) / STRETCH)
      score = float(np.clip(score + noise * rng.normal(), 0, 1))
      rows.append(dict(run=f'{variant}/seed_{seed}', variant=variant, seed=seed,
                       setting=setting, task_order='>'.join(TASKS), bindings='',
                       num_parameters=1000, iteration=iteration, task=task,
                       train_task=train_task, eval_return=score * 100, eval_score=score,
                       eval_episodes=10, train_steps_per_second=500.0, eval_seconds=1.0,
                       **{'dormant_tau0.025': dormant / 2, 'dormant_tau0.1': dormant},
                       unused_experts=np.nan))
  return rows


def reference_rows(task, seed, level):
  rows = []
  for iteration in range(STRETCH):
    score = level * (iteration + 1) / STRETCH
    rows.append(dict(run=f'reference_{task.lower()}/seed_{seed}',
                     variant=f'reference_{task.lower()}', seed=seed, setting='single',
                     task_order=task, bindings='', num_parameters=1000, iteration=iteration,
                     task=task, train_task=task, eval_return=score, eval_score=score,
                     eval_episodes=10, train_steps_per_second=500.0, eval_seconds=1.0,
                     **{'dormant_tau0.025': 0.1, 'dormant_tau0.1': 0.2},
                     unused_experts=np.nan))
  return rows


def table(levels, seeds=range(5), noise=0.05, dormant=None):
  """{variant: level} -> a scores table; references for both tasks at 0.5."""
  rows = []
  for variant, level in levels.items():
    setting = 'mtrl' if variant.startswith('mtrl') else 'crl'
    for seed in seeds:
      rows += crl_rows(variant, seed, level, (dormant or {}).get(variant, 0.2), setting, noise)
  for task in TASKS:
    for seed in seeds:
      rows += reference_rows(task, seed, 0.5)
  return pd.DataFrame(rows, columns=results.SCORE_COLUMNS)
