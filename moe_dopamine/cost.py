r"""The cost of every network variant, as a Markdown table.

  python -m moe_dopamine.cost [--family=classic_control|minatar] \
      [--gin_files=gin_configs/cartpole_big_softmoe.gin ...] \
      [--num_experts=4,8] [--measure] [--out=cost.md]
  python -m moe_dopamine.cost --family=study [--measure] \
      [--csv=docs/study/cost.csv]
  python -m moe_dopamine.cost --family=minatar_study [--measure] \
      [--csv=docs/study_minatar/cost.csv]

One row per variant and number of experts: trainable parameters, parameters
active in one forward pass, FLOPs and bytes of memory traffic of an acting
forward pass and of a training step (moe_dopamine.networks.cost: analytic,
from the layer shapes). With
--measure, also the median time of a training step (sampling, forward,
backward, Adam) and of choosing an action, on one thread, each with its ratio
to the baseline's, and the peak resident memory of that short run (build,
fill the replay with 1,000 transitions, time; each variant in a fresh
process, so the figure includes Python and TensorFlow themselves).

--measure also measures the machine's limits in the same run, on one thread
with TensorFlow (`machine_limits`): its fp32 matmul rate (the best of square
products of 512 and 1,024), its memory bandwidth by working set (STREAM's
scale, y = 2 x, with NumPy into a preallocated output, moving 1 MB to 256 MB:
from a core's cache to far beyond the last-level cache) and the fixed cost of one session call that feeds one state
and fetches one value. Each row then gets its roofline floor,
  training floor = max(FLOPs / matmul rate, bytes / bandwidth),
  acting floor = session call + max(FLOPs / matmul rate, bytes / bandwidth),
the bandwidth being the one measured for the largest working set not above
the row's bytes, and its measured time over the floor; and where its time
goes (`breakdown`, a second table): outside TensorFlow's ops (the session
call, a training step's replay sample), products, Adam, the routing's data
movement and other ops, and what keeps it above its target (`bound_by`). A
variant with a soft-to-sparse router has a second row, its name ending in
' (s = 1)': the router at full sparsity, where it computes only the chosen
experts (the first row is its annealing phase, s < 1, every expert). --out
writes the Markdown, --csv the rows (the study report reads the study
family's from docs/study/cost.csv).

The variants are the --gin_files given (classic-control or MinAtar files, one
variant each; `<Network>.num_experts` is bound for the network the file
uses), or else the default set of --family:
- classic_control (the default): every single-task CartPole placement x
  router, n = 4 and 8;
- minatar: the Breakout baseline (minatar_breakout_baseline.gin), then each
  placement (middle, final, all, big) x router (softmoe, topk) on Breakout,
  n = 4 and 8, as the rows `minatar_breakout_<placement>_<router>`. There are
  no single-game MinAtar MoE configs, so each of these is the CRL config the
  study trains, minatar_crl_<placement>_<router>.gin, with
  `MultiTaskEnvironment.task_names = ['Breakout']`: the variant's MoE
  settings come from the file that trains it, and only the games change, so
  its network reads Breakout's 10 x 10 x 4 screens (plus the game id) with
  MinAtar's six actions and a batch of 32, as the Breakout baseline does.
  (The MTRL configs build the same networks; only their schedules differ.)
- study: the networks of the study's grid as it trains them, one row per
  CRL config (crl_*.gin), each at the number of experts its file sets (not
  rebound unless --num_experts is given): CartPole and MountainCar with the
  union's 3 actions and a batch of 128, with the parameter-matched baseline,
  hardcoded routing and the soft-to-sparse routers among them. The MTRL
  configs build the same networks.
- minatar_study: the same for the MinAtar study's grid: one row per MinAtar
  CRL config (minatar_crl_*.gin) at the number of experts its file sets, on
  its three games (Breakout, SpaceInvaders, Asterix: 10 x 10 screens with
  the widest game's channels, the union's actions, a batch of 32).
A baseline's row does not depend on n and is printed once (n '-'); a
parameter-matched baseline's does.
"""

import collections
from concurrent import futures
import csv
import glob
import multiprocessing
import os
import statistics
import sys
import time

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.

import gin
import numpy as np
import tensorflow as tf

