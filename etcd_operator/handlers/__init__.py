"""kopf handlers, one module per resource kind. Importing this package registers them."""

from etcd_operator.handlers import etcdcluster, etcdrestore

__all__ = ["etcdcluster", "etcdrestore"]
