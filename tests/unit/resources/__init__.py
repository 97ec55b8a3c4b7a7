"""Tests of etcd_operator.resources."""