from moe_dopamine import cli
from moe_dopamine import config
from moe_dopamine.agents import factory
from moe_dopamine.agents import moe_dqn_agent
from moe_dopamine.environments import multitask
from moe_dopamine.networks import cost
from moe_dopamine.networks import moe
from moe_dopamine.networks import q_networks


FAMILIES = ('classic_control', 'minatar', 'study', 'minatar_study')
# Families whose rows keep the number of experts each file sets.
AS_FILES_SET = ('study', 'minatar_study')
MINATAR_PLACEMENTS = ('middle', 'final', 'all', 'big')
ROUTERS = ('softmoe', 'topk')
# The Q-networks whose number of experts a row binds.
NETWORKS = ('ClassicControlQNetwork', 'MinAtarQNetwork')

# A row's gin files and bindings, and its name in the table.
Variant = collections.namedtuple('Variant', ['name', 'gin_files', 'bindings'])


def gin_path(name):
  return os.path.join(config.GIN_CONFIGS_DIR, name)


def file_variant(gin_file):
  """The variant of one gin file, named after it."""
  return Variant(os.path.splitext(os.path.basename(gin_file))[0], [gin_file], [])


def default_gin_files():
  files = sorted(glob.glob(gin_path('cartpole_*.gin')))
  return [f for f in files if not f.endswith('_scaled.gin')]


def minatar_variants():
  """The Breakout baseline, then every placement x router on Breakout alone
  (see the module docstring)."""
  variants = [file_variant(gin_path('minatar_breakout_baseline.gin'))]
  for placement in MINATAR_PLACEMENTS:
    for router in ROUTERS:
      variants.append(Variant(
          f'minatar_breakout_{placement}_{router}',
          [gin_path(f'minatar_crl_{placement}_{router}.gin')],
          ["MultiTaskEnvironment.task_names = ['Breakout']"],
      ))
  return variants


def default_variants(family):
  """The default set of a family (see the module docstring)."""
  if family == 'minatar':
    return minatar_variants()
  if family == 'study':
    return [file_variant(f) for f in sorted(glob.glob(gin_path('crl_*.gin')))]
  if family == 'minatar_study':
    return [file_variant(f) for f in sorted(glob.glob(gin_path('minatar_crl_*.gin')))]
  return [file_variant(f) for f in default_gin_files()]


def network_name():
  """The Q-network class the loaded gin config gives the agent."""
  try:
    name = gin.query_parameter('DQNAgent.network').configurable.name
  except (ValueError, AttributeError):
    name = None
  if name not in NETWORKS:
    raise config.ConfigError(
        f'DQNAgent.network is {name!r}: the cost table knows the experts of '
        f'{" and ".join(NETWORKS)} only.'
    )
  return name


def build_agent(variant, num_experts, threads=1):
  """The agent of `variant` (a Variant, or one gin file's path), as a run
  builds it, in a fresh graph and session; with `num_experts` experts, or
  as many as its files set if None."""
  if isinstance(variant, str):
    variant = file_variant(variant)
  gin.clear_config()
  config.load_gin_configs(variant.gin_files, variant.bindings)
  network = network_name()
  if num_experts is not None:
    with gin.unlock_config():
      gin.bind_parameter(f'{network}.num_experts', num_experts)
  graph = tf.Graph()
  with graph.as_default():
    session = tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads))
    environment = multitask.MultiTaskEnvironment()
    agent = factory.create_agent(session, environment)
    session.run(tf.compat.v1.global_variables_initializer())
  return agent, environment


def _status_mib(field):
  """A memory field of /proc/self/status (Linux), in MiB; NaN elsewhere."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return float('nan')


def resident_mib():
  """This process's resident memory now, in MiB."""
  return _status_mib('VmRSS')


def peak_mib():
  """This process's peak resident memory so far, in MiB."""
  return _status_mib('VmHWM')


# Calls before timing: a fresh session's first hundred or so training steps
# run up to a third slower (allocations settling), which a median of 50
# would still see.
WARMUP_CALLS = 200


def median_ms(fn, repeats, warmup=WARMUP_CALLS):
  """Median milliseconds of `repeats` calls of fn, after `warmup` calls."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def fill_replay(agent, environment, transitions=1000, seed=None):
  """Adds `transitions` transitions of uniformly random legal actions to the
  agent's replay buffer; returns the last observation."""
  rng = np.random.default_rng(seed)
  observation = environment.reset()
  for _ in range(transitions):
    legal = np.flatnonzero(environment.action_masks[environment.current_task])
    action = rng.choice(legal)
    next_observation, reward, terminal, _ = environment.step(action)
    agent._replay.add(observation[:, None], action, reward, terminal)  # pylint: disable=protected-access
    observation = environment.reset() if environment.game_over else next_observation
  return observation


