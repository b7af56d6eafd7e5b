"""End-to-end: `python -m moe_dopamine.train` runs, resumes and rejects bad input."""

import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import train
from tests import runs

REPO, CARTPOLE = runs.REPO, runs.CARTPOLE
TINY = runs.tiny(100, evaluation_steps=100, **{'MoERunner.seed': 0})


def run_in_fresh_graph(gin_files, bindings, base_dir):
  gin.clear_config()
  with tf.Graph().as_default():
    return train.run(gin_files, bindings, base_dir)


read_log = runs.read_log


def test_one_iteration_leaves_checkpoint_log_and_config(tmp_path):
  base_dir = str(tmp_path / 'run')
  run_in_fresh_graph([CARTPOLE], TINY + ['MoERunner.num_iterations=1'], base_dir)
  assert os.path.exists(os.path.join(base_dir, 'checkpoints', 'ckpt.0'))
  operative = open(os.path.join(base_dir, 'operative_config.gin')).read()
  assert 'ClassicControlQNetwork' in operative and 'MoEDQNAgent' in operative
  log = read_log(base_dir, 0)
  assert list(log) == ['iteration_0']
  assert sum(log['iteration_0']['train_episode_lengths']) >= 100
  assert 'eval_average_return' in log['iteration_0']


def test_second_invocation_resumes_at_the_next_iteration(tmp_path):
  base_dir = str(tmp_path / 'run')
  run_in_fresh_graph([CARTPOLE], TINY + ['MoERunner.num_iterations=1'], base_dir)
  first = read_log(base_dir, 0)['iteration_0']
  run_in_fresh_graph([CARTPOLE], TINY + ['MoERunner.num_iterations=2'], base_dir)
  log = read_log(base_dir, 1)
  assert list(log) == ['iteration_0', 'iteration_1']
  # Iteration 0 was reloaded from the checkpoint, not run again.
  assert log['iteration_0'] == first
  assert os.path.exists(os.path.join(base_dir, 'checkpoints', 'ckpt.1'))


def test_default_base_dir_names_the_gin_files_and_time():
  import datetime  # pylint: disable=g-import-not-at-top

  now = datetime.datetime(2026, 1, 2, 3, 4, 5)
  assert train.default_base_dir(
      ['gin_configs/a.gin', 'x/b.gin'], now
  ) == os.path.join('runs', 'a+b_20260102-030405')


@pytest.mark.parametrize(
    'gin_files,bindings,expected',
    [
        (['gin_configs/cartpol_baseline.gin'], [], "did you mean 'gin_configs/cartpole_baseline.gin'"),
        ([CARTPOLE], ["ClassicControlQNetwrk.placement='middle'"], "did you mean 'classiccontrolqnetwork'"),
        ([CARTPOLE], ['DQNAgent.gama=0.9'], "did you mean 'gamma'"),
        ([CARTPOLE], ["moe_dopamine.create_agent.agent_name='moe_dqm'"], "did you mean 'moe_dqn'"),
        ([CARTPOLE], ["moe_dopamine.create_runner.schedule='train'"], "is not one of ['continuous_train_and_eval']"),
    ],
)
def test_bad_input_is_rejected_before_any_graph(tmp_path, gin_files, bindings, expected):
  base_dir = str(tmp_path / 'run')
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    with pytest.raises(config.ConfigError) as error:
      train.run(gin_files, bindings, base_dir)
  finally:
    os.chdir(cwd)
  assert expected in str(error.value).lower()
  assert not tf.compat.v1.get_default_graph().get_operations()
  assert not os.path.exists(base_dir)


@pytest.mark.parametrize(
    'gin_file,bindings,expected',
    [
        ('cartpole_middle_topk.gin', ['MoE.k=9'], 'moe.k=9 is out of range: k must be in [1, num_experts=4]'),
        ('cartpole_middle_topk.gin', ['ClassicControlQNetwork.num_experts=0'], 'num_experts=0 must be >= 1'),
        ('crl_baseline.gin', ["MultiTaskEnvironment.task_names=['CartPole', 'Acrobat']"], "unknown task 'acrobat'. did you mean 'acrobot'"),
        ('crl_baseline.gin', ["MultiTaskEnvironment.task_names=['CartPole', 'Pendulum']"], 'continuous action space'),
        ('crl_baseline.gin', ['MultiTaskEnvironment.iterations_per_task=0'], 'iterations_per_task must be an integer >= 1'),
        ('crl_baseline.gin', ['MultiTaskEnvironment.task_names=[]'], 'task_names is empty'),
    ],
)
def test_bad_settings_fail_before_training_and_leave_no_folder(
    tmp_path, gin_file, bindings, expected
):
  base_dir = str(tmp_path / 'run')
  with pytest.raises(config.ConfigError) as error:
    run_in_fresh_graph([os.path.join(REPO, 'gin_configs', gin_file)], bindings, base_dir)
  assert expected in str(error.value).lower()
  assert not os.path.exists(base_dir)


