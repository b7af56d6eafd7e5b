"""moe_dopamine: Mixture-of-Experts Q-networks for Dopamine's DQN under non-stationarity.

Importing the package puts the environment TensorFlow needs for Dopamine's Keras networks
in force: Dopamine 4.1.2's gin-configurable layers require legacy Keras 2 (`tf_keras`),
which TensorFlow only selects if `TF_USE_LEGACY_KERAS=1` is set before it is imported.
"""

import os
import sys

__version__ = '0.1.0'

_LEGACY_KERAS = 'TF_USE_LEGACY_KERAS'


def _configure_tensorflow_environment():
  """Selects legacy Keras, or explains why it is too late to do so."""
  if 'tensorflow' in sys.modules and os.environ.get(_LEGACY_KERAS) != '1':
    raise ImportError(
        'moe_dopamine needs legacy Keras, but TensorFlow was imported before '
        f'moe_dopamine without {_LEGACY_KERAS}=1. Fix: import moe_dopamine '
        f'before tensorflow, or set {_LEGACY_KERAS}=1 in the environment '
        '(for a notebook: restart the kernel, then import moe_dopamine first).'
    )
  os.environ[_LEGACY_KERAS] = '1'
  # Hide TensorFlow's CUDA-not-found and oneDNN banners unless asked for.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


_configure_tensorflow_environment()
