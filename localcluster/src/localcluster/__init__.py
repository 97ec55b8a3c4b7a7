"""localcluster: a real Kubernetes control plane plus a process-based node, for tests and demos."""
