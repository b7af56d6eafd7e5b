"""Which gin bindings a run uses, checked after the build and before training.

A binding nothing reads changes nothing, yet it is written into the run's
record (`run_info.json`), which then claims an ablation that never took
effect: `MoE.k=2` on a baseline, `MoE.k=9` under SoftMoE routing,
`Runner.num_iterations=1` on a CRL run that lasts its schedule. Once the
runner is built (environment, networks, agent, checkpointer) and before the
first training step, every binding must be one the run reads, by two
sources:

- gin's record of what was read: a parameter is read when its configurable
  is called and the caller does not pass that parameter itself (what
  `gin.operative_config_str()` lists). A configurable that was never called
  is unused, unless a read binding refers to it uncalled (`@fn`, as
  `DQNAgent.epsilon_fn = @linearly_decaying_epsilon`): whoever holds it calls
  it later, during training.
- the built objects' own word: a parameter gin passed but the object
  disregards under the other settings (`MoE.k` under SoftMoE routing,
  `Runner.num_iterations` on a CRL schedule). The runner, its environment,
  agent, networks and MoE layers say which in `ignored_bindings()`:
  {'Configurable.parameter': why}.

Two kinds of binding are not checked: a gin file's binding that restates the
parameter's default (shared files such as `base/moe_routing.gin` spell out
every knob with its default: they claim nothing), and a macro defined in a
gin file (a later binding may have replaced the one that used it). Bindings
given with --gin_bindings are always checked.
"""

import collections
import enum
import inspect

import gin
from gin import config_parser

from moe_dopamine import config

# One unused binding: its name as gin spells it ('MoE.k'), its value as
# bound, and why nothing uses it.
Unused = collections.namedtuple('Unused', ['name', 'value', 'reason', 'from_command_line'])

ALLOW_FLAG = '--allow_unused_bindings'
_MACRO = 'gin.macro'


def _registry():
  return gin.config._REGISTRY  # pylint: disable=protected-access


def complete_selector(selector):
  """gin's full name of a configurable ('MoE' -> 'moe_dopamine.networks.moe.MoE')."""
  match = _registry().get_match(selector)
  return match.selector if match is not None else selector


def _short(selector):
  """The shortest name gin accepts for a configurable."""
  try:
    return _registry().minimal_selector(selector)
  except (KeyError, ValueError):
    return selector


def _name(scope, selector, parameter):
  if selector == _MACRO:
    return scope
  return '/'.join(filter(None, [scope, f'{_short(selector)}.{parameter}']))


def command_line_keys(gin_bindings):
  """{(scope, full selector, parameter)} of the --gin_bindings strings.

  Parsed again with gin's own parser after gin has loaded them, so a macro
  binding ('X=3') is (X, 'gin.macro', 'value') as in gin's config.
  """
  keys = set()
  parser = config_parser.ConfigParser(
      '\n'.join(gin_bindings), gin.config.ParserDelegate(skip_unknown=False)
  )
  for statement in parser:
    if isinstance(statement, config_parser.BindingStatement):
      scope, selector, parameter = statement.scope, statement.selector, statement.arg_name
      if not parameter:  # A macro.
        keys.add(('/'.join(filter(None, [scope, selector])), _MACRO, 'value'))
      else:
        keys.add((scope, complete_selector(selector), parameter))
  return keys


def _value_of(value):
  """The value a macro (%X) or constant stands for; others as they are."""
  while isinstance(value, gin.config.ConfigurableReference) and (
      value.selector in (_MACRO, 'gin.constant')
  ):
    value = value.scoped_configurable_fn()
  return value


def _comparable(value):
  if isinstance(value, enum.Enum):
    return value.value
  if isinstance(value, (list, tuple)):
    return tuple(_comparable(v) for v in value)
  return value


def _default_of(selector, parameter):
  """The parameter's default in the configurable's signature (or a marker)."""
  configurable = _registry().get(selector)
  if configurable is None:
    return _NO_DEFAULT
  target = configurable.wrapped
  if inspect.isclass(target):
    target = target.__init__
  try:
    parameters = inspect.signature(target).parameters
  except (TypeError, ValueError):
    return _NO_DEFAULT
  if parameter not in parameters:
    return _NO_DEFAULT
  default = parameters[parameter].default
  return _NO_DEFAULT if default is inspect.Parameter.empty else default


