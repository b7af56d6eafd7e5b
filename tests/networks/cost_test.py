"""The FLOP and active-parameter counter against hand-worked networks."""

import gin
import pytest
import tensorflow as tf

from moe_dopamine.networks import cost
from moe_dopamine.networks import minatar_q_networks as mq
from moe_dopamine.networks import q_networks

D, A = 4, 2
BASELINE = 2 * (4 * 512 + 512 * 512 + 512 * 2)  # 530,432 FLOPs per sample.


def built(placement, router='softmoe', **kwargs):
  gin.bind_parameter('MoE.router', router)
  network = q_networks.ClassicControlQNetwork(A, placement=placement, num_experts=4, **kwargs)
  network(tf.zeros([1, D, 1]))
  return network


def test_baseline_flops_and_parameters():
  network = built('baseline')
  assert cost.forward_cost(network) == (BASELINE, q_networks.count_parameters(network))
  assert cost.training_step_flops(network, 128) == 128 * 4 * BASELINE


def test_big_softmoe_runs_every_expert():
  # Router logits and slot inputs 4 m d n p = 4 * 1 * 4 * 4; combine 2 m n p o = 2 * 4 * 2.
  flops, active = cost.forward_cost(built('big'))
  assert flops == 4 * BASELINE + 4 * 4 * 4 + 2 * 4 * 2
  assert active == 4 * 266242 + 4 * 4  # Every expert, and Phi.


@pytest.mark.parametrize('k', [1, 2])
def test_big_topk_pays_for_k_experts(k):
  gin.bind_parameter('MoE.k', k)
  flops, active = cost.forward_cost(built('big', 'topk'))
  assert flops == 2 * D * 4 + k * BASELINE
  assert active == D * 4 + k * 266242


def test_middle_topk_with_two_tokens():
  gin.bind_parameter('MoE.k', 1)
  network = built('middle', 'topk', num_tokens=2)
  expert = 2 * (256 * 512 + 512 * 256)  # Tokens of 256 features, hidden 512.
  moe_layer = 2 * 2 * 256 * 4 + 2 * expert  # Router, then one expert per token.
  assert cost.forward_cost(network)[0] == 2 * D * 512 + moe_layer + 2 * 512 * A


@pytest.mark.parametrize('k', [1, 2])
def test_soft_to_sparse_runs_every_expert_until_fully_sparse(k):
  gin.bind_parameter('MoE.k', k)
  network = built('big', 'soft_to_sparse')
  flops, active = cost.forward_cost(network)
  assert flops == 2 * D * 4 + 4 * BASELINE
  assert active == D * 4 + 4 * 266242
  # At s = 1, TopK's k experts.
  assert cost.forward_cost(network, fully_sparse=True) == (2 * D * 4 + k * BASELINE,
                                                          D * 4 + k * 266242)
  assert cost.training_step_flops(network, 8, fully_sparse=True) == 8 * 4 * (
      2 * D * 4 + k * BASELINE)


# A small MinAtar network: 10 x 10 screens (MinAtar's, the only size the
# network takes) of C = 2 channels and the task id, F = 3 filters of 3 x 3,
# a hidden width of 8 (experts' too), 3 actions.
C, F, H, MA = 2, 3, 8, 3
CONV = 2 * 10 * 10 * 3 * 3 * C * F  # 2 H_out W_out k k C_in C_out = 10,800.
MINATAR = CONV + 2 * 100 * F * H + 2 * H * MA  # + Dense(300 -> 8), (8 -> 3): 15,648.
CONV_PARAMETERS = 3 * 3 * C * F + F  # 57.
MINATAR_PARAMETERS = CONV_PARAMETERS + (300 * H + H) + (H * MA + MA)  # 2,492.


def built_minatar(placement, router='softmoe', tokenization='per_pixel', **kwargs):
  gin.bind_parameter('MoE.router', router)
  kwargs.setdefault('num_experts', 4)
  network = mq.MinAtarQNetwork(
      MA, placement=placement, tokenization=tokenization, filters=F, hidden_units=H,
      expert_hidden_units=H, task_id_in_observation=True, **kwargs,
  )
  network(tf.zeros([1, 100 * C + 1, 1]))
  return network


def test_minatar_baseline_counts_the_conv_at_every_position():
  network = built_minatar('baseline')
  assert cost.forward_cost(network) == (MINATAR, MINATAR_PARAMETERS)
  assert q_networks.count_parameters(network) == MINATAR_PARAMETERS
  assert cost.training_step_flops(network, 32) == 32 * 4 * MINATAR


