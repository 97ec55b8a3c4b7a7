"""kopf handlers, one module per resource kind. Importing this package registers them."""

from etcd_operator.handlers import etcdbackup, etcdcluster

__all__ = ["etcdbackup", "etcdcluster"]
