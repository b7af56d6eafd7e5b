r"""Runs one moe_dopamine experiment.

  python -m moe_dopamine.train --gin_files=gin_configs/cartpole_baseline.gin \
      [--gin_bindings="ClassicControlQNetwork.placement='middle'"] \
      [--base_dir=runs/my_run] [--verbose] [--check_only] [--allow_unused_bindings]

Without --base_dir, the run goes to runs/<gin file names>_<start time>.
Running again with the same --base_dir resumes from the newest checkpoint that
loads (damaged newer ones are moved to checkpoints/unreadable/).

One process writes a run folder at a time: a second one exits at once (code 2)
naming the process that holds it. Ctrl-C or SIGTERM stops the run with one line
saying where it stopped and the command that resumes it (exit 130 or 143).
Every mistake found before training (gin files and bindings, run budgets, the
folder, a setting the environment, networks or agent refuse as they are built,
a binding nothing in the run uses) is one line on stderr and exit code 2, and
leaves no folder behind; --check_only runs these same checks, building the
run on the CPU in a scratch folder, and stops. --allow_unused_bindings turns
the refusal of unused bindings into a warning (moe_dopamine.bindings).

TensorFlow's, gym's and Dopamine's set-up messages and Dopamine's per-episode
progress are hidden unless --verbose is given.
"""

import atexit
import contextlib
import datetime
import errno
import json
import logging as std_logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import warnings

import moe_dopamine  # pylint: disable=unused-import  # Legacy Keras first.
from moe_dopamine import cli


def _verbose_requested(argv):
  """--verbose as absl will parse it, read early: quiet starts at the imports."""
  verbose = False
  for arg in argv[1:]:
    if arg == '--':
      break
    name, has_value, value = arg.lstrip('-').partition('=')
    if name == 'verbose':
      verbose = not has_value or value.lower() in ('true', 't', '1')
    elif name == 'noverbose':
      verbose = False
  return verbose


_QUIET = __name__ == '__main__' and not _verbose_requested(sys.argv)
if __name__ == '__main__' and not _QUIET:
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'  # moe_dopamine sets 2 by default.
if _QUIET:
  warnings.filterwarnings('ignore', category=DeprecationWarning)
# Imports and absl's start-up (which wakes CUDA) are noisy: held until main().
_SETUP_NOISE = contextlib.ExitStack()
if _QUIET:
  _SETUP_NOISE.enter_context(cli.stderr_without_noise())
  atexit.register(_SETUP_NOISE.close)  # Shows an import error's traceback.

# pylint: disable=g-import-not-at-top,g-bad-import-order
from absl import app
from absl import flags
from absl import logging
import gin
import tensorflow as tf

from moe_dopamine import bindings
from moe_dopamine import checkpoints
from moe_dopamine import config
from moe_dopamine import run_folder
from moe_dopamine import runner as runner_lib
# pylint: enable=g-import-not-at-top,g-bad-import-order

flags.DEFINE_string(
    'base_dir', None, 'Folder of the run (default: runs/<gin files>_<time>).'
)
flags.DEFINE_multi_string('gin_files', [], 'Gin files, applied in order.')
flags.DEFINE_multi_string(
    'gin_bindings',
    [],
    'Gin bindings applied after the files, e.g. '
    '"ClassicControlQNetwork.placement=\'big\'" or "Runner.num_iterations=5".',
)
flags.DEFINE_bool(
    'verbose', False,
    "Show TensorFlow's, gym's and Dopamine's messages and per-episode progress.",
)
flags.DEFINE_bool(
    'check_only', False,
    'Check the configuration as a run starts (parse it, build the '
    'environment, networks and agent on the CPU in a scratch folder, check '
    'every binding is used) and --base_dir, then exit: 0 if it is usable. '
    'Creates nothing.',
)
flags.DEFINE_bool(
    'allow_unused_bindings', False,
    'Warn about bindings nothing in the run uses (e.g. a bindings file '
    'shared by several configs) instead of refusing them.',
)
flags.DEFINE_string(
    'check_plan', None,
    'Check many configurations in one process, then exit (2 if any is bad): a '
    'JSON file (or - for stdin) of [{"label", "gin_files", "gin_bindings"}]. '
    'Used by moe_dopamine.sweep.',
)

