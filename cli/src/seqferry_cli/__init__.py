"""seqferry command line."""
