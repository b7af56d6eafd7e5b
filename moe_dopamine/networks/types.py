"""What a moe_dopamine Q-network returns.

Dopamine's DQNAgent reads only `.q_values`; the other fields ride along for
the agent's auxiliary losses and for the diagnostics.
"""

import collections

QNetworkOutput = collections.namedtuple(
    'QNetworkOutput',
    [
        # [batch, num_actions] Q-values.
        'q_values',
        # {name: scalar} auxiliary losses, already weighted, added to the TD loss.
        'aux_losses',
        # {MoE layer name: [batch, tokens, experts]} routing probabilities.
        'router_probs',
        # {hidden layer name: [batch, ..., units]} post-activation values.
        'activations',
    ],
)


def make_output(q_values, aux_losses=None, router_probs=None, activations=None):
  return QNetworkOutput(
      q_values=q_values,
      aux_losses=dict(aux_losses or {}),
      router_probs=dict(router_probs or {}),
      activations=dict(activations or {}),
  )


def extras(network_output, field):
  """The dict `field` of a network output; {} for stock Dopamine outputs."""
  return dict(getattr(network_output, field, None) or {})
