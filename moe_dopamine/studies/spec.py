r"""A study as data: its variants, seeds and pre-registered comparisons.

A study spec is one TOML file (read with the standard library's `tomllib`):

  [study]
  name = "classic_control"
  title = "..."                       # the report's heading
  results = "docs/study/results"      # the committed results tables
  runs_dir = "runs/study"             # run folders (not committed)
  out = "docs/study"                  # where `report` writes
  seeds = [0, 1, 2, 3, 4]             # default seeds of every part
  window = 5                          # evaluations averaged for final values
  sensitivity_windows = [1, 3, 5, 10] # windows of the sensitivity table
  alpha = 0.05                        # "clear": Holm-adjusted p < alpha
  registered = "2026-12-07"           # when the primary comparisons were fixed
  normalize = "task"                  # "task": the scores the runs logged (each
                                      # task's TaskSpec reference return); "references":
                                      # renormalized so that 1 is the final return of the
                                      # [references] runs (measurements.renormalized)
  preamble = "..."                    # optional Markdown above the tables
  notes = "docs/study/conclusions.md" # optional hand-written discussion
  companion = "studies/classic_control.toml"  # optional: another spec whose claims
                                      # (the same ids) the report judges side by side
                                      # with this one's, from its verdicts.csv
  dormant_valid_without_layers = [...] # variants whose runs logged before the
                                      # per-layer dormant table scored no hidden
                                      # MoE output (no hidden MoE): their pooled
                                      # fraction is the corrected one

  [references]                        # task -> variant of its single-task runs
  CartPole = "reference_cartpole"

  [architecture_references.crl_big_softmoe]   # optional, per variant: FT against
  CartPole = "reference_cartpole_big_softmoe" # single-task runs of the same network

  [[part]]                            # run in this order
  name = "crl_headline"
  seeds = [0, 1, 2, 3, 4]             # optional, else the study's
  baseline = "crl_baseline"           # optional: drawn in every panel
  variants = ["crl_baseline", "crl_big_softmoe",
              {gin = "crl_baseline", bindings = ["MoEDQNAgent.replay_at_task_switch='clear'"]}]
  overlay = {"replay kept" = "crl_big_softmoe", ...}   # optional: arms in one panel
  requires = ["dormant_layers"]       # optional: a run counts as done only if it also
                                      # logged the per-layer dormant table (a rerun)
  gin_files = ["base/protocol.gin"]   # optional: loaded after each variant's own file
                                      # (a protocol the part's runs share; variant
                                      # names do not change)

  [[claim]]
  id = "1"
  statement = "In CRL, Big beats the other placements and the baseline."
  rule = "all"                        # or "any": how the family decides the claim
  why = "..."                         # what is judged and why
  [[claim.comparison]]
  a = "crl_big_softmoe"
  b = "crl_baseline"
  metric = "P"                        # see METRICS
  direction = "greater"               # what the claim predicts for a - b
  seeds = [5, 6, ...]                 # optional: only these seeds (new ones)
  runs = 30                           # optional: pre-registered runs a side; the
                                      # comparison waits until both sides have them
  margin = 0.1                        # optional: also an equivalence test (TOST)
  reason = "..."                      # why this comparison decides the claim

  [[exploratory]]                     # reported unadjusted, in their own table
  a = ...; b = ...; metric = ...; direction = ...; reason = ...
  beside = "3"                        # optional: also shown under this claim

  [screening]                         # optional: a budget chosen by a criterion
  part = "screening"                  # single-task runs, one variant per task
  iteration_steps = 10000             # training steps per iteration of those runs
  stretches = [100000, 200000]        # candidate stretches (training steps per task)
  window = 5                          # evaluations averaged at each stretch's end
  sigmas = 3.0                        # learned: that mean is above the random return
  min_ratio = 2.0                     # by sigmas standard errors of a mean of as many
  min_seeds = 4                       # random episodes and min_ratio times it, in at
                                      # least min_seeds seeds (studies.screening)

A variant is a gin file stem under gin_configs/ (or a path) with optional
bindings; its name is the sweep's grid-point name (the stem, then
`__<parameter>-<value>` per binding), the name the results tables use.

Metrics (per run, from the results tables; `window` evaluations averaged):
  P              average performance over the run's tasks (metrics.continual)
  score:<task>   the task's final normalized score
  F, F:<task>    forgetting (mean over tasks trained alone, or one task)
  FT:<task>      forward transfer of a task against its reference runs
  end:<task>     the score at the end of the task's (last) training stretch
  dormant        tau = 0.1 dormant fraction (units behind a ReLU), mean of
                 the last `window` measurements
"""

