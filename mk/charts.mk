# Helm charts (charts/) and the manifests they sit beside (manifests/).
# helm and kubectl come pinned from scripts/k8s-tools.sh, installed on first use.

CHARTS_DIR := charts/landmarks-platform
# Values profiles the chart is linted and rendered with: default, plus each ci/*-values.yaml.
CHART_PROFILES := default $(patsubst $(CHARTS_DIR)/ci/%-values.yaml,%,$(wildcard $(CHARTS_DIR)/ci/*-values.yaml))
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion).
CHART_KUBE_VERSION ?= 1.30.0
# Shell snippet: the helm values flags of profile $$p.
chart_values = $$([ "$$p" = default ] || echo "-f $(CHARTS_DIR)/ci/$$p-values.yaml")

.PHONY: charts-lint
charts-lint: ## helm lint --strict the chart with every values profile
	@helm="$$(scripts/k8s-tools.sh)/helm"; set -e; \
	for p in $(CHART_PROFILES); do \
	  echo "== $$p"; \
	  "$$helm" lint --strict $(CHARTS_DIR) --kube-version $(CHART_KUBE_VERSION) $(chart_values); \
	done

.PHONY: charts-template
charts-template: ## Render the chart per values profile into build/charts/<profile>.yaml
	@mkdir -p $(BUILD)/charts
	@helm="$$(scripts/k8s-tools.sh)/helm"; set -e; \
	for p in $(CHART_PROFILES); do \
	  "$$helm" template landmarks $(CHARTS_DIR) $(chart_values) > $(BUILD)/charts/$$p.yaml; \
	  echo "$(BUILD)/charts/$$p.yaml"; \
	done

.PHONY: charts-test
charts-test: venv ## Chart tests: lint, render, Kubernetes schemas, RBAC, GPU, auth, bad values
	$(BIN)/python -m pytest tests/charts $(PYTEST_ARGS)
