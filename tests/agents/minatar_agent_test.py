"""MoEDQNAgent on multi-game MinAtar: masks in real play, training, dormant conv maps, ReDo."""

import random

import gin
import numpy as np
import pytest
import tensorflow as tf

from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask
from moe_dopamine.metrics import names
from moe_dopamine.networks import minatar_q_networks

GAMES = ['Breakout', 'SpaceInvaders', 'Asterix']
LEGAL = {0: {0, 1, 3}, 1: {0, 1, 3, 5}, 2: {0, 1, 2, 3, 4}}


@pytest.fixture(autouse=True)
def small_agent():
  gin.bind_parameter('WrappedReplayBuffer.replay_capacity', 2000)
  gin.bind_parameter('WrappedReplayBuffer.batch_size', 8)
  gin.bind_parameter('DQNAgent.network', minatar_q_networks.MinAtarQNetwork)
  gin.bind_parameter('DQNAgent.min_replay_history', 50)
  gin.bind_parameter('MoEDQNAgent.diagnostics_batch_size', 32)
  gin.bind_parameter('MoEDQNAgent.diagnostics_period', 0)


def make(seed=0):
  tf.compat.v1.set_random_seed(seed)  # The initial weights.
  env = multitask.MultiTaskEnvironment(task_names=GAMES, setting='mtrl', seed=seed)
  sess = tf.compat.v1.Session()
  agent = factory.create_agent(sess, env)
  sess.run(tf.compat.v1.global_variables_initializer())
  return env, agent


def play(env, agent, steps):
  """`steps` real steps of the agent in the environment; actions per game."""
  random.seed(0)  # The agent's exploration draws from Python's stream.
  env.begin_iteration(0)
  taken = {t: set() for t in range(env.num_tasks)}
  action = agent.begin_episode(env.reset())
  for _ in range(steps):
    taken[env.current_task].add(int(action))
    obs, reward, terminal, _ = env.step(action)  # Raises for a masked action.
    if env.game_over:  # A true end or a time limit.
      agent.end_episode(reward, terminal)
      action = agent.begin_episode(env.reset())
    else:
      action = agent.step(reward, obs)
  return taken


def test_no_masked_action_is_taken_in_thousands_of_steps_and_the_target_skips_them():
  gin.bind_parameter('DQNAgent.epsilon_fn', lambda *unused: 0.3)
  env, agent = make()
  sess = agent._sess
  # The masked actions look best to the untrained network: a missing mask in
  # the greedy choice or in the target's max would pick them.
  bias = agent.online_convnet.output_layer.bias
  sess.run(bias.assign([0.0, 0.0, 50.0, 0.0, 50.0, 50.0]))
  agent._run_sync()
  taken = play(env, agent, 3000)
  assert agent.gradient_steps > 500  # Trained all along.
  assert taken == LEGAL  # Every legal action, greedy or random; nothing else.
  target_op = agent._build_target_q_op()
  for _ in range(100):  # Replayed batches until one bootstraps from Breakout.
    target, rewards, terminals, next_q, next_states = sess.run([
        target_op, agent._replay.rewards, agent._replay.terminals,
        agent._replay_next_target_net_outputs.q_values, agent._replay.next_states,
    ])
    tasks = next_states.reshape(len(next_states), -1)[:, -1].astype(int)
    if (tasks == 0).any():
      break
  # Otherwise the Breakout checks below would hold over no state at all.
  assert (tasks == 0).any(), 'no replayed batch bootstrapped from a Breakout state'
  masks = env.action_masks[tasks]
  best_legal = np.where(masks, next_q, -np.inf).max(axis=1)
  # Breakout lacks every trapped action: its unmasked max is far above.
  assert (next_q.max(axis=1)[tasks == 0] > best_legal[tasks == 0] + 10).all()
  np.testing.assert_allclose(target, rewards + 0.99 * best_legal * (1 - terminals), rtol=1e-5)


VARIANTS = [
    ('baseline', 'per_pixel', 'softmoe'),
    ('baseline_scaled', 'per_pixel', 'softmoe'),
    ('middle', 'per_pixel', 'softmoe'),
    ('middle', 'per_feature_map', 'softmoe'),
    ('middle', 'per_sample', 'topk'),
    ('final', 'per_pixel', 'topk'),
    ('all', 'per_pixel', 'topk'),
    ('all', 'per_feature_map', 'topk'),
    ('all', 'per_sample', 'softmoe'),
    ('big', 'per_pixel', 'softmoe'),
    ('big', 'per_pixel', 'topk'),
    ('separate', 'per_pixel', 'hardcoded'),
]