import dataclasses
import os
import re
import tomllib
from typing import Optional

from moe_dopamine import sweep

DIRECTIONS = ('greater', 'less')
REQUIREMENTS = ('dormant_layers',)
RULES = ('all', 'any')
NORMALIZATIONS = ('task', 'references')
_TASK_METRICS = ('score', 'F', 'FT', 'end')
METRICS = ('P', 'F', 'dormant') + tuple(f'{m}:<task>' for m in _TASK_METRICS)
GIN_DIR = 'gin_configs'


class SpecError(ValueError):
  """A study spec that cannot be used; the message names the problem and fix."""


@dataclasses.dataclass(frozen=True)
class Variant:
  gin_file: str
  bindings: tuple = ()

  @property
  def name(self):
    """The sweep's grid-point name of this variant."""
    stem = os.path.splitext(os.path.basename(self.gin_file))[0]
    return stem + ''.join('__' + sweep.tag(b) for b in self.bindings)


@dataclasses.dataclass(frozen=True)
class Part:
  name: str
  variants: tuple
  seeds: tuple
  baseline: Optional[str] = None
  overlay: tuple = ()  # ((label, variant name), ...)
  requires: tuple = ()  # of REQUIREMENTS
  gin_files: tuple = ()  # paths loaded after each variant's own gin file


@dataclasses.dataclass(frozen=True)
class Comparison:
  a: str
  b: str
  metric: str
  direction: str
  reason: str = ''
  seeds: Optional[tuple] = None
  margin: Optional[float] = None
  claim: Optional[str] = None
  runs: Optional[int] = None

  @property
  def label(self):
    seeds = f' (seeds {seed_text(self.seeds)})' if self.seeds is not None else ''
    return f'{self.a} vs {self.b}, {self.metric}{seeds}'

  @property
  def key(self):
    """The label, with the pre-registered runs a side when set: one spec can
    test the same comparison at 5 runs and again at 30."""
    return self.label + (f' at {self.runs} runs a side' if self.runs else '')


@dataclasses.dataclass(frozen=True)
class Claim:
  id: str
  statement: str
  rule: str
  comparisons: tuple
  why: str = ''


@dataclasses.dataclass(frozen=True)
class Screening:
  part: str
  iteration_steps: int
  stretches: tuple
  window: int
  sigmas: float
  min_ratio: float
  min_seeds: int


@dataclasses.dataclass(frozen=True)
class Study:
  path: str
  name: str
  title: str
  results: str
  runs_dir: str
  out: str
  seeds: tuple
  window: int
  sensitivity_windows: tuple
  alpha: float
  registered: str
  references: dict
  parts: tuple
  claims: tuple
  exploratory: tuple
  preamble: str = ''
  notes: Optional[str] = None
  dormant_valid: tuple = ()
  architecture_references: dict = dataclasses.field(default_factory=dict)
  screening: Optional[Screening] = None
  normalize: str = 'task'
  companion: Optional[str] = None

  def references_of(self, variant):
    """{task: reference variant} that `variant`'s forward transfer uses."""
    return self.architecture_references.get(variant, self.references)

  def part(self, name):
    for part in self.parts:
      if part.name == name:
        return part
    raise SpecError(f"{self.path}: no part '{name}'; the parts are "
                    f'{[p.name for p in self.parts]}.')

  def variant_names(self):
    return list(dict.fromkeys(v.name for p in self.parts for v in p.variants))

  def primary(self):
    return [c for claim in self.claims for c in claim.comparisons]


