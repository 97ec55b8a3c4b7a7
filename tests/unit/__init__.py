"""Unit tests: pure logic, no processes, no network. One package per etcd_operator package."""
