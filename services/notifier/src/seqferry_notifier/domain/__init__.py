"""Pure notifier logic: execution history, run delivery rule, stalls, notifications, dashboard aggregates.

Nothing here talks to AWS or does I/O; adapters in the package around it do.
"""
