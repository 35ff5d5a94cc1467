"""seqferry notifier: tracks transfer executions and whole runs to completion, announces them, shows a dashboard."""
