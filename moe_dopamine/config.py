"""Gin set-up shared by every entry point.

Loads gin files and bindings the way Dopamine does, with three differences:
- TF1 optimizers are registered with core gin (`gin.tf.external_configurables`
  no longer imports on TensorFlow >= 2.16);
- includes resolve against the including file's folder and `gin_configs/`;
- every mistake becomes one `ConfigError` naming the culprit and, where gin
  knows one, the closest valid name.
"""

import contextlib
import difflib
import inspect
import logging as std_logging
import os
import re
import tokenize

import gin
import numpy as np
import tensorflow as tf

GIN_CONFIGS_DIR = os.path.normpath(
    os.path.join(os.path.dirname(__file__), os.pardir, 'gin_configs')
)

_TF1_OPTIMIZERS = (
    tf.compat.v1.train.AdamOptimizer,
    tf.compat.v1.train.RMSPropOptimizer,
    tf.compat.v1.train.GradientDescentOptimizer,
    tf.compat.v1.train.MomentumOptimizer,
)


# (configurable, parameter) -> what to bind instead, for parameters that
# another object passes (gin denylists them); filled by their modules.
SET_ELSEWHERE = {}


class ConfigError(ValueError):
  """A gin file, binding or configured value that cannot be used."""


def closest(name, candidates, cutoff=0.6):
  """The candidate closest to `name` (difflib), or None: the one place that
  makes the "Did you mean" hints of every error message."""
  hint = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1,
                                   cutoff=cutoff)
  return hint[0] if hint else None


def did_you_mean(name, candidates, cutoff=0.6):
  """" Did you mean 'x'?" for the closest candidate, or ''."""
  hint = closest(name, candidates, cutoff)
  return f" Did you mean '{hint}'?" if hint else ''


def parse_choice(enum_cls, value, parameter):
  """Accepts an enum member or its (case-insensitive) string value."""
  if isinstance(value, enum_cls):
    return value
  valid = [member.value for member in enum_cls]
  if isinstance(value, str) and value.lower() in valid:
    return enum_cls(value.lower())
  raise ConfigError(
      f'{parameter}={value!r} is not one of {valid}.'
      + did_you_mean(value, valid)
      + f' (in gin: {parameter} = %moe_dopamine.{enum_cls.__name__}.'
      f'{enum_cls(valid[0]).name} or {valid[0]!r}).'
  )


