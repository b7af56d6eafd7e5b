"""A study's screening: the shortest stretch at which every task is learned.

The spec's [screening] table (studies.spec.Screening) names a part of
single-task runs, one variant per task, each run as long as the longest
candidate stretch. A shorter stretch is read off as a prefix of these runs:
its final value is the mean evaluation return of the last `window`
evaluations within its first S training steps. A seed has learned its task
within S when that value clears `learned_threshold` (above the random policy's
return by `sigmas` standard errors of a mean of as many random episodes, and
by a factor `min_ratio`); a stretch passes when every task is learned in at
least `min_seeds` seeds. The random returns are the task's own
(environments.tasks.random_episode_returns, seeded, so the same every time).
"""

import collections

import numpy as np
import pandas as pd
from moe_dopamine.environments import tasks as tasks_lib

COLUMNS = ['task', 'stretch', 'seeds', 'learned', 'passes', 'random_return', 'threshold',
           'median_final']


def learned_threshold(random_returns, episodes, sigmas, min_ratio):
  """The final value a seed must reach: max(mu + sigmas * sd / sqrt(episodes),
  mu + (min_ratio - 1) |mu|) for the random returns' mean mu and sd (for a
  positive mu the second term is min_ratio * mu)."""
  random_returns = np.asarray(random_returns, float)
  mean, sd = float(random_returns.mean()), float(random_returns.std(ddof=1))
  return max(mean + sigmas * sd / np.sqrt(episodes), mean + (min_ratio - 1) * abs(mean))


def final_values(scores, stretch, iteration_steps, window):
  """{(task, seed): (mean eval return, episodes)} over the last `window`
  evaluations within the first `stretch` training steps, for the runs that
  have all of them."""
  last = stretch // iteration_steps  # Iterations 0 .. last - 1 lie within it.
  wanted = set(range(last - window, last))
  out = {}
  for (task, seed), run in scores.groupby(['task', 'seed']):
    rows = run[run['iteration'].isin(wanted)]
    if set(rows['iteration']) == wanted:
      out[(task, int(seed))] = (float(rows['eval_return'].mean()),
                                float(rows['eval_episodes'].sum()))
  return out


def _passes(learned, evaluated, seeds, min_seeds):
  """True or False once the seeds still running cannot change it, else None."""
  if learned >= min_seeds:
    return True
  if learned + (seeds - evaluated) < min_seeds:
    return False
  return None


def table(scores, screening, seeds, random_returns=None):
  """One row per (task, candidate stretch): seeds evaluated, seeds that learned
  the task, whether it passes,
  the threshold and the seeds' median final value. passes is None (pending)
  while the seeds that have not reached the stretch could still decide it."""
  tasks = sorted(scores['task'].unique())
  random_returns = random_returns or {
      t: tasks_lib.random_episode_returns(tasks_lib.all_tasks()[t]) for t in tasks}
  rows = []
  for stretch in screening.stretches:
    values = final_values(scores, stretch, screening.iteration_steps, screening.window)
    for task in tasks:
      finals = {s: v for (t, s), v in values.items() if t == task and s in seeds}
      episodes = (np.mean([e for _, e in finals.values()]) if finals
                  else screening.window * 10.0)
      threshold = learned_threshold(random_returns[task], episodes, screening.sigmas,
                                    screening.min_ratio)
      learned = int(sum(value >= threshold for value, _ in finals.values()))
      count = len(finals)
      rows.append({
          'task': task, 'stretch': stretch, 'seeds': count, 'learned': learned,
          'passes': _passes(learned, count, len(seeds), screening.min_seeds),
          'random_return': float(np.mean(random_returns[task])), 'threshold': threshold,
          'median_final': (float(np.median([v for v, _ in finals.values()])) if finals
                           else np.nan),
      })
  return pd.DataFrame(rows, columns=COLUMNS)


Choice = collections.namedtuple('Choice', 'stretch passed pending failing')


def choose(screening_table):
  """The shortest stretch at which every task passes (passed True). While a
  shorter stretch is still pending, stretch is None; when every stretch is
  decided and none passes, the longest, with its failing tasks."""
  pending = []
  for stretch, rows in screening_table.groupby('stretch', sort=True):
    if rows['passes'].isna().any():
      pending.append(int(stretch))
    elif rows['passes'].astype(bool).all():
      if pending:
        break
      return Choice(int(stretch), True, [], [])
  if pending:
    return Choice(None, False, pending, [])
  longest = int(screening_table['stretch'].max())
  rows = screening_table[screening_table['stretch'] == longest]
  return Choice(longest, False, [], sorted(rows.loc[~rows['passes'].astype(bool), 'task']))
