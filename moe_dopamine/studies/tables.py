"""Markdown tables of a study report: variants, comparisons, sensitivity,
specialization, the protocol's rates. Numbers come from
moe_dopamine.studies.measurements and .verdicts; nothing is computed here
but intervals over seeds (metrics.continual)."""

import math

import numpy as np
from scipy import stats

from moe_dopamine.metrics import continual
from moe_dopamine.studies import measurements
from moe_dopamine.studies import spec as spec_lib

LEARNED = 0.5  # A task counts as learned (or kept) at a normalized score >= LEARNED.


def _row(cells):
  return '| ' + ' | '.join(cells) + ' |'


def _header(cells):
  return [_row(cells), '|' + '---|' * len(cells)]


def mean_ci(values, digits=2):
  """'0.51 [0.40, 0.63]' (95% percentile bootstrap over runs), or the range
  below 5 runs ('0.51 (range 0.40-0.63, n=3)')."""
  summary = continual.over_seeds(values)
  if summary['n'] == 0:
    return 'n/a'
  f = f'{{:.{digits}f}}'
  if summary['kind'] == 'range':
    return (f"{f.format(summary['mean'])} (range {f.format(summary['low'])} to "
            f"{f.format(summary['high'])}, n={summary['n']})")
  return f"{f.format(summary['mean'])} [{f.format(summary['low'])}, {f.format(summary['high'])}]"


def p_text(value):
  """A p-value as the report prints it: 4 decimals, or 2 significant digits
  below 0.0001."""
  if value is None or not np.isfinite(value):
    return 'n/a'
  return f'{value:.4f}' if value >= 0.0001 else f'{value:.1e}'


def _num(value, digits=3, signed=False):
  if value is None or not np.isfinite(value):
    return 'n/a'
  return f'{value:+.{digits}f}' if signed else f'{value:.{digits}f}'


def tasks_of(runs, variants):
  frame = runs[runs['variant'].isin(variants)]
  return sorted({c.split(':', 1)[1] for c in frame.columns
                 if c.startswith('score:') and frame[c].notna().any()})


def variant_table(runs, variants, transfer=None):
  """Per variant: runs, parameters, training steps/s, final score per task,
  P, F and FT per task (mean [95% CI] over runs; FT's interval also
  resamples the reference runs), the dormant fraction. FT of the task every
  run trains first is no transfer (nothing came before it): it is labelled
  as the learning speed it is, relative to the single-task reference, and
  no column averages it with the others."""
  tasks = tasks_of(runs, variants)
  frame = runs[runs['variant'].isin(variants)]
  columns = [(f'score:{t}', f'{t} score') for t in tasks] + [('P', 'P')]
  columns += [(f'F:{t}', f'F {t}') for t in tasks
              if f'F:{t}' in frame and frame[f'F:{t}'].abs().max() > 0]
  ft = [t for t in tasks if f'FT:{t}' in frame and frame[f'FT:{t}'].notna().any()]
  columns = [(k, title) for k, title in columns if k in frame and frame[k].notna().any()]
  firsts = set(frame['first_task'].dropna()) if 'first_task' in frame else set()
  header = (['variant', 'runs', 'parameters', 'train steps/s'] + [t for _, t in columns]
            + [f'{t}: learning speed vs reference (first task; not transfer)'
               if firsts == {t} else f'FT {t}' for t in ft] + ['dormant (tau 0.1)'])
  lines = _header(header)
  for variant in variants:
    rows = frame[frame['variant'] == variant]
    if not len(rows):
      lines.append(_row([variant, '0'] + ['-'] * (len(header) - 2)))
      continue
    parameters = ', '.join(f'{int(p):,}' for p in sorted(rows['num_parameters'].dropna().unique()))
    cells = [variant, str(len(rows)), parameters, f"{rows['steps_per_second'].median():.0f}"]
    cells += [mean_ci(rows[k].to_numpy(float)) for k, _ in columns]
    for task in ft:
      cells.append(transfer_cell(rows, task, transfer))
    dormant = rows['dormant'].to_numpy(float)
    cells.append(mean_ci(dormant[np.isfinite(dormant)], 3) if np.isfinite(dormant).any()
                 else 'n/a')
    lines.append(_row(cells))
  return lines


