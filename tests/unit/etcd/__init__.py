"""Tests of etcd_operator.etcd."""