def check_int(value, parameter, minimum=None, maximum=None):
  """Returns `value` if it is an int in [minimum, maximum], else ConfigError."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ConfigError(
        f'{parameter}={value!r} must be an integer (got {type(value).__name__}).'
    )
  _check_range(value, parameter, minimum, maximum)
  return int(value)


def check_float(value, parameter, minimum=None, maximum=None, strict_minimum=False):
  """Returns `value` as a float if it is a number in range, else ConfigError."""
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
    raise ConfigError(
        f'{parameter}={value!r} must be a number (got {type(value).__name__}).'
    )
  if strict_minimum and minimum is not None and value <= minimum:
    raise ConfigError(f'{parameter}={value!r} must be > {minimum}.')
  _check_range(value, parameter, minimum, maximum)
  return float(value)


def check_bool(value, parameter):
  if not isinstance(value, (bool, np.bool_)):
    raise ConfigError(
        f'{parameter}={value!r} must be True or False (got {type(value).__name__}).'
    )
  return bool(value)


def _check_range(value, parameter, minimum, maximum):
  if minimum is not None and value < minimum:
    raise ConfigError(f'{parameter}={value!r} must be >= {minimum}.')
  if maximum is not None and value > maximum:
    raise ConfigError(f'{parameter}={value!r} must be <= {maximum}.')


def register_external_configurables():
  """Makes `@tf.train.AdamOptimizer()` and friends usable in gin files."""
  for optimizer in _TF1_OPTIMIZERS:
    if f'tf.train.{optimizer.__name__}' not in gin.config._REGISTRY:  # pylint: disable=protected-access
      gin.external_configurable(optimizer, module='tf.train')


def check_gin_files(gin_files):
  """Raises ConfigError unless every path is a readable file."""
  if not gin_files:
    raise ConfigError(
        'no gin file given. Fix: pass --gin_files=gin_configs/<experiment>.gin '
        f'(the experiments are in {GIN_CONFIGS_DIR}).'
    )
  for path in gin_files:
    if not os.path.exists(path):
      hint = _closest_gin_file(path)
      raise ConfigError(
          f"gin file '{path}' does not exist (working directory: {os.getcwd()})."
          + (f" Did you mean '{hint}'?" if hint else '')
      )
    if not os.path.isfile(path):
      raise ConfigError(f"gin file '{path}' is a directory, not a file.")
    if not os.access(path, os.R_OK):
      raise ConfigError(
          f"gin file '{path}' is not readable. Fix: chmod u+r '{path}'."
      )


def load_gin_configs(gin_files, gin_bindings):
  """Parses gin files then bindings; any error becomes a ConfigError.

  Args:
    gin_files: list of paths to gin files, applied in order.
    gin_bindings: list of 'Configurable.parameter = value' strings, applied
      after the files.

  Raises:
    ConfigError: naming the file, configurable or parameter at fault.
  """
  register_external_configurables()
  check_gin_files(gin_files)
  gin_files = [os.path.abspath(f) for f in gin_files]
  # Includes are looked up in these folders first (gin logs an error for
  # every folder it tries in vain, so the likely ones go first).
  prefixes = gin.config._LOCATION_PREFIXES  # pylint: disable=protected-access
  for folder in [GIN_CONFIGS_DIR] + [os.path.dirname(f) for f in gin_files]:
    if folder not in prefixes:
      prefixes.insert(0, folder)
  # One file or binding at a time (as gin.parse_config_files_and_bindings
  # does), so that an error can name where it is.
  with _without_include_search_errors():
    for path in gin_files:
      with _explained(f"gin file '{path}'"):
        gin.parse_config_file(path, skip_unknown=False)
    for binding in gin_bindings:
      with _explained(f'--gin_bindings={binding!r}', binding):
        gin.parse_config(binding, skip_unknown=False)
    with _explained('the gin configuration'):
      gin.finalize()


_GIN_ERRORS = (ValueError, ImportError, SyntaxError, IOError, TypeError,
               tokenize.TokenError)


@contextlib.contextmanager
def _explained(source, binding=None):
  """Turns gin's errors raised in the block into one-line ConfigErrors."""
  try:
    yield
  except _GIN_ERRORS as error:
    raise ConfigError(explain_gin_error(error, source, binding)) from error


class _NotFoundFilter(std_logging.Filter):
  def filter(self, record):
    return not record.getMessage().startswith('Path not found:')


@contextlib.contextmanager
def _without_include_search_errors():
  """Hides the error gin logs for each folder an include is not found in
  (the include resolves in the next one; a missing file still raises)."""
  root = std_logging.getLogger()
  quiet = _NotFoundFilter()
  root.addFilter(quiet)
  try:
    yield
  finally:
    root.removeFilter(quiet)


def _syntax_error(error, source, binding):
  """'gin syntax error in <file>, line N: <what> (<the line>)'."""
  if isinstance(error, tokenize.TokenError):
    what, (line, _) = error.args[0], error.args[1]
    what += ': a bracket or quote is not closed'
    filename, text = None, None
  else:
    what = error.msg
    filename, line, text = error.filename, error.lineno, error.text
  if filename:
    where = f"'{filename}', line {line}"
  elif binding is None:  # A file (or one it includes) ended inside a bracket.
    where = f'{source} (or a file it includes), line {line}'
  else:
    where = source
  message = f'gin syntax error in {where}: {what}'
  if text and text.strip():
    message += f' ({text.strip()!r})'
  return message