def test_unreadable_gin_file_is_named(tmp_path, monkeypatch):
  path = tmp_path / 'secret.gin'
  path.write_text('Runner.num_iterations = 1\n')
  # Root reads any file, so unreadability is simulated.
  real_access = os.access
  monkeypatch.setattr(
      os, 'access', lambda p, mode: False if str(p) == str(path) else real_access(p, mode)
  )
  with pytest.raises(config.ConfigError, match="'.*secret.gin' is not readable"):
    train.run([str(path)], [], str(tmp_path / 'run'))


@pytest.mark.slow
def test_cli_exits_non_zero_with_one_clear_line(tmp_path):
  result = subprocess.run(
      [
          sys.executable,
          '-m',
          'moe_dopamine.train',
          '--gin_files=gin_configs/cartpole_baseline.gin',
          '--gin_bindings=DQNAgent.gama=0.9',
          f'--base_dir={tmp_path / "run"}',
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 2
  assert "error: 'DQNAgent' has no parameter 'gama'. Did you mean 'gamma'?" in result.stderr
  assert 'Traceback' not in result.stderr


EXPERIMENTS = sorted(
    f for f in os.listdir(os.path.join(REPO, 'gin_configs')) if f.endswith('.gin')
)


@pytest.mark.parametrize('gin_file', EXPERIMENTS)
@pytest.mark.slow
def test_every_experiment_config_trains_one_iteration(tmp_path, gin_file):
  base_dir = str(tmp_path / 'run')
  path = os.path.join(REPO, 'gin_configs', gin_file)
  run_in_fresh_graph([path], TINY + ['MoERunner.num_iterations=1'], base_dir)
  log = read_log(base_dir, 0)['iteration_0']
  assert np.isfinite(log['eval_average_return'][0])
  assert os.path.exists(os.path.join(base_dir, 'checkpoints', 'ckpt.0'))


@pytest.mark.parametrize(
    'binding,expected',
    [
        ('Runner.num_iterations=0', 'Runner.num_iterations=0: a run needs at least 1 iteration'),
        ('MoERunner.num_iterations=-3', 'MoERunner.num_iterations=-3: a run needs at least 1 iteration'),
        ('Runner.num_iterations=2.5', 'Runner.num_iterations=2.5: a run needs at least 1 iteration, as an integer'),
        ('Runner.training_steps=0', 'Runner.training_steps=0: an iteration needs at least 1 training step'),
        ('Runner.evaluation_steps=-1', 'Runner.evaluation_steps=-1: evaluation steps cannot be negative'),
    ],
)
def test_run_budgets_out_of_range_are_refused_before_any_folder(tmp_path, binding, expected):
  base_dir = str(tmp_path / 'run')
  with pytest.raises(config.ConfigError) as error:
    train.run([CARTPOLE], TINY + [binding], base_dir)
  assert str(error.value).startswith(expected)
  assert not os.path.exists(base_dir)
  assert not tf.compat.v1.get_default_graph().get_operations()


def test_budgets_given_by_macros_and_constants_are_resolved_before_the_check():
  gin.clear_config()
  train.load_config([CARTPOLE], ['Runner.evaluation_steps=0', 'STEPS = 50',
                                 'Runner.training_steps = %STEPS'])
  gin.clear_config()
  with pytest.raises(config.ConfigError, match='Runner.training_steps=0: an iteration'):
    train.load_config([CARTPOLE], ['STEPS = 0', 'Runner.training_steps = %STEPS'])
  gin.clear_config()
  gin.constant('moe_dopamine_test.NO_ITERATIONS', 0)
  with pytest.raises(config.ConfigError, match='Runner.num_iterations=0: a run needs'):
    train.load_config([CARTPOLE], ['Runner.num_iterations = %moe_dopamine_test.NO_ITERATIONS'])


def test_base_dir_that_is_a_file_is_refused_and_left_alone(tmp_path):
  path = tmp_path / 'notes.txt'
  path.write_text('keep me')
  with pytest.raises(config.ConfigError) as error:
    train.run([CARTPOLE], TINY, str(path))
  assert str(error.value).startswith(f"--base_dir '{path}' is an existing file, not a folder. Fix:")
  assert path.read_text() == 'keep me'
  gin.clear_config()
  with pytest.raises(config.ConfigError, match=f"'{path}' is a file, not a folder"):
    train.run([CARTPOLE], TINY, str(path / 'run'))


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
def test_base_dir_whose_parent_cannot_be_made_is_refused():
  # Nobody, root included, can make a folder in /proc.
  with pytest.raises(config.ConfigError) as error:
    train.run([CARTPOLE], TINY, '/proc/moe_dopamine_test/run')
  assert "cannot be created: this user cannot make a folder in '/proc'" in str(error.value)


def test_base_dir_that_is_not_writable_is_refused(tmp_path):
  folder = tmp_path / 'locked'
  folder.mkdir()
  folder.chmod(0o500)
  try:
    if os.access(folder, os.W_OK):
      pytest.skip('running as root: permission bits do not stop writes')
    with pytest.raises(config.ConfigError, match='is a folder this user cannot write in'):
      train.run([CARTPOLE], TINY, str(folder))
  finally:
    folder.chmod(0o700)


def test_a_plain_value_error_while_building_keeps_its_traceback(tmp_path, monkeypatch):
  def broken_build(base_dir):
    os.makedirs(os.path.join(base_dir, 'checkpoints'))
    raise ValueError('Shapes (8, 4) and (8, 5) are incompatible')

  monkeypatch.setattr(train.runner_lib, 'create_runner', broken_build)
  base_dir = str(tmp_path / 'run')
  with pytest.raises(ValueError, match='are incompatible') as error:
    train.run([CARTPOLE], TINY, base_dir)
  assert not isinstance(error.value, config.ConfigError)
  assert any(entry.name == 'broken_build' for entry in error.traceback)
  assert not os.path.exists(base_dir)  # Made just now, it held nothing.


def test_check_plan_names_each_bad_configuration():
  points = [
      {'label': 'good', 'gin_files': [CARTPOLE], 'gin_bindings': ['DQNAgent.gamma=0.9']},
      {'label': 'typo', 'gin_files': [CARTPOLE], 'gin_bindings': ['DQNAgent.gama=0.9']},
      {'label': 'empty', 'gin_files': [CARTPOLE], 'gin_bindings': ['Runner.num_iterations=0']},
  ]
  errors = train.check_plan(points)
  assert [label for label, _ in errors] == ['typo', 'empty']
  assert "'DQNAgent' has no parameter 'gama'" in errors[0][1]
  assert errors[1][1].startswith('Runner.num_iterations=0:')


@pytest.mark.slow
def test_check_only_parses_and_creates_nothing(tmp_path):
  base_dir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'moe_dopamine.train', '--check_only',
       f'--gin_files={CARTPOLE}', f'--base_dir={base_dir}', '--gin_bindings=DQNAgent.gamma=0.9'],
      cwd=REPO, capture_output=True, text=True, timeout=300,
  )
  assert result.returncode == 0, result.stderr
  assert 'the configuration is usable' in result.stdout
  assert not base_dir.exists()


