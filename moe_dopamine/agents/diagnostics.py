"""What MoEDQNAgent measures on replayed states, and ReDo's recycling.

`Diagnostics` builds, once, a forward pass of the online network on a fed
batch of states with diagnostics=True (every expert on the whole batch), the
mean |gradient| of each trainable router under the training loss, and (with
ReDo) the recycling ops. `measure` turns one batch into the statistics of
metrics.dormant and metrics.experts; `recycle` re-initialises the dormant
neurons of the batch.
"""

import numpy as np
import tensorflow as tf

from moe_dopamine import config
from moe_dopamine import observation
from moe_dopamine.agents import recycling
from moe_dopamine.metrics import dormant
from moe_dopamine.metrics import experts
from moe_dopamine.metrics import names
from moe_dopamine.networks import types


class Diagnostics:
  """The agent's measurement pass and ReDo driver."""

  def __init__(self, agent):
    """Builds the ops on `agent`'s graph (call after its networks exist)."""
    self.sess = agent._sess  # pylint: disable=protected-access
    self.batch_size = agent.diagnostics_batch_size
    self.taus = agent.dormant_taus
    self.task_names = agent.task_names
    self.task_id_in_observation = agent.task_id_in_observation
    # A fixed batch size, so networks that read state.shape[0] work too.
    self.states_ph = tf.compat.v1.placeholder(
        agent.observation_dtype,
        (self.batch_size,) + agent.observation_shape + (agent.stack_size,),
        name='diagnostics_states_ph',
    )
    outputs = agent._call_network(  # pylint: disable=protected-access
        agent.online_convnet, self.states_ph, training=False, diagnostics=True
    )
    self.fetches = {
        'losses': agent.loss_parts,
        'activations': types.extras(outputs, 'activations'),
        'routed_activations': types.extras(outputs, 'routed_activations'),
        'routed_counts': types.extras(outputs, 'routed_counts'),
        'router_probs': types.extras(outputs, 'router_probs'),
        'aux_losses': types.extras(outputs, 'aux_losses'),
    }
    router_weights = {
        layer.name: layer.router_weights()[0]
        for layer in getattr(agent.online_convnet, 'moe_layers', lambda: [])()
        if layer.router_weights() and layer.router_trainable
    }
    if router_weights:
      grads = tf.gradients(agent.loss_parts['TotalLoss'], list(router_weights.values()))
      self.fetches['router_grad'] = {
          name: tf.reduce_mean(tf.abs(g)) for name, g in zip(router_weights, grads)
      }
    self.recycler = None
    if agent.redo_period:
      layers = getattr(agent.online_convnet, 'recyclable_layers', None)
      if layers is None:
        raise config.ConfigError(
            f'ReDo (redo_period={agent.redo_period}) needs a network with '
            f'recyclable_layers(); {type(agent.online_convnet).__name__} has none.'
        )
      self.recycler = recycling.Recycler(layers(), agent.optimizer)

  def run(self, states, fetches):
    if len(states) != self.batch_size:
      raise ValueError(
          f'diagnostics take batches of {self.batch_size} states, got {len(states)}.'
      )
    return self.sess.run(fetches, {self.states_ph: states})

  def task_ids_of(self, states):
    """Task id of each state (all 0 for a single-task agent)."""
    if not self.task_id_in_observation:
      return np.zeros(len(states), int)
    return np.array([observation.task_id_of_state(s[None]) for s in states])

  def measure(self, states):
    """Statistics of one batch of states (names from metrics.names).

    Dormant fractions with every expert run on the whole batch, the
    routed-only ones, the unused-expert fractions, per-task expert
    statistics, each weighted auxiliary loss on these states, each part of
    the training loss on a replayed batch, and the mean |gradient| of each
    router's weights under the training loss.
    """
    values = self.run(states, self.fetches)
    counts = {k: np.asarray(v) for k, v in values['routed_counts'].items()}
    unused = dormant.unused_experts(counts)
    stats = dormant.dormant_fractions(values['activations'], self.taus, unused)
    stats.update(dormant.routed_dormant_fractions(
        values['routed_activations'], self.taus, unused
    ))
    stats.update(dormant.unused_expert_fractions(counts))
    if values['router_probs']:
      stats.update(experts.expert_statistics(
          values['router_probs'], self.task_ids_of(states), self.task_names
      ))
    stats.update({k: float(v) for k, v in values['aux_losses'].items()})
    stats.update({names.loss(k): float(v) for k, v in values['losses'].items()})
    stats.update(
        {names.router_grad(k): float(v) for k, v in values.get('router_grad', {}).items()}
    )
    return stats

  def recycle(self, states, tau):
    """ReDo on one batch: recycles the tau-dormant neurons, returns how many.

    Scores use the same activations as the dormant statistic (every expert on
    the whole batch); unused experts are left alone.
    """
    values = self.run(
        states, {k: self.fetches[k] for k in ('activations', 'routed_counts')}
    )
    unused = dormant.unused_experts(values['routed_counts'])
    masks = {
        layer.name: dormant.dormant_mask(values['activations'][layer.name], tau)
        for layer in self.recycler.layers
        if names.parse_expert_hidden(layer.name) not in unused
    }
    self.recycler.recycle(self.sess, masks)
    return int(sum(m.sum() for m in masks.values()))
