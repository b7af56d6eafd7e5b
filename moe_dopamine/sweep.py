r"""Runs gin files x seeds x a grid of bindings, locally or on a Ray cluster.

  python -m moe_dopamine.sweep --out=runs/study \
      --gin_files=gin_configs/crl_baseline.gin --gin_files=gin_configs/crl_big_softmoe.gin \
      --seeds=0,1,2 [--grid="ClassicControlQNetwork.num_experts=4;8"] \
      [--gin_bindings=Runner.training_steps=500] [--workers=2] [--ray_address=auto]

Each run is `python -m moe_dopamine.train` in its own process, with one
TensorFlow thread per op, in <out>/<gin file>[__<grid values>]/seed_<s>; its
folder records its gin files, bindings and seed (run_info.json). Runs that
finished (finished.json) are skipped on a re-launch; an interrupted run
resumes from its checkpoint. A failed run is reported at the end without
stopping the others; the exit code is 1 if any failed.

Before anything is launched, every grid point goes through the checks of a
run's start (in one `moe_dopamine.train --check_plan` process, so that this
driver never loads TensorFlow): its configuration is parsed, its environment,
networks and agent are built on the CPU without training, and every binding
must be used (--allow_unused_bindings: a warning). A bad one is named and
nothing runs (exit code 2).

Ctrl-C or SIGTERM stops the whole sweep: the running runs are stopped (each
keeps its last checkpoint), no other run starts, and the driver prints which
runs finished and the command that resumes the sweep (exit 130 or 143).

Locally, `--workers` processes run at once (default: the number of cores).
With `--ray_address` (an address, 'auto' for a running cluster, or 'local' to
start Ray on this machine), every run is a Ray task needing one CPU; the
repository must be at the same path on every node.
"""

import ctypes
import dataclasses
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import List

