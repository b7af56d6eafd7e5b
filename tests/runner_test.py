"""MoERunner with multi-task environments: statistics, schedule, resume."""

import glob
import json
import os
import pickle
import signal
import subprocess
import sys
import time

from dopamine.colab import utils as colab_utils
import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import train
from moe_dopamine.metrics import names
from tests import runs

REPO = runs.REPO
gin_path = runs.gin_path
TINY = runs.tiny(60, **{'MoERunner.seed': 0})


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
  assert [data[k][names.TRAIN_TASK] for k in data] == [[0], [1]]
  first = data['iteration_0']
  assert names.train_return('CartPole') in first
  assert names.train_return('MountainCar') not in first
  for task in ('CartPole', 'MountainCar'):
    assert first[names.eval_episodes(task)] == [2]
    assert names.eval_return(task) in first
  assert first[names.eval_return('MountainCar')] == [-600.0]  # No success yet.
  assert first[names.eval_score('MountainCar')] == [0.0]
  # Two evaluation episodes per task: four episode returns in all.
  assert len(first['eval_episode_returns']) == 4
  # The console gives each task's returns, not their average across tasks.
  console = open(os.path.join(base_dir, 'metrics', 'console', 'console.log')).read()
  for task in ('CartPole', 'MountainCar'):
    assert f'[Iteration 1]: Eval/AverageReturns/{task} = ' in console
    assert f'[Iteration 1]: Eval/NormalizedScore/{task} = ' in console
  assert '[Iteration 0]: Train/AverageReturns/CartPole = ' in console
  assert 'Train/AverageReturns/MountainCar' not in console.split('[Iteration 1]')[0]
  assert 'Eval/AverageReturns =' not in console
  assert 'Train/AverageReturns =' not in console


def test_every_statistic_reads_with_dopamines_reader(tmp_path):
  base_dir = str(tmp_path / 'crl')
  run('crl_baseline.gin', ['MultiTaskEnvironment.iterations_per_task=1'], base_dir)
  frame = colab_utils.read_experiment(
      base_dir, verbose=False,
      summary_keys=[names.TRAIN_TASK, names.eval_score('MountainCar'),
                    names.eval_episodes('CartPole')],
  )
  assert frame[names.TRAIN_TASK].tolist() == [0, 1]
  assert frame[names.eval_episodes('CartPole')].tolist() == [2, 2]


def test_mtrl_logs_mixed_training_and_reads_with_dopamine(tmp_path):
  base_dir = str(tmp_path / 'mtrl')
  run('mtrl_big_hardcoded.gin', ['Runner.num_iterations=1',
                                 'Runner.training_steps=400'], base_dir)
  stats = read_last_log(base_dir)['iteration_0']
  assert stats[names.TRAIN_TASK] == [names.MTRL_TRAIN_TASK]
  assert names.train_return('CartPole') in stats
  assert names.train_return('MountainCar') in stats
  frame = colab_utils.read_experiment(
      base_dir, verbose=False,
      summary_keys=[names.eval_return('CartPole'), names.eval_score('MountainCar')],
  )
  assert len(frame) == 1
  assert frame[names.eval_score('MountainCar')].iloc[0] == 0.0


def test_stock_dqn_is_refused_for_tasks_with_different_action_counts(tmp_path):
  with pytest.raises(config.ConfigError, match="agent 'dqn' cannot mask"):
    run('crl_baseline.gin', ["moe_dopamine.create_agent.agent_name='dqn'"],
        str(tmp_path / 'x'))


def test_stock_dqn_runs_a_single_task(tmp_path):
  base_dir = str(tmp_path / 'stock')
  run('cartpole_baseline.gin',
      ["moe_dopamine.create_agent.agent_name='dqn'", 'Runner.num_iterations=1'],
      base_dir)
  assert read_last_log(base_dir)['iteration_0'][names.eval_episodes('CartPole')] == [2]


def test_a_crl_run_lasts_its_schedule_unless_moe_runner_cuts_it(tmp_path):
  base_dir = str(tmp_path / 'cut')
  run('crl_baseline.gin', ['MultiTaskEnvironment.iterations_per_task=2',
                           'MoERunner.num_iterations=1'], base_dir)
  assert list(read_last_log(base_dir)) == ['iteration_0']


