"""Private protocol clients: the OCI distribution API (`registry`) and the Hugging Face Hub
(`hub`). They speak the wire and nothing else; model sources and attestation stores, above
them, decide what the answers mean."""

DOWNLOAD_LIMIT = 64 << 20  # non-weight files up to this size are fetched whole and hashed
WORKERS = 8  # concurrent requests: latency, not bandwidth, bounds metadata work
STREAM_CHUNK = 1 << 20
