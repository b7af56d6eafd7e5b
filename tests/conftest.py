"""Test set-up: legacy Keras before TensorFlow, graph mode, clean gin per test."""

import moe_dopamine  # pylint: disable=unused-import  # Must precede tensorflow.

import gin
import pytest
import tensorflow as tf

from moe_dopamine import config

tf.compat.v1.disable_v2_behavior()


def pytest_configure(config):
  config.addinivalue_line(
      'markers',
      'slow: starts training processes or measures over many episodes; '
      'deselect with -m "not slow" while developing',
  )


@pytest.fixture(autouse=True)
def clean_gin_and_graph():
  """Each test starts with no gin bindings and an empty default graph."""
  gin.clear_config()
  config.register_external_configurables()
  with tf.Graph().as_default():
    yield
  gin.clear_config()
