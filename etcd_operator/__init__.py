"""etcd-operator: run etcd clusters on Kubernetes the way an etcd expert would."""

__version__ = "0.1.0"
