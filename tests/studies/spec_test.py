"""Study specs: the shipped one loads and names the tables' variants; a bad
spec is refused with a message that names the problem."""

import os

import pytest

from moe_dopamine import results
from moe_dopamine.studies import spec as spec_lib
from tests import runs as test_runs

SHIPPED = os.path.join(test_runs.REPO, 'studies', 'classic_control.toml')


def test_the_classic_control_spec_names_exactly_the_variants_of_its_tables():
  # Fails if a variant's name (gin stem + binding tags) drifts from the names
  # its committed runs carry: the study would rerun everything.
  study = spec_lib.load(SHIPPED, root=test_runs.REPO)
  scores = results.read(os.path.join(test_runs.REPO, study.results))[0]
  assert set(scores['variant']) <= set(study.variant_names())
  first_stage = [p for p in study.parts if not p.name.startswith(('power', 'task_id', 'tokens'))]
  assert set(v for p in first_stage for v in (x.name for x in p.variants)) == set(
      scores['variant'][~scores['variant'].str.contains('task_id_input|num_tokens')])
  assert study.window == 5 and study.alpha == 0.05
  assert [c.id for c in study.claims][:5] == ['1', '2', '3', '4', '5']
  for comparison in study.primary() + list(study.exploratory):
    assert comparison.a in study.variant_names() and comparison.b in study.variant_names()


def write(tmp_path, text):
  path = tmp_path / 'spec.toml'
  path.write_text(text)
  return str(path)


BASE = """
[study]
name = "tiny"
seeds = [0, 1]
window = 2
[[part]]
name = "p"
variants = ["crl_baseline", {gin = "crl_big_topk", bindings = ["MoE.k=2"]}]
"""


def test_variants_take_the_sweeps_names_and_seeds_ranges_expand(tmp_path):
  study = spec_lib.load(write(tmp_path, BASE + """
[[claim]]
id = "a"
statement = "s"
  [[claim.comparison]]
  a = "crl_big_topk__k-2"
  b = "crl_baseline"
  metric = "score:CartPole"
  direction = "greater"
  seeds = "2-4"
"""), root=test_runs.REPO)
  assert study.variant_names() == ['crl_baseline', 'crl_big_topk__k-2']
  assert study.claims[0].comparisons[0].seeds == (2, 3, 4)
  assert study.results == os.path.join('docs', 'tiny', 'results')


@pytest.mark.parametrize('extra,message', [
    ('[[claim]]\nid = "a"\nstatement = "s"\n[[claim.comparison]]\na = "crl_big_topk"\n'
     'b = "crl_baseline"\nmetric = "P"\ndirection = "greater"\n',
     r"'crl_big_topk' is not a variant of any part \(did you mean 'crl_big_topk__k-2'\?\)"),
    ('[[claim]]\nid = "a"\nstatement = "s"\n[[claim.comparison]]\na = "crl_big_topk__k-2"\n'
     'b = "crl_baseline"\nmetric = "IQM"\ndirection = "greater"\n', r"unknown metric 'IQM'"),
    ('[[claim]]\nid = "a"\nstatement = "s"\n[[claim.comparison]]\na = "crl_big_topk__k-2"\n'
     'b = "crl_baseline"\nmetric = "P"\ndirection = "up"\n', r"direction 'up' must be one of"),
    ('[[part]]\nname = "q"\nvariants = ["crl_nothing"]\n', r"gin file 'gin_configs/crl_nothing.gin' does not exist"),
    ('[[exploratory]]\na = "crl_baseline"\nb = "crl_baseline"\nmetric = "P"\ndirection = "less"\n',
     r"compares 'crl_baseline' with itself"),
    ('[[claim]]\nid = "a"\nstatement = "s"\nrule = "most"\n[[claim.comparison]]\n'
     'a = "crl_big_topk__k-2"\nb = "crl_baseline"\nmetric = "P"\ndirection = "greater"\n',
     r"rule 'most' must be one of"),
    ('[[part]]\nname = "p"\nvariants = ["crl_baseline"]\n', r"two parts are named 'p'"),
    ('[extra]\nx = 1\n', r"unknown key\(s\) \['extra'\]"),
    ('[[exploratory]]\na = "crl_big_topk__k-2"\nb = "crl_baseline"\nmetric = "P"\n'
     'direction = "greater"\nbeside = "9"\n', r"beside='9' is not a claim id"),
    ('[[claim]]\nid = "a"\nstatement = "s"\n[[claim.comparison]]\na = "crl_big_topk__k-2"\n'
     'b = "crl_baseline"\nmetric = "P"\ndirection = "greater"\nbeside = "a"\n',
     r"unknown key\(s\) \['beside'\]"),
    ('[[exploratory]]\na = "crl_big_topk__k-2"\nb = "crl_baseline"\nmetric = "P"\n'
     'direction = "greater"\nseeds = "5-14"\nruns = 5\n',
     r"runs=5 but seeds '5-14' name 10; a comparison is tested once"),
    ('[[exploratory]]\na = "crl_big_topk__k-2"\nb = "crl_baseline"\nmetric = "P"\n'
     'direction = "greater"\nseeds = "5"\n', r"seeds '5' give 1 run\(s\) a side"),
])
def test_a_bad_spec_is_refused_naming_the_problem(tmp_path, extra, message):
  with pytest.raises(spec_lib.SpecError, match=message):
    spec_lib.load(write(tmp_path, BASE + extra), root=test_runs.REPO)


