"""kopf handlers, one module per resource kind. Importing this package registers them."""

from etcd_operator.handlers import etcdbackup, etcdcluster, etcdrestore

__all__ = ["etcdbackup", "etcdcluster", "etcdrestore"]
