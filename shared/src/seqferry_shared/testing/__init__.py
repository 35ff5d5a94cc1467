"""Test support: a real moto server over HTTP, per-test resource prefixes, and bootstrap.

Load with ``pytest_plugins = ["seqferry_shared.testing.fixtures"]`` (the repository's root conftest does).
"""
