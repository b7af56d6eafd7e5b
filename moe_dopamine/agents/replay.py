"""Dopamine's uniform replay buffer with NumPy-vectorized sampling.

`VectorizedReplayBuffer` is Dopamine's `OutOfGraphReplayBuffer` (same
storage, same `add`, same checkpoint files) whose two sampling methods work
on whole index arrays instead of one index at a time in Python:
- `sample_index_batch`: draws candidate indices uniformly from the same range
  as Dopamine, keeps the valid ones (the same validity rules as
  `is_valid_transition`), in draw order, until the batch is full. Dopamine
  keeps drawing one index at a time until it has a batch of valid ones, so
  both give i.i.d. indices uniform over the valid transitions.
- `sample_transition_batch`: the same n-step returns, next states, terminals
  and extra elements as Dopamine's, gathered with fancy indexing.
- `save`: the same checkpoint files (one gzip file per array, the same
  names, the same stale files removed), compressed at gzip level
  `CHECKPOINT_COMPRESSLEVEL` instead of Python's default 9. A MinAtar
  replay's observations (100,000 x 601 bytes, mostly zeros) take 2.7 s to
  write at level 9 and 0.15 s at level 1, every iteration; the file is 2 MB
  instead of 0.7. Any gzip reader loads either, Dopamine's `load` included.
`VectorizedWrappedReplayBuffer` is Dopamine's WrappedReplayBuffer with the
vectorized buffer inside; its constructor is Dopamine's, so every
`WrappedReplayBuffer.*` gin binding applies to it.
"""

import gzip
import pickle

from dopamine.tf.replay_memory import circular_replay_buffer
import numpy as np
import tensorflow as tf

# gzip level of the replay's checkpoint files (see the module doc).
CHECKPOINT_COMPRESSLEVEL = 1


def _member(values, pool):
  """Bool array: which of `values` are in `pool` (np.isin, faster when the
  pool is a handful of indices, as it is at every sampling)."""
  if len(pool) <= 16:
    return (values[:, None] == pool[None, :]).any(axis=1)
  return np.isin(values, pool)


class VectorizedReplayBuffer(circular_replay_buffer.OutOfGraphReplayBuffer):
  """OutOfGraphReplayBuffer with vectorized sampling (see the module doc)."""

  def _valid(self, indices):
    """Bool array: which of `indices` are valid transitions (vectorized
    `OutOfGraphReplayBuffer.is_valid_transition`)."""
    indices = np.asarray(indices, np.int64)
    capacity = self._replay_capacity
    valid = (indices >= 0) & (indices < capacity)
    if not self.is_full():
      valid &= indices < self.cursor() - self._update_horizon
      valid &= indices >= self._stack_size - 1
    valid &= ~_member(indices, np.asarray(self.invalid_range, np.int64))
    terminal = self._store['terminal']
    for back in range(1, self._stack_size):  # Earlier frames of the stack.
      valid &= ~terminal[(indices - back) % capacity].astype(bool)
    if self.episode_end_indices:
      # An episode that ends within the update horizon without a terminal
      # (a time-out) makes the transition invalid. Set lookups of the few
      # positions drawn: the set holds one index per episode in the buffer.
      ends = self.episode_end_indices
      for step in range(self._update_horizon):
        position = (indices + step) % capacity
        ended = np.fromiter((p in ends for p in position.tolist()), bool, len(position))
        valid &= ~(ended & ~terminal[position].astype(bool))
    return valid

  def sample_index_batch(self, batch_size):
    """A batch of valid indices, i.i.d. uniform over the valid transitions."""
    if self.is_full():
      min_id = self.cursor() - self._replay_capacity + self._stack_size - 1
      max_id = self.cursor() - self._update_horizon
    else:
      min_id = self._stack_size - 1
      max_id = self.cursor() - self._update_horizon
      if max_id <= min_id:
        raise RuntimeError(
            f'Cannot sample a batch with fewer than stack size ({self._stack_size}) '
            f'+ update_horizon ({self._update_horizon}) transitions.'
        )
    chosen = np.empty(0, np.int64)
    attempts = 0
    while len(chosen) < batch_size:
      candidates = np.random.randint(min_id, max_id, size=2 * batch_size)
      candidates %= self._replay_capacity
      valid = self._valid(candidates)
      attempts += int((~valid).sum())
      chosen = np.concatenate([chosen, candidates[valid]])
      if attempts >= self._max_sample_attempts and len(chosen) < batch_size:
        raise RuntimeError(
            f'Max sample attempts: tried {attempts} times but only sampled '
            f'{len(chosen)} valid indices. Batch size is {batch_size}.'
        )
    return chosen[:batch_size]

  def _stacks(self, name, indices):
    """Element `name` of the stacks ending at `indices`: [batch, ..., stack]."""
    offsets = np.arange(-self._stack_size + 1, 1)
    positions = (indices[:, None] + offsets[None, :]) % self._replay_capacity
    return np.moveaxis(self._store[name][positions], 1, -1)

  def save(self, checkpoint_dir, iteration_number):
    """Dopamine's checkpoint files, written faster (see the module doc). With
    `keep_every`, a spared iteration keeps every file (Dopamine's own save
    stops after the first array there)."""
    _save(self, checkpoint_dir, iteration_number)

  def sample_transition_batch(self, batch_size=None, indices=None):
    """Dopamine's transition batch, computed on index arrays."""
    if batch_size is None:
      batch_size = self._batch_size
    if indices is None:
      indices = self.sample_index_batch(batch_size)
    indices = np.asarray(indices, np.int64)
    assert len(indices) == batch_size
    capacity = self._replay_capacity
    horizon = self._update_horizon
    steps = (indices[:, None] + np.arange(horizon)[None, :]) % capacity
    terminals = self._store['terminal'][steps].astype(bool)  # [batch, n]
    is_terminal = terminals.any(axis=1)
    # Steps up to and including the first terminal count; none after it.
    length = np.where(is_terminal, np.argmax(terminals, axis=1) + 1, horizon)
    counted = np.arange(horizon)[None, :] < length[:, None]
    discounts = self._cumulative_discount_vector[:horizon][None, :] * counted
    rewards = self._store['reward'][steps]
    discounts = discounts.reshape(discounts.shape + (1,) * (rewards.ndim - 2))
    next_indices = (indices + length) % capacity

    out = []
    for element in self.get_transition_elements(batch_size):
      if element.name == 'state':
        value = self._stacks('observation', indices)
      elif element.name == 'next_state':
        value = self._stacks('observation', next_indices)
      elif element.name == 'reward':
        value = np.sum(discounts * rewards, axis=1)
      elif element.name in ('next_action', 'next_reward'):
        value = self._store[element.name[len('next_'):]][next_indices]
      elif element.name == 'terminal':
        value = is_terminal
      elif element.name == 'indices':
        value = indices
      elif element.name in self._store:
        value = self._store[element.name][indices]
      else:  # Filled in by subclasses, as in Dopamine.
        value = np.empty(element.shape, element.type)
      out.append(np.asarray(value, element.type).reshape(element.shape))
    return tuple(out)


