"""The vectorized replay buffer against Dopamine's own, on the same contents."""

import os

from dopamine.tf.replay_memory import circular_replay_buffer
import numpy as np
import pytest

from moe_dopamine.agents import replay


def filled_pair(stack_size, update_horizon, capacity, num_adds, seed=0):
  """Dopamine's buffer and the vectorized one with identical contents."""
  rng = np.random.RandomState(seed)
  buffers = [
      cls((3,), stack_size, capacity, 8, update_horizon=update_horizon, gamma=0.9,
          observation_dtype=np.float32)
      for cls in (circular_replay_buffer.OutOfGraphReplayBuffer,
                  replay.VectorizedReplayBuffer)
  ]
  for step in range(num_adds):
    observation = rng.normal(size=3).astype(np.float32)
    action, reward = rng.randint(4), rng.normal()
    terminal = rng.uniform() < 0.1
    truncated = not terminal and rng.uniform() < 0.05  # An episode cut short.
    for buffer in buffers:
      buffer.add(observation, action, reward, terminal, episode_end=terminal or truncated)
  return buffers


CASES = [
    (1, 1, 50, 30),   # Not full.
    (1, 1, 50, 130),  # Full, wrapped around.
    (4, 1, 50, 130),  # Frame stacks.
    (1, 3, 50, 130),  # n-step returns.
    (4, 3, 40, 95),
]


@pytest.mark.parametrize('stack_size,horizon,capacity,num_adds', CASES)
def test_validity_matches_dopamine_for_every_index(stack_size, horizon, capacity, num_adds):
  stock, fast = filled_pair(stack_size, horizon, capacity, num_adds)
  indices = np.arange(capacity)
  expected = [stock.is_valid_transition(i) for i in indices]
  np.testing.assert_array_equal(fast._valid(indices), expected)
  assert 0 < sum(expected) < capacity


@pytest.mark.parametrize('stack_size,horizon,capacity,num_adds', CASES)
def test_transitions_match_dopamine_for_the_same_indices(stack_size, horizon, capacity, num_adds):
  stock, fast = filled_pair(stack_size, horizon, capacity, num_adds)
  valid = [i for i in range(capacity) if stock.is_valid_transition(i)]
  indices = np.random.RandomState(1).choice(valid, 8)
  for a, b, element in zip(stock.sample_transition_batch(8, indices),
                           fast.sample_transition_batch(8, indices),
                           stock.get_transition_elements(8)):
    assert a.dtype == b.dtype and a.shape == b.shape, element.name
    np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=element.name)


def test_sampled_indices_are_valid_and_uniform_over_valid_transitions():
  stock, fast = filled_pair(1, 3, 50, 130)
  valid = [i for i in range(50) if stock.is_valid_transition(i)]
  np.random.seed(0)
  draws = np.concatenate([fast.sample_index_batch(8) for _ in range(4000)])
  assert set(draws) <= set(valid)
  counts = np.bincount(draws, minlength=50)[valid]
  expected = len(draws) / len(valid)
  # Chi-square with len(valid) - 1 degrees of freedom: far below its 0.1%
  # critical value for uniform draws, far above it for a biased sampler.
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < len(valid) + 4 * np.sqrt(2 * len(valid)) + 10


def test_the_wrapped_buffer_samples_with_the_vectorized_methods():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  wrapped = replay.VectorizedWrappedReplayBuffer(
      observation_shape=(3,), stack_size=1, replay_capacity=100, batch_size=4,
      observation_dtype=np.float32,
  )
  assert isinstance(wrapped.memory, replay.VectorizedReplayBuffer)
  for i in range(20):
    wrapped.add(np.full(3, i, np.float32), 0, 1.0, False)
  with tf.compat.v1.Session() as sess:
    states, next_states = sess.run([wrapped.states, wrapped.next_states])
  np.testing.assert_array_equal(next_states[:, 0, 0], states[:, 0, 0] + 1)


def _files(directory):
  return sorted(os.listdir(directory))


def test_checkpoints_are_dopamines_files_and_load_in_dopamines_buffer(tmp_path):
  stock, fast = filled_pair(4, 3, 40, 95)
  stock_dir, fast_dir = tmp_path / 'stock', tmp_path / 'fast'
  stock_dir.mkdir()
  fast_dir.mkdir()
  for iteration in range(7):  # Past the checkpoint duration: stale files go.
    stock.save(str(stock_dir), iteration)
    fast.save(str(fast_dir), iteration)
  assert _files(fast_dir) == _files(stock_dir)
  assert all(name.endswith(('.3.gz', '.4.gz', '.5.gz', '.6.gz')) for name in _files(fast_dir))
  loaded = circular_replay_buffer.OutOfGraphReplayBuffer(
      (3,), 4, 40, 8, update_horizon=3, gamma=0.9, observation_dtype=np.float32)
  loaded.load(str(fast_dir), 6)
  for name, array in stock._store.items():
    np.testing.assert_array_equal(loaded._store[name], array)
  assert loaded.add_count == stock.add_count
  assert loaded.invalid_range.tolist() == stock.invalid_range.tolist()
  assert loaded.episode_end_indices == stock.episode_end_indices


def test_checkpoint_compression_level_is_the_fast_one(tmp_path):
  _, fast = filled_pair(1, 1, 50, 130)
  fast.save(str(tmp_path), 0)
  header = (tmp_path / '$store$_observation_ckpt.0.gz').read_bytes()[:10]
  assert header[:2] == b'\x1f\x8b'
  # RFC 1952 XFL byte: 2 = slowest (level 9), 4 = fastest (level 1).
  assert header[8] == 4


def test_keep_every_spares_every_file_of_an_iteration(tmp_path):
  _, fast = filled_pair(1, 1, 50, 130)
  fast._keep_every = 2
  for iteration in range(7):
    fast.save(str(tmp_path), iteration)
  kept = [name for name in _files(tmp_path) if name.endswith('_ckpt.0.gz')]
  assert len(kept) == len(fast._return_checkpointable_elements())
  assert not [name for name in _files(tmp_path) if name.endswith('_ckpt.1.gz')]
