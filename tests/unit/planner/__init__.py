"""Tests of etcd_operator.planner."""
