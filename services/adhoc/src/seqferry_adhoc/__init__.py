"""seqferry adhoc service: ad-hoc transfer requests from manifests in S3 and from an authenticated HTTP API."""
