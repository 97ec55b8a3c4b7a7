"""Pure builders of the Kubernetes objects an etcd cluster needs."""
