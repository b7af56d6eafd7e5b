"""Dopamine metric collectors that suit graph-mode runs that resume.

Dopamine's `CollectorDispatcher` writes iteration statistics to the
collectors named in `CollectorDispatcher.collectors` ('console', 'pickle',
'tensorboard' by default). Its stock ones do not fit a TF1-graph run:
- the TensorBoard collector calls `tf.summary.scalar`, which in graph mode
  adds ops to the graph that nothing runs: the event files stay empty and the
  graph grows every iteration;
- the console and pickle collectors start over when a run resumes,
  overwriting `console.log` and `pickle_0.pkl, ...` with only the iterations
  after the resume.
`register()` replaces the three under the same names: TensorBoard events are
written as `Summary` protocol buffers (no ops), `console.log` is appended to,
and the pickle files continue the numbering and content of the last one.
"""

import collections
import os
import pickle
import re

from dopamine.metrics import collector
from dopamine.metrics import collector_dispatcher
from dopamine.metrics import console_collector
from dopamine.metrics import pickle_collector
import tensorflow as tf


class TensorBoardCollector(collector.Collector):
  """Scalars to `metrics/tensorboard` as event protos, without graph ops."""

  def __init__(self, base_dir):
    super().__init__(base_dir)
    self._writer = None

  def get_name(self):
    return 'tensorboard'

  def _file_writer(self):
    if self._writer is None:
      self._writer = tf.compat.v1.summary.FileWriter(self._base_dir)
    return self._writer

  def write(self, statistics):
    by_step = collections.defaultdict(list)
    for s in statistics:
      if self.check_type(s.type):
        by_step[s.step].append(
            tf.compat.v1.Summary.Value(tag=s.name, simple_value=float(s.value))
        )
    for step, values in by_step.items():
      self._file_writer().add_summary(tf.compat.v1.Summary(value=values), step)

  def flush(self):
    if self._writer is not None:
      self._writer.flush()

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class ConsoleCollector(console_collector.ConsoleCollector):
  """Dopamine's console collector, appending to `console.log` on resume."""

  def __init__(self, base_dir, save_to_file=True):
    collector.Collector.__init__(self, base_dir)
    self._log_file = None
    if self._base_dir is not None and save_to_file:
      self._log_file = os.path.join(self._base_dir, 'console.log')
      self._log_file_writer = tf.io.gfile.GFile(self._log_file, 'a')

  def flush(self):
    if self._log_file is not None:
      self._log_file_writer.flush()


class PickleCollector(pickle_collector.PickleCollector):
  """Dopamine's pickle collector, continuing the files of a resumed run."""

  _FILE = re.compile(r'pickle_(\d+)\.pkl$')

  def __init__(self, base_dir):
    super().__init__(base_dir)
    numbers = sorted(
        int(m.group(1))
        for m in map(self._FILE.match, tf.io.gfile.listdir(self._base_dir))
        if m
    )
    if numbers:
      with tf.io.gfile.GFile(
          os.path.join(self._base_dir, f'pickle_{numbers[-1]}.pkl'), 'rb'
      ) as f:
        previous = pickle.load(f)
      for iteration, stats in previous.items():
        for name, values in stats.items():
          self._statistics[iteration][name] = list(values)
      self._file_number = numbers[-1] + 1

  def flush(self):
    # Stock Dopamine opens the file in text mode, which pickle cannot use.
    path = os.path.join(self._base_dir, f'pickle_{self._file_number}.pkl')
    plain = {k: dict(v) for k, v in self._statistics.items()}
    with tf.io.gfile.GFile(path, 'wb') as f:
      pickle.dump(plain, f, protocol=pickle.HIGHEST_PROTOCOL)
    self._file_number += 1


def register():
  """Makes Dopamine's dispatcher build these collectors under the stock names."""
  collector_dispatcher.add_collector('tensorboard', TensorBoardCollector)
  collector_dispatcher.add_collector('console', ConsoleCollector)
  collector_dispatcher.add_collector('pickle', PickleCollector)

