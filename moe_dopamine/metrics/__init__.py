"""Measurements of runs: continual-learning metrics and the run-log reader."""
