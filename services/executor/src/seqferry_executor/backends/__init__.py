"""Transfer backends: ``datasync`` (AWS DataSync task executions) and ``local`` (seqferry's own engine)."""
