"""What every command-line entry point shares (free of TensorFlow).

- `stderr_without_noise()`: holds back stderr (C++ writes too) and lets
  through all but the set-up noise TensorFlow, gym and the ALE print at import
  time on a CPU machine: CUDA registration errors, absl's start-up lines,
  gym's deprecation banner, the ALE banner, deprecation warnings.
- `parse_duration`: seconds of a duration flag such as 2h30m.
- `ArgumentParser`: argparse whose mistakes are one line on stderr and exit
  code 2 (argparse's own exit code for bad input), without the usage dump.
"""

import argparse
import contextlib
import os
import re
import sys
import tempfile

# Lines of set-up noise on stderr: TensorFlow's CUDA registration and absl
# C++ messages (written before any log level applies), gym's banner and the
# ALE's.
NOISE = re.compile(
    r'absl::InitializeLog|^[IWE]0000 00:00:|^\S+ \S+: [IWE] external/local_xla/'
    r'|^Gym has been unmaintained|^Please upgrade to Gymnasium'
    r'|^See the migration guide at https://gymnasium'
    r'|^A\.L\.E: Arcade Learning Environment|^\[Powered by Stella\]'
)
# Deprecation warnings raised while importing (gym resets warning filters).
_DEPRECATION = re.compile(r':\d+: DeprecationWarning: ')


def _kept_lines(text):
  kept = []
  source_line_of_warning = False
  for line in text.splitlines(keepends=True):
    # A Python warning is its line and the indented source line after it.
    if source_line_of_warning and line.startswith('  '):
      source_line_of_warning = False
      continue
    source_line_of_warning = bool(_DEPRECATION.search(line))
    if not source_line_of_warning and not NOISE.search(line):
      kept.append(line)
  return ''.join(kept)


@contextlib.contextmanager
def stderr_without_noise():
  """Holds back stderr (C++ writes too) and lets through all but NOISE lines.

  The noise is written by C++ or by print at import time, so only the file
  descriptor can catch it; what is held back shows when the block ends, even
  if it raises.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      held.seek(0)
      sys.stderr.write(_kept_lines(held.read().decode(errors='replace')))
      sys.stderr.flush()


class ArgumentParser(argparse.ArgumentParser):
  """argparse with one-line errors: '<prog>: error: <what>. Fix: ...', exit 2."""

  def error(self, message):
    sys.stderr.write(f'{self.prog}: error: {message}. Run with --help for the '
                     'arguments.\n')
    sys.exit(2)


_DURATION = re.compile(r'(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?')


def parse_duration(text, name):
  """Seconds of a duration such as '150m', '2.5h', '2h30m' or '90s' (a bare
  number is minutes); ValueError naming `name` otherwise."""
  text = str(text).strip().lower()
  if re.fullmatch(r'\d+(?:\.\d+)?', text):
    seconds = float(text) * 60
  else:
    match = _DURATION.fullmatch(text)
    if not text or not match or not any(match.groups()):
      raise ValueError(f"{name}={text!r} is not a duration: write e.g. 150m, 2.5h or 2h30m.")
    hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    seconds = hours * 3600 + minutes * 60 + secs
  if seconds <= 0:
    raise ValueError(f'{name}={text!r}: the time must be positive.')
  return seconds