from moe_dopamine import cli
from moe_dopamine import run_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How long stopped runs get to write their last words before SIGKILL.
STOP_GRACE_SECONDS = 20
_POLL_SECONDS = 0.2
_TRAIN_ERROR = 'moe_dopamine.train: error: '
# The exit code recorded for a run not started because another process
# (e.g. a run of an earlier launch still stopping) holds its folder.
IN_USE = -2
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclasses.dataclass
class Run:
  gin_files: List[str]
  bindings: List[str]
  seed: int
  base_dir: str
  # TensorFlow threads per op: the machine's cores shared among the runs
  # that run at once (one per Ray task).
  threads: int = 1
  # Bindings nothing uses are warnings, not errors (--allow_unused_bindings).
  allow_unused_bindings: bool = False

  def command(self):
    return (
        [sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={self.base_dir}']
        + [f'--gin_files={f}' for f in self.gin_files]
        + [f'--gin_bindings={b}' for b in self.config_bindings()]
        + [f'--gin_bindings=MoERunner.seed={self.seed}']
        + (['--allow_unused_bindings'] if self.allow_unused_bindings else [])
    )

  def config_bindings(self):
    """The bindings of the run's grid point (all but the seed)."""
    return list(self.bindings) + [f'MoERunner.intra_op_threads={self.threads}']

  @property
  def point(self):
    """The grid point's folder name, e.g. cartpole_baseline__k-2."""
    return os.path.basename(os.path.dirname(self.base_dir))

  @property
  def finished(self):
    return os.path.exists(os.path.join(self.base_dir, run_folder.FINISHED))


def threads_per_run(workers, num_runs, cores=None):
  """TensorFlow threads for each of the runs that run side by side.

  One thread per run when the runs fill the cores (measured fastest: two
  single-threaded runs on two cores beat one run on two threads); a lone run
  gets the cores.
  """
  cores = cores or os.cpu_count() or 1
  return max(1, cores // max(1, min(workers, num_runs)))


def parse_grid(specs):
  """['A.x=1;2', 'B.y=3'] -> [['A.x=1', 'B.y=3'], ['A.x=2', 'B.y=3']]."""
  axes = []
  for spec in specs:
    key, sep, values = spec.partition('=')
    if not sep or not values:
      raise ValueError(f"--grid '{spec}' must be Configurable.param=value1;value2")
    axes.append([f'{key.strip()}={v.strip()}' for v in values.split(';')])
  return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def parse_seeds(spec):
  """'0,1,2' -> [0, 1, 2]; seeds are distinct non-negative integers."""
  seeds = []
  for item in spec.split(','):
    item = item.strip()
    if not re.fullmatch(r'\d+', item):
      raise ValueError(
          f"--seeds={spec}: '{item}' is not a seed; seeds are non-negative "
          'integers. Fix: e.g. --seeds=0,1,2'
      )
    if int(item) in seeds:
      raise ValueError(f'--seeds={spec}: seed {item} is given twice (one folder per seed).')
    seeds.append(int(item))
  return seeds


def tag(binding):
  key, _, value = binding.partition('=')
  return f"{key.split('.')[-1]}-{re.sub(r'[^A-Za-z0-9._-]+', '', value)}"


def plan(gin_files, seeds, grid, common_bindings, out, allow_unused_bindings=False):
  """Every run of the sweep, in launch order."""
  runs = []
  for gin_file, combo in itertools.product(gin_files, grid):
    name = os.path.splitext(os.path.basename(gin_file))[0]
    if combo:
      name += '__' + '__'.join(tag(b) for b in combo)
    for seed in seeds:
      runs.append(Run(
          gin_files=[os.path.abspath(gin_file)],
          bindings=list(common_bindings) + combo,
          seed=seed,
          base_dir=os.path.abspath(os.path.join(out, name, f'seed_{seed}')),
          allow_unused_bindings=allow_unused_bindings,
      ))
  return runs


def check_configs(runs):
  """Runs the checks of a run's start on every distinct grid point.

  All points are checked by one `moe_dopamine.train --check_plan` process,
  which parses each point's configuration, builds its environment, networks
  and agent on the CPU in a scratch folder (no training) and checks that
  every binding is used: a value a run would refuse at its start is refused
  here, before anything is launched.

  Returns:
    One line per bad grid point, naming it and the error ([] if all are good).
  """
  points, seen = [], set()
  for run in runs:
    key = (tuple(run.gin_files), tuple(run.config_bindings()))
    if key not in seen:
      seen.add(key)
      points.append({'label': run.point, 'gin_files': run.gin_files,
                     'gin_bindings': run.config_bindings(),
                     'allow_unused_bindings': run.allow_unused_bindings})
  if not points:
    return []
  result = subprocess.run(
      [sys.executable, '-m', 'moe_dopamine.train', '--check_plan=-'],
      input=json.dumps(points), capture_output=True, text=True, cwd=REPO,
  )
  if result.returncode == 0:
    return []
  errors = [line[len(_TRAIN_ERROR):] for line in result.stderr.splitlines()
            if line.startswith(_TRAIN_ERROR)]
  if result.returncode == 2 and errors:
    return [f'grid point {error}' for error in errors]
  tail = ' | '.join(result.stderr.strip().splitlines()[-5:])
  return [f'checking the configurations failed (exit {result.returncode}): {tail}']


def _die_with(parent):
  """A preexec function: the child gets SIGTERM when `parent` dies.

  On Linux, prctl(PR_SET_PDEATHSIG) asks the kernel to signal the child when
  the thread that forked it exits, even by SIGKILL, so a killed sweep leaves
  no training process behind (SIGTERM: each stops as Ctrl-C stops it, with
  its checkpoint kept). Elsewhere: None (no preexec function).
  """
  if not sys.platform.startswith('linux'):
    return None
  # Looked up here, in the parent: the child, between fork and exec, only
  # makes the one call.
  prctl = ctypes.CDLL(None, use_errno=True).prctl

  def preexec():
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # The parent died before prctl took effect.
      os.kill(os.getpid(), signal.SIGTERM)
  return preexec


def start(run):
  """Starts the run's training process in a session (process group) of its own.

  Its own group lets the driver stop it with everything it started, and keeps
  a terminal's Ctrl-C for the driver, which stops the runs itself. The
  process dies with the driver (`_die_with`).
  """
  os.makedirs(run.base_dir, exist_ok=True)
  with open(os.path.join(run.base_dir, run_folder.TRAIN_LOG), 'a') as log:
    return subprocess.Popen(
        run.command(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        start_new_session=True, preexec_fn=_die_with(os.getpid()),
    )


def in_use_message(run):
  """Why `run` cannot start now: another process writes its folder (None
  if none does)."""
  holder = run_folder.holder_if_in_use(run.base_dir)
  if holder is None:
    return None
  return (f'{run.base_dir} is in use by {run_folder.describe_holder(holder)}: '
          'not started (a run of an earlier launch may still be stopping). '
          'Relaunch once it has stopped'
          + (f" (or stop it: kill {holder['pid']})" if holder.get('pid') else '') + '.')


def stop(processes, grace=STOP_GRACE_SECONDS):
  """SIGTERMs each process group, waits, then SIGKILLs what is left."""
  for process in processes:
    _signal_group(process, signal.SIGTERM)
  deadline = time.time() + grace
  for process in processes:
    try:
      process.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      _signal_group(process, signal.SIGKILL)
      process.wait()


def _signal_group(process, signum):
  try:
    os.killpg(process.pid, signum)
  except ProcessLookupError:
    pass  # Already gone.


def log_tail(run):
  with open(os.path.join(run.base_dir, run_folder.TRAIN_LOG)) as log:
    return log.read()[-2000:]


def execute(run):
  """Runs one training process; returns (return code, last lines of its log).

  Interrupted (a cancelled Ray task raises KeyboardInterrupt here), it stops
  the training process before passing the interrupt on.
  """
  busy = in_use_message(run)
  if busy:
    return IN_USE, busy
  process = start(run)
  try:
    while process.poll() is None:
      time.sleep(_POLL_SECONDS)  # Polls, so that an interrupt is seen at once.
  finally:
    if process.poll() is None:
      stop([process])
  return process.returncode, log_tail(run)


class Progress:
  """Prints runs done / total, elapsed time and an ETA after each run."""

  def __init__(self, total):
    self.total, self.done, self.start = total, 0, time.time()

  def update(self, run, code):
    self.done += 1
    elapsed = time.time() - self.start
    eta = elapsed / self.done * (self.total - self.done)
    status = {0: 'ok', IN_USE: 'IN USE, not started'}.get(code, f'FAILED (exit {code})')
    print(f'[{self.done}/{self.total}] {status} {run.base_dir}  '
          f'elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min', flush=True)


class StopSignals:
  """Turns SIGINT and SIGTERM into a request to stop, read by the run loops."""

  def __init__(self):
    self.signum = None

  def __enter__(self):
    self._previous = self.install()
    return self

  def install(self):
    """(Re)installs the handlers (Ray's start-up installs its own)."""
    return {signum: signal.signal(signum, self._handle)
            for signum in (signal.SIGINT, signal.SIGTERM)}

  def __exit__(self, *unused_exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum, unused_frame):
    self.signum = self.signum or signum


@dataclasses.dataclass
class Outcome:
  """What a sweep session did: finished, failed (with log tails), stopped runs."""

  finished: list = dataclasses.field(default_factory=list)
  failures: list = dataclasses.field(default_factory=list)
  interrupted: list = dataclasses.field(default_factory=list)
  # (run, why) of runs whose folder another process holds: not started.
  in_use: list = dataclasses.field(default_factory=list)
  # Runs not started because they would not end by the time limit.
  deferred: list = dataclasses.field(default_factory=list)

  def add(self, run, code, tail):
    """Files a run that ended (or could not start) with exit code `code`."""
    if code == IN_USE:
      self.in_use.append((run, tail))
    elif code:
      self.failures.append((run, tail))
    else:
      self.finished.append(run)


def run_local(runs, workers, progress, stop_signals, may_start=None):
  """Runs `workers` training processes at a time until done or asked to stop.
  `may_start(run)`, when given, is asked before each run starts; a run it
  refuses is not started (Outcome.deferred)."""
  queue, running, outcome = list(runs), {}, Outcome()
  while (queue or running) and not stop_signals.signum:
    while queue and len(running) < workers and not stop_signals.signum:
      run = queue.pop(0)
      if may_start is not None and not may_start(run):
        outcome.deferred.append(run)
        continue
      busy = in_use_message(run)
      if busy:
        progress.update(run, IN_USE)
        outcome.add(run, IN_USE, busy)
        continue
      running[start(run)] = run
    time.sleep(_POLL_SECONDS)
    for process in [p for p in running if p.poll() is not None]:
      run = running.pop(process)
      progress.update(run, process.returncode)
      outcome.add(run, process.returncode,
                  log_tail(run) if process.returncode else '')
  if running:
    stop(list(running))
    outcome.interrupted = list(running.values())
  return outcome


def run_ray(runs, address, progress, stop_signals):
  """Runs every run as a one-CPU Ray task until done or asked to stop."""
  import ray  # pylint: disable=g-import-not-at-top

  if address == 'local':
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
  else:
    ray.init(address=address, log_to_driver=False)
  stop_signals.install()
  remote_execute = ray.remote(num_cpus=1)(execute)
  pending = {remote_execute.remote(run): run for run in runs}
  outcome = Outcome()
  try:
    while pending and not stop_signals.signum:
      ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
      if not ready:
        continue
      run = pending.pop(ready[0])
      try:
        code, tail = ray.get(ready[0])
      except ray.exceptions.RayError as error:
        code, tail = -1, str(error)
      progress.update(run, code)
      outcome.add(run, code, tail)
    if pending:
      # A running task's execute() stops its training process when cancelled
      # gently; queued tasks just go. What has not ended in time is killed.
      for ref in pending:
        ray.cancel(ref)
      _, left = ray.wait(list(pending), num_returns=len(pending),
                         timeout=STOP_GRACE_SECONDS)
      for ref in left:
        ray.cancel(ref, force=True)
      outcome.interrupted = [run for run in pending.values() if os.path.isdir(run.base_dir)]
  finally:
    ray.shutdown()
  return outcome


def report_stop(signum, outcome, todo, argv, module='moe_dopamine.sweep'):
  """Says what a stopped sweep (or study, `module`) did and the command that
  resumes it."""
  name = signal.Signals(signum).name
  started = {run.base_dir for run in outcome.finished + outcome.interrupted}
  started |= {run.base_dir for run, _ in outcome.failures}
  not_started = [run for run in todo if run.base_dir not in started]
  print(f'\n{module}: stopped by {name}: {len(outcome.finished)} run(s) '
        f'finished, {len(outcome.failures)} failed, {len(outcome.interrupted)} stopped '
        f'(they resume from their last checkpoint), {len(not_started)} not started.',
        flush=True)
  for run in outcome.finished:
    print(f'  finished: {run.base_dir}')
  for run in outcome.interrupted:
    print(f'  stopped:  {run.base_dir}')
  command = shlex.join([sys.executable, '-m', module] + list(argv))
  print(f'Resume with: cd {shlex.quote(os.getcwd())} && {command}', flush=True)


def launch(todo, workers, ray_address, progress, argv, module='moe_dopamine.sweep', header='',
           may_start=None):
  """Checks the runs' configurations, then runs them (locally or on Ray;
  `may_start` as run_local's, local runs only).

  Returns None once every run finished or was deferred (each deferred run
  is named, with the command that resumes), else the exit code: 2 for a bad
  configuration (nothing ran), 1 if a run failed (each is reported with the
  end of its log) or could not start because another process holds its
  folder (each is named with that process), 128 + the signal if stopped (with the command that
  resumes, `module` and `argv`).
  """
  with StopSignals() as stop_signals:
    errors = check_configs(todo)
    if stop_signals.signum:  # Stopped while checking (the check sees Ctrl-C too).
      return 128 + stop_signals.signum
    if errors:
      for error in errors:  # Nothing was launched.
        print(f'{module}: error: {error}', file=sys.stderr)
      return 2
    print(f'{header}{len(todo)} to run ' + (f'on Ray ({ray_address})' if ray_address
                                            else f'with {workers} local workers'), flush=True)
    if ray_address:
      outcome = run_ray(todo, ray_address, progress, stop_signals)
    else:
      outcome = run_local(todo, workers, progress, stop_signals, may_start)
    if stop_signals.signum:
      report_stop(stop_signals.signum, outcome, todo, argv, module)
      return 128 + stop_signals.signum
  if outcome.in_use:
    print(f'\n{len(outcome.in_use)} run(s) not started, their folder in use:')
    for _, why in outcome.in_use:
      print(f'  {why}')
  if outcome.failures:
    print(f'\n{len(outcome.failures)} run(s) failed:')
    for run, tail in outcome.failures:
      print(f'--- {run.base_dir} (log: {run.base_dir}/train.log)\n{tail[-600:]}')
  if outcome.deferred:
    print(f'\n{len(outcome.deferred)} run(s) not started: they would not end within the time '
          'limit.')
    for run in outcome.deferred:
      print(f'  {run.base_dir}')
    command = shlex.join([sys.executable, '-m', module] + list(argv))
    print(f'Continue with: cd {shlex.quote(os.getcwd())} && {command}', flush=True)
  if outcome.failures or outcome.in_use:
    return 1
  return None


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = cli.ArgumentParser(prog='moe_dopamine.sweep',
                              description=__doc__.split('\n')[0])
  parser.add_argument('--gin_files', action='append', required=True)
  parser.add_argument('--seeds', default='0', help='comma-separated seeds')
  parser.add_argument('--grid', action='append', default=[],
                      help="Configurable.param=v1;v2 (repeatable: a product)")
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help='bindings for every run')
  parser.add_argument('--out', required=True, help='folder of the sweep')
  parser.add_argument('--workers', type=int, default=os.cpu_count())
  parser.add_argument('--ray_address', default=None,
                      help="Ray cluster address, 'auto', or 'local'")
  parser.add_argument('--allow_unused_bindings', action='store_true',
                      help='warn about bindings a run does not use instead of '
                      'refusing them (a bindings file shared by several configs)')
  args = parser.parse_args(argv)

  try:
    seeds = parse_seeds(args.seeds)
    grid = parse_grid(args.grid)
    if args.workers < 1:
      raise ValueError(f'--workers={args.workers}: at least 1 run must run at a time.')
    for path in args.gin_files:
      if not os.path.isfile(path):
        raise ValueError(f"gin file '{path}' does not exist.")
    problem = run_folder.path_problem(args.out, flag='--out')
    if problem:
      raise ValueError(problem)
  except ValueError as error:
    print(f'moe_dopamine.sweep: error: {error}', file=sys.stderr)
    return 2
  runs = plan(args.gin_files, seeds, grid, args.gin_bindings, args.out,
              args.allow_unused_bindings)
  todo = [run for run in runs if not run.finished]
  if not args.ray_address:
    for run in todo:
      run.threads = threads_per_run(args.workers, len(todo))
  code = launch(todo, args.workers, args.ray_address, Progress(len(todo)), argv,
                header=f'{len(runs)} runs, {len(runs) - len(todo)} already finished, ')
  if code is not None:
    return code
  print(f'all {len(runs)} runs finished; results in {os.path.abspath(args.out)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
