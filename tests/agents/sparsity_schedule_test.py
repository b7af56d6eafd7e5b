"""The soft-to-sparse routers' schedule, driven by the agent and the runner."""

import gin
import numpy as np
import pytest

from moe_dopamine.networks import q_networks
from tests.agents import common


@pytest.fixture(autouse=True)
def small_agent():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 500)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 8)
  gin.bind_parameter('DQNAgent.network', q_networks.ClassicControlQNetwork)
  gin.bind_parameter('DQNAgent.min_replay_history', 10)
  gin.bind_parameter('DQNAgent.update_period', 1)
  gin.bind_parameter('ClassicControlQNetwork.placement', 'big')
  gin.bind_parameter('ClassicControlQNetwork.hidden_units', 16)
  gin.bind_parameter('MoE.router', 'soft_to_sparse')
  gin.bind_parameter('MoEDQNAgent.sparsity_anneal_steps', 40)


def make_agent(resoften):
  gin.bind_parameter('MoEDQNAgent.resoften_on_task_switch', resoften)
  return common.crl_agent()


def run_steps(agent, observation, steps):
  for _ in range(steps):
    agent.step(0.0, observation)


def layer_sparsity(agent):
  return agent._sess.run(agent.online_convnet.big_moe.sparsity)


@pytest.mark.parametrize('resoften', [False, True])
def test_sparsity_rises_linearly_and_restarts_at_a_task_switch_if_asked(resoften):
  agent, _, observation = make_agent(resoften)
  assert layer_sparsity(agent) == 0.0
  run_steps(agent, observation, 20)
  assert agent.sparsity() == pytest.approx(agent.training_steps / 40)
  assert layer_sparsity(agent) == pytest.approx(agent.sparsity(), abs=0.03)
  run_steps(agent, observation, 30)
  assert layer_sparsity(agent) == 1.0
  agent.on_task_switch()
  expected = 0.0 if resoften else 1.0
  assert layer_sparsity(agent) == expected and agent.sparsity() == expected
  run_steps(agent, observation, 10)
  assert (agent.sparsity() < 0.5) == resoften


def test_the_schedule_start_survives_a_checkpoint(tmp_path):
  agent, _, observation = make_agent(True)
  run_steps(agent, observation, 15)
  agent.on_task_switch()
  start = agent._anneal_start
  bundle = agent.bundle_and_checkpoint(str(tmp_path), 0)
  agent._anneal_start = 0
  assert agent.unbundle(str(tmp_path), 0, bundle)
  assert agent._anneal_start == start > 0