def timed(agent, state, repeats):
  """(ms per training step, ms per greedy action on `state`)."""
  train_ms = median_ms(agent._run_train_op, repeats)  # pylint: disable=protected-access
  act_ms = median_ms(lambda: agent._greedy_action(state), repeats * 5)  # pylint: disable=protected-access
  return train_ms, act_ms


def acting_state(observation):
  """An environment's observation as the agent's one-state input."""
  return observation[None, :, None, None]


def measure(agent, environment, repeats):
  """(ms per training step, ms per action) after filling the replay."""
  return timed(agent, acting_state(fill_replay(agent, environment)), repeats)


# Groups of a traced call's ops, by op type (as TensorFlow's trace names it;
# oneDNN's kernels carry an _Mkl prefix, _MklNativeFusedMatMul is a product):
# the products whose FLOPs the floor counts (forward and gradients), Adam's
# updates, the routing's data movement, and every other op.
OP_GROUPS = (
    ('products', ('MatMul', 'Conv2D', 'Einsum')),
    ('Adam', ('ApplyAdam',)),
    ('dispatch', ('Gather', 'DynamicPartition', 'DynamicStitch', 'TopK', 'Scatter',
                  'SegmentSum', 'Where', 'Cumsum', 'Sort', 'Split')),
)
OTHER_OPS = 'other ops'
TRAIN_GROUPS = tuple(name for name, _ in OP_GROUPS) + (OTHER_OPS,)
ACT_GROUPS = ('products', 'dispatch', OTHER_OPS)  # Acting has no Adam.
# The rest of a call's time: outside TensorFlow's ops (the Python replay
# sample, the session call, the executor between ops).
OUTSIDE_OPS = 'outside ops'
TRACED_CALLS = 20


def op_type(node_stats):
  """An executed node's op type, from its trace label ('name = Op(inputs)')."""
  label = node_stats.timeline_label
  if not label:
    return node_stats.node_name
  return label.split('(')[0].split('=')[-1].strip().split(' ')[0]


def op_group(kind):
  """The OP_GROUPS name of an op type, else OTHER_OPS."""
  for name, markers in OP_GROUPS:
    if any(marker in kind for marker in markers):
      return name
  return OTHER_OPS


def traced_ms(run, calls=TRACED_CALLS, warmup=5):
  """({group: ms of op time per call}, ops per call) of `calls` calls of
  run(options, run_metadata) traced with FULL_TRACE, after `warmup`."""
  options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
  micros, ops = collections.Counter(), 0
  for call in range(warmup + calls):
    metadata = tf.compat.v1.RunMetadata()
    run(options, metadata)
    if call < warmup:
      continue
    for device in metadata.step_stats.dev_stats:
      for node in device.node_stats:
        micros[op_group(op_type(node))] += node.all_end_rel_micros
        ops += 1
  return {group: micros[group] / calls / 1e3 for group in micros}, ops / calls


def breakdown(agent, state, train_ms, act_ms):
  """Where a training step's and an action's measured time goes.

  Outside TensorFlow's ops, measured on their own: an action's session call
  (`session_call_seconds`), a training step's session call and replay sample.
  The rest of the measured time is op time, split between the groups of ops
  (products, Adam, dispatch, other ops) in the shares a FULL_TRACE of
  TRACED_CALLS calls gives them (tracing slows each op, the small ones most,
  so its absolute times are not used). Returns {'<train|act> <group> ms':
  ms per call, '<train|act> outside ops ms', '<train|act> ops': ops per
  call}."""
  memory = agent._replay.memory  # pylint: disable=protected-access
  feeds = [agent._replay.transition[e.name] for e in memory.get_transition_elements()]  # pylint: disable=protected-access
  sess = agent._sess  # pylint: disable=protected-access

  def train(options, metadata):
    sess.run(agent._train_op, dict(zip(feeds, memory.sample_transition_batch())),  # pylint: disable=protected-access
             options=options, run_metadata=metadata)

  def act(options, metadata):
    sess.run(agent._q_argmax, {agent.state_ph: state}, options=options, run_metadata=metadata)  # pylint: disable=protected-access

  call_ms = 1e3 * session_call_seconds()
  outside = {'train': call_ms + median_ms(memory.sample_transition_batch, 200, warmup=20),
             'act': call_ms}
  out = {}
  for prefix, run, groups, measured in (('train', train, TRAIN_GROUPS, train_ms),
                                         ('act', act, ACT_GROUPS, act_ms)):
    by_group, ops = traced_ms(run)
    traced = sum(by_group.get(group, 0.0) for group in groups)
    op_ms = max(0.0, measured - outside[prefix])
    for group in groups:
      out[f'{prefix} {group} ms'] = op_ms * by_group.get(group, 0.0) / traced
    out[f'{prefix} {OUTSIDE_OPS} ms'] = measured - op_ms
    out[f'{prefix} ops'] = ops
  return out


