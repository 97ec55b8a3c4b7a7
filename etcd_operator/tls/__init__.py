"""CA and certificate issue and rotation (later issue)."""
