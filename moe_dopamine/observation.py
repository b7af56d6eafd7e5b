"""The multi-task observation layout, shared by environments, networks, agents.

A multi-task observation is one vector: the task's features, zero-padded to
the widest task, then the task id (its index in the task list) as the last
element. The id rides inside the observation so it is known both when acting
and when replaying.

- Classic control: float32 features rescaled to [-1, 1] with the task's own
  bounds.
- MinAtar: the game's bool screen [10, 10, C], its channel axis zero-padded to
  the run's widest game C_max, then flattened in row-major order (row,
  column, channel), as uint8; `screen_of` undoes the flattening, so a network
  sees [10, 10, C_max] and channel c means "the game's channel c" in every
  game.
"""

import numpy as np
import tensorflow as tf


def rescale_features(x, min_vals, max_vals):
  """Maps [min_vals, max_vals] linearly onto [-1, 1] (NumPy or TensorFlow)."""
  return 2.0 * (x - min_vals) / (max_vals - min_vals) - 1.0


def encode(features, task_id, width, dtype=np.float32):
  """[D] raw-but-rescaled features -> [width + 1] padded vector + task id."""
  out = np.zeros(width + 1, dtype)
  out[: len(features)] = features
  out[-1] = task_id
  return out


def pad_channels(screen, channels):
  """[h, w, C] screen -> [h, w, channels] with zeros in channels C.. (NumPy)."""
  screen = np.asarray(screen)
  if screen.ndim != 3 or screen.shape[-1] > channels:
    raise ValueError(
        f'a screen of shape {screen.shape} cannot be padded to {channels} channels.'
    )
  out = np.zeros(screen.shape[:2] + (channels,), np.uint8)
  out[..., : screen.shape[-1]] = screen
  return out


def screen_of(features, screen_shape):
  """[batch, h * w * C] flattened padded screens -> [batch, h, w, C] (TensorFlow)."""
  return tf.reshape(features, [-1] + list(screen_shape))


def split_task_id(flat_states, task_id_in_observation=True):
  """[batch, width(+1)] -> (features [batch, width], task ids [batch] int32)."""
  if not task_id_in_observation:
    return flat_states, tf.zeros_like(flat_states[:, 0], dtype=tf.int32)
  task_ids = tf.cast(tf.round(flat_states[:, -1]), tf.int32)
  return flat_states[:, :-1], task_ids


def task_ids_of(states):
  """Task ids [batch] of Dopamine states [batch, width + 1, stack] (last frame)."""
  states = tf.cast(states, tf.float32)
  flat = tf.reshape(states[..., -1], [tf.shape(states)[0], -1])
  return split_task_id(flat)[1]


def task_id_of_state(state):
  """Task id of the agent's NumPy state [1, width + 1, stack] (last frame)."""
  return int(round(float(np.reshape(state[..., -1], [-1])[-1])))
