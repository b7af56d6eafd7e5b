r"""Session calls run in the calling thread against calls handed to TensorFlow's pool.

  .venv/bin/python benchmarks/session_calls.py [--rounds=10] [--steps=50]

A session callable normally hands its graph to the session's inter-op thread
pool and waits for it; with RunOptions.inter_op_thread_pool = -1 the calling
thread runs the ops itself (`moe_dqn_agent.feeding_callable(...,
in_caller_thread=True)`, what the agent's acting calls use). For each variant
one agent is built as a run builds it (moe_dopamine.cost.build_agent, one
thread) and its replay filled; then two callables of the same fetch, one each
way, are timed alternately: `rounds` times 5 x `steps` greedy actions, and
`rounds` times `steps` training steps on one fixed replayed batch. Medians
and the median of the per-round ratios (paired).
"""


import common  # The repository on the path; legacy Keras first.


from moe_dopamine import cost
from moe_dopamine.agents import moe_dqn_agent

VARIANTS = ['crl_baseline.gin', 'crl_big_topk.gin', 'crl_big_softmoe.gin',
            'minatar_crl_baseline.gin', 'minatar_crl_big_softmoe.gin',
            'minatar_crl_middle_topk.gin']
WAYS = ('pool', 'caller thread')


def main():
  args = common.paired_benchmark_args(__doc__, [
      'variant',
      'acting ms, pool',
      'acting ms, caller thread',
      'caller / pool',
      'training ms, pool',
      'training ms, caller thread',
      'caller / pool',
  ])
  for gin_file in VARIANTS:
    agent, state = common.patched_agent(gin_file)
    memory = agent._replay.memory  # pylint: disable=protected-access
    feeds = [agent._replay.transition[e.name] for e in memory.get_transition_elements()]  # pylint: disable=protected-access
    batch = memory.sample_transition_batch()
    act, train = {}, {}
    for way in WAYS:
      caller = way == 'caller thread'
      greedy = moe_dqn_agent.feeding_callable(agent._sess, [agent.state_ph], agent._q_argmax,  # pylint: disable=protected-access
                                              in_caller_thread=caller)
      step = moe_dqn_agent.feeding_callable(agent._sess, feeds, agent._train_op,  # pylint: disable=protected-access
                                            in_caller_thread=caller)
      act[way] = lambda f=greedy: f(state)
      train[way] = lambda f=step: f(*batch)
    cells = [gin_file[:-4]]
    for fns, calls in ((act, 5 * args.steps), (train, args.steps)):
      cells += common.paired_cells(fns, 'pool', 'caller thread', args.rounds, calls,
                                   warmup=cost.WARMUP_CALLS, digits=3)
    print('| ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