def seed_text(seeds, separator=','):
  """'0-4' for three or more consecutive seeds, else '0,2,5'."""
  seeds = sorted(seeds)
  if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
    return f'{seeds[0]}-{seeds[-1]}'
  return separator.join(map(str, seeds))


def parse_seeds(value, where):
  """Seeds from a list of ints or a string like '0-29' or '0,1,5-9'."""
  if isinstance(value, str):
    out = []
    for piece in value.split(','):
      piece = piece.strip()
      match = re.fullmatch(r'(\d+)-(\d+)', piece)
      if match:
        out.extend(range(int(match.group(1)), int(match.group(2)) + 1))
      elif piece.isdigit():
        out.append(int(piece))
      else:
        raise SpecError(f"{where}: seeds '{value}' is not a list of seeds (e.g. [0, 1] or '0-29').")
    value = out
  if (not isinstance(value, list) or not value
      or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
    raise SpecError(f'{where}: seeds must be a non-empty list of non-negative integers '
                    f'(got {value!r}).')
  if len(set(value)) != len(value):
    raise SpecError(f'{where}: seeds {value} repeat a seed.')
  return tuple(value)


def _require(table, key, kind, where):
  if key not in table:
    raise SpecError(f"{where}: '{key}' is missing.")
  value = table[key]
  if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
    raise SpecError(f"{where}: '{key}' must be {getattr(kind, '__name__', kind)} (got {value!r}).")
  return value


def _unknown_keys(table, allowed, where):
  unknown = sorted(set(table) - set(allowed))
  if unknown:
    raise SpecError(f'{where}: unknown key(s) {unknown}; the keys are {sorted(allowed)}.')


def _gin_path(gin, where, root):
  """A gin stem or a file path under gin_configs/ (or any path) that exists."""
  if gin.endswith('.gin'):
    path = gin if os.path.exists(os.path.join(root, gin)) else os.path.join(GIN_DIR, gin)
  else:
    path = os.path.join(GIN_DIR, gin + '.gin')
  if not os.path.exists(os.path.join(root, path)):
    raise SpecError(f"{where}: gin file '{path}' does not exist (under {root}).")
  return path


def _variant(entry, where, root):
  if isinstance(entry, str):
    entry = {'gin': entry}
  if not isinstance(entry, dict):
    raise SpecError(f'{where}: a variant is a gin stem or {{gin = ..., bindings = [...]}} '
                    f'(got {entry!r}).')
  _unknown_keys(entry, ('gin', 'bindings'), where)
  path = _gin_path(_require(entry, 'gin', str, where), where, root)
  bindings = entry.get('bindings', [])
  if not isinstance(bindings, list) or not all(isinstance(b, str) and '=' in b for b in bindings):
    raise SpecError(f"{where}: bindings must be a list of 'Configurable.parameter=value' "
                    f'strings (got {bindings!r}).')
  return Variant(path, tuple(bindings))


def check_metric(metric, where, tasks=None):
  if metric in ('P', 'F', 'dormant'):
    return
  kind, _, task = metric.partition(':')
  if kind in _TASK_METRICS and task:
    if tasks is not None and task not in tasks:
      raise SpecError(f"{where}: metric '{metric}' names task '{task}', not one of {sorted(tasks)}.")
    return
  raise SpecError(f"{where}: unknown metric '{metric}'; the metrics are {list(METRICS)}.")


def _comparison(entry, where, names, claim=None, claim_ids=None):
  """A Comparison; `claim` is the id of the claim it belongs to (primary) or,
  for an exploratory one (claim_ids given), the claim its `beside` names."""
  keys = ('a', 'b', 'metric', 'direction', 'reason', 'seeds', 'margin', 'runs')
  _unknown_keys(entry, keys + (('beside',) if claim_ids is not None else ()), where)
  if claim_ids is not None and 'beside' in entry:
    claim = str(entry['beside'])
    if claim not in claim_ids:
      raise SpecError(f"{where}: beside='{claim}' is not a claim id; the ids are "
                      f'{sorted(claim_ids)}.')
  a = _require(entry, 'a', str, where)
  b = _require(entry, 'b', str, where)
  for side in (a, b):
    if side not in names:
      close = [n for n in names if n.split('__')[0] == side.split('__')[0]]
      raise SpecError(f"{where}: '{side}' is not a variant of any part"
                      + (f" (did you mean '{close[0]}'?)" if close else '')
                      + '; add it to a part or fix the name.')
  if a == b:
    raise SpecError(f"{where}: compares '{a}' with itself.")
  metric = _require(entry, 'metric', str, where)
  check_metric(metric, where)
  direction = _require(entry, 'direction', str, where)
  if direction not in DIRECTIONS:
    raise SpecError(f"{where}: direction '{direction}' must be one of {DIRECTIONS}.")
  margin = entry.get('margin')
  if margin is not None and (not isinstance(margin, (int, float)) or margin <= 0):
    raise SpecError(f'{where}: margin must be a positive number (got {margin!r}).')
  seeds = parse_seeds(entry['seeds'], where) if 'seeds' in entry else None
  if seeds is not None and len(seeds) < 2:
    raise SpecError(f'{where}: seeds {entry["seeds"]!r} give {len(seeds)} run(s) a side; '
                    'a comparison needs at least 2.')
  runs = entry.get('runs')
  if runs is not None and (not isinstance(runs, int) or runs < 2):
    raise SpecError(f'{where}: runs must be an integer of at least 2 (got {runs!r}).')
  if runs is not None and seeds is not None and runs != len(seeds):
    # Fewer runs than seeds would test at `runs` and again as more seeds come in.
    raise SpecError(f'{where}: runs={runs} but seeds {entry["seeds"]!r} name {len(seeds)}; '
                    'a comparison is tested once, on every seed it lists: make them agree.')
  return Comparison(a, b, metric, direction, entry.get('reason', ''), seeds,
                    None if margin is None else float(margin), claim, runs)


def _positive(table, key, kind, where):
  value = _require(table, key, kind, where)
  if value <= 0:
    raise SpecError(f"{where}: '{key}' must be positive (got {value!r}).")
  return value


def _screening(entry, where, parts):
  if not isinstance(entry, dict):
    raise SpecError(f'{where}: must be a table.')
  _unknown_keys(entry, ('part', 'iteration_steps', 'stretches', 'window', 'sigmas',
                        'min_ratio', 'min_seeds'), where)
  part = _require(entry, 'part', str, where)
  by_name = {p.name: p for p in parts}
  if part not in by_name:
    raise SpecError(f"{where}: part '{part}' is not a part of the spec; the parts are "
                    f'{sorted(by_name)}.')
  iteration_steps = _positive(entry, 'iteration_steps', int, where)
  stretches = _require(entry, 'stretches', list, where)
  if (not stretches or not all(isinstance(s, int) and s > 0 for s in stretches)
      or stretches != sorted(set(stretches))):
    raise SpecError(f"{where}: 'stretches' must be increasing positive training-step counts "
                    f'(got {stretches!r}).')
  uneven = [s for s in stretches if s % iteration_steps]
  if uneven:
    raise SpecError(f'{where}: stretches {uneven} are not whole numbers of iterations of '
                    f'{iteration_steps} steps; make them multiples of iteration_steps.')
  window = _positive(entry, 'window', int, where)
  if window * iteration_steps > stretches[0]:
    raise SpecError(f'{where}: a window of {window} evaluations is longer than the stretch of '
                    f'{stretches[0]} steps; shorten the window or the iterations.')
  min_seeds = _positive(entry, 'min_seeds', int, where)
  seeds = len(by_name[part].seeds)
  if min_seeds > seeds:
    raise SpecError(f"{where}: min_seeds={min_seeds} but part '{part}' has {seeds} seeds.")
  return Screening(part, iteration_steps, tuple(stretches), window,
                   float(_positive(entry, 'sigmas', (int, float), where)),
                   float(_positive(entry, 'min_ratio', (int, float), where)), min_seeds)


def load(path, root='.'):
  """The Study of a spec file; SpecError names any problem and its fix."""
  try:
    with open(path, 'rb') as f:
      data = tomllib.load(f)
  except FileNotFoundError:
    raise SpecError(f"study spec '{path}' does not exist; the shipped specs are in studies/.")
  except tomllib.TOMLDecodeError as error:
    raise SpecError(f"study spec '{path}' is not valid TOML: {error}.")
  _unknown_keys(data, ('study', 'references', 'architecture_references', 'part', 'claim',
                       'exploratory', 'screening'), path)
  study = data.get('study')
  if not isinstance(study, dict):
    raise SpecError(f'{path}: the [study] table is missing.')
  where = f'{path} [study]'
  _unknown_keys(study, ('name', 'title', 'results', 'runs_dir', 'out', 'seeds', 'window',
                        'sensitivity_windows', 'alpha', 'registered', 'preamble', 'notes',
                        'dormant_valid_without_layers', 'normalize', 'companion'),
                where)
  name = _require(study, 'name', str, where)
  seeds = parse_seeds(_require(study, 'seeds', (list, str), where), where)
  window = _require(study, 'window', int, where)
  if window < 1:
    raise SpecError(f'{where}: window must be at least 1 evaluation (got {window}).')
  windows = tuple(study.get('sensitivity_windows', [window]))
  if not windows or not all(isinstance(w, int) and w >= 1 for w in windows):
    raise SpecError(f'{where}: sensitivity_windows must be positive integers (got {windows}).')
  alpha = study.get('alpha', 0.05)
  if not isinstance(alpha, float) or not 0 < alpha < 1:
    raise SpecError(f'{where}: alpha must be a number in (0, 1) (got {alpha!r}).')
  references = data.get('references', {})
  normalize = study.get('normalize', 'task')
  if normalize not in NORMALIZATIONS:
    raise SpecError(f"{where}: normalize '{normalize}' must be one of {NORMALIZATIONS}.")
  if normalize == 'references' and not references:
    raise SpecError(f'{where}: normalize = "references" needs a [references] table naming '
                    'the single-task runs of each task.')
  companion = study.get('companion')
  if companion is not None and (not isinstance(companion, str)
                                or not os.path.isfile(os.path.join(root, companion))):
    raise SpecError(f"{where}: companion {companion!r} is not a spec file (under {root}); name "
                    'another study spec, e.g. "studies/classic_control.toml", or drop the key.')
  parts, names = [], set()
  part_entries = data.get('part', [])
  if not part_entries:
    raise SpecError(f'{path}: no [[part]]: a study runs at least one part.')
  for index, entry in enumerate(part_entries):
    pwhere = f'{path} part {index + 1}'
    _unknown_keys(entry, ('name', 'seeds', 'baseline', 'variants', 'overlay', 'requires',
                          'gin_files'), pwhere)
    pname = _require(entry, 'name', str, pwhere)
    pwhere = f"{path} part '{pname}'"
    if any(p.name == pname for p in parts):
      raise SpecError(f"{pwhere}: two parts are named '{pname}'.")
    variants = tuple(_variant(v, pwhere, root) for v in _require(entry, 'variants', list, pwhere))
    if not variants:
      raise SpecError(f'{pwhere}: no variants.')
    part_seeds = parse_seeds(entry['seeds'], pwhere) if 'seeds' in entry else seeds
    here = {v.name for v in variants}
    baseline = entry.get('baseline')
    overlay = entry.get('overlay', {})
    requires = tuple(entry.get('requires', []))
    for requirement in requires:
      if requirement not in REQUIREMENTS:
        raise SpecError(f"{pwhere}: requires '{requirement}' must be one of {REQUIREMENTS}.")
    gin_files = entry.get('gin_files', [])
    if not isinstance(gin_files, list) or not all(isinstance(g, str) for g in gin_files):
      raise SpecError(f'{pwhere}: gin_files must be a list of gin file paths (got {gin_files!r}).')
    gin_files = tuple(_gin_path(g, pwhere, root) for g in gin_files)
    parts.append(Part(pname, variants, part_seeds, baseline, tuple(overlay.items()), requires,
                      gin_files))
    names |= here
  for part in parts:
    if part.baseline is not None and part.baseline not in names:
      raise SpecError(f"{path} part '{part.name}': baseline '{part.baseline}' is not a variant "
                      'of any part.')
    for label, variant in part.overlay:
      if variant not in names:
        raise SpecError(f"{path} part '{part.name}': overlay arm '{label}' = '{variant}' is "
                        'not a variant of any part.')
  architecture_references = data.get('architecture_references', {})
  for table_name, table in [('references', references)] + [
      (f'architecture_references.{v}', t) for v, t in architecture_references.items()]:
    if not isinstance(table, dict):
      raise SpecError(f'{path} [{table_name}]: must be a table of task = "variant".')
    for task, variant in table.items():
      if variant not in names:
        raise SpecError(f"{path} [{table_name}]: {task} = '{variant}' is not a variant of any "
                        'part.')
  for variant in architecture_references:
    if variant not in names:
      raise SpecError(f"{path} [architecture_references.{variant}]: '{variant}' is not a "
                      'variant of any part.')
  claims = []
  for index, entry in enumerate(data.get('claim', [])):
    cwhere = f'{path} claim {index + 1}'
    _unknown_keys(entry, ('id', 'statement', 'rule', 'why', 'comparison'), cwhere)
    claim_id = str(_require(entry, 'id', (str, int), cwhere))
    cwhere = f"{path} claim '{claim_id}'"
    rule = entry.get('rule', 'all')
    if rule not in RULES:
      raise SpecError(f"{cwhere}: rule '{rule}' must be one of {RULES}.")
    comparisons = tuple(
        _comparison(c, f'{cwhere} comparison {i + 1}', names, claim_id)
        for i, c in enumerate(_require(entry, 'comparison', list, cwhere)))
    if not comparisons:
      raise SpecError(f'{cwhere}: a claim needs at least one primary comparison.')
    claims.append(Claim(claim_id, _require(entry, 'statement', str, cwhere), rule,
                        comparisons, entry.get('why', '')))
  if len({c.id for c in claims}) != len(claims):
    raise SpecError(f'{path}: two claims share an id.')
  exploratory = tuple(
      _comparison(c, f'{path} exploratory comparison {i + 1}', names,
                  claim_ids={c.id for c in claims})
      for i, c in enumerate(data.get('exploratory', [])))
  return Study(
      path=path, name=name, title=study.get('title', name),
      results=study.get('results', os.path.join('docs', name, 'results')),
      runs_dir=study.get('runs_dir', os.path.join('runs', name)),
      out=study.get('out', os.path.join('docs', name)),
      seeds=seeds, window=window, sensitivity_windows=windows, alpha=alpha,
      registered=str(study.get('registered', '')), references=dict(references),
      parts=tuple(parts), claims=tuple(claims), exploratory=exploratory,
      preamble=study.get('preamble', ''), notes=study.get('notes'),
      dormant_valid=tuple(study.get('dormant_valid_without_layers', [])),
      architecture_references={v: dict(t) for v, t in architecture_references.items()},
      screening=(_screening(data['screening'], f'{path} [screening]', parts)
                 if 'screening' in data else None),
      normalize=normalize, companion=companion,
  )
