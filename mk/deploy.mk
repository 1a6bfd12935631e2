# Deploying to a Kubernetes cluster (scripts/deploy/). Settings come from the environment,
# `make VAR=value` or ./env.sh (copy scripts/deploy/env.sh.example); the main ones:
#   ENV=gke|kind  KUBE_CONTEXT  GCP_PROJECT  GCP_SERVICE_ACCOUNT  GCP_KEY_FILE
#   TRAINING_OPERATOR=install|offline|skip  KFP=install|offline|skip  KFP_SRC  KFP_HOST  KFP_UI_HOST
#   (offline: the operator image built here and the overlay from the Go module cache)
# Prerequisites: kubectl and helm (PATH, else the pinned ones of scripts/k8s-tools.sh), git
# (kubectl fetches the pinned upstream overlays with it), network to github.com for those,
# and a reachable cluster. The kind targets also need Docker and kind v0.31+.
# Every target checks its prerequisites first (scripts/deploy/check-prereqs.sh) and stops
# with what is missing and how to get it.

DEPLOY_SCRIPTS := scripts/deploy
# Passed to the scripts: they run the project's Python from the venv.
DEPLOY_ENV = PYTHON=$(abspath $(BIN))/python
# Variables make may get on its command line; exported so the scripts see them.
export ENV KUBE_CONTEXT RELEASE HELM_NAMESPACE HELM_EXTRA_ARGS GCP_PROJECT GCP_SERVICE_ACCOUNT \
  GCP_KEY_FILE TRAINING_OPERATOR KFP KFP_SRC KFP_NAMESPACE KFP_HOST KFP_UI_HOST UPLOAD WAIT_TIMEOUT \
  PURGE KIND_CLUSTER KIND_CONFIG KIND_NODE_IMAGE KIND_TEST_PARAMS KIND_TEST_TIMEOUT LANDMARKS_REGISTRY LANDMARKS_IMAGE_TAG \
  ALLOW_DIRTY KEEP ARTIFACT_STORE BASE_IMAGES

.PHONY: deploy-prereqs
deploy-prereqs: ## Check the tools and the cluster that make deploy needs
	@$(DEPLOY_SCRIPTS)/check-prereqs.sh kubectl helm git cluster

.PHONY: deploy
deploy: venv ## Operator, chart (helm upgrade --install --wait), upload the pipeline as a new version
	@$(DEPLOY_ENV) $(DEPLOY_SCRIPTS)/deploy.sh

.PHONY: undeploy
undeploy: venv ## Remove what make deploy installed, and only that
	@$(DEPLOY_ENV) $(DEPLOY_SCRIPTS)/undeploy.sh

.PHONY: kind-up
kind-up: venv ## kind cluster + CPU images loaded + artifact store, operator and chart (KIND_NODE_IMAGE=... for an offline node image)
	@$(DEPLOY_ENV) $(DEPLOY_SCRIPTS)/kind.sh up

.PHONY: kind-kfp
kind-kfp: venv ## Install KFP on the kind cluster and upload the pipeline (a separate step from kind-up)
	@$(DEPLOY_ENV) $(DEPLOY_SCRIPTS)/kind.sh kfp

.PHONY: kind-node-image
kind-node-image: venv ## Build the kind node image offline (landmarks-kind/node:<k8s version>; needs Docker, Go)
	@PYTHON=$(abspath $(BIN))/python scripts/kind/node-image.sh

.PHONY: kind-test
kind-test: venv ## The kind suite on real pods (tests/kind): kind-up unless up, the tests, kind-down unless it was up
	@$(DEPLOY_ENV) PYTEST_ARGS="$(PYTEST_ARGS)" $(DEPLOY_SCRIPTS)/kind.sh test

.PHONY: kind-run
kind-run: venv ## Run the pipeline on the kind cluster through KFP (make kind-kfp first) and wait for it
	@$(DEPLOY_ENV) $(DEPLOY_SCRIPTS)/kind.sh run

.PHONY: kind-operator-image
kind-operator-image: ## Build the training-operator image offline (landmarks-kind/training-operator:<version>; needs Docker, Go)
	@scripts/kind/training-operator.sh image

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	@$(DEPLOY_SCRIPTS)/kind.sh down

.PHONY: deploy-test
deploy-test: venv ## Deploy-script, upload and image tests (no cluster or Docker needed)
	$(BIN)/python -m pytest tests/deploy tests/images $(PYTEST_ARGS)

.PHONY: kfp-e2e
kfp-e2e: venv ## The pipeline on a real KFP backend built from KFP_SRC, on its own kind cluster (no registry needed)
	@$(DEPLOY_ENV) PYTEST_ARGS="$(PYTEST_ARGS)" scripts/kfp/e2e.sh