def test_a_conv_costs_2_h_w_k_k_cin_cout():
  network = built_minatar('baseline', kernel_size=5)
  flops, active = cost.forward_cost(network)
  assert flops == 2 * 100 * 5 * 5 * C * F + 2 * 100 * F * H + 2 * H * MA
  assert active == 5 * 5 * C * F + F + (300 * H + H) + (H * MA + MA)


# The middle MoE's experts map tokens of width d through H back to d; its
# SoftMoE has p = ceil(m / 4) slots per expert. Per tokenization, (m, d,
# p) and the layer's FLOPs: router and slot inputs 2 * 2 m d (4 p), experts
# 4 p * 2 (d H + H d), combine 2 m (4 p) d.
MIDDLE_SOFTMOE = {
    'per_pixel': (100, F, 25, 4 * 100 * F * 100 + 100 * 4 * F * H + 2 * 100 * 100 * F),
    'per_feature_map': (F, 100, 1, 4 * F * 100 * 4 + 4 * 4 * 100 * H + 2 * F * 4 * 100),
    'per_sample': (1, 300, 1, 4 * 1 * 300 * 4 + 4 * 4 * 300 * H + 2 * 1 * 4 * 300),
}


@pytest.mark.parametrize('tokenization', sorted(MIDDLE_SOFTMOE))
def test_minatar_middle_softmoe_sees_the_tokens_of_its_tokenization(tokenization):
  m, d, p, moe_layer = MIDDLE_SOFTMOE[tokenization]
  network = built_minatar('middle', tokenization=tokenization)
  output = 2 * 300 * MA  # The flattened MoE output, 300 values, -> Q.
  flops, active = cost.forward_cost(network)
  assert flops == CONV + moe_layer + output
  experts = 4 * (d * H + H + H * d + d)
  assert active == CONV_PARAMETERS + d * 4 * p + experts + 300 * MA + MA
  assert active == q_networks.count_parameters(network)  # SoftMoE uses every weight.
  assert m * d == 300


@pytest.mark.parametrize('k', [1, 2])
def test_minatar_middle_topk_per_pixel_pays_k_experts_per_pixel(k):
  gin.bind_parameter('MoE.k', k)
  network = built_minatar('middle', 'topk')
  # 100 tokens of F: router 2 * 100 * F * 4, then k experts per token.
  moe_layer = 2 * 100 * F * 4 + 100 * k * 2 * (F * H + H * F)
  flops, active = cost.forward_cost(network)
  assert flops == CONV + moe_layer + 2 * 300 * MA
  # 100 tokens reach every expert.
  assert active == CONV_PARAMETERS + F * 4 + 4 * (F * H + H + H * F + F) + 300 * MA + MA


def test_minatar_all_routes_one_token_to_the_output_moe():
  network = built_minatar('all')
  hidden = MIDDLE_SOFTMOE['per_pixel'][-1]
  # One token of the 300 flattened values, one slot per expert.
  output = 4 * 300 * 4 + 4 * 2 * (300 * H + H * MA) + 2 * 4 * MA
  assert cost.forward_cost(network)[0] == CONV + hidden + output


def test_minatar_big_softmoe_runs_every_conv_expert():
  # One token of the 200 screen values (not the task id), one slot per expert.
  flops, active = cost.forward_cost(built_minatar('big'))
  assert flops == 4 * 200 * 4 + 4 * MINATAR + 2 * 4 * MA
  assert active == 200 * 4 + 4 * MINATAR_PARAMETERS


@pytest.mark.parametrize('k', [1, 2])
def test_minatar_big_topk_pays_for_k_conv_experts(k):
  gin.bind_parameter('MoE.k', k)
  flops, active = cost.forward_cost(built_minatar('big', 'topk'))
  assert flops == 2 * 200 * 4 + k * MINATAR
  assert active == 200 * 4 + k * MINATAR_PARAMETERS


def test_minatar_separate_runs_one_whole_network():
  network = built_minatar('separate', num_tasks=3)
  assert cost.forward_cost(network) == (MINATAR, MINATAR_PARAMETERS)
  assert q_networks.count_parameters(network) == 3 * MINATAR_PARAMETERS


# task_id_input: the one-hot of T tasks in the input ('network') or in each
# router's input ('router'); the counts must include it and match the built
# network's (SoftMoE uses every weight, so active = all).
T = 2


