"""Every call to etcd goes through this package (TLS and auth get added here once)."""