FLAGS = flags.FLAGS

# Exit code of a run stopped by a full disk (2: bad input; 130 / 143: signals).
DISK_FULL = 3

# Runner budgets checked before the build: parameter, least valid value, rule.
_BUDGETS = (
    ('num_iterations', 1, 'a run needs at least 1 iteration'),
    ('training_steps', 1, 'an iteration needs at least 1 training step'),
    ('evaluation_steps', 0, 'evaluation steps cannot be negative (0: no evaluation)'),
)
# Every runner the budgets can be bound on.
_RUNNERS = ('Runner', 'MoERunner')

# Quiet mode keeps Dopamine's per-iteration summaries and every warning but
# these.
_PROGRESS_MODULES = ('console_collector',)
_NOISY_WARNINGS = ('Logger is being deprecated',)


def default_base_dir(gin_files, now=None):
  """runs/<stem1>+<stem2>_<YYYYmmdd-HHMMSS>."""
  stems = '+'.join(os.path.splitext(os.path.basename(f))[0] for f in gin_files)
  now = now or datetime.datetime.now()
  return os.path.join('runs', f'{stems}_{now:%Y%m%d-%H%M%S}')


def validate_config():
  """Checks the parsed gin config before anything is built.

  The agent and schedule names, and the runner's budgets: at least one
  iteration, at least one training step, no negative evaluation steps.

  Raises:
    config.ConfigError: naming the binding and the fix.
  """
  runner_lib.check_choices()
  for runner_name in _RUNNERS:
    for parameter, least, rule in _BUDGETS:
      binding = f'{runner_name}.{parameter}'
      try:
        value = _macro_value(gin.query_parameter(binding))
      except ValueError:
        continue  # Not bound: Dopamine's default, which is valid.
      if isinstance(value, gin.config.ConfigurableReference):
        continue  # A configurable's result (@f()), known only when built.
      if value is None and parameter == 'num_iterations':
        continue  # The runner takes a CRL run's length from its schedule.
      if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise config.ConfigError(
            f'{binding}={value!r}: {rule}, as an integer. '
            f'Fix: --gin_bindings={binding}=<an integer >= {least}>.'
        )


def _macro_value(value):
  """The value a gin macro (%NAME) or constant stands for; others as they are."""
  while isinstance(value, gin.config.ConfigurableReference) and (
      value.selector in ('gin.macro', 'gin.constant')
  ):
    value = value.scoped_configurable_fn()
  return value


def load_config(gin_files, gin_bindings):
  """Parses gin files and bindings and validates them; builds nothing.

  Raises:
    config.ConfigError: for anything the run could not use.
  """
  config.load_gin_configs(gin_files, gin_bindings)
  validate_config()


def check_bindings(runner, gin_bindings, allow_unused=False):
  """Checks that the built run uses every binding (moe_dopamine.bindings).

  Returns:
    The unused bindings, each warned about on stderr (only with
    allow_unused; otherwise the first one raises).

  Raises:
    config.ConfigError: naming an unused binding and why.
  """
  unused = bindings.check(runner.ignored_bindings(), gin_bindings, allow_unused)
  for binding in unused:
    print(f'moe_dopamine.train: warning: unused binding {bindings.describe(binding)}',
          file=sys.stderr, flush=True)
  return unused


def check_config(gin_files, gin_bindings, allow_unused=False):
  """Runs the checks of a run's start without training or a run folder.

  Parses and validates the config, then builds the runner (environment,
  networks, agent) on the CPU in a scratch folder and graph, and checks that
  every binding is used: what would fail at a run's start fails here.

  Returns:
    The unused bindings (allowed with allow_unused).

  Raises:
    config.ConfigError: for anything the run could not use.
  """
  load_config(gin_files, gin_bindings)
  with tempfile.TemporaryDirectory(prefix='moe_dopamine_check_') as scratch:
    with tf.Graph().as_default():
      runner = runner_lib.create_runner(scratch)
      try:
        return check_bindings(runner, gin_bindings, allow_unused)
      finally:
        runner.close()


