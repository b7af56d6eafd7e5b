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
        # Expert hidden layers hold the routed inputs only, except in a
        # diagnostics call, where every expert runs on the whole batch.
        'activations',
        # Diagnostics call only: {expert hidden layer: [s_e, units]} on the
        # inputs routed to the expert, and {MoE layer: int [n]} how many
        # inputs each expert received.
        'routed_activations',
        'routed_counts',
    ],
)

# A hidden layer whose neurons ReDo can recycle: the activation's name, and
# the variables that feed a neuron (incoming kernels with the neuron's axis,
# biases) and that read it (outgoing kernels with the neuron's axis).
# Optional third elements: an incoming kernel's Glorot (fan_in, fan_out) when
# its shape does not tell them (a flattened conv kernel); an outgoing
# kernel's repeats of the units along its axis (feature maps flattened as
# [positions * units]). See agents.recycling.
RecyclableLayer = collections.namedtuple(
    'RecyclableLayer', ['name', 'units', 'incoming', 'biases', 'outgoing']
)


def make_output(
    q_values,
    aux_losses=None,
    router_probs=None,
    activations=None,
    routed_activations=None,
    routed_counts=None,
):
  return QNetworkOutput(
      q_values=q_values,
      aux_losses=dict(aux_losses or {}),
      router_probs=dict(router_probs or {}),
      activations=dict(activations or {}),
      routed_activations=dict(routed_activations or {}),
      routed_counts=dict(routed_counts or {}),
  )


def extras(network_output, field):
  """The dict `field` of a network output; {} for stock Dopamine outputs."""
  return dict(getattr(network_output, field, None) or {})
