r"""Training-step time with matmul_gradients' input gradient against TensorFlow's.

  .venv/bin/python benchmarks/matmul_gradients.py [--rounds=10] [--steps=50]

For each variant, builds two agents in this process as a run builds them
(moe_dopamine.cost.build_agent, one thread each): one whose networks take
moe_dopamine.networks.matmul_gradients' input gradient (the package's
default), one with TensorFlow's own MatMul gradient. Both fill their replay
buffers alike; then, `rounds` times, each runs `steps` training steps
(sampling, forward, backward, Adam), alternating which goes first. Prints
each agent's median time per step over the rounds and the median of the
per-round ratios (paired: both agents ran within the same second of each
round, so drift of the shared machine cancels).
"""

import contextlib
import statistics

import common  # The repository on the path; legacy Keras first.


from moe_dopamine import cost
from moe_dopamine.networks import matmul_gradients

VARIANTS = [
    ('crl_baseline.gin', None, []),
    ('crl_big_topk.gin', None, []),
    ('crl_big_softmoe.gin', None, []),
    ('crl_final_topk.gin', None, []),
    ('crl_middle_softmoe.gin', None, []),
    ('minatar_breakout_baseline.gin', None, []),
    ('minatar_crl_big_topk.gin', None, ["MultiTaskEnvironment.task_names = ['Breakout']"]),
    ('minatar_crl_middle_softmoe.gin', None,
     ["MultiTaskEnvironment.task_names = ['Breakout']"]),
]


def filled_agent(gin_file, num_experts, bindings, faster):
  """An agent with 1,000 random transitions in its replay buffer."""
  original = matmul_gradients.faster_matmul_gradients
  if not faster:
    matmul_gradients.faster_matmul_gradients = contextlib.nullcontext
  try:
    variant = cost.Variant(gin_file, [cost.gin_path(gin_file)], bindings)
    agent, environment = cost.build_agent(variant, num_experts)
  finally:
    matmul_gradients.faster_matmul_gradients = original
  cost.fill_replay(agent, environment, seed=0)
  return agent


def main():
  args = common.paired_benchmark_args(__doc__, [
      'variant',
      'TensorFlow gradient ms',
      'faster gradient ms',
      'faster / TensorFlow',
  ])
  ratios = {}
  for gin_file, num_experts, bindings in VARIANTS:
    faster = filled_agent(gin_file, num_experts, bindings, True)
    stock = filled_agent(gin_file, num_experts, bindings, False)
    times = common.paired_times(
        {'faster': faster._run_train_op, 'stock': stock._run_train_op},  # pylint: disable=protected-access
        args.rounds, args.steps)
    ratio = common.paired_ratio(times, 'faster', 'stock')
    ratios[gin_file] = ratio
    print(f"| {gin_file[:-4]} | {1e3 * statistics.median(times['stock']):.2f} | "
          f"{1e3 * statistics.median(times['faster']):.2f} | {ratio:.2f} |", flush=True)
  print(f'largest ratio faster / TensorFlow over the variants: {max(ratios.values()):.2f} '
        '(target <= 1)')


if __name__ == '__main__':
  main()
