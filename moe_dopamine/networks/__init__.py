"""Q-networks with Mixture-of-Experts layers, and the layers themselves."""
