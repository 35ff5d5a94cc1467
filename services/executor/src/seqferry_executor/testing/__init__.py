"""Test support shipped with the executor: a DataSync endpoint stand-in checked against botocore's model."""
