"""kopf handlers, one module per resource kind. Importing this package registers them."""

from etcd_operator.handlers import (
    backup_delete,
    etcdbackup,
    etcdbackupschedule,
    etcdcluster,
    etcdrestore,
)

__all__ = ["backup_delete", "etcdbackup", "etcdbackupschedule", "etcdcluster", "etcdrestore"]
