"""The report: which runs each part's tables and figures show."""

from moe_dopamine import results
from moe_dopamine.studies import figures
from moe_dopamine.studies import report
from moe_dopamine.studies import spec as spec_lib
from tests import runs as test_runs
from tests.studies import synthetic

SPEC = """
[study]
name = "grow"
seeds = [0, 1]
window = 2
results = "{root}/results"
out = "{root}/report"

[[part]]
name = "first"
baseline = "crl_baseline"
variants = ["crl_baseline", "crl_big_topk"]

[[part]]
name = "more"
seeds = "2-3"
baseline = "crl_baseline"
variants = ["crl_baseline", "crl_big_topk"]
"""


def _study_with_runs(tmp_path, seeds, extra=''):
  """SPEC (plus `extra`) written under tmp_path, loaded, with synthetic
  runs of its two variants at `seeds` in its results tables."""
  spec = tmp_path / 'spec.toml'
  spec.write_text(SPEC.format(root=tmp_path) + extra)
  study = spec_lib.load(str(spec), root=test_runs.REPO)
  scores = synthetic.table({'crl_baseline': 0.4, 'crl_big_topk': 0.6}, seeds=seeds)
  results.add(str(tmp_path / 'results'), [(scores,)])
  return study


def test_a_part_seeds_are_its_own_and_every_lower_one():
  part = spec_lib.Part(name='p', variants=(), seeds=(5, 6, 7))
  assert report.part_seeds(part) == tuple(range(8))


def test_an_earlier_part_figures_keep_its_seeds_when_a_later_part_adds_runs(
    tmp_path, monkeypatch):
  # Fails if every part's figures plot every seed of its variants.
  study = _study_with_runs(tmp_path, range(4))
  drawn = {}

  def curves(frame, variants, baseline, references, path, **unused):
    del variants, baseline, references, unused
    drawn[path.rsplit('_', 1)[-1]] = sorted(set(frame['seed']))
    return []

  monkeypatch.setattr(figures, 'curves', curves)
  report.build(study)
  assert drawn == {'first': [0, 1], 'more': [0, 1, 2, 3]}


def _section(text, part):
  return text.split(f'## Part `{part}`')[1].split('## ')[0]


def test_an_earlier_part_tables_keep_its_seeds_when_a_later_part_adds_runs(tmp_path):
  # Fails if a part's tables pool every seed of its variants.
  study = _study_with_runs(tmp_path, range(4))
  text = open(report.build(study, draw=False)).read()
  for part, runs, seeds in (('first', 2, 'Seeds 0, 1 of'), ('more', 4, 'Seeds 0-3 of')):
    section = _section(text, part)
    assert seeds in section
    rows = [line for line in section.splitlines() if line.startswith('| crl_big_topk |')]
    assert len(rows) == 2  # The variant table and the retention table.
    assert all(row.split('|')[2].strip() == str(runs) for row in rows), rows


def test_a_claim_beside_the_companion_lists_every_stage_of_its_id():
  # Fails if claims pair by exact id only (the powered stage never shown) or
  # by prefix alone ('1' would take '10').
  claims = [spec_lib.Claim(id=i, statement='', rule='all', comparisons=())
            for i in ('1', '1 (30 runs)', '10', '2 (15 runs)')]
  assert [c.id for c in report.companion_claims('1', claims)] == ['1', '1 (30 runs)']
  assert [c.id for c in report.companion_claims('2', claims)] == ['2 (15 runs)']
  assert report.companion_claims('3', claims) == []


def test_an_exploratory_comparison_beside_a_claim_appears_under_it_and_in_its_table(tmp_path):
  study = _study_with_runs(tmp_path, range(2), """
[[claim]]
id = "1"
statement = "Big TopK scores higher."
  [[claim.comparison]]
  a = "crl_big_topk"
  b = "crl_baseline"
  metric = "P"
  direction = "greater"
[[exploratory]]
a = "crl_big_topk"
b = "crl_baseline"
metric = "F"
direction = "less"
reason = "forgetting beside claim 1"
beside = "1"
""")
  text = open(report.build(study, draw=False)).read()
  claim = text.split('### Claim 1:')[1].split('## Exploratory comparisons')[0]
  assert 'beside this claim' in claim and '| crl_big_topk vs crl_baseline, F |' in claim
  assert 'forgetting beside claim 1' in claim
  explore = text.split('## Exploratory comparisons')[1].split('## ')[0]
  assert '| crl_big_topk vs crl_baseline, F |' in explore


def test_a_report_without_figures_goes_beside_the_readme_and_leaves_it_alone(tmp_path):
  # Fails if --no_figures overwrites the README, dropping its figure links.
  study = _study_with_runs(tmp_path, range(2))
  readme = tmp_path / 'report' / 'README.md'
  readme.parent.mkdir(parents=True)
  readme.write_text('the report with its figures\n')
  path = report.build(study, draw=False)
  assert path == str(tmp_path / 'report' / 'TABLES.md')
  assert readme.read_text() == 'the report with its figures\n'
  assert '## Part `first`' in open(path).read()


def test_the_deciding_comparison_beside_the_companion_shows_small_and_bounded_p_values():
  """Catches 4e-05 printed as 0.000 and a settled comparison of an incomplete
  family left out (it has bounds, not one adjusted p)."""
  complete = {'a': 'crl_a', 'b': 'crl_b', 'metric': 'P', 'n_a': 25, 'n_b': 25,
              'difference': -0.361, 'p_holm': 4.0e-05}
  level = dict(complete, b='crl_c', difference=0.01, p_holm=0.9)
  assert report._deciding([level, complete]) == (  # pylint: disable=protected-access
      'crl_a vs crl_b (P, 25 / 25 runs): -0.361, Holm-adjusted p 4.0e-05')
  partial = {'a': 'crl_a', 'b': 'crl_d', 'metric': 'P', 'n_a': 30, 'n_b': 30,
             'difference': 0.566, 'p_holm_low': 6.0e-05, 'p_holm_high': 1.0e-04}
  assert report._deciding([partial]) == (  # pylint: disable=protected-access
      'crl_a vs crl_d (P, 30 / 30 runs): +0.566, Holm-adjusted p 6.0e-05 to 0.0001 '
      '(family incomplete)')
  assert report._deciding([{'a': 'x', 'b': 'y'}]) == '-'  # pylint: disable=protected-access
