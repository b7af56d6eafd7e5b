"""A study's report, regenerated from its results tables and its spec alone.

  python -m moe_dopamine.study report --spec=studies/classic_control.toml

Writes into the spec's `out` folder:
- README.md: per claim its verdict from the Holm-adjusted exact tests of its
  pre-registered comparisons (moe_dopamine.studies.verdicts), each
  comparison's numbers and power; the exploratory comparisons, unadjusted;
  the primary comparisons' sensitivity to the final window; per part its
  variants' table and figures; the protocol's rates; expert specialization;
  the cost of each network beside its score; the spec's notes (discussion
  and limits);
- verdicts.csv: one row per comparison with every number of the tables;
- figures/: the figures of moe_dopamine.studies.figures.
"""

import csv
import json
import os
import re

import numpy as np
import pandas as pd

from moe_dopamine import results
from moe_dopamine.environments import tasks as tasks_lib
from moe_dopamine.metrics import inference
from moe_dopamine.studies import engine
from moe_dopamine.studies import figures
from moe_dopamine.studies import measurements
from moe_dopamine.studies import screening
from moe_dopamine.studies import spec as spec_lib
from moe_dopamine.studies import tables
from moe_dopamine.studies import verdicts

VERDICTS_CSV = 'verdicts.csv'
README = 'README.md'
TABLES_ONLY = 'TABLES.md'  # The report without figures (study report --no_figures).
WRITTEN_FOR = re.compile(r'<!--\s*written for (\d+) runs\s*-->')
_CSV_FIELDS = ['kind', 'claim', 'a', 'b', 'metric', 'direction', 'seeds', 'n_a', 'n_b',
               'mean_a', 'mean_b', 'difference', 'bca_low', 'bca_high', 'hl_shift', 'hl_low',
               'hl_high', 'hl_coverage', 'poi', 'poi_per_task', 'p', 'exact', 'p_holm',
               'p_holm_low', 'p_holm_high', 'verdict', 'level', 'smallest_p', 'mde', 'runs_needed',
               'power_at_observed', 'tost_p', 'reason']


def _safe(name):
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', name)


def _csv_rows(claim_results, exploratory):
  rows = []
  for kind, claim_id, record in (
      [('primary', r.claim.id, rec) for r in claim_results for rec in r.records]
      + [('exploratory', '', rec) for rec in exploratory]):
    comparison = record['comparison']
    row = {'kind': kind, 'claim': claim_id, 'a': comparison.a, 'b': comparison.b,
           'metric': comparison.metric, 'direction': comparison.direction,
           'seeds': '' if comparison.seeds is None else ' '.join(map(str, comparison.seeds)),
           'reason': comparison.reason}
    for key in _CSV_FIELDS:
      if key in record and key not in row:
        value = record[key]
        row[key] = json.dumps(value) if isinstance(value, dict) else value
    rows.append(row)
  return rows


def write_verdicts_csv(path, claim_results, exploratory):
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, _CSV_FIELDS, extrasaction='ignore')
    writer.writeheader()
    for row in _csv_rows(claim_results, exploratory):
      writer.writerow(row)


def _rel(path, out):
  return os.path.relpath(path, out).replace(os.sep, '/')


def _dormant_frame(scores, runs):
  """Per run x iteration the corrected dormant fraction of the runs whose
  definition is the corrected one (see measurements.per_run)."""
  usable = set(runs.loc[runs['dormant'].notna(), 'run'])
  frame = scores[scores['run'].isin(usable)].drop_duplicates(['run', 'iteration'])
  frame = frame[np.isfinite(frame[measurements.DORMANT_COLUMN].to_numpy(float))]
  return frame.assign(value=frame[measurements.DORMANT_COLUMN])[
      ['run', 'variant', 'seed', 'iteration', 'value', 'train_task']]


