# The trainer's input pipeline benchmark (benchmarks/bench_input.py); prints ratios, never fails.
BENCH_INPUT_ARGS ?=

.PHONY: bench-input
bench-input: venv ## tf.data input vs ImageDataGenerator vs bare JPEG decode, and its cost per training step
	$(BIN)/python -m benchmarks.bench_input $(BENCH_INPUT_ARGS)
