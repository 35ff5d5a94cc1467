"""Pure executor logic: validation, per-task queues and coalescing, execution records. No I/O."""
