"""harness: runs the etcd operator against localcluster (demo, operator process, test helpers)."""
