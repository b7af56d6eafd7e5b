"""An agent over a real MultiTaskEnvironment, for the agent tests."""

import tensorflow as tf

from moe_dopamine.agents import factory
from moe_dopamine.environments import multitask


def crl_agent(**environment_kwargs):
  """(agent in training mode at the start of an episode, its CRL
  environment, the episode's first observation); gin bindings in force
  configure both."""
  environment_kwargs.setdefault('iterations_per_task', 1)
  env = multitask.MultiTaskEnvironment(setting='crl', **environment_kwargs)
  sess = tf.compat.v1.Session()
  agent = factory.create_agent(sess, env)
  sess.run(tf.compat.v1.global_variables_initializer())
  agent.eval_mode = False
  observation = env.reset()
  agent.begin_episode(observation)
  return agent, env, observation
