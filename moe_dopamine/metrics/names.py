"""The names of every statistic moe_dopamine logs.

Writers (the runner, the agent, the metrics) and readers (plots, continual
metrics, benchmarks, tests) build names only through this module, so a name
is spelled once. All statistics are numbers (or lists of numbers), so
Dopamine's `colab.utils` readers can load every one of them.

Per-iteration statistics of a multi-task run, for each task T:
  eval_average_return_T, eval_normalized_score_T, eval_episodes_T,
  train_average_return_T (when T was trained), and train_task: the id of the
  task trained (its index in the run's task list; MTRL_TRAIN_TASK in MTRL).
Diagnostics (see metrics.dormant and metrics.experts):
  dormant_fraction_tau<tau>[/<layer>], dormant_units[/<layer>],
  routed_dormant_fraction_tau<tau>[/<layer>],
  unused_expert_fraction[/<moe layer>], expert_usage_T/<moe layer>,
  expert_top1_T/<moe layer>, routing_entropy_T/<moe layer>,
  router_grad/<moe layer>, <moe layer>/<loss>, loss/<part>, redo_recycled.
"""

# Dopamine's own.
TRAIN_EPISODE_RETURNS = 'train_episode_returns'
EVAL_AVERAGE_RETURN = 'eval_average_return'

EVAL_RETURN_PREFIX = 'eval_average_return_'
EVAL_SCORE_PREFIX = 'eval_normalized_score_'
EVAL_EPISODES_PREFIX = 'eval_episodes_'
TRAIN_RETURN_PREFIX = 'train_average_return_'
TRAIN_TASK = 'train_task'
# Where an iteration's wall time goes, in seconds (moe_dopamine.runner):
# the evaluation phase (every task); in the training phase, the agent's
# training (replay sampling, gradient steps, target syncs) and diagnostics
# (measurement passes, ReDo), and acting, the rest of the phase (choosing
# actions, stepping the environments, storing transitions); the checkpoint
# (TensorFlow variables and replay buffer); and the whole iteration, from its
# start to the end of its checkpoint.
EVAL_SECONDS = 'eval_seconds'
TRAINING_SECONDS = 'training_seconds'
DIAGNOSTICS_SECONDS = 'diagnostics_seconds'
ACTING_SECONDS = 'acting_seconds'
CHECKPOINT_SECONDS = 'checkpoint_seconds'
ITERATION_SECONDS = 'iteration_seconds'
PHASE_SECONDS = (TRAINING_SECONDS, ACTING_SECONDS, DIAGNOSTICS_SECONDS, EVAL_SECONDS,
                 CHECKPOINT_SECONDS)
# train_task of an MTRL iteration, which trains on every task.
MTRL_TRAIN_TASK = -1

DORMANT_PREFIX = 'dormant_fraction_tau'
DORMANT_UNITS = 'dormant_units'
ROUTED_DORMANT_PREFIX = 'routed_dormant_fraction_tau'
UNUSED_EXPERTS = 'unused_expert_fraction'
EXPERT_USAGE_PREFIX = 'expert_usage_'
EXPERT_TOP1_PREFIX = 'expert_top1_'
ROUTING_ENTROPY_PREFIX = 'routing_entropy_'
ROUTER_GRAD = 'router_grad'
REDO_RECYCLED = 'redo_recycled'


def _per(key, layer):
  return key if layer is None else f'{key}/{layer}'


def eval_return(task):
  return EVAL_RETURN_PREFIX + task


def eval_score(task):
  return EVAL_SCORE_PREFIX + task


def eval_episodes(task):
  return EVAL_EPISODES_PREFIX + task


def train_return(task):
  return TRAIN_RETURN_PREFIX + task


def dormant_fraction(tau, layer=None):
  """The tau-dormant fraction, overall or of one layer."""
  return _per(f'{DORMANT_PREFIX}{tau}', layer)


def dormant_units(layer=None):
  """How many neurons the dormant fraction of a layer (or of all) counts."""
  return _per(DORMANT_UNITS, layer)


def routed_dormant_fraction(tau, layer=None):
  """The tau-dormant fraction measured on routed tokens only."""
  return _per(f'{ROUTED_DORMANT_PREFIX}{tau}', layer)


def unused_experts(layer=None):
  return _per(UNUSED_EXPERTS, layer)


def expert_usage(task, layer):
  return f'{EXPERT_USAGE_PREFIX}{task}/{layer}'


def expert_top1(task, layer):
  return f'{EXPERT_TOP1_PREFIX}{task}/{layer}'


def routing_entropy(task, layer):
  return f'{ROUTING_ENTROPY_PREFIX}{task}/{layer}'


def router_grad(layer):
  return f'{ROUTER_GRAD}/{layer}'


def aux_loss(layer, loss):
  return f'{layer}/{loss}'


def loss(part):
  """A part of the training loss ('HuberLoss', 'TotalLoss', '<layer>/<loss>')
  on a replayed batch."""
  return f'loss/{part}'


def tasks_with(prefix, keys):
  """Sorted task names T of the keys `prefix + T` (no '/' in T)."""
  return sorted(
      {k[len(prefix):] for k in keys if k.startswith(prefix) and '/' not in k[len(prefix):]}
  )


def is_per_expert(key):
  """Statistics that are lists of one float per expert."""
  return key.startswith((EXPERT_USAGE_PREFIX, EXPERT_TOP1_PREFIX))


def expert_hidden(moe_layer, expert, hidden):
  """The name of expert `expert`'s hidden layer `hidden` in `moe_layer`."""
  return f'{moe_layer}/expert_{expert}/hidden_{hidden}'


def parse_expert_hidden(layer):
  """(moe layer, expert) of an expert_hidden name, or None for other layers."""
  parts = layer.rsplit('/', 2)
  if len(parts) == 3 and parts[1].startswith('expert_') and parts[2].startswith('hidden_'):
    return parts[0], int(parts[1][len('expert_'):])
  return None
