"""Custom resource models (v1alpha1); the CRD YAML is generated from them."""
