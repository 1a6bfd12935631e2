# Local Kubernetes control plane for integration tests (scripts/test-cluster/).
# Binaries are compiled once per machine into $(LANDMARKS_CACHE)/test-cluster with the machine's Go;
# without Go every target here prints why it skips and succeeds.

TEST_CLUSTER := scripts/test-cluster
TEST_CLUSTER_PY = $(BIN)/python $(TEST_CLUSTER)/testcluster.py
# A recipe prefix: stop here (successfully) when Go is missing.
TEST_CLUSTER_NEED_GO = command -v go >/dev/null || { \
  echo "test-cluster: SKIP: Go is not installed (the cluster is built from Go modules; install Go >= 1.26)"; \
  exit 0; }

.PHONY: test-cluster-build
test-cluster-build: ## Build etcd, kube-*, KWOK and the training-operator once per machine (cached)
	@$(TEST_CLUSTER_NEED_GO); $(TEST_CLUSTER)/build.sh

.PHONY: test-cluster-up
test-cluster-up: venv ## Start the local test cluster (builds first if needed) and print its kubeconfig
	@$(TEST_CLUSTER_NEED_GO); \
	$(TEST_CLUSTER)/build.sh || echo "test-cluster: some components failed to build; starting the rest"; \
	$(TEST_CLUSTER_PY) up

.PHONY: test-cluster-status
test-cluster-status: venv ## Show the health of each test-cluster process
	@$(TEST_CLUSTER_PY) status

.PHONY: test-cluster-down
test-cluster-down: venv ## Stop every process test-cluster-up started, by process id
	@$(TEST_CLUSTER_PY) down

.PHONY: test-cluster-smoke
test-cluster-smoke: venv ## Start the test cluster, run tests/cluster against it, stop it
	@$(TEST_CLUSTER_NEED_GO); \
	$(MAKE) --no-print-directory test-cluster-up || exit $$?; \
	LANDMARKS_KUBECONFIG="$$($(TEST_CLUSTER_PY) kubeconfig)" \
	  $(BIN)/python -m pytest tests/cluster $(PYTEST_ARGS); rc=$$?; \
	$(TEST_CLUSTER_PY) down; exit $$rc
