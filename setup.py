"""moe-dopamine: Mixture-of-Experts Q-networks for Dopamine's DQN."""

import setuptools

# Pinned: this set installs and imports together on Python 3.11 and 3.12 (CPU);
# not 3.13 (no TensorFlow 2.18 wheels).
# - dopamine-rl 4.1.2 is the first with dopamine/tf and the labs layout;
# - TensorFlow 2.18 + tf-keras 2.18: legacy Keras for Dopamine's networks;
# - jax/jaxlib 0.4.35 + TFP 0.25: run_experiment imports the JAX agents, whose
#   TFP substrate breaks on newer jax;
# - numpy < 2 for the legacy gym API Dopamine still imports;
# - pandas 2.2: rliable's bootstrap library (arch) does not import with pandas 3.
# dopamine-rl also imports `baselines` without declaring it; baselines 0.1.5
# must be installed with --no-deps (launchers/setup_venv.sh does this).
INSTALL_REQUIRES = [
    'dopamine-rl==4.1.2',
    'tensorflow==2.18.1',
    'tf-keras==2.18.0',
    'tensorflow-probability==0.25.0',
    'jax==0.4.35',
    'jaxlib==0.4.35',
    'flax==0.10.4',
    'optax==0.2.5',
    'orbax-checkpoint==0.11.5',
    'chex==0.1.90',
    'numpy==1.26.4',
    'gin-config==0.5.0',
    'gym==0.25.2',
    'gymnasium==1.2.0',
    'absl-py',
    'pandas==2.2.3',
    'tensorboard',
    # One writer per run folder (train.py locks it).
    'filelock>=3.12',
    # Sweeps on a cluster, and the figures.
    'ray==2.40.0',
    'matplotlib==3.11.2',
    'seaborn==0.13.2',
    # Aggregate RL statistics (IQM, stratified bootstrap, probability of
    # improvement).
    'rliable==1.2.0',
    'arch==7.2.0',
    # The MinAtar games (Young & Tian 2019), the paper's own domain.
    'minatar==1.0.15',
]

setuptools.setup(
    name='moe-dopamine',
    version='0.1.0',
    description=(
        'Mixture-of-Experts networks in Dopamine DQN under multi-task and '
        'continual non-stationarity.'
    ),
    packages=setuptools.find_packages(include=['moe_dopamine', 'moe_dopamine.*']),
    python_requires='>=3.11,<3.13',
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': ['pytest', 'mock']},
)