@pytest.mark.slow
@pytest.mark.parametrize('gin_file,binding,first_line', [
    ('cartpole_middle_topk.gin', 'MoE.k=9',
     'moe_dopamine.train: error: MoE.k=9 is out of range: k must be in [1, num_experts=4].'),
    ('crl_baseline.gin', "MultiTaskEnvironment.task_names=['CartPole', 'Acrobat']",
     "moe_dopamine.train: error: unknown task 'Acrobat'. Did you mean 'Acrobot'?"),
    ('crl_baseline.gin', "ClassicControlQNetwork.placement='middel'",
     "moe_dopamine.train: error: ClassicControlQNetwork.placement='middel' is not one of"),
    ('crl_baseline.gin', 'Runner.num_iterations=1',
     'moe_dopamine.train: error: Runner.num_iterations=1: a CRL run lasts its task schedule'),
])
def test_check_only_refuses_what_a_run_would_refuse_at_its_start(
    tmp_path, gin_file, binding, first_line):
  base_dir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'moe_dopamine.train', '--check_only',
       f'--gin_files={runs.gin_path(gin_file)}', f'--base_dir={base_dir}',
       f'--gin_bindings={binding}'],
      cwd=REPO, capture_output=True, text=True, timeout=300,
  )
  assert result.returncode == 2, result.stderr
  assert result.stderr.splitlines() == [result.stderr.splitlines()[0]]
  assert result.stderr.startswith(first_line), result.stderr
  assert not base_dir.exists()
  assert not list(tmp_path.iterdir())
