"""Tests of etcd_operator.api."""
