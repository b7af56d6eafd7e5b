"""The FLOP and active-parameter counter against hand-worked networks."""

import gin
import pytest
import tensorflow as tf

from moe_dopamine.networks import cost
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
