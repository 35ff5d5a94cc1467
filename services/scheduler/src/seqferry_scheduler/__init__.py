"""seqferry scheduler: opens a transfer window per task on every tick, once across all replicas."""
