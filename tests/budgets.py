"""Paths and tiny run budgets shared by the tests that train."""

import os

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