def measured_run(variant, num_experts, repeats, fully_sparse=False):
  """(train ms, act ms, peak MiB, breakdown) of a short run of one variant in
  this process: build, fill the replay, time training steps and actions,
  then trace some of each (`breakdown`)."""
  tf.compat.v1.disable_v2_behavior()
  agent, environment = build_agent(variant, num_experts)
  if fully_sparse:
    agent._set_sparsity(1.0)  # pylint: disable=protected-access
    agent._run_sync()  # pylint: disable=protected-access  # The target network's s too.
  state = acting_state(fill_replay(agent, environment))
  train_ms, act_ms = timed(agent, state, repeats)
  peak = peak_mib()
  return train_ms, act_ms, peak, breakdown(agent, state, train_ms, act_ms)


def measured_apart(variant, num_experts, repeats, fully_sparse=False):
  """measured_run in a fresh process, so its peak memory is its own."""
  context = multiprocessing.get_context('spawn')
  with futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    return pool.submit(measured_run, variant, num_experts, repeats, fully_sparse).result()


MachineLimits = collections.namedtuple(
    'MachineLimits', ['matmul_flops_per_s', 'bandwidth', 'call_s'])
# bandwidth: ((bytes moved, bytes per second), ...) by working set, smallest first.

# Working sets of the bandwidth curve (bytes read plus written): from what
# fits in a core's L2 to far beyond the last-level cache.
BANDWIDTH_BYTES = tuple(2 ** 20 * mib for mib in (1, 4, 16, 64, 256))


def bytes_per_second(limits, moved):
  """The measured bandwidth for a working set of `moved` bytes: the rate of
  the largest measured set not above it (the smallest set's below it), so a
  floor never assumes a slower memory than the machine showed."""
  rate = limits.bandwidth[0][1]
  for size, measured in limits.bandwidth:
    if size <= moved:
      rate = measured
  return rate


def _single_thread_session():
  return tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))


