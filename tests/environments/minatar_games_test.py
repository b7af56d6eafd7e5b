"""MinAtarGame: MinAtar's facts, gymnasium's API, seeding, sticky actions, bad input."""

import numpy as np
import pytest

from moe_dopamine import config
from moe_dopamine.environments import minatar_games

# MinAtar 1.0.15's channels and minimal action sets (science.md, the issue).
CHANNELS = {'Breakout': 4, 'SpaceInvaders': 6, 'Asterix': 4, 'Freeway': 7, 'Seaquest': 10}
MINIMAL = {
    'Breakout': (0, 1, 3),
    'SpaceInvaders': (0, 1, 3, 5),
    'Asterix': (0, 1, 2, 3, 4),
    'Freeway': (0, 2, 4),
    'Seaquest': (0, 1, 2, 3, 4, 5),
}


def game(name, **kwargs):
  return minatar_games.MinAtarGame(minatar_games.GAMES[name], **kwargs)


def play(env, seed, steps=300):
  """Observations and rewards of `steps` steps of a fixed action sequence."""
  actions = np.random.default_rng(123).choice(env.legal_actions, steps)
  frames, rewards = [env.reset(seed=seed)[0]], []
  for action in actions:
    obs, reward, terminated, truncated, _ = env.step(action)
    if terminated or truncated:
      obs, _ = env.reset()
    frames.append(obs)
    rewards.append(reward)
  return np.stack(frames), rewards


@pytest.mark.parametrize('name', sorted(CHANNELS))
def test_each_game_has_minatars_screen_and_minimal_action_set(name):
  env = game(name)
  obs, info = env.reset(seed=0)
  assert obs.shape == (10, 10, CHANNELS[name]) and obs.dtype == bool and info == {}
  assert env.action_space.n == 6
  assert env.legal_actions == MINIMAL[name]
  assert game(name, action_set='full').legal_actions == (0, 1, 2, 3, 4, 5)


@pytest.mark.parametrize('name', ['Asterix', 'SpaceInvaders', 'Seaquest'])
def test_the_same_seed_gives_the_same_episodes(name):
  first, first_rewards = play(game(name), seed=5)
  again, again_rewards = play(game(name), seed=5)
  np.testing.assert_array_equal(first, again)
  assert first_rewards == again_rewards
  other, _ = play(game(name), seed=6)
  assert not np.array_equal(first, other)


def test_saving_the_generator_state_saves_the_games_randomness():
  # What a resumed run does: a new environment given the saved state plays
  # the next episodes as the uninterrupted one does (spawns, sticky draws).
  env = game('Asterix')
  env.reset(seed=2)
  for _ in range(20):
    env.step(3)
  state = env.np_random.bit_generator.state
  env.reset()
  uninterrupted, _ = play_on(env, 200)
  resumed_env = game('Asterix')
  resumed_env.reset(seed=99)
  resumed_env.np_random.bit_generator.state = state
  resumed_env.reset()
  resumed, _ = play_on(resumed_env, 200)
  np.testing.assert_array_equal(uninterrupted, resumed)


def play_on(env, steps):
  """Frames and rewards of `steps` steps going right, across episodes."""
  frames, rewards = [], []
  for _ in range(steps):
    obs, reward, terminated, _, _ = env.step(3)
    if terminated:
      obs, _ = env.reset()
    frames.append(obs)
    rewards.append(reward)
  return np.stack(frames), rewards


def paddle(obs):
  return int(np.flatnonzero(obs[9, :, 0])[0])  # Breakout's paddle channel.


@pytest.mark.parametrize('sticky,expected', [(0.0, 0), (1.0, 4)])
def test_sticky_actions_repeat_the_previous_action(sticky, expected):
  # The paddle starts at column 4; 'left' moves it one column per step,
  # unless every action sticks to the episode's initial no-op.
  env = game('Breakout', sticky_action_prob=sticky)
  obs, _ = env.reset(seed=0)
  assert paddle(obs) == 4
  for _ in range(4):
    obs, _, terminated, _, _ = env.step(1)
    assert not terminated
  assert paddle(obs) == expected


def test_an_episode_does_not_inherit_the_last_action_of_the_one_before():
  env = game('Breakout', sticky_action_prob=1.0)
  env.reset(seed=0)
  env._game.last_action = 1  # As if the previous episode ended going left.
  obs, _ = env.reset()
  obs, _, _, _, _ = env.step(3)
  assert paddle(obs) == 4  # Stuck to the no-op, not to 'left'.


@pytest.mark.parametrize(
    'kwargs,message',
    [
        ({'game': 'breakuot'}, "unknown MinAtar game 'breakuot'. Did you mean 'breakout'"),
        ({'game': 'breakout', 'sticky_action_prob': 1.5}, 'sticky_action_prob=1.5 must be <= 1.0'),
        ({'game': 'breakout', 'action_set': 'minimum'},
         r"action_set='minimum' is not one of \['minimal', 'full'\]. Did you mean 'minimal'"),
        ({'game': 'breakout', 'difficulty_ramping': 'yes'}, "difficulty_ramping='yes' must be True or False"),
    ],
)
def test_bad_settings_name_the_problem(kwargs, message):
  with pytest.raises(config.ConfigError, match=message):
    minatar_games.MinAtarGame(**kwargs)
