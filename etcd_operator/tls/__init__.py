"""Certificates of a cluster: the CA and leaf certificates the operator issues in `Auto` mode
(`pki`), which of them to (re)issue when (`renewal`), and what a Secret in the cert-manager
layout holds (`material`). Pure: no I/O, no clock (callers pass `now`)."""