def part_seeds(part):
  """The seeds a part's tables and figures show: its own and every lower
  one. A part that adds seeds (e.g. 5-29) extends the runs of earlier parts
  (0-4), and its comparisons read them all; an earlier part's tables and
  figures stay at its own seeds when later parts add runs of the same
  variants."""
  return tuple(range(max(part.seeds) + 1))


def _seed_span(seeds):
  return spec_lib.seed_text(seeds, ', ')


def _part_figures(study, part, scores, experts, runs, figure_dir, out):
  seeds = part_seeds(part)
  scores = scores[scores['seed'].isin(seeds)]
  runs = runs[runs['seed'].isin(seeds)]
  if len(experts):
    experts = experts[experts['seed'].isin(seeds)]
  names = [v.name for v in part.variants]
  present = [n for n in names if n in set(scores['variant'])]
  if not present:
    return []
  lines = []
  setting = scores.loc[scores['variant'] == present[0], 'setting'].iloc[0]
  if setting == 'single':
    references = {}
  else:
    references = {t: v for t, v in study.references.items() if v in set(scores['variant'])}
  baseline = part.baseline if part.baseline in set(scores['variant']) else None
  shown = ([baseline] if baseline and baseline not in present else []) + present
  for path in figures.curves(scores, shown, baseline, references,
                             os.path.join(figure_dir, f'curves_{_safe(part.name)}')):
    lines.append(f'![{part.name}]({_rel(path, out)})')
  if part.overlay:
    arms = dict(part.overlay)
    for path in figures.overlay(scores, arms, references,
                                os.path.join(figure_dir, f'overlay_{_safe(part.name)}')):
      lines.append(f'![{part.name}, arms in one panel]({_rel(path, out)})')
  dormant = _dormant_frame(scores, runs)
  dormant = dormant[dormant['variant'].isin(shown)]
  if dormant['variant'].nunique() > (1 if baseline else 0) and setting != 'single':
    path = figures.dormant(dormant, [v for v in shown if v in set(dormant['variant'])],
                           baseline if baseline in set(dormant['variant']) else None,
                           os.path.join(figure_dir, f'dormant_{_safe(part.name)}.png'),
                           title=f'{part.name}: units behind a ReLU only',
                           x_label=figures.iteration_label(scores))
    lines.append(f'![{part.name} dormant]({_rel(path, out)})')
  for variant in present:
    if len(experts) and variant in set(experts['variant']):
      path = figures.usage(
          experts[experts['variant'] == variant], variant,
          os.path.join(figure_dir, f'expert_usage_{_safe(part.name)}_{_safe(variant)}.png'))
      lines.append(f'![expert usage {variant}]({_rel(path, out)})')
  return lines


def _cost_lines(study, runs, out):
  path = os.path.join(out, engine.COST_CSV)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [r for r in csv.DictReader(f) if r.get('train ms')]
  by_name = {r['variant']: r for r in rows}
  family = 'minatar_study' if all(n.startswith('minatar_') for n in by_name) else 'study'
  lines = [f'Measured per network (`{_rel(path, out)}`; `python -m moe_dopamine.cost '
           f'--family={family} --measure --csv={path}`), one thread; ratios to the baseline '
           'of the same setting, beside the network\'s P over its runs of seeds '
           f'{_seed_span(study.seeds)}, which every variant has (so that the column compares '
           'the same seeds).', '']
  floors = any(r.get('train x floor') for r in rows)
  if floors:
    lines[-2] += (' Each time also over its roofline floor (the larger of its arithmetic at the '
                  'machine\'s measured matmul rate and its memory traffic at the measured '
                  'bandwidth; acting adds one session call; docs/cost.md).')
  lines += tables._header(['network', 'parameters', 'train ms', 'x baseline']
                          + (['train x floor'] if floors else []) + ['act ms', 'x baseline']
                          + (['act x floor'] if floors else [])
                          + [f'P (seeds {_seed_span(study.seeds)})'])
  for name, row in by_name.items():
    base = by_name.get(engine.baseline_of(name.split(' ')[0]))
    p = measurements.values(runs, name.split(' ')[0], 'P', study.seeds)
    def floor(key):
      return [f"{float(row[key]):.2f}" if row.get(key) else '-'] if floors else []

    cells = ([name, f"{int(float(row['parameters'])):,}", f"{float(row['train ms']):.2f}",
              f"{float(row['train ms']) / float(base['train ms']):.2f}" if base else '-']
             + floor('train x floor')
             + [f"{float(row['act ms']):.3f}" if row.get('act ms') else '-',
                (f"{float(row['act ms']) / float(base['act ms']):.2f}"
                 if base and row.get('act ms') else '-')]
             + floor('act x floor') + [tables.mean_ci(p) if len(p) else '-'])
    lines.append(tables._row(cells))
  return lines


