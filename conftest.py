pytest_plugins = ["seqferry_shared.testing.fixtures"]
