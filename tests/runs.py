"""Paths, tiny run budgets and log reading for the tests that train."""

import os
import pickle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gin_path(name):
  return os.path.join(REPO, 'gin_configs', name)


CARTPOLE = gin_path('cartpole_baseline.gin')


def tiny(training_steps=60, evaluation_steps=None, evaluation_episodes=2, **extra):
  """Bindings for a run of seconds: a small replay, a short warm-up, and
  either `evaluation_episodes` episodes or (evaluation_steps given) a step
  budget per evaluation. `extra`: more 'Configurable.parameter': value."""
  bindings = [
      f'Runner.training_steps={training_steps}',
      'DQNAgent.min_replay_history=20',
      'WrappedReplayBuffer.replay_capacity=1000',
      'WrappedReplayBuffer.batch_size=8',
  ]
  if evaluation_steps is None:
    bindings.append(f'MoERunner.evaluation_episodes={evaluation_episodes}')
  else:
    bindings += [f'Runner.evaluation_steps={evaluation_steps}',
                 'MoERunner.evaluation_episodes=None']
  return bindings + [f'{key}={value}' for key, value in extra.items()]


def as_flags(bindings):
  return [f'--gin_bindings={b}' for b in bindings]


def read_log(base_dir, n):
  """The iterations Dopamine's log file logs/log_<n> holds, as written."""
  with open(os.path.join(base_dir, 'logs', f'log_{n}'), 'rb') as f:
    return pickle.load(f)
