"""MoERunner with multi-task environments: statistics, schedule, resume."""

import os
import pickle
import signal
import subprocess
import sys
import time

from dopamine.colab import utils as colab_utils
import gin
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    'Runner.training_steps=60',
    'Runner.evaluation_steps=30',
    'DQNAgent.min_replay_history=20',
    'WrappedReplayBuffer.replay_capacity=1000',
    'WrappedReplayBuffer.batch_size=8',
    'MoERunner.seed=0',
]


def gin_path(name):
  return os.path.join(REPO, 'gin_configs', name)


def read_last_log(base_dir):
  data, _ = colab_utils.load_statistics(os.path.join(base_dir, 'logs'), verbose=False)
  return data


def run(gin_file, bindings, base_dir):
  gin.clear_config()
  with tf.Graph().as_default():
    train.run([gin_path(gin_file)], TINY + bindings, base_dir)


def test_crl_iterations_log_the_trained_task_and_every_tasks_eval(tmp_path):
  base_dir = str(tmp_path / 'crl')
  run('crl_baseline.gin', ['MultiTaskEnvironment.iterations_per_task=1'], base_dir)
  data = read_last_log(base_dir)
  assert list(data) == ['iteration_0', 'iteration_1']  # From the schedule.
  assert [data[k]['train_task'] for k in data] == [['CartPole'], ['MountainCar']]
  first = data['iteration_0']
  assert 'train_average_return_CartPole' in first
  assert 'train_average_return_MountainCar' not in first
  for task in ('CartPole', 'MountainCar'):
    assert 0.0 <= first[f'eval_normalized_score_{task}'][0] <= 1.0
    assert f'eval_average_return_{task}' in first
  assert first['eval_average_return_MountainCar'] == [-200.0]  # No success yet.


def test_mtrl_logs_mixed_training_and_reads_with_dopamine(tmp_path):
  base_dir = str(tmp_path / 'mtrl')
  run('mtrl_big_hardcoded.gin', ['Runner.num_iterations=1',
                                 'Runner.training_steps=400'], base_dir)
  stats = read_last_log(base_dir)['iteration_0']
  assert stats['train_task'] == ['mixed']
  assert 'train_average_return_CartPole' in stats
  assert 'train_average_return_MountainCar' in stats
  frame = colab_utils.read_experiment(
      base_dir, verbose=False,
      summary_keys=['eval_average_return_CartPole', 'eval_normalized_score_MountainCar'],
  )
  assert len(frame) == 1
  assert frame['eval_normalized_score_MountainCar'].iloc[0] == 0.0


def test_stock_dqn_is_refused_for_a_multitask_environment(tmp_path):
  with pytest.raises(config.ConfigError, match="agent 'dqn' cannot mask"):
    run('crl_baseline.gin', ["moe_dopamine.create_agent.agent_name='dqn'"],
        str(tmp_path / 'x'))


def test_killed_crl_run_resumes_with_the_right_task_and_no_gap(tmp_path):
  base_dir = str(tmp_path / 'crl')
  command = [
      sys.executable, '-m', 'moe_dopamine.train',
      f'--gin_files={gin_path("crl_baseline.gin")}',
      f'--base_dir={base_dir}',
      '--gin_bindings=MultiTaskEnvironment.iterations_per_task=1',
      '--gin_bindings=MultiTaskEnvironment.num_cycles=3',
      '--gin_bindings=Runner.training_steps=300',
  ] + [f'--gin_bindings={b}' for b in TINY if not b.startswith('Runner.training')]
  process = subprocess.Popen(
      command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  checkpoint = os.path.join(base_dir, 'checkpoints', 'ckpt.1')
  deadline = time.time() + 240
  while not os.path.exists(checkpoint) and process.poll() is None:
    assert time.time() < deadline, 'no checkpoint within 4 minutes'
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = len(read_last_log(base_dir))
  assert killed_at < 6, 'the run finished before it could be interrupted'

  subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
  data = read_last_log(base_dir)
  assert list(data) == [f'iteration_{i}' for i in range(6)]
  assert [data[f'iteration_{i}']['train_task'][0] for i in range(6)] == [
      'CartPole', 'MountainCar'] * 3
  with open(os.path.join(base_dir, 'logs', 'log_5'), 'rb') as f:
    assert len(pickle.load(f)) == 6



def test_diagnostics_land_in_the_iteration_statistics(tmp_path):
  base_dir = str(tmp_path / 'diag')
  run('cartpole_middle_softmoe.gin',
      ['Runner.num_iterations=1', 'Runner.training_steps=200',
       'MoEDQNAgent.diagnostics_period=40'], base_dir)
  stats = read_last_log(base_dir)['iteration_0']
  for tau in (0.0, 0.025, 0.1):
    assert 0.0 <= stats[f'dormant_fraction_tau{tau}'][0] <= 1.0
    assert f'dormant_fraction_tau{tau}/hidden_0' in stats
    assert f'dormant_fraction_tau{tau}/hidden_1/expert_3/hidden_0' in stats
  usage = stats['expert_usage_CartPole/hidden_1']
  assert len(usage) == 4 and sum(usage) == pytest.approx(1.0)
  assert 'routing_entropy_CartPole/hidden_1' in stats
  assert stats['router_grad/hidden_1'][0] >= 0.0