def _best_seconds(fn, repeats):
  """The fastest of `repeats` calls (after a warm-up): a machine limit is
  what it can do, not what it does on average beside other work."""
  fn()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def measure_limits(repeats=20):
  """MachineLimits of this machine, measured with TensorFlow on one thread
  in this process (see the module docstring)."""
  tf.compat.v1.disable_v2_behavior()
  rates = []
  for size in (512, 1024):
    with tf.Graph().as_default():
      a = tf.Variable(tf.random.uniform([size, size]))
      b = tf.Variable(tf.random.uniform([size, size]))
      product = tf.reduce_sum(tf.matmul(a, b)[:1, :1])
      sess = _single_thread_session()
      sess.run(tf.compat.v1.global_variables_initializer())
      seconds = _best_seconds(sess.make_callable(product), repeats)
      rates.append(2 * size ** 3 / seconds)
  # STREAM's scale with NumPy into a preallocated output (TensorFlow would
  # allocate, and page in, a fresh output at every call), at each working set.
  bandwidth = []
  for moved in BANDWIDTH_BYTES:
    x = np.ones(moved // 8, np.float32)
    y = np.empty_like(x)
    seconds = _best_seconds(lambda: np.multiply(x, 2.0, out=y), repeats * 4)  # pylint: disable=cell-var-from-loop
    bandwidth.append((moved, moved / seconds))
  return MachineLimits(max(rates), tuple(bandwidth), session_call_seconds(50 * repeats))


def session_call_seconds(repeats=1000):
  """Median seconds of one session call that feeds a state and fetches one
  value, made as the agent makes its acting calls
  (moe_dqn_agent.feeding_callable, in the calling thread)."""
  with tf.Graph().as_default():
    state = tf.compat.v1.placeholder(tf.float32, [1, 5])
    sess = _single_thread_session()
    call = moe_dqn_agent.feeding_callable(
        sess, [state], tf.reduce_sum(state), in_caller_thread=True)
    one_state = np.zeros([1, 5], np.float32)
    return 1e-3 * median_ms(lambda: call(one_state), repeats)


def measure_limits_apart(repeats=20):
  """measure_limits in a fresh process (nothing else of this one in cache)."""
  context = multiprocessing.get_context('spawn')
  with futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    return MachineLimits(*pool.submit(measure_limits, repeats).result())


def floors(row, limits):
  """A measured row's roofline floors (ms) and measured time / floor."""
  def memory_seconds(megabytes):
    return megabytes * 1e6 / bytes_per_second(limits, megabytes * 1e6)

  train = max(row['training-step GFLOP'] * 1e9 / limits.matmul_flops_per_s,
              memory_seconds(row['training-step MB']))
  act = limits.call_s + max(row['acting MFLOP'] * 1e6 / limits.matmul_flops_per_s,
                            memory_seconds(row['acting MB']))
  return {
      'train floor ms': 1e3 * train, 'train x floor': row['train ms'] / (1e3 * train),
      'act floor ms': 1e3 * act, 'act x floor': row['act ms'] / (1e3 * act),
      'session call ms': 1e3 * limits.call_s,
  }


def describe_limits(limits):
  """One sentence of the measured limits, for the table's header."""
  curve = ', '.join(f'{rate / 1e9:.0f} GB/s at {size / 2 ** 20:.0f} MB'
                    for size, rate in limits.bandwidth)
  return (f'Machine limits, measured in the same run on one thread: TensorFlow fp32 '
          f'matmul {limits.matmul_flops_per_s / 1e9:.1f} GFLOP/s; memory {curve} moved; '
          f'one session call {1e6 * limits.call_s:.0f} us (in every acting floor).')


FULLY_SPARSE = ' (s = 1)'  # Suffix of a soft-to-sparse variant's row at full sparsity.


def has_soft_to_sparse(network):
  layers = getattr(network, 'moe_layers', lambda: [])()
  return any(layer.router == moe.Router.SOFT_TO_SPARSE for layer in layers)


def rows(variants, experts, measured, repeats, limits=None):
  """One row per variant and number of experts (None: as its files set); a
  soft-to-sparse variant gets a second row at full sparsity, named with
  FULLY_SPARSE. Measured rows get their floors from `limits` (a
  MachineLimits)."""
  out, seen = [], set()
  for variant in variants:
    for num_experts in experts:
      agent, _ = build_agent(variant, num_experts)
      network = agent.online_convnet
      plain_baseline = (network.placement == q_networks.Placement.BASELINE
                        and network.parameter_matched_to is None)
      # The baseline does not depend on n, nor does separate (n = num_tasks).
      n = '-' if plain_baseline else network.num_experts
      if (variant.name, n) in seen:
        continue
      seen.add((variant.name, n))
      for fully_sparse in (False, True) if has_soft_to_sparse(network) else (False,):
        flops, active = cost.forward_cost(network, fully_sparse)
        batch_size = agent._replay.batch_size  # pylint: disable=protected-access
        row = {
            'variant': variant.name + (FULLY_SPARSE if fully_sparse else ''),
            'n': n,
            'parameters': q_networks.count_parameters(network),
            'active': active,
            'acting MFLOP': flops / 1e6,
            'training-step GFLOP': cost.training_step_flops(
                network, batch_size, fully_sparse) / 1e9,
            'acting MB': cost.acting_bytes(network, fully_sparse) / 1e6,
            'training-step MB': cost.training_step_bytes(
                network, batch_size, fully_sparse) / 1e6,
        }
        if measured:
          row['train ms'], row['act ms'], row['peak RSS MiB'], parts = measured_apart(
              variant, num_experts, repeats, fully_sparse)
          row.update(floors(row, limits))
          row.update(parts)
        out.append(row)
  return out


INTEGER_COLUMNS = ('parameters', 'active')
FLOAT_COLUMNS = ('acting MFLOP', 'training-step GFLOP', 'acting MB', 'training-step MB',
                 'train ms', 'act ms', 'peak RSS MiB', 'train floor ms', 'train x floor',
                 'act floor ms', 'act x floor', 'session call ms', 'train ops', 'act ops') + tuple(
                     f'{prefix} {group} ms' for prefix, groups in (('train', TRAIN_GROUPS),
                                                                   ('act', ACT_GROUPS))
                     for group in groups + (OUTSIDE_OPS,))


TRAIN_TARGET, ACT_TARGET = 1.3, 2.0  # Measured time / floor aimed for.


def bound_by(row, prefix):
  """What keeps a measured row's training step ('train') or action ('act')
  above its target: the part of the time with the largest excess over what
  the floor allows it. Products are allowed the floor's arithmetic (they run
  at less than the matmul rate when slower; the text gives their rate), an
  action's outside-ops time one session call; every other group is excess
  entirely."""
  target = TRAIN_TARGET if prefix == 'train' else ACT_TARGET
  if row[f'{prefix} x floor'] <= target:
    return f'within {target:g}x'
  floor = row[f'{prefix} floor ms']
  call_ms = row.get('session call ms', 0.0) if prefix == 'act' else 0.0
  gflop = row['training-step GFLOP'] if prefix == 'train' else row['acting MFLOP'] / 1e3
  products = row[f'{prefix} products ms']
  excess = {f'products at {gflop / products * 1e3:.0f} GFLOP/s' if products else 'products':
            products - (floor - call_ms)}
  groups = TRAIN_GROUPS if prefix == 'train' else ACT_GROUPS
  for group in groups[1:]:
    excess[group] = row[f'{prefix} {group} ms']
  excess[OUTSIDE_OPS] = row[f'{prefix} {OUTSIDE_OPS} ms'] - call_ms
  return max(excess, key=excess.get)


def breakdown_table(result):
  """Markdown: where each measured row's time goes, in percent of its
  measured training step and action, and what bounds it (`bound_by`)."""
  measured = [r for r in result if 'train ops' in r]
  if not measured:
    return ''
  header = (['variant', 'n', 'train ms', 'train x floor']
            + [f'train {g} %' for g in TRAIN_GROUPS + (OUTSIDE_OPS,)]
            + ['train ops', 'train bound by', 'act ms', 'act x floor']
            + [f'act {g} %' for g in ACT_GROUPS + (OUTSIDE_OPS,)]
            + ['act ops', 'act bound by'])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in measured:
    cells = [r['variant'], str(r['n'])]
    for prefix, groups in (('train', TRAIN_GROUPS), ('act', ACT_GROUPS)):
      total = r[f'{prefix} ms']
      cells += [f'{total:.3f}' if prefix == 'act' else f'{total:.2f}',
                f"{r[f'{prefix} x floor']:.2f}"]
      cells += [f"{100 * r[f'{prefix} {g} ms'] / total:.0f}" for g in groups + (OUTSIDE_OPS,)]
      cells += [f"{r[f'{prefix} ops']:.0f}", bound_by(r, prefix)]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def write_csv(result, path):
  """The rows as a CSV file, one line per variant and n."""
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(result[0]))
    writer.writeheader()
    writer.writerows(result)