def transfer_cell(rows, task, reference_aucs):
  """FT of a task over a variant's runs, the interval resampling the
  reference runs too (below continual.MIN_SEEDS_FOR_CI runs, as mean_ci, the
  range of the runs' FT against the references' mean AUC). reference_aucs:
  {variant: {task: [AUC per reference run]}}."""
  aucs = rows.get(f'auc:{task}')
  references = (reference_aucs or {}).get(rows['variant'].iloc[0], {})
  if aucs is None or task not in references:
    return 'n/a'
  aucs = aucs.to_numpy(float)
  mean, low, high = continual.transfer_over_seeds(aucs, references[task])
  if not np.isfinite(mean):
    return 'n/a'
  n = int(np.isfinite(aucs).sum())
  if n < continual.MIN_SEEDS_FOR_CI:  # As mean_ci: a few runs bound nothing, they span.
    reference = np.nanmean(np.asarray(references[task], float))
    values = continual.transfer(aucs[np.isfinite(aucs)], reference)
    return f'{mean:+.2f} (range {np.min(values):+.2f} to {np.max(values):+.2f}, n={n})'
  return f'{mean:+.2f} [{low:+.2f}, {high:+.2f}]'


def retention_table(runs, variants):
  """Per variant: runs that end each task at >= LEARNED, and every task."""
  tasks = tasks_of(runs, variants)
  lines = _header(['variant', 'runs'] + [f'{t} >= {LEARNED}' for t in tasks] + ['every task'])
  for variant in variants:
    rows = runs[runs['variant'] == variant]
    if not len(rows) or not all(f'score:{t}' in rows for t in tasks):
      continue
    learned = rows[[f'score:{t}' for t in tasks]].to_numpy(float) >= LEARNED
    lines.append(_row([variant, str(len(rows))] + [str(int(n)) for n in learned.sum(axis=0)]
                      + [str(int(learned.all(axis=1).sum()))]))
  return lines


def _poi_text(record):
  per_task = record.get('poi_per_task')
  if per_task:
    return '; '.join(f'{t} {v:.2f}' for t, v in per_task.items())
  return _num(record.get('poi'), 2)


def _level(record):
  """The level the power figures are taken at: alpha / m in a family of m."""
  level = record.get('level')
  return 'n/a' if level is None else (f'{level:.4f}' if level < 0.01 else f'{level:.3f}')


def comparison_table(records, adjusted=True, reasons=False):
  """One row per comparison: runs a side, means, the difference with its BCa
  interval, the Hodges-Lehmann shift with its exact interval, the
  probability of improvement (per task for P), the exact p-value (and
  Holm's), the verdict, and the power figures; with `reasons`, the spec's
  reason for each comparison last."""
  header = ['comparison', 'predicted', 'runs a / b', 'mean a', 'mean b',
            'difference [95% BCa]', 'HL shift [exact CI]', 'P(a > b)', 'p (exact)']
  header += (['p (Holm)'] if adjusted else []) + [
      'verdict', 'power level', 'MDE at 80% power', 'runs a side for 80% power',
      'power at observed'] + (['why'] if reasons else [])
  lines = _header(header)
  for record in records:
    comparison = record['comparison']
    direction = 'a > b' if comparison.direction == 'greater' else 'a < b'
    if 'p' not in record:
      cells = [record['label'], direction, f"{record['n_a']} / {record['n_b']}"]
      cells += ['-'] * (header.index('verdict') - len(cells))
      cells.append(record.get('verdict', 'not yet run'))
      cells += ['-'] * (len(header) - len(cells) - (1 if reasons else 0))
      lines.append(_row(cells + ([comparison.reason or '-'] if reasons else [])))
      continue
    hl = (f"{record['hl_shift']:+.3f} [{record['hl_low']:+.3f}, {record['hl_high']:+.3f}]"
          f" ({record['hl_coverage']:.1%})")
    bca = (f"{record['difference']:+.3f} [{_num(record['bca_low'], 3, True)}, "
           f"{_num(record['bca_high'], 3, True)}]")
    exact = '' if record['exact'] else f" ({record['relabellings']:,} random relabellings)"
    needed = record['runs_needed']
    cells = [record['label'], direction, f"{record['n_a']} / {record['n_b']}",
             _num(record['mean_a']), _num(record['mean_b']), bca, hl, _poi_text(record),
             p_text(record['p']) + exact]
    if adjusted:
      cells.append(p_text(record.get('p_holm')) if 'p_holm_low' not in record else
                   f"{p_text(record['p_holm_low'])} to {p_text(record['p_holm_high'])} "
                   f"({record['family']} comparisons in)")
    unreachable = not record.get('reachable', True)
    cells += [record['verdict'], _level(record),
              f"none: p >= {p_text(record['smallest_p'])} at these runs" if unreachable
              else _num(record['mde'], 3),
              'n/a' if not np.isfinite(needed) else ('never (d = 0)' if math.isinf(needed)
                                                      else f'{int(needed):,}'),
              _num(record['power_at_observed'], 2)]
    if reasons:
      cells.append(comparison.reason or '-')
    lines.append(_row(cells))
  return lines


