# Mutation testing of the modules whose results users read (GAP and top-k, the split plan,
# TF_CONFIG, the job-result mapping). A few minutes of CPU, so not part of CI: run it after
# changing those modules or their tests. Configuration: [tool.mutmut] in pyproject.toml;
# the modules and which of their functions count: scripts/mutation.py. Each run starts from
# a fresh mutants/ (git-ignored); `$(BIN)/mutmut show <name>` prints one mutant's diff.
# MUTATION_ARGS passes options, e.g. MUTATION_ARGS="--survivors" or "--max-children 2".
MUTATION_ARGS ?=

.PHONY: mutation
mutation: venv ## Mutation-test the result-computing modules; fails below 80% killed per module
	$(BIN)/python scripts/mutation.py $(MUTATION_ARGS)

.PHONY: mutation-clean
mutation-clean: ## Remove mutmut's copy of the tree (mutants/)
	rm -rf mutants