@pytest.mark.parametrize('placement,tokenization,router', VARIANTS)
def test_every_placement_and_tokenization_trains(placement, tokenization, router):
  gin.bind_parameter('MinAtarQNetwork.placement', placement)
  gin.bind_parameter('MinAtarQNetwork.tokenization', tokenization)
  gin.bind_parameter('MoE.router', router)
  env, agent = make()
  before = agent._sess.run(agent.online_convnet.trainable_weights)
  play(env, agent, 100)
  after = agent._sess.run(agent.online_convnet.trainable_weights)
  assert agent.gradient_steps > 0
  weights = agent.online_convnet.trainable_weights
  changed = {w.name: not np.array_equal(b, a) for w, b, a in zip(weights, before, after)}
  experts = [name for name in changed if '/expert_' in name]
  # Every shared variable (conv, dense layers, router) learns; of the
  # experts, the ones routed to (every one under SoftMoE).
  assert all(changed[name] for name in changed if name not in experts), changed
  if experts:
    assert any(changed[name] for name in experts), changed
    if router == 'softmoe':
      assert all(changed[name] for name in experts), changed
  states = agent._sample_states()
  stats = agent.measure(states)
  assert np.isfinite(stats[names.loss('TotalLoss')])
  # The dormant fractions, against the ReDo score computed here from the
  # network's activations on the same states: every hidden layer (the conv,
  # hidden_0, each expert's hidden layers), each a fraction of its neurons,
  # the overall one over all of them.
  network = agent.online_convnet
  output = network(tf.constant(states), diagnostics=True)
  activations, counts = agent._sess.run((output.activations, output.routed_counts))
  # An expert no state was routed to is not made of dormant neurons.
  expected_layers = {name for name in activations
                     if names.parse_expert_hidden(name) is None
                     or counts[names.parse_expert_hidden(name)[0]][
                         names.parse_expert_hidden(name)[1]] > 0}
  assert ('conv_0' in expected_layers) == (placement not in ('big', 'separate'))
  assert any(names.parse_expert_hidden(n) for n in expected_layers) == (
      placement not in ('baseline', 'baseline_scaled'))
  reported = {key[len(names.dormant_fraction(0.0)) + 1:] for key in stats
              if key.startswith(names.dormant_fraction(0.0) + '/')}
  assert reported == expected_layers
  dormant, total = 0, 0
  for layer in expected_layers:
    values = np.abs(activations[layer]).reshape(-1, activations[layer].shape[-1])
    mean_abs = values.mean(axis=0)
    scores = mean_abs / mean_abs.mean() if mean_abs.mean() else np.zeros_like(mean_abs)
    for tau in (0.0, 0.1):
      assert stats[names.dormant_fraction(tau, layer)] == pytest.approx(
          (scores <= tau).mean(), abs=1e-9), (layer, tau)
    dormant, total = dormant + (scores <= 0.1).sum(), total + len(scores)
  assert stats[names.dormant_fraction(0.1)] == pytest.approx(dormant / total, abs=1e-9)


def test_a_conv_feature_map_is_one_neuron_of_the_dormant_score():
  env, agent = make()
  play(env, agent, 100)
  sess = agent._sess
  conv = agent.online_convnet.conv
  kernel, bias = sess.run([conv.kernel, conv.bias])
  kernel[..., 5], bias[5] = 0.0, -1.0  # Feature map 5 is 0 at every position.
  sess.run([conv.kernel.assign(kernel), conv.bias.assign(bias)])
  stats = agent.measure()
  dead = stats[names.dormant_fraction(0.0, 'conv_0')]
  assert dead == pytest.approx(1 / 16)  # Of 16 maps, not of 1,600 positions.


def test_redo_recycles_a_dead_dense_neuron_and_leaves_the_conv_alone():
  gin.bind_parameter('MoEDQNAgent.redo_period', 100000)  # Only when called.
  gin.bind_parameter('MoEDQNAgent.redo_tau', 0.0)
  env, agent = make()
  play(env, agent, 100)
  sess = agent._sess
  net = agent.online_convnet
  kernel, bias = sess.run([net.hidden.kernel, net.hidden.bias])
  kernel[:, 9], bias[9] = 0.0, -1.0  # Neuron 9 of hidden_0 never fires.
  sess.run([net.hidden.kernel.assign(kernel), net.hidden.bias.assign(bias)])
  conv_before = sess.run(net.conv.kernel)
  states = agent._sample_states()
  assert agent.recycle_dormant_neurons(states) >= 1
  kernel, bias, out = sess.run([net.hidden.kernel, net.hidden.bias, net.output_layer.kernel])
  assert np.abs(kernel[:, 9]).max() > 0 and bias[9] == 0.0 and not out[9].any()
  np.testing.assert_array_equal(sess.run(net.conv.kernel), conv_before)