def read_csv(path):
  """The rows write_csv wrote, with their numbers as numbers."""
  with open(path, newline='') as f:
    result = list(csv.DictReader(f))
  for row in result:
    row['n'] = row['n'] if row['n'] == '-' else int(row['n'])
    for column in INTEGER_COLUMNS:
      row[column] = int(row[column])
    for column in FLOAT_COLUMNS:
      if column in row:
        row[column] = float(row[column])
  return result


def table(result, extra=None):
  """Markdown, one line per row; `extra`: {column title: {variant: cell}},
  columns appended after the cost's ('n/a' where a variant has no cell)."""
  extra = extra or {}
  baseline = next((r for r in result if r['n'] == '-'), None)
  header = ['variant', 'n', 'parameters', 'active', 'acting MFLOP', 'training-step GFLOP']
  if 'acting MB' in result[0]:
    header += ['acting MB', 'training-step MB']
  if 'train ms' in result[0]:
    header += ['train ms', 'x baseline', 'act ms', 'x baseline ', 'peak RSS MiB']
  if 'train floor ms' in result[0]:
    header += ['train floor ms', 'train x floor', 'act floor ms', 'act x floor']
  header += list(extra)
  lines = ['| ' + ' | '.join(h.strip() for h in header) + ' |',
           '|' + '---|' * len(header)]
  for r in result:
    cells = [r['variant'], str(r['n']), f"{r['parameters']:,}", f"{r['active']:,}",
             f"{r['acting MFLOP']:.2f}", f"{r['training-step GFLOP']:.3f}"]
    if 'acting MB' in result[0]:
      cells += [f"{r['acting MB']:.2f}", f"{r['training-step MB']:.1f}"]
    if 'train ms' in r:
      cells += [f"{r['train ms']:.2f}",
                f"{r['train ms'] / baseline['train ms']:.2f}" if baseline else '-',
                f"{r['act ms']:.3f}",
                f"{r['act ms'] / baseline['act ms']:.2f}" if baseline else '-',
                f"{r['peak RSS MiB']:.0f}"]
    if 'train floor ms' in r:
      cells += [f"{r['train floor ms']:.2f}", f"{r['train x floor']:.2f}",
                f"{r['act floor ms']:.3f}", f"{r['act x floor']:.2f}"]
    cells += [column.get(r['variant'], 'n/a') for column in extra.values()]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv=None):
  parser = cli.ArgumentParser(prog='moe_dopamine.cost',
                              description=__doc__.split('\n')[0])
  parser.add_argument(
      '--family', choices=FAMILIES, default='classic_control',
      help='the default set of variants: classic_control (every single-task '
      'CartPole placement x router) or minatar (the Breakout baseline and every '
      'placement x router on Breakout: the minatar_crl_<placement>_<router>.gin '
      "configs with MultiTaskEnvironment.task_names = ['Breakout']); "
      'study (the CRL configs of the study, as they train); minatar_study (the '
      "MinAtar study's CRL configs, as they train); --gin_files replaces it")
  parser.add_argument('--gin_files', action='append', default=None,
                      help='a variant (classic-control or MinAtar gin file); repeatable')
  parser.add_argument('--num_experts', default=None,
                      help='comma-separated numbers of experts (default: 4,8; for '
                      '--family=study and minatar_study, as each file sets)')
  parser.add_argument('--measure', action='store_true')
  parser.add_argument('--repeats', type=int, default=100)
  parser.add_argument('--out', default=None, help='also write the table to this file')
  parser.add_argument('--csv', default=None,
                      help="also write the rows to this CSV file (a study's report and plan "
                      'read cost.csv in its report folder)')
  args = parser.parse_args(argv)
  tf.compat.v1.disable_v2_behavior()
  try:
    if args.num_experts is not None:
      experts = [int(n) for n in args.num_experts.split(',')]
    elif args.family in AS_FILES_SET and not args.gin_files:
      experts = [None]
    else:
      experts = [4, 8]
    if args.gin_files:
      variants = [file_variant(f) for f in args.gin_files]
    else:
      variants = default_variants(args.family)
    limits = measure_limits_apart() if args.measure else None
    result = rows(variants, experts, args.measure, args.repeats, limits)
  except (ValueError, config.ConfigError) as error:
    print(f'moe_dopamine.cost: error: {error}', file=sys.stderr)
    return 2
  text = table(result)
  if args.measure:
    text += ('\n\nWhere the time goes, in percent of the measured time (`moe_dopamine.cost.'
             'breakdown`): outside ops, the session call and a training step\'s replay sample, '
             'each timed alone; the rest split between groups of ops in the shares a traced '
             'call gives them. Bound by: the part furthest beyond what the floor allows it '
             '(`moe_dopamine.cost.bound_by`).\n\n' + breakdown_table(result))
    family = '' if args.gin_files else f' --family={args.family}'
    text = (f'Measured with `python -m moe_dopamine.cost{family} --measure '
            f'--repeats={args.repeats}` '
            f'on {os.cpu_count()} cores, 1 thread per variant. '
            + describe_limits(limits) + '\n\n' + text)
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')
  if args.csv:
    write_csv(result, args.csv)
  return 0


if __name__ == '__main__':
  sys.exit(main())