def test_an_exploratory_comparison_beside_a_claim_is_shown_under_it(tmp_path):
  study = spec_lib.load(write(tmp_path, BASE + """
[[claim]]
id = "1 (powered)"
statement = "s"
  [[claim.comparison]]
  a = "crl_big_topk__k-2"
  b = "crl_baseline"
  metric = "P"
  direction = "greater"
[[exploratory]]
a = "crl_big_topk__k-2"
b = "crl_baseline"
metric = "dormant"
direction = "less"
beside = "1 (powered)"
[[exploratory]]
a = "crl_big_topk__k-2"
b = "crl_baseline"
metric = "F"
direction = "less"
"""), root=test_runs.REPO)
  assert [c.claim for c in study.exploratory] == ['1 (powered)', None]
  assert study.claims[0].comparisons[0].claim == '1 (powered)'


def test_unreadable_specs_say_so(tmp_path):
  with pytest.raises(spec_lib.SpecError, match='does not exist'):
    spec_lib.load(str(tmp_path / 'missing.toml'))
  with pytest.raises(spec_lib.SpecError, match='is not valid TOML'):
    spec_lib.load(write(tmp_path, '[study\nname = 1'))
  with pytest.raises(spec_lib.SpecError, match="seeds must be a non-empty list"):
    spec_lib.load(write(tmp_path, BASE.replace('seeds = [0, 1]', 'seeds = []')),
                  root=test_runs.REPO)


def test_normalizing_by_references_needs_reference_runs(tmp_path):
  spec = BASE.replace('window = 2\n', 'window = 2\nnormalize = "references"\n')
  with pytest.raises(spec_lib.SpecError, match=r'needs a \[references\] table'):
    spec_lib.load(write(tmp_path, spec), root=test_runs.REPO)
  study = spec_lib.load(write(tmp_path, spec + '[references]\nCartPole = "crl_baseline"\n'),
                        root=test_runs.REPO)
  assert study.normalize == 'references'
  with pytest.raises(spec_lib.SpecError, match=r"normalize 'human' must be one of"):
    spec_lib.load(write(tmp_path, BASE.replace('window = 2\n', 'window = 2\nnormalize = "human"\n')),
                  root=test_runs.REPO)
  assert spec_lib.load(write(tmp_path, BASE), root=test_runs.REPO).normalize == 'task'


def test_a_companion_must_be_a_spec_file(tmp_path):
  spec = BASE.replace('window = 2\n', 'window = 2\ncompanion = "studies/nothing.toml"\n')
  with pytest.raises(spec_lib.SpecError, match=r"companion 'studies/nothing.toml' is not a spec"):
    spec_lib.load(write(tmp_path, spec), root=test_runs.REPO)
  study = spec_lib.load(write(tmp_path, spec.replace('nothing', 'classic_control')),
                        root=test_runs.REPO)
  assert study.companion == 'studies/classic_control.toml'
  assert spec_lib.load(os.path.join(test_runs.REPO, 'studies', 'minatar.toml'),
                       root=test_runs.REPO).companion == 'studies/classic_control.toml'
