"""Restoring a snapshot into a new cluster: checking the file, staging and committing the
restored data directory (run in pods), and the pure decision of the EtcdRestore controller."""