def test_tensorboard_events_hold_returns_per_task_and_diagnostics(tmp_path):
  base_dir = str(tmp_path / 'tb')
  run('crl_big_softmoe.gin',
      ['MoERunner.num_iterations=1', 'Runner.training_steps=200',
       'MoEDQNAgent.diagnostics_period=40', 'MoEDQNAgent.diagnostics_batch_size=32'],
      base_dir)
  events = glob.glob(os.path.join(base_dir, 'metrics', 'tensorboard', 'events.*'))
  assert events
  tags = {
      value.tag
      for path in events
      for event in tf.compat.v1.train.summary_iterator(path)
      for value in event.summary.value
  }
  assert f"Eval/{names.eval_return('MountainCar')}" in tags
  assert f"Eval/{names.eval_score('CartPole')}" in tags
  assert f'Diagnostics/{names.dormant_fraction(0.025)}' in tags
  assert f"Diagnostics/{names.expert_usage('CartPole', 'big')}/expert_3" in tags
  assert 'Diagnostics/loss/TotalLoss' in tags


@pytest.mark.slow
def test_killed_crl_run_resumes_with_the_right_task_and_no_gap(tmp_path):
  base_dir = str(tmp_path / 'crl')
  command = [
      sys.executable, '-m', 'moe_dopamine.train',
      f'--gin_files={gin_path("crl_baseline.gin")}',
      f'--base_dir={base_dir}',
      '--gin_bindings=MultiTaskEnvironment.iterations_per_task=1',
      '--gin_bindings=MultiTaskEnvironment.num_cycles=3',
      '--gin_bindings=Runner.training_steps=300',
      # Diagnostics in some iterations only: the step counter must survive.
      '--gin_bindings=MoEDQNAgent.diagnostics_period=500',
      '--gin_bindings=MoEDQNAgent.diagnostics_batch_size=32',
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
  assert [data[f'iteration_{i}'][names.TRAIN_TASK][0] for i in range(6)] == [0, 1] * 3
  with open(os.path.join(base_dir, 'logs', 'log_5'), 'rb') as f:
    assert len(pickle.load(f)) == 6
  # The same keys per iteration as an uninterrupted run with the same
  # settings, and the same number of evaluation episodes per task.
  uninterrupted = str(tmp_path / 'uninterrupted')
  subprocess.run([c if not c.startswith('--base_dir=') else f'--base_dir={uninterrupted}'
                  for c in command], cwd=REPO, check=True, capture_output=True, timeout=600)
  expected = read_last_log(uninterrupted)
  assert [sorted(stats) for stats in data.values()] == [
      sorted(stats) for stats in expected.values()]
  assert any(names.dormant_fraction(0.0) in stats for stats in data.values())
  assert not all(names.dormant_fraction(0.0) in stats for stats in data.values())
  for stats in data.values():
    assert stats[names.eval_episodes('CartPole')] == [2]
    assert stats[names.eval_episodes('MountainCar')] == [2]
  # Side files keep the iterations from before the resume.
  console = open(os.path.join(base_dir, 'metrics', 'console', 'console.log')).read()
  assert all(f'[Iteration {i}]' in console for i in range(6))
  pickles = sorted(glob.glob(os.path.join(base_dir, 'metrics', 'pickle', 'pickle_*.pkl')),
                   key=lambda p: int(p.rsplit('_', 1)[1].split('.')[0]))
  with open(pickles[-1], 'rb') as f:
    assert sorted(pickle.load(f)) == sorted(f'iteration_{i}' for i in range(6))


def test_diagnostics_land_in_the_iteration_statistics(tmp_path):
  base_dir = str(tmp_path / 'diag')
  run('cartpole_middle_softmoe.gin',
      ['Runner.num_iterations=1', 'Runner.training_steps=200',
       'MoEDQNAgent.diagnostics_period=40'], base_dir)
  stats = read_last_log(base_dir)['iteration_0']
  for tau in (0.0, 0.025, 0.1):
    assert names.dormant_fraction(tau, 'hidden_0') in stats
    assert names.dormant_fraction(tau, 'hidden_1/expert_3/hidden_0') in stats
    assert names.routed_dormant_fraction(tau) in stats
  assert stats[names.unused_experts('hidden_1')] == [0.0]  # SoftMoE uses all.
  usage = stats[names.expert_usage('CartPole', 'hidden_1')]
  assert len(usage) == 4 and sum(usage) == pytest.approx(1.0)
  assert names.routing_entropy('CartPole', 'hidden_1') in stats
  assert stats[names.router_grad('hidden_1')][0] > 0.0


MINATAR_GAMES = ['Breakout', 'SpaceInvaders', 'Asterix']


# The README's MinAtar table: random and reference returns.
README_MINATAR_RETURNS = {'Breakout': (0.38, 10.0), 'SpaceInvaders': (3.89, 100.0),
                          'Asterix': (0.44, 20.0)}


def test_minatar_crl_goes_through_each_game_and_evaluates_every_game(tmp_path):
  base_dir = str(tmp_path / 'minatar_crl')
  run('minatar_crl_big_softmoe.gin', ['MultiTaskEnvironment.iterations_per_task=1'], base_dir)
  data = read_last_log(base_dir)
  assert list(data) == ['iteration_0', 'iteration_1', 'iteration_2']  # The schedule.
  assert [data[k][names.TRAIN_TASK] for k in data] == [[0], [1], [2]]
  for iteration, trained in zip(data.values(), MINATAR_GAMES):
    assert [g for g in MINATAR_GAMES if names.train_return(g) in iteration] == [trained]
    # Two episodes per game, in task order: each game's return is the mean
    # of its two, and its score that return normalized by the README's
    # random and reference returns of that game.
    episodes = iteration['eval_episode_returns']
    assert len(episodes) == 2 * len(MINATAR_GAMES)
    for index, game in enumerate(MINATAR_GAMES):
      assert iteration[names.eval_episodes(game)] == [2]
      average = iteration[names.eval_return(game)][0]
      assert average == pytest.approx(np.mean(episodes[2 * index:2 * index + 2]))
      random_return, reference = README_MINATAR_RETURNS[game]
      expected = min(1.0, max(0.0, (average - random_return) / (reference - random_return)))
      assert iteration[names.eval_score(game)][0] == pytest.approx(expected)
  info = json.load(open(os.path.join(base_dir, 'run_info.json')))
  assert info['task_names'] == MINATAR_GAMES
  assert info['num_parameters'] == 4 * 206582 + 600 * 4  # Four whole networks and Phi.


def test_a_single_minatar_game_runs_through_the_same_environment(tmp_path):
  base_dir = str(tmp_path / 'breakout')
  run('minatar_breakout_baseline.gin', ['Runner.num_iterations=1'], base_dir)
  stats = read_last_log(base_dir)['iteration_0']
  assert stats[names.eval_episodes('Breakout')] == [2]
  assert names.eval_score('Breakout') in stats
  info = json.load(open(os.path.join(base_dir, 'run_info.json')))
  assert info['num_parameters'] == 206294  # Counted by hand in the network's tests.


def test_each_iteration_logs_where_its_wall_time_went(tmp_path, monkeypatch):
  # Every measurement pass takes half a second more: all of it must land in
  # diagnostics_seconds, none in training or acting.
  from moe_dopamine.agents import moe_dqn_agent  # pylint: disable=g-import-not-at-top
  measured = []
  original = moe_dqn_agent.MoEDQNAgent.measure

  def slow_measure(agent, states=None):
    time.sleep(0.5)
    measured.append(agent.training_steps)
    return original(agent, states)

  monkeypatch.setattr(moe_dqn_agent.MoEDQNAgent, 'measure', slow_measure)
  base_dir = str(tmp_path / 'timed')
  run('cartpole_middle_softmoe.gin',
      ['Runner.num_iterations=2', 'Runner.training_steps=200',
       'MoEDQNAgent.diagnostics_period=100'], base_dir)
  data = read_last_log(base_dir)
  assert sorted(data) == ['iteration_0', 'iteration_1']
  assert len(measured) >= 3
  total = {key: sum(data[f'iteration_{i}'][key][0] for i in range(2))
           for key in names.PHASE_SECONDS}
  assert 0.5 * len(measured) <= total[names.DIAGNOSTICS_SECONDS] < 0.5 * len(measured) + 0.5
  # Had the passes been counted in training or acting, either would hold
  # their sleeps.
  assert total[names.TRAINING_SECONDS] < 0.5 * len(measured)
  assert total[names.ACTING_SECONDS] < 0.5 * len(measured)
  for stats in data.values():
    seconds = {key: stats[key][0] for key in names.PHASE_SECONDS + (names.ITERATION_SECONDS,)}
    assert all(value >= 0.0 for value in seconds.values())
    assert seconds[names.CHECKPOINT_SECONDS] > 0.0
    assert seconds[names.ITERATION_SECONDS] >= sum(seconds[k] for k in names.PHASE_SECONDS)
  assert data['iteration_1'][names.TRAINING_SECONDS][0] > 0.0  # Past the warm-up.


def test_a_run_without_diagnostics_logs_none_of_their_time(tmp_path):
  base_dir = str(tmp_path / 'plain')
  run('crl_baseline.gin', ['MultiTaskEnvironment.iterations_per_task=1'], base_dir)
  for stats in read_last_log(base_dir).values():
    assert stats[names.DIAGNOSTICS_SECONDS] == [0.0]
    assert stats[names.EVAL_SECONDS][0] > 0.0
