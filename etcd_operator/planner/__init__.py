"""Pure decision logic: observed state in, the next safe step out. No I/O."""