def _unparsable_value(token, source):
  """A value gin cannot read, e.g. a string without quotes."""
  message = f'gin cannot parse the value {token!r} in {source}.'
  if re.fullmatch(r'[A-Za-z_]\w*', token):
    message += f" Fix: quote a string value ('{token}')."
  return message


def explain_gin_error(error, source='the gin configuration', binding=None):
  """Turns one of gin's parse errors into a message with a suggested fix.

  Args:
    error: the exception gin raised.
    source: where it was parsed from ("gin file 'x.gin'", "--gin_bindings=...").
    binding: the binding string, if it came from --gin_bindings.
  """
  message = str(error)
  unparsable = re.search(r"Failed to parse token '([^']*)'", message)
  if unparsable:
    if getattr(error, 'filename', None):
      source = f"'{error.filename}', line {error.lineno}"
    return _unparsable_value(unparsable.group(1), source)
  if isinstance(error, (SyntaxError, tokenize.TokenError)):
    return _syntax_error(error, source, binding)
  first_line, _, location = message.partition('\n')
  location = location.strip()
  unknown = re.search(r"No configurable matching (?:reference )?'@?([\w.]+)", message)
  no_param = re.search(
      r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'", message
  )
  denied = re.search(r"Configurable '([\w.]+)' has denylisted kwarg '(\w+)'", message)
  if denied:
    selector, param = denied.groups()
    owner = SET_ELSEWHERE.get((selector.split('.')[-1], param))
    first_line = f"'{selector}.{param}' cannot be bound: it is set for it." + (
        f' Bind {owner} instead.' if owner else ''
    )
  elif no_param:
    selector, param = no_param.groups()
    valid = configurable_parameters(selector)
    first_line = (
        f"'{selector}' has no parameter '{param}'."
        + did_you_mean(param, valid)
        + (f" Its parameters: {', '.join(valid)}." if valid else '')
    )
  elif unknown:
    selector = unknown.group(1)
    first_line = f"unknown configurable '{selector}'." + (
        did_you_mean(selector, _known_selectors())
        or ' Is the module that defines it imported in the gin file?'
    )
  elif isinstance(error, ImportError):
    first_line = f'a gin file imports a module that cannot be imported: {error}'
  elif 'Ambiguous selector' in first_line:
    first_line += ' Fix: spell the configurable with its module path.'
  elif isinstance(error, IOError) and 'Unable to open file' in first_line:
    first_line += ' (an include names a missing file)'
  return first_line + (f' [{location}]' if location else '')


def configurable_parameters(selector):
  """Names of the parameters gin can bind for `selector` ([] if unknown)."""
  try:
    configurable = gin.config._REGISTRY.get_match(selector)  # pylint: disable=protected-access
  except ValueError:
    return []
  if configurable is None:
    return []
  target = configurable.wrapped
  if inspect.isclass(target):
    target = target.__init__
  params = inspect.signature(target).parameters
  return [p for p in params if p not in ('self', 'args', 'kwargs')]


def _known_selectors():
  selectors = set()
  for complete in gin.config._REGISTRY._selector_map:  # pylint: disable=protected-access
    parts = complete.split('.')
    for start in range(len(parts)):
      selectors.add('.'.join(parts[start:]))
  return sorted(selectors)


def _closest_gin_file(path):
  """The gin file whose name is closest to `path`'s, by file name alone (the
  shared folder and '.gin' would make every path look alike)."""
  by_stem = {}
  for root, _, files in os.walk(GIN_CONFIGS_DIR):
    for f in sorted(files):
      by_stem.setdefault(os.path.splitext(f)[0], os.path.relpath(os.path.join(root, f)))
  stem = closest(os.path.splitext(os.path.basename(path))[0], sorted(by_stem), cutoff=0.6)
  return by_stem[stem] if stem else None
