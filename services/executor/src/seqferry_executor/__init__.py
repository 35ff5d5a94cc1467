"""seqferry executor: turns windows and requests into transfers and reports every execution state."""