def _time_split_lines(scores):
  """Per variant, the median wall time of a run and its split into phases,
  over the runs that logged them (engine.time_split)."""
  split = engine.time_split(scores)
  if not len(split):
    return []
  phases = ['training', 'acting', 'diagnostics', 'eval', 'checkpoint', 'other']
  lines = ['Wall time of a whole run (median over the runs that logged where each '
           'iteration\'s time went; two runs at a time on 2 cores) and the share of it in '
           'training (replay sampling, gradient steps, target syncs), acting (choosing actions, '
           'stepping the games, storing transitions), diagnostics (measurement passes), '
           'evaluation, checkpoints and the rest (logging).', '']
  lines += tables._header(['variant', 'runs', 'minutes'] + phases)
  for variant, row in split.iterrows():
    lines.append(tables._row([variant, str(int(row['runs'])), f"{row['minutes']:.1f}"]
                             + [f'{100 * row[p]:.0f}%' for p in phases]))
  return lines


def companion_records(path):
  """{claim id: [record]} of the primary comparisons in a verdicts.csv (as
  write_verdicts_csv writes it), each record without its empty cells."""
  frame = pd.read_csv(path)
  out = {}
  for row in frame[frame['kind'] == 'primary'].to_dict('records'):
    record = {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
    out.setdefault(str(row['claim']), []).append(record)
  return out


def _deciding(records):
  """The comparison with the smallest adjusted p, as text ('-' if none); in
  a family whose other comparisons wait, the bounds of its adjusted p."""
  tested = [r for r in records if 'p_holm' in r or 'p_holm_low' in r]
  if not tested:
    return '-'
  r = min(tested, key=lambda r: r.get('p_holm', r.get('p_holm_low')))
  adjusted = (f"Holm-adjusted p {tables.p_text(r['p_holm'])}" if 'p_holm' in r else
              f"Holm-adjusted p {tables.p_text(r['p_holm_low'])} to "
              f"{tables.p_text(r['p_holm_high'])} (family incomplete)")
  return (f"{r['a']} vs {r['b']} ({r['metric']}, {int(r['n_a'])} / {int(r['n_b'])} runs): "
          f"{r['difference']:+.3f}, {adjusted}")


def companion_claims(claim_id, claims):
  """The companion's claims that judge claim `claim_id`: the one of the same
  id and its later stages ('1' -> '1', '1 (30 runs)', ...)."""
  return [c for c in claims if c.id == claim_id or c.id.startswith(f'{claim_id} (')]


def side_by_side_lines(study, claim_results):
  """Each claim's verdict in this study and, by claim id, in the companion
  study (from its verdicts.csv): every stage of the companion's claim (e.g.
  '1' and '1 (30 runs)'), each as stated there; [] without a companion."""
  if not study.companion:
    return []
  companion = spec_lib.load(study.companion)
  path = os.path.join(companion.out, VERDICTS_CSV)
  if not os.path.exists(path):
    return [f'The companion study\'s verdicts ({path}) are missing: regenerate its report '
            f'(`python -m moe_dopamine.study report --spec={study.companion}`).']
  records = companion_records(path)
  lines = [f'Each claim as judged by this study and by `{study.companion}` (its '
           f'`{VERDICTS_CSV}`), each from its own pre-registered comparisons, Holm-adjusted '
           'within the claim, and each claim as its own spec states it (a later stage of '
           'the companion\'s claim, with more runs, is listed under the first). Beside each '
           'verdict, the comparison of smallest adjusted p: the one that decides a supported '
           'or contradicted claim; for a claim not distinguishable, only the closest to being '
           'clear, in whichever direction (ties: the first in the spec). The two specs state '
           'some claims differently (the claim columns quote each).', '']
  lines += tables._header(['claim', f'{study.name}: verdict', 'smallest adjusted p',
                           f'{companion.name}: claim', 'verdict', 'smallest adjusted p'])
  for result in claim_results:
    mine = [f'{result.claim.id}. {result.claim.statement}', result.verdict,
            _deciding(result.records)]
    theirs = companion_claims(result.claim.id, companion.claims)
    if not theirs:
      lines.append(tables._row(mine + ['not a claim there', '-', '-']))
    for i, other in enumerate(theirs):
      other_records = records.get(other.id, [])
      lines.append(tables._row(
          (mine if i == 0 else ['', '', '']) +
          [f'{other.id}. {other.statement}',
           verdicts.claim_verdict(other.rule, other_records), _deciding(other_records)]))
  return lines


def _claim_summary(claim_results):
  lines = tables._header(['claim', 'verdict', 'clear as predicted', 'clear against',
                          'comparisons'])
  for result in claim_results:
    as_predicted = sum(verdicts.is_clear(r, inference.CLEAR_AS_PREDICTED) for r in result.records)
    against = sum(verdicts.is_clear(r, inference.CLEAR_AGAINST) for r in result.records)
    lines.append(tables._row([f'{result.claim.id}. {result.claim.statement}',
                              f'**{result.verdict}**', str(as_predicted), str(against),
                              str(len(result.records))]))
  return lines


P_VALUE = re.compile(r'\bp(?: \(Holm\))? = (\d\.\d{4})\b')


def unmatched_p_values(text, records):
  """The p-values ('p = 0.0123' or 'p (Holm) = 0.0123') cited in `text`
  that no comparison of the report has, raw or Holm-adjusted, to 4 digits."""
  known = set()
  for record in records:
    for key in ('p', 'p_holm', 'p_holm_low', 'p_holm_high', 'tost_p'):
      value = record.get(key)
      if value is not None and np.isfinite(value):
        known.add(f'{value:.4f}')
  return [value for value in P_VALUE.findall(text) if value not in known]


def _notes(study, num_runs, records):
  if not study.notes or not os.path.exists(study.notes):
    return []
  with open(study.notes) as f:
    text = f.read()
  lines = []
  unmatched = unmatched_p_values(text, records)
  if unmatched:
    lines += [f'> **Note:** the discussion below cites p-values that no comparison of these '
              f'tables has: {", ".join(unmatched)}. It is out of date.', '']
  match = WRITTEN_FOR.search(text)
  if match and int(match.group(1)) != num_runs:
    lines += [f'> **Note:** the discussion below was written for {match.group(1)} runs; the '
              f'tables now hold {num_runs}. Its numbers may be out of date.', '']
  return lines + [text.rstrip(), '']


def _remove_stale_figures(figure_dir, text, out):
  """Removes the PNGs of figures/ that this report no longer shows (the
  report owns that folder)."""
  for name in os.listdir(figure_dir):
    path = os.path.join(figure_dir, name)
    if name.endswith('.png') and f'({_rel(path, out)})' not in text:
      os.remove(path)


def screening_lines(study, scores, figure_dir, out, draw=True):
  """The screening's section: the criterion, the rates per task and
  candidate stretch, the choice, and the curves."""
  screen = study.screening
  part = study.part(screen.part)
  frame = scores[scores['variant'].isin([v.name for v in part.variants])]
  lines = ['## The screening: a stretch at which every task is learned', '',
           f'Part `{part.name}`: each task alone with the baseline network for '
           f'{max(screen.stretches):,} training steps, evaluated every '
           f'{screen.iteration_steps:,}; each candidate stretch is read off as a prefix of these '
           f'runs. A seed learned its task within a stretch when the mean return of its last '
           f'{screen.window} evaluations within it is above the random policy\'s return by '
           f'{screen.sigmas:g} standard errors of a mean of as many random episodes and at '
           f'least {screen.min_ratio:g} times it (the threshold column); a stretch passes when '
           f'every task is learned in at least {screen.min_seeds} of {len(part.seeds)} seeds. '
           'Rates with their exact (Clopper-Pearson) 95% intervals.', '']
  if not len(frame):
    return lines + [f'No run of part `{part.name}` is in the tables yet.', '']
  rows = screening.table(frame, screen, part.seeds)
  choice = screening.choose(rows)
  lines += tables.screening_lines(rows, screen.min_seeds) + ['']
  if choice.passed:
    lines += [f'**Chosen: {choice.stretch:,} training steps per task**, the shortest candidate '
              'at which every task passes.', '']
  elif choice.stretch is None:
    lines += [f'Not decided yet: stretches {", ".join(f"{s:,}" for s in choice.pending)} wait '
              'for runs.', '']
  else:
    lines += [f'**No candidate passes**: at {choice.stretch:,} steps, '
              f'{", ".join(choice.failing)} is not learned in enough seeds.', '']
  if draw:
    path = figures.screening(frame, rows, screen.iteration_steps,
                             choice.stretch if choice.passed else None,
                             os.path.join(figure_dir, f'screening_{_safe(part.name)}.png'),
                             title=f'{study.name} screening: evaluation return per seed')
    lines += [f'![screening]({_rel(path, out)})', '']
  return lines


def build(study, out=None, draw=True):
  """Writes the report of `study` (README.md with its figures), or with
  draw=False the same without figures to TABLES.md beside it, leaving the
  README and its figures as they are; returns the path written."""
  out = out or study.out
  figure_dir = os.path.join(out, 'figures')
  os.makedirs(figure_dir, exist_ok=True)
  scores, experts, dormant = results.read(study.results)
  if study.normalize == 'references':
    scores = measurements.renormalized(scores, study.references, study.window, {
        task: tasks_lib.all_tasks()[task].random_return for task in study.references})
  runs = measurements.per_run(scores, dormant, study.references, study.window,
                              study.dormant_valid, study.architecture_references)
  claim_results = verdicts.judge(study, runs)
  first_seeds = verdicts.first_seeds_check(study, runs) if study.claims else []
  explore = verdicts.exploratory(study, runs)
  sensitivity = verdicts.sensitivity(study, scores, dormant, study.sensitivity_windows)
  lengths = measurements.stretch_lengths(scores)
  reference_aucs = {
      variant: measurements.reference_aucs(scores, study.references_of(variant), lengths)
      for variant in study.variant_names()}
  specialization = measurements.specialization_table(experts)
  write_verdicts_csv(os.path.join(out, VERDICTS_CSV), claim_results, explore)
  num_runs = scores['run'].nunique()
  hours = float(engine.run_seconds(scores).sum() / 3600) if len(scores) else 0.0
  lines = [f'# {study.title}', '',
           f'Generated from `{study.results}` and the spec `{study.path}` by '
           f'`python -m moe_dopamine.study report --spec={study.path}`: {num_runs} runs, '
           f'{hours:.1f} h of compute. Every number below is recomputed from those tables; '
           f'`{VERDICTS_CSV}` holds every comparison\'s figures.', '']
  if study.preamble:
    lines += [study.preamble.strip(), '']
  if study.normalize == 'references':
    finals = measurements.reference_returns(scores, study.references, study.window)
    described = '; '.join(
        f'{task} {tasks_lib.all_tasks()[task].random_return:g} to '
        + (f'{finals[task]:.2f}' if task in finals else 'no reference runs yet')
        for task in study.references)
    lines += ['Normalized scores run from the random policy\'s return (0) to the final return '
              f'of the single-task baseline in the same budget (1; mean of its runs\' last '
              f'{study.window} evaluations), clipped to [0, 1]: {described}.', '']
  if study.screening:
    lines += screening_lines(study, scores, figure_dir, out, draw)
  if study.claims or study.exploratory:  # A screening-only spec has no verdicts yet.
    lines += [
        '## How verdicts are reached', '',
        f'Fixed in the spec on {study.registered or "(no date)"} (its header says which runs '
        'had been seen by then; a comparison suggested by seen runs counts only new seeds): '
        'for each claim, its primary '
        'comparisons, each with its metric and predicted direction. The statistic is the '
        'difference of mean per-run values; its p-value is an exact two-sided permutation test '
        f'(all relabellings up to {inference.MAX_EXACT:,}, every design to 10 runs a side, else '
        '100,000 seeded random ones; tied values count as ties); within each claim '
        f'the p-values are Holm-adjusted, and a comparison is **clear** when its adjusted p < '
        f'{study.alpha}. While some of a claim\'s comparisons wait for their runs, the others '
        'show the bounds of their adjusted p (Holm over the ones in, as if the waiting ones '
        'came out at p = 0, and over the whole family with the waiting ones at p = 1) and a '
        'verdict only where the bounds settle '
        f'it. Final values average the last {study.window} evaluations. Intervals: '
        'the difference with a 95% BCa bootstrap interval, and the Hodges-Lehmann shift with '
        'its exact interval (its coverage in brackets). P(a > b) is the probability of '
        'improvement per task (never averaged over tasks). "Not distinguishable" is not '
        '"equal": equality needs an equivalence test with a stated margin (TOST), reported '
        'where the spec sets one. Power figures are the two-sample t-test\'s, as an '
        'approximation, at the level a comparison must reach in Holm\'s first step, alpha / m '
        'for a claim of m comparisons (so a lower bound on its power under the adjustment; '
        'exploratory comparisons at alpha): the minimal detectable effect at these runs, the '
        'runs a side needed to detect the observed effect (in whichever direction it lies: the '
        'test is two-sided), and the power at the observed effect. Where '
        'the exact test cannot reach that level at these runs whatever the effect (its smallest '
        'p is 2 over the number of relabellings: 0.0079 at 5 vs 5, above 0.05 / 8), the power at '
        'that level is 0 and the table says so; when every comparison of the claim has that '
        'floor, none of them can be clear.', '',
        '## Verdicts', '']
    lines += _claim_summary(claim_results) + ['']
    side = side_by_side_lines(study, claim_results)
    if side:
      lines += ['### Beside the companion study', ''] + side + ['']
    for result in claim_results:
      claim = result.claim
      lines += [f'### Claim {claim.id}: {claim.statement}', '',
                f'**Verdict: {result.verdict}** (rule: {claim.rule}).', '']
      if claim.why:
        lines += [claim.why, '']
      lines += tables.comparison_table(result.records) + ['']
      lines += tables.equivalence_lines(result.records, study.alpha)
      beside = [r for r in explore if r['comparison'].claim == claim.id]
      if beside:
        lines += ['Exploratory comparisons beside this claim (unadjusted; they decide nothing):',
                  '']
        lines += tables.comparison_table(beside, adjusted=False, reasons=True) + ['']
    lines += ['## Exploratory comparisons', '',
              'Not pre-registered: unadjusted p-values, no verdict. They describe; they do not '
              'decide a claim.', '']
    lines += tables.comparison_table(explore, adjusted=False, reasons=True) + ['']
    equivalence = tables.equivalence_lines(explore, study.alpha)
    if equivalence:
      lines += ['Equivalence tests:', ''] + equivalence + ['']
    lines += ['## Sensitivity to the final window', '',
              f'The primary comparisons\' difference of means and P(a > b) with final values '
              f'averaged over the last k evaluations; the verdicts use k = {study.window}.', '']
    lines += tables.sensitivity_table(sensitivity, study.sensitivity_windows) + ['']
    if first_seeds:
      lines += [f'## Seeds {_seed_span(study.seeds)} against the later seeds', '',
                f'Powered comparisons count the runs of seeds {_seed_span(study.seeds)}, run '
                "first, with earlier code, beside the later seeds' runs. Per variant run at "
                "both and per metric: the two sets' means, the two-sided permutation p of their "
                f"difference (every relabelling up to {inference.MAX_EXACT:,}, else 100,000 random ones) and Holm "
                "over every row. A clear row would say the first "
                "seeds' runs differ from the later ones; a variant chosen for its first seeds' "
                'results is expected to regress toward its mean on new seeds (which is why a '
                'comparison so chosen counts new seeds only).', '']
      lines += tables.first_seeds_lines(first_seeds, study.seeds) + ['']
  if study.references:
    lines += ['## The protocol', '',
              'The single-task reference runs (the references of forward transfer): how many '
              'end their stretch with the task learned (normalized score >= 0.5), with the '
              'exact 95% interval of the rate.', '']
    lines += tables.protocol_lines(runs, study.references, study.window) + ['']
  for part in study.parts:
    names = [v.name for v in part.variants]
    shown = ([part.baseline] if part.baseline and part.baseline not in names else []) + names
    seeds = part_seeds(part)
    part_runs = runs[runs['seed'].isin(seeds)]
    lines += [f'## Part `{part.name}`', '',
              f'Seeds {_seed_span(seeds)} of its variants (runs of later parts\' seeds are '
              'left out of its tables and figures).', '']
    lines += tables.variant_table(part_runs, shown, reference_aucs) + ['']
    if any(part_runs.loc[part_runs['variant'].isin(names), 'setting'].isin(['crl', 'mtrl'])):
      lines += ['Runs that end each task at a normalized score of at least 0.5:', '']
      lines += tables.retention_table(part_runs, shown) + ['']
    if draw:
      lines += _part_figures(study, part, scores, experts, runs, figure_dir, out) + ['']
  moe_variants = [v for v in study.variant_names() if v in set(specialization['variant'])]
  if moe_variants:
    lines += ['## Expert specialization', '',
              'Per run, at its last measurement of the most tasks (the statistics are measured '
              'on a replayed batch; when a CRL run\'s buffer holds only its last task at the '
              'end, at the last measurement of two; the last column names them): the '
              'normalized mutual information between task '
              'and top-1 expert (0: routing ignores the task; 1: one expert per task) and the '
              'top-1 share of the busiest expert (1/n balanced, 1 one expert for everything), '
              'each summarized per run before averaging, since expert labels are arbitrary '
              'per seed. The heatmaps above show each seed on its own; the ones below average '
              'the runs after matching their experts (each run\'s experts permuted to the '
              'closest columns of the runs\' mean, Hungarian matching), at the same '
              'measurement, over the runs that measured the most common set of tasks.', '']
    lines += tables.specialization_lines(specialization, moe_variants) + ['']
    if draw:
      for variant in moe_variants:
        by_layer = measurements.aligned_usage(experts, variant)
        if by_layer:
          path = figures.aligned_usage(
              by_layer, variant, os.path.join(figure_dir, f'expert_aligned_{_safe(variant)}.png'))
          lines.append(f'![experts matched across runs, {variant}]({_rel(path, out)})')
      lines.append('')
  cost = _cost_lines(study, runs, out)
  if cost:
    lines += ['## Cost of each network', ''] + cost + ['']
  split = _time_split_lines(scores)
  if split:
    lines += ['## Where a run\'s time goes', ''] + split + ['']
  lines += _notes(study, num_runs,
                  [r for result in claim_results for r in result.records] + explore
                  + first_seeds)
  if draw:
    _remove_stale_figures(figure_dir, '\n'.join(lines), out)
  path = os.path.join(out, README if draw else TABLES_ONLY)
  with open(path, 'w') as f:
    f.write('\n'.join(lines).rstrip() + '\n')
  return path
