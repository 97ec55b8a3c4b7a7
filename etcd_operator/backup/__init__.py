"""One-shot backups: what the backup Job is told, how it picks a member, how it runs, and the
result it reports (the operator's side is handlers/etcdbackup.py)."""
