"""The files of a run folder (kept free of TensorFlow for the sweep driver)."""

OPERATIVE_CONFIG = 'operative_config.gin'  # Every gin value the run used.
RUN_INFO = 'run_info.json'  # Gin files, bindings, seed, agent, parameters.
FINISHED = 'finished.json'  # Present once the run has done all iterations.
TRAIN_LOG = 'train.log'  # The sweep's capture of the run's output.