def built_with_task_input(placement, task_id_input, router='softmoe'):
  gin.bind_parameter('MoE.router', router)
  network = q_networks.ClassicControlQNetwork(
      A, placement=placement, num_experts=4, num_tasks=T, task_id_in_observation=True,
      task_id_input=task_id_input,
  )
  network(tf.zeros([1, D + 1, 1]))
  return network


def test_a_baseline_told_the_task_pays_for_the_one_hot_in_its_first_layer():
  # Fails if the count reads the features' width, not the first layer's.
  network = built_with_task_input('baseline', 'network')
  parameters = 266242 + T * 512
  assert cost.forward_cost(network) == (BASELINE + 2 * T * 512, parameters)
  assert q_networks.count_parameters(network) == parameters


def test_big_softmoe_with_the_task_in_its_router_pays_for_the_routers_rows():
  # Router 2 m (d + c) n p on one token (p = 1), slot inputs 2 n p m d
  # (the token alone), combine 2 m n p o: fails if the context is left out
  # of the router or counted in the slots.
  network = built_with_task_input('big', 'router')
  flops, active = cost.forward_cost(network)
  assert flops == 4 * BASELINE + 2 * (D + T) * 4 + 2 * 4 * D + 2 * 4 * A
  assert active == 4 * 266242 + (D + T) * 4 == q_networks.count_parameters(network)


@pytest.mark.parametrize('k', [1, 2])
def test_big_topk_with_the_task_in_its_router_pays_for_the_routers_rows(k):
  gin.bind_parameter('MoE.k', k)
  flops, active = cost.forward_cost(built_with_task_input('big', 'router', 'topk'))
  assert flops == 2 * (D + T) * 4 + k * BASELINE
  assert active == (D + T) * 4 + k * 266242


def test_minatar_baseline_told_the_game_pays_for_the_task_planes():
  # The conv reads C + T channels: 2 H_out W_out k k (C + T) F.
  network = built_minatar('baseline', num_tasks=T, task_id_input='network')
  conv = 2 * 10 * 10 * 3 * 3 * (C + T) * F
  parameters = MINATAR_PARAMETERS + 3 * 3 * T * F
  assert cost.forward_cost(network) == (MINATAR - CONV + conv, parameters)
  assert q_networks.count_parameters(network) == parameters


@pytest.mark.parametrize('placement,task_id_input', [
    ('middle', 'router'), ('all', 'router'), ('big', 'router'), ('big', 'network'),
    ('final', 'network'),
])
def test_minatar_softmoe_counts_match_the_built_network_with_a_task_input(
    placement, task_id_input):
  network = built_minatar(placement, num_tasks=T, task_id_input=task_id_input)
  assert cost.forward_cost(network)[1] == q_networks.count_parameters(network)


def test_minatar_middle_softmoe_router_reads_the_task_beside_every_pixel():
  # 100 per-pixel tokens, each with the one-hot in its router input: the
  # router costs 2 m (d + c) n p, the slots still 2 n p m d.
  m, d, p, moe_layer = MIDDLE_SOFTMOE['per_pixel']
  network = built_minatar('middle', num_tasks=T, task_id_input='router')
  assert cost.forward_cost(network)[0] == CONV + moe_layer + 2 * m * T * 4 * p + 2 * 300 * MA


def test_baseline_memory_traffic_counts_weights_adam_and_activations_by_hand():
  network = built('baseline')
  parameters = q_networks.count_parameters(network)
  activations = 512 + 512 + A  # Two hidden layers, the Q-values.
  assert cost.activations(network) == activations
  assert cost.training_step_bytes(network, 128) == 4 * (11 * parameters + 6 * 128 * activations)
  assert cost.acting_bytes(network) == 4 * (parameters + 2 * activations)


def test_topk_traffic_reads_every_weight_in_training_and_k_experts_in_acting():
  network = built('big', 'topk')
  parameters = q_networks.count_parameters(network)
  # Router logits (n), one expert's hidden layers and outputs, the combined output.
  activations = 4 + (512 + 512 + A) + A
  assert cost.activations(network) == activations
  assert cost.training_step_bytes(network, 8) == 4 * (11 * parameters + 6 * 8 * activations)
  router = D * 4
  one_expert = (parameters - router) // 4
  assert cost.acting_bytes(network) == 4 * (router + one_expert + 2 * activations)


def test_softmoe_traffic_counts_its_slots():
  network = built('big')
  # One token, p = 1 slot per expert: logits n, slot inputs n d, each
  # expert's hidden layers and outputs on its slot, the combined output.
  assert cost.activations(network) == 4 + 4 * D + 4 * (512 + 512 + A) + A
