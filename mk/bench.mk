# Benchmarks: ratios measured side by side in one run (never timed tests).

.PHONY: bench-ingest
bench-ingest: venv ## Downloader vs a sequential loop at 50 ms latency (images/s, ratio, peak RSS)
	$(BIN)/python -m benchmarks.bench_ingest

.PHONY: bench-split
bench-split: venv ## Split's gs:// copy pool vs one worker behind a latency proxy
	$(BIN)/python -m benchmarks.bench_split
