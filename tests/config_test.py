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