def equivalence_lines(records, alpha):
  """Sentences for comparisons with an equivalence margin (TOST at level
  `alpha`, the study's)."""
  out = []
  for record in records:
    if record.get('tost_p') is None:
      continue
    margin = record['comparison'].margin
    start = f"- {record['label']}: TOST with margin {margin:g}, p = {p_text(record['tost_p'])}: "
    if record['tost_p'] < alpha:
      out.append(start + 'equivalent within the margin.')
    elif record['p'] < alpha:
      out.append(start + f"not shown equivalent; the difference has p = {p_text(record['p'])} "
                 f"before any adjustment (n = {record['n_a']} / {record['n_b']}).")
    else:
      out.append(start + f"not shown equivalent (nor different: p = {p_text(record['p'])}); "
                 f"not distinguishable at n = {record['n_a']} / {record['n_b']}.")
  return out


def sensitivity_table(sensitivity, windows):
  """Per primary comparison, the difference and P(a > b) (per task for P)
  at each window."""
  lines = _header(['comparison'] + [f'last {w}: difference, P(a > b)' for w in windows])

  def cell(difference, poi):
    if not np.isfinite(difference):
      return 'n/a'
    if isinstance(poi, dict):
      poi = '; '.join(f'{task} {value:.2f}' for task, value in poi.items())
    else:
      poi = f'{poi:.2f}'
    return f'{difference:+.3f}, {poi}'

  for label, by_window in sensitivity.items():
    lines.append(_row([label] + [cell(*by_window[w]) for w in windows]))
  return lines


def first_seeds_lines(rows, first_seeds):
  """The table of verdicts.first_seeds_check."""
  first = spec_lib.seed_text(first_seeds, ', ')
  lines = _header(['variant', 'metric', f'seeds {first}: runs, mean',
                   'later seeds: runs, mean', 'later - first', 'p (permutation)', 'p (Holm)'])
  for row in rows:
    lines.append(_row([row['variant'], row['metric'],
                       f"{row['n_first']}, {row['mean_first']:.3f}",
                       f"{row['n_later']}, {row['mean_later']:.3f}",
                       f"{row['mean_later'] - row['mean_first']:+.3f}",
                       p_text(row['p']) + ('' if row.get('exact', True) else ' (random relabellings)'),
                       p_text(row['p_holm'])]))
  return lines


def specialization_lines(table, variants):
  """Per MoE variant and layer: specialization (NMI of task and top-1 expert)
  and the busiest expert's top-1 share, mean [95% CI] over runs, and the
  tasks their measurements held (measurements.specialization_table)."""
  lines = _header(['variant', 'layer', 'runs', 'specialization (NMI)', 'busiest expert share',
                   'tasks measured'])
  for variant in variants:
    rows = table[table['variant'] == variant]
    for layer, group in rows.groupby('layer', sort=False):
      counts = group['tasks'].value_counts()
      tasks = '; '.join(f'{t} ({n} runs)' if len(counts) > 1 else t for t, n in counts.items())
      lines.append(_row([variant, layer, str(len(group)),
                         mean_ci(group['specialization'].to_numpy(float)),
                         mean_ci(group['busiest_share'].to_numpy(float)), tasks]))
  return lines


def rate(successes, total):
  """'4/5 = 0.80 [0.28, 0.99]' with the exact (Clopper-Pearson) 95% interval."""
  if not total:
    return 'n/a'
  interval = stats.binomtest(successes, total).proportion_ci(0.95, method='exact')
  return f'{successes}/{total} = {successes / total:.2f} [{interval.low:.2f}, {interval.high:.2f}]'


def protocol_lines(runs, references, window):
  """Per reference task: how many single-task runs end their stretch at
  >= LEARNED (the criterion that the protocol learns the task), as a rate."""
  lines = _header(['task', 'reference variant', 'runs', 'final score', 'learned (>= 0.5)'])
  for task, variant in references.items():
    rows = runs[runs['variant'] == variant]
    values = measurements.values(runs, variant, f'score:{task}')
    lines.append(_row([task, variant, str(len(rows)), mean_ci(values),
                       rate(int((values >= LEARNED).sum()), len(values))]))
  return lines


def screening_lines(rows, min_seeds):
  """Per task and candidate stretch (studies.screening.table): the seeds that
  learned the task as a rate with its exact interval, the seeds' median final
  return against the threshold, and whether the stretch passes."""
  lines = _header(['task', 'stretch (training steps)', 'learned', 'median final return',
                   'threshold', f'passes (>= {min_seeds} seeds)'])
  for row in rows.sort_values(['task', 'stretch']).itertuples(index=False):
    verdict = 'pending' if row.passes is None else ('yes' if row.passes else 'no')
    lines.append(_row([row.task, f'{row.stretch:,}', rate(row.learned, row.seeds),
                       _num(row.median_final, 2), _num(row.threshold, 2), verdict]))
  return lines