def check_plan(points, allow_unused=False):
  """Checks many configurations (`check_config`), one after the other.

  Args:
    points: list of {'label': str, 'gin_files': [...], 'gin_bindings': [...],
      optionally 'allow_unused_bindings': bool}.
    allow_unused: bool, unused bindings are warnings (for the points that do
      not say).

  Returns:
    List of (label, one-line error) for the configurations that fail.
  """
  errors = []
  for point in points:
    gin.clear_config()
    try:
      check_config(point['gin_files'], point['gin_bindings'],
                   point.get('allow_unused_bindings', allow_unused))
    except config.ConfigError as error:
      errors.append((point['label'], one_line(error)))
  gin.clear_config()
  return errors


def one_line(error):
  """The message of an error, without the call chain gin appends to it."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def write_run_info(base_dir, gin_files, gin_bindings, runner, unused=()):
  """Saves what reproduces the run: the operative config and its inputs
  (and the bindings nothing used, when they were allowed)."""
  with tf.io.gfile.GFile(os.path.join(base_dir, run_folder.OPERATIVE_CONFIG), 'w') as f:
    f.write(gin.operative_config_str())
  info = {
      'gin_files': [os.path.abspath(f) for f in gin_files],
      'gin_bindings': list(gin_bindings),
      'seed': runner.seed,
      'agent': type(runner.agent).__name__,
      'num_parameters': getattr(runner.agent, 'num_parameters', None),
      # Statistics log the trained task as its id in this list.
      'task_names': list(runner.task_names),
      'unused_bindings': [bindings.describe(u) for u in unused],
  }
  with tf.io.gfile.GFile(os.path.join(base_dir, run_folder.RUN_INFO), 'w') as f:
    json.dump(info, f, indent=2)


def run(gin_files, gin_bindings=(), base_dir=None, verbose=True,
        allow_unused_bindings=False):
  """Parses the config, builds the runner and runs the experiment.

  Args:
    gin_files: list of gin file paths.
    gin_bindings: list of gin binding strings.
    base_dir: str or None (a new folder under runs/).
    verbose: bool; False turns off Dopamine's per-episode progress line.
    allow_unused_bindings: bool, warn about bindings nothing uses instead of
      refusing them (see moe_dopamine.bindings).

  Returns:
    The base dir of the run.

  Raises:
    config.ConfigError: before any graph is built, for a bad config or
      folder, or while building, for a setting the package rejects.
    run_folder.FolderInUse: if another process is writing the folder.
  """
  gin_files, gin_bindings = list(gin_files), list(gin_bindings)
  quiet = cli.stderr_without_noise if not verbose else contextlib.nullcontext
  with quiet():
    if not verbose:
      # Bound first, so that a gin file or binding can still turn it on.
      gin.bind_parameter('Runner.fine_grained_print_to_console', False)
    load_config(gin_files, gin_bindings)
    base_dir = base_dir or default_base_dir(gin_files)
    problem = run_folder.path_problem(base_dir)
    if problem:
      raise config.ConfigError(problem)
  new_folder = not os.path.exists(base_dir)
  with run_folder.RunLock(base_dir):
    try:
      with quiet():
        checkpoints.repair(base_dir)
        runner = runner_lib.create_runner(base_dir)
      unused = check_bindings(runner, gin_bindings, allow_unused_bindings)
    except BaseException:
      # Settings are checked as they are built, before any training; a folder
      # made just now holds nothing to keep, whatever went wrong.
      if new_folder:
        shutil.rmtree(base_dir, ignore_errors=True)
      raise
    # Every check passed: the run starts.
    print(f'moe_dopamine: {start_line(base_dir, runner)}', flush=True)
    finished = os.path.join(base_dir, run_folder.FINISHED)
    if os.path.exists(finished):  # Running again: not finished until done.
      os.remove(finished)
    write_run_info(base_dir, gin_files, gin_bindings, runner, unused)
    start = time.time()
    runner.run_experiment()
    with tf.io.gfile.GFile(finished, 'w') as f:
      json.dump({'seconds': time.time() - start}, f)
  print(f'moe_dopamine: finished, results in {base_dir}', flush=True)
  return base_dir


def start_line(base_dir, runner):
  """'base_dir=...', and for a resumed run where it resumes and what of the
  interrupted iteration's logs it dropped."""
  start, total = runner.start_iteration, runner.num_iterations
  if start == 0:
    line = f'base_dir={base_dir}'
    if runner.dropped_logs:
      line += f' (no checkpoint: starting from iteration 0; {runner.dropped_logs})'
    return line
  line = (f'resuming {base_dir} at iteration {start} of {total} (last checkpoint: '
          f'iteration {start - 1})')
  if runner.dropped_logs:
    line += f'; dropped the logs of the unfinished iteration: {runner.dropped_logs}'
  return line


