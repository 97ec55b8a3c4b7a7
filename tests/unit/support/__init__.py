"""Test support: builders of API objects and planner inputs, and the simulated world."""
