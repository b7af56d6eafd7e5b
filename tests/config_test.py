"""Gin loading: bad bindings become one line that names the fix."""

import pytest

from moe_dopamine import config


@pytest.mark.parametrize('binding,hint', [
    ('MoE.num_experts=8', 'Bind ClassicControlQNetwork.num_experts instead'),
    ('MoE.expert_hidden_units=(64,)', 'Bind ClassicControlQNetwork.expert_hidden_units instead'),
    ('MoE.output_units=3', 'it is set for it'),
    ('MultiTaskEnvironment.seed=3', 'Bind MoERunner.seed instead'),
])
def test_parameters_the_network_sets_cannot_be_bound(binding, hint):
  with pytest.raises(config.ConfigError, match=hint):
    config.load_gin_configs([f'{config.GIN_CONFIGS_DIR}/cartpole_big_softmoe.gin'], [binding])


def test_type_checks_name_the_binding():
  with pytest.raises(config.ConfigError, match=r"MoE.k='two' must be an integer \(got str\)"):
    config.check_int('two', 'MoE.k')
  assert config.check_float(3, 'x', minimum=0.0) == 3.0
  with pytest.raises(config.ConfigError, match='x=True must be a number'):
    config.check_float(True, 'x')


@pytest.mark.parametrize('contents,bindings,message', [
    ("Runner.num_iterations = (1\nfoo\n", [],
     "gin syntax error in '{path}', line 2: Expected ',' or ')'. ('foo')"),
    ("Runner.num_iterations = [1,\n", [],
     "gin syntax error in gin file '{path}' (or a file it includes), line 2: EOF in "
     'multi-line statement: a bracket or quote is not closed'),
    ('', ['Runner.num_iterations=(1'],
     "gin syntax error in --gin_bindings='Runner.num_iterations=(1': EOF in multi-line "
     'statement: a bracket or quote is not closed'),
    ('', ['MoE.router=topk'],
     "gin cannot parse the value 'topk' in --gin_bindings='MoE.router=topk'. "
     "Fix: quote a string value ('topk')."),
])
def test_a_gin_syntax_error_names_its_file_and_line_or_its_binding(
    tmp_path, contents, bindings, message):
  path = tmp_path / 'experiment.gin'
  path.write_text(contents)
  with pytest.raises(config.ConfigError) as error:
    config.load_gin_configs([str(path)], bindings)
  assert str(error.value).startswith(message.format(path=path)), str(error.value)


@pytest.mark.parametrize('path, hint', [
    ('gin_configs/crl_big_sofmoe.gin', 'gin_configs/crl_big_softmoe.gin'),
    ('crl_big_softmoe.gin', 'gin_configs/crl_big_softmoe.gin'),
    ('gin_configs/does_not_exist.gin', None),
])
def test_a_missing_gin_file_is_matched_by_its_name_not_its_folder(path, hint):
  # Fails if the shared 'gin_configs/' and '.gin' make any file look close.
  with pytest.raises(config.ConfigError) as raised:
    config.check_gin_files([path])
  message = str(raised.value)
  assert f"gin file '{path}' does not exist" in message
  if hint:
    assert message.endswith(f"Did you mean '{hint}'?")
  else:
    assert 'Did you mean' not in message
