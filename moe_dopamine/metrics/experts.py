"""Expert usage and specialization statistics from routing probabilities.

For an MoE layer with n experts and the routing probabilities of a batch
(probs [batch, tokens, n], each token's row summing to 1), grouped by task:
- usage: mean routing probability of each expert;
- top-1 share: fraction of tokens whose most probable expert is each expert;
- entropy: mean over tokens of -sum_e p_e log p_e (nats; 0 = one expert,
  log n = uniform).
The task x expert usage matrix is what shows specialization. Expert labels
are arbitrary per run (expert 2 of one seed is not expert 2 of another), so
a run is summarized before runs are averaged:
- specialization: the normalized mutual information between the task and
  the top-1 expert, I(T; E) / ((H(T) + H(E)) / 2), with tasks weighted
  equally and p(e | t) the task's top-1 shares (0: routing ignores the task;
  1: one expert per task, none shared); NaN with a single task;
- busiest share: the top-1 share of the expert most states go to, with
  tasks weighted equally (1/n: balanced; 1: one expert takes everything).
Or the runs' experts are matched before averaging (`align`): each run's
experts are permuted (Hungarian matching, scipy's linear_sum_assignment) to
the closest columns of a reference, the mean of the aligned runs, starting
from the first run and repeated until no permutation changes.
"""

import numpy as np
from scipy import optimize


def usage(probs):
  probs = np.asarray(probs, np.float64).reshape(-1, np.shape(probs)[-1])
  return probs.mean(axis=0)


def top1_share(probs):
  probs = np.asarray(probs, np.float64).reshape(-1, np.shape(probs)[-1])
  return np.bincount(probs.argmax(axis=-1), minlength=probs.shape[-1]) / len(probs)


def routing_entropy(probs):
  probs = np.asarray(probs, np.float64).reshape(-1, np.shape(probs)[-1])
  return float(-(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=-1).mean())


def expert_statistics(router_probs, task_ids, task_names):
  """Statistics dict per task and MoE layer.

  Args:
    router_probs: {layer: [batch, tokens, n]}.
    task_ids: int [batch], the task of each sample.
    task_names: names indexed by task id.

  Returns:
    {'expert_usage_<Task>/<layer>': [n floats],
     'expert_top1_<Task>/<layer>': [n floats],
     'routing_entropy_<Task>/<layer>': float} for tasks present in the batch.
  """
  out = {}
  task_ids = np.asarray(task_ids)
  for layer, probs in router_probs.items():
    for task, name in enumerate(task_names):
      rows = np.asarray(probs)[task_ids == task]
      if len(rows) == 0:
        continue
      out[f'expert_usage_{name}/{layer}'] = usage(rows).tolist()
      out[f'expert_top1_{name}/{layer}'] = top1_share(rows).tolist()
      out[f'routing_entropy_{name}/{layer}'] = routing_entropy(rows)
  return out


def _entropy(p):
  p = np.asarray(p, np.float64)
  p = p[p > 0]
  return float(-(p * np.log(p)).sum())


def specialization(top1):
  """NMI between task and top-1 expert; top1 [tasks, n], rows the tasks'
  top-1 shares (each summing to 1)."""
  top1 = np.asarray(top1, np.float64)
  top1 = top1 / top1.sum(axis=1, keepdims=True)
  joint = top1 / len(top1)  # Tasks weighted equally.
  h_task = _entropy(joint.sum(axis=1))
  h_expert = _entropy(joint.sum(axis=0))
  if h_task == 0.0:
    return float('nan')
  mutual = h_task + h_expert - _entropy(joint.ravel())
  return float(mutual / ((h_task + h_expert) / 2.0))


def busiest_share(top1):
  """The largest expert's top-1 share, tasks weighted equally."""
  top1 = np.asarray(top1, np.float64)
  top1 = top1 / top1.sum(axis=1, keepdims=True)
  return float(top1.mean(axis=0).max())


def align(matrices, max_rounds=20):
  """Expert-aligned copies of `matrices` ([runs, tasks, n], one task x expert
  usage matrix per run, same tasks in the same order).

  Each run's columns are permuted to minimize the squared distance to a
  reference's columns; the reference is the first run, then the mean of the
  aligned runs, until a round changes no permutation (at most max_rounds).
  Returns (aligned [runs, tasks, n], permutations [runs, n]): aligned[r][:, j]
  is matrices[r][:, permutations[r][j]].
  """
  if max_rounds < 1:
    raise ValueError(f'max_rounds must be at least 1, got {max_rounds}.')
  matrices = np.asarray(matrices, np.float64)
  if matrices.ndim != 3 or not len(matrices):
    raise ValueError(f'align needs [runs, tasks, experts] matrices, got shape {matrices.shape}.')
  runs, _, n = matrices.shape
  permutations = np.tile(np.arange(n), (runs, 1))
  reference = matrices[0]
  for _ in range(max_rounds):
    changed = False
    for r in range(runs):
      # cost[j, i]: slot j of the reference against expert i of run r.
      cost = ((reference[:, :, None] - matrices[r][:, None, :]) ** 2).sum(axis=0)
      _, chosen = optimize.linear_sum_assignment(cost)
      if not np.array_equal(chosen, permutations[r]):
        permutations[r], changed = chosen, True
    aligned = np.stack([matrices[r][:, permutations[r]] for r in range(runs)])
    reference = aligned.mean(axis=0)
    if not changed:
      break
  return aligned, permutations

