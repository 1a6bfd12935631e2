# The integration suite against the local control plane of scripts/test-cluster (see mk/test-cluster.mk):
# the cluster's own checks (tests/cluster), the chart and the TFJob launcher acting as the KFP
# runner (tests/integration), and make deploy/undeploy (tests/deploy/test_deploy_cluster.py).
# The same tests run against any cluster: LANDMARKS_KUBECONFIG=<admin kubeconfig> make test-integration.

INTEGRATION_TESTS := tests/cluster tests/integration tests/deploy/test_deploy_cluster.py

.PHONY: test-cluster
test-cluster: venv ## Start the local test cluster, run the integration suite on it, stop it (skips without Go)
	@$(TEST_CLUSTER_NEED_GO); \
	started=$$(date +%s); \
	already_up=$$($(TEST_CLUSTER_PY) status >/dev/null 2>&1 && echo yes); \
	$(MAKE) --no-print-directory test-cluster-up || exit $$?; \
	LANDMARKS_KUBECONFIG="$$($(TEST_CLUSTER_PY) kubeconfig)" \
	  $(BIN)/python -m pytest $(INTEGRATION_TESTS) $(PYTEST_ARGS); rc=$$?; \
	if [ -n "$$already_up" ]; then echo "test-cluster: left running (it was up before)"; \
	else $(TEST_CLUSTER_PY) down; fi; \
	echo "test-cluster: finished in $$(( $$(date +%s) - started ))s (exit $$rc)"; \
	exit $$rc

.PHONY: test-integration
test-integration: venv ## Run the integration suite on the cluster of LANDMARKS_KUBECONFIG (kind, GKE, ...)
	@[ -n "$$LANDMARKS_KUBECONFIG" ] || { \
	  echo "test-integration: set LANDMARKS_KUBECONFIG to an admin kubeconfig (make test-cluster starts a local cluster)"; \
	  exit 2; }
	$(BIN)/python -m pytest tests/integration tests/deploy/test_deploy_cluster.py $(PYTEST_ARGS)