def resume_command(gin_files, gin_bindings, base_dir, verbose, allow_unused=False):
  """The shell command that continues this run, from any working directory."""
  return shlex.join(
      [sys.executable, '-m', 'moe_dopamine.train', f'--base_dir={os.path.abspath(base_dir)}']
      + [f'--gin_files={os.path.abspath(f)}' for f in gin_files]
      + [f'--gin_bindings={b}' for b in gin_bindings]
      + (['--verbose'] if verbose else [])
      + ([f'{bindings.ALLOW_FLAG}'] if allow_unused else [])
  )


def interrupted_message(base_dir, command):
  """One line: where the run stopped, its last checkpoint, how to resume."""
  if not os.path.isdir(base_dir):
    return ('interrupted before the first iteration; nothing was saved. '
            f'Start again with: {command}')
  last = checkpoints.latest_iteration(base_dir)
  if last < 0:
    return ('interrupted at iteration 0, before the first checkpoint. '
            f'Start again with: {command}')
  checkpoint = os.path.join(
      os.path.abspath(base_dir), checkpoints.CHECKPOINT_DIR, f'{checkpoints.BUNDLE}.{last}'
  )
  return (f'interrupted at iteration {last + 1}; last checkpoint: iteration {last} '
          f'({checkpoint}). Resume with: {command}')


def disk_is_full(error):
  """Whether `error`, or an error it was raised from, is a full disk
  (Python's ENOSPC, or TensorFlow's 'No space left on device')."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if isinstance(error, tf.errors.OpError) and 'No space left on device' in error.message:
      return True
    error = error.__cause__ or error.__context__
  return False


def disk_full_message(base_dir, command):
  """One line: the disk is full, where, what a checkpoint takes, the resume."""
  folder = os.path.abspath(base_dir)
  try:
    free = f'{shutil.disk_usage(folder).free / 2**20:.1f} MiB free'
  except OSError:
    free = 'free space unknown'
  size, complete = checkpoints.checkpoint_size(folder)
  if size:
    need = (f'a checkpoint of this run takes {"" if complete else "at least "}'
            f'{size / 2**20:.1f} MiB and {checkpoints.KEPT} are kept')
  else:
    need = 'no checkpoint was written yet'
  last = checkpoints.latest_iteration(folder)
  kept = (f'last checkpoint: iteration {last}' if last >= 0 else 'no checkpoint to resume from')
  return (f'the disk is full: writing in {folder} failed ({free}; {need}; {kept}). '
          f'Free some space, then resume with: {command}')


class _ProgressOnly(std_logging.Filter):
  """Lets through warnings and Dopamine's per-iteration summaries."""

  def filter(self, record):
    if record.levelno >= std_logging.WARNING:
      message = record.getMessage()
      return not any(noise in message for noise in _NOISY_WARNINGS)
    return record.module in _PROGRESS_MODULES


def quiet_logging():
  """Hides set-up chatter: deprecations, parameter dumps, TensorFlow's notes."""
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  tf.get_logger().setLevel(std_logging.ERROR)
  logging.get_absl_handler().addFilter(_ProgressOnly())


class Terminated(KeyboardInterrupt):
  """SIGTERM, which stops a run the way Ctrl-C does."""


