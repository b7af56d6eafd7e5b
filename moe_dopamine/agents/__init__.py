"""DQN agents that train MoE Q-networks."""
