"""A run refuses bindings nothing in it uses (moe_dopamine.bindings)."""

import gin
import pytest

from moe_dopamine import config
from moe_dopamine import train
from tests import runs

CARTPOLE = runs.CARTPOLE
CRL_BASELINE = runs.gin_path('crl_baseline.gin')
CRL_BIG_SOFTMOE = runs.gin_path('crl_big_softmoe.gin')
CRL_SEPARATE = runs.gin_path('crl_big_hardcoded.gin')


def check(gin_file, bindings, allow_unused=False):
  gin.clear_config()
  return train.check_config([gin_file], runs.tiny() + bindings, allow_unused)


@pytest.mark.parametrize('gin_file,binding,why', [
    # The cases: an ablation the run never applies.
    (CARTPOLE, 'MoE.k=2', 'MoE.k=2: this run never builds MoE'),
    (CRL_BIG_SOFTMOE, 'MoE.k=9', 'MoE.k=9: SoftMoE routing has no k'),
    (CRL_BASELINE, 'Runner.num_iterations=1',
     'Runner.num_iterations=1: a CRL run lasts its task schedule (80 iterations); '
     'bind MoERunner.num_iterations to stop it earlier'),
    # Restating a default on the command line claims an ablation too.
    (CRL_BIG_SOFTMOE, 'MoE.k=1', 'MoE.k=1: SoftMoE routing has no k'),
    (CARTPOLE, 'ClassicControlQNetwork.num_experts=8',
     "ClassicControlQNetwork.num_experts=8: placement 'baseline' has no MoE layer"),
    (CRL_SEPARATE, "MoE.router='topk'",
     "MoE.router='topk': placement 'separate' has one expert per task, routed by task id"),
    (runs.gin_path('crl_big_topk.gin'), 'MoE.capacity_factor=2.0',
     "MoE.capacity_factor=2.0: capacity_factor sets SoftMoE's slots"),
    (runs.gin_path('mtrl_baseline.gin'), 'MultiTaskEnvironment.iterations_per_task=5',
     'MultiTaskEnvironment.iterations_per_task=5: MTRL changes the task'),
    (CARTPOLE, 'MoEDQNAgent.sparsity_anneal_steps=5',
     "MoEDQNAgent.sparsity_anneal_steps=5: the network has no router='soft_to_sparse'"),
    (CARTPOLE, 'UNUSED_MACRO=3', 'UNUSED_MACRO=3: no binding this run reads refers to it'),
    # A parameter the caller passes itself: the factory forces stack_size.
    (CRL_BASELINE, 'DQNAgent.stack_size=4',
     'DQNAgent.stack_size=4: DQNAgent is built, but whoever builds it sets stack_size itself'),
])
def test_a_binding_nothing_uses_is_refused_naming_it_and_why(gin_file, binding, why):
  with pytest.raises(config.ConfigError) as error:
    check(gin_file, [binding])
  message = str(error.value)
  assert message.startswith(why), message
  assert 'Fix: remove it' in message and '--allow_unused_bindings' in message
  assert '\n' not in message


def test_the_flag_turns_the_refusal_into_a_warning(capsys):
  unused = check(CRL_BIG_SOFTMOE, ['MoE.k=9', 'MoE.topk_capacity_factor=2.0'],
                 allow_unused=True)
  assert [u.name for u in unused] == ['MoE.k', 'MoE.topk_capacity_factor']
  err = capsys.readouterr().err
  assert 'warning: unused binding MoE.k=9: SoftMoE routing has no k' in err


def test_every_unused_binding_is_named_in_the_one_line():
  with pytest.raises(config.ConfigError, match=r'also unused: MoE\.noise_std\)'):
    check(CARTPOLE, ['MoE.k=2', 'MoE.noise_std=0.5'])


@pytest.mark.parametrize('gin_file,bindings', [
    # Used: each changes what runs.
    (CRL_BASELINE, ['MoERunner.num_iterations=1']),
    (runs.gin_path('crl_big_topk.gin'), ['MoE.k=2', 'MoE.topk_capacity_factor=1.5']),
    (CRL_BIG_SOFTMOE, ['MoE.capacity_factor=2.0', 'ClassicControlQNetwork.num_experts=2']),
    # MoERunner.num_iterations supersedes the file's Runner.num_iterations.
    (CARTPOLE, ['MoERunner.num_iterations=1']),
    # The matched baseline reads the MoE settings to count Big's parameters.
    (runs.gin_path('crl_baseline_matched.gin'), ['ClassicControlQNetwork.num_experts=2']),
    # Called only during training, through a reference the agent holds.
    (CARTPOLE, ['dopamine.tf.agents.dqn.dqn_agent.identity_epsilon.unused_decay_period=3']),
    # A macro that a read binding uses.
    (CARTPOLE, ['STEPS=30', 'Runner.training_steps=%STEPS']),
])
def test_bindings_the_run_uses_are_accepted(gin_file, bindings):
  assert check(gin_file, bindings) == []


def test_a_gin_files_binding_that_restates_a_default_is_not_checked():
  # base/moe_routing.gin spells out every routing knob, k = 1 among them,
  # which SoftMoE does not read: a shared file claims nothing by it.
  assert check(CRL_BIG_SOFTMOE, []) == []


def test_the_check_builds_the_run_so_values_that_fail_at_run_time_fail_here():
  with pytest.raises(config.ConfigError, match='MoE.k=9 is out of range'):
    check(runs.gin_path('crl_big_topk.gin'), ['MoE.k=9'])
  with pytest.raises(config.ConfigError, match="unknown task 'Acrobat'"):
    check(CRL_BASELINE, ["MultiTaskEnvironment.task_names=['CartPole', 'Acrobat']"])
  with pytest.raises(config.ConfigError, match="'middl' is not one of"):
    check(CRL_BASELINE, ["ClassicControlQNetwork.placement='middl'"])
  with pytest.raises(config.ConfigError, match='must be an integer'):
    check(CRL_BASELINE, ["MoERunner.evaluation_episodes='ten'"])