class _StopSignals:
  """Turns SIGINT and SIGTERM into KeyboardInterrupt (Terminated) in main().

  The exception can land in a callback whose errors Python only prints, such
  as a garbage-collection hook of JAX's, and so be lost: until main() settles
  it, it is raised again every half second (SIGALRM).
  """

  def __init__(self):
    self.signum = None

  def install(self):
    # Explicit for SIGINT too: a shell that starts a job in the background
    # ignores it.
    for signum in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signum, self._handle)
    signal.signal(signal.SIGALRM, self._raise_again)

  def settle(self):
    """The interrupt got through: no more of it, nor of further signals."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
      signal.signal(signum, signal.SIG_IGN)

  def _handle(self, signum, unused_frame):
    self.signum = self.signum or signum
    self._raise()

  def _raise_again(self, unused_signum, unused_frame):
    if self.signum:
      self._raise()

  def _raise(self):
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    raise Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()


def usage_error(message):
  """One line on stderr and exit code 2, as for any other bad input."""
  end = '' if message.endswith(('.', '?')) else '.'
  print(f'moe_dopamine.train: error: {message}{end} Run with --help for the flags.',
        file=sys.stderr, flush=True)
  sys.exit(2)


def parse_flags(argv):
  """absl's flag parsing, with a mistake reported as `usage_error`."""
  try:
    return FLAGS(argv)
  except flags.Error as error:
    usage_error(str(error).replace(' ?', '?'))


def main(argv):
  if len(argv) > 1:
    usage_error(f'unexpected argument(s) {" ".join(argv[1:])!r}: every option is '
                'a --flag, e.g. --gin_files=<file>')
  logging.set_verbosity(logging.INFO)
  if not FLAGS.verbose:
    quiet_logging()
  tf.compat.v1.disable_v2_behavior()
  _SETUP_NOISE.close()  # Set-up is over: stderr is live again.
  base_dir = FLAGS.base_dir or default_base_dir(FLAGS.gin_files)
  # SIGTERM (a scheduler, a sweep stopping) ends the run as Ctrl-C does.
  stop_signals = _StopSignals()
  stop_signals.install()
  try:
    if FLAGS.check_plan:
      with (sys.stdin if FLAGS.check_plan == '-' else open(FLAGS.check_plan)) as f:
        errors = check_plan(json.load(f), FLAGS.allow_unused_bindings)
      for label, error in errors:
        print(f'moe_dopamine.train: error: {label}: {error}', file=sys.stderr)
      sys.exit(2 if errors else 0)
    if FLAGS.check_only:
      problem = run_folder.path_problem(base_dir) if FLAGS.base_dir else None
      quiet = contextlib.nullcontext if FLAGS.verbose else cli.stderr_without_noise
      with quiet():
        check_config(FLAGS.gin_files, FLAGS.gin_bindings, FLAGS.allow_unused_bindings)
      if problem:
        raise config.ConfigError(problem)
      print(f'moe_dopamine.train: the configuration is usable '
            f'({len(FLAGS.gin_files)} gin file(s), {len(FLAGS.gin_bindings)} binding(s)).')
      return
    run(FLAGS.gin_files, FLAGS.gin_bindings, base_dir, verbose=FLAGS.verbose,
        allow_unused_bindings=FLAGS.allow_unused_bindings)
  except SystemExit:
    raise
  except BaseException as error:  # pylint: disable=broad-except
    # A stop signal can land in code that turns it into another error (a C
    # extension's SystemError, an error a library wraps): once a signal has
    # come, whatever comes out is the interruption.
    if isinstance(error, KeyboardInterrupt) or stop_signals.signum:
      stop_signals.settle()
      signum = stop_signals.signum or signal.SIGINT
      if FLAGS.check_plan or FLAGS.check_only:
        message = 'interrupted while checking the configuration.'
      else:
        command = resume_command(FLAGS.gin_files, FLAGS.gin_bindings, base_dir,
                                 FLAGS.verbose, FLAGS.allow_unused_bindings)
        message = interrupted_message(base_dir, command)
      print(f'moe_dopamine.train: {message}', file=sys.stderr, flush=True)
      sys.exit(128 + signum)
    if isinstance(error, (config.ConfigError, run_folder.FolderInUse)):
      print(f'moe_dopamine.train: error: {one_line(error)}', file=sys.stderr)
      sys.exit(2)
    if not isinstance(error, Exception) or not disk_is_full(error):
      raise
    command = resume_command(FLAGS.gin_files, FLAGS.gin_bindings, base_dir,
                             FLAGS.verbose, FLAGS.allow_unused_bindings)
    print(f'moe_dopamine.train: error: {disk_full_message(base_dir, command)}',
          file=sys.stderr, flush=True)
    sys.exit(DISK_FULL)

if __name__ == '__main__':
  with _SETUP_NOISE:
    app.run(main, flags_parser=parse_flags)