def _write_gzip(path, value):
  """Writes one checkpointable element as Dopamine's save does: an array
  with np.save, anything else pickled."""
  with tf.io.gfile.GFile(path, 'wb') as raw:
    with gzip.GzipFile(fileobj=raw, mode='wb',
                       compresslevel=CHECKPOINT_COMPRESSLEVEL) as out:
      if isinstance(value, np.ndarray):
        np.save(out, value, allow_pickle=False)
      else:
        pickle.dump(value, out)


def _save(buffer, checkpoint_dir, iteration_number):
  """`OutOfGraphReplayBuffer.save`'s files and stale-file rule, written at
  CHECKPOINT_COMPRESSLEVEL."""
  if not tf.io.gfile.exists(checkpoint_dir):
    return
  prefix = circular_replay_buffer.STORE_FILENAME_PREFIX
  stale = iteration_number - buffer._checkpoint_duration  # pylint: disable=protected-access
  keep_every = buffer._keep_every  # pylint: disable=protected-access
  spared = keep_every is not None and stale % keep_every == 0
  for name in buffer._return_checkpointable_elements():  # pylint: disable=protected-access
    if name.startswith(prefix):
      value = buffer._store[name[len(prefix):]]  # pylint: disable=protected-access
    else:
      value = buffer.__dict__[name]
    _write_gzip(buffer._generate_filename(checkpoint_dir, name, iteration_number), value)  # pylint: disable=protected-access
    if stale >= 0 and not spared:
      try:
        tf.io.gfile.remove(buffer._generate_filename(checkpoint_dir, name, stale))  # pylint: disable=protected-access
      except tf.errors.NotFoundError:
        pass


class VectorizedWrappedReplayBuffer(circular_replay_buffer.WrappedReplayBuffer):
  """Dopamine's WrappedReplayBuffer holding a VectorizedReplayBuffer.

  Takes Dopamine's `WrappedReplayBuffer.*` gin bindings (capacity, batch
  size, ...): its constructor is Dopamine's gin-configured one.
  """

  def create_sampling_ops(self, use_staging):
    if type(self.memory) is circular_replay_buffer.OutOfGraphReplayBuffer:  # pylint: disable=unidiomatic-typecheck
      # The same object and storage; only the sampling methods change.
      self.memory.__class__ = VectorizedReplayBuffer
    super().create_sampling_ops(use_staging)