_NO_DEFAULT = object()


def _restates_default(selector, parameter, value):
  default = _default_of(selector, parameter)
  if default is _NO_DEFAULT:
    return False
  try:
    return _comparable(_value_of(value)) == _comparable(default)
  except Exception:  # pylint: disable=broad-except  # A reference that cannot be evaluated here.
    return False


def _scope_covers(binding_scope, used_scope):
  """Whether a binding in `binding_scope` applies in `used_scope`."""
  if not binding_scope:
    return True
  outer, inner = binding_scope.split('/'), used_scope.split('/')
  return inner[:len(outer)] == outer


def _referenced_uncalled(values):
  """Full selectors of the configurables referred to as @fn (not called)."""
  selectors = set()
  for reference in gin.config.iterate_references(values):
    if not reference.evaluate:
      selectors.add(reference.configurable.selector)
  return selectors


def find_unused(ignored=None, command_line=()):
  """The bindings of gin's current config that the built run does not use.

  Args:
    ignored: {'Configurable.parameter': why} from the built objects'
      `ignored_bindings()`.
    command_line: {(scope, full selector, parameter)} given with
      --gin_bindings (see `command_line_keys`); checked without exemptions.

  Returns:
    A list of `Unused`, --gin_bindings first.
  """
  bound = gin.config._CONFIG  # pylint: disable=protected-access
  operative = dict(gin.config._OPERATIVE_CONFIG)  # pylint: disable=protected-access
  ignored = {
      (complete_selector(name.rpartition('.')[0]), name.rpartition('.')[2]): reason
      for name, reason in (ignored or {}).items()
  }
  command_line = set(command_line)
  called = {selector for _, selector in operative}

  def read(scope, selector, parameter):
    return any(
        used_selector == selector and parameter in values and _scope_covers(scope, used_scope)
        for (used_scope, used_selector), values in operative.items()
    )

  read_values = [
      value
      for (scope, selector), values in bound.items()
      for parameter, value in values.items()
      if selector != _MACRO and read(scope, selector, parameter)
  ]
  called_later = _referenced_uncalled(read_values) - called

  unused = []
  for (scope, selector), values in bound.items():
    for parameter, value in values.items():
      key = (scope, selector, parameter)
      given = key in command_line
      if selector == _MACRO:
        if given and (scope, _MACRO) not in operative:
          unused.append(Unused(scope, value, 'no binding this run reads refers to it', given))
        continue
      if not given and _restates_default(selector, parameter, value):
        continue
      reason = ignored.get((selector, parameter))
      if reason is None and not read(scope, selector, parameter):
        if selector in called_later:
          continue
        if selector not in called:
          reason = f'this run never builds {_short(selector)}'
        else:
          owner = config.SET_ELSEWHERE.get((selector.split('.')[-1], parameter))
          reason = (f'{_short(selector)} is built, but whoever builds it sets '
                    f'{parameter} itself' + (f' (bind {owner})' if owner else ''))
      if reason is not None:
        unused.append(Unused(_name(scope, selector, parameter), value, reason, given))
  unused.sort(key=lambda u: not u.from_command_line)
  return unused


def describe(unused):
  """'MoE.k=9: router 'softmoe' has no k'."""
  return f'{unused.name}={unused.value!r}: {unused.reason}'


def check(ignored, gin_bindings, allow_unused=False):
  """Raises unless every binding is used (or `allow_unused`).

  Args:
    ignored: {'Configurable.parameter': why} from the built run.
    gin_bindings: the --gin_bindings strings.
    allow_unused: bool, return the unused bindings instead of raising.

  Returns:
    The list of `Unused` (empty unless allow_unused).

  Raises:
    config.ConfigError: naming the first unused binding, why, and the fix.
  """
  unused = find_unused(ignored, command_line_keys(gin_bindings))
  if unused and not allow_unused:
    others = unused[1:]
    more = ''
    if others:
      more = f' (also unused: {", ".join(u.name for u in others)})'
    raise config.ConfigError(
        f'{describe(unused[0])}; nothing in this run uses the binding{more}. '
        'Fix: remove it from the gin file or --gin_bindings, or pass '
        f'{ALLOW_FLAG} to run with a warning (e.g. a bindings file shared '
        'by several configs).'
    )
  return unused
