# Container images: images/Dockerfile, one target per role. The references (registry, tag)
# come from landmarks/config.py, the one place `make compile` reads them from too:
#   LANDMARKS_REGISTRY   where images go (default ghcr.io/landmarks-platform)
#   LANDMARKS_IMAGE_TAG  immutable tag (default <version>-<git sha>, `-dirty` with local changes)
# Docker with BuildKit (buildx) is required to build; nothing here needs it to print or lint.

# Roles `make images` builds; kind-up builds only what a CPU cluster runs.
IMAGE_ROLES ?= component trainer trainer-cpu
# 1: push after building (tags already in the registry are skipped). 0: build locally only.
PUSH ?= 1
# GKE nodes are amd64: build for them even on an arm64 laptop. Empty: this machine's platform.
IMAGE_PLATFORM ?= linux/amd64
# Prints one fact from landmarks/config.py: $(LANDMARKS_CONFIG) value tag | image ROLE
LANDMARKS_CONFIG = $(BIN)/python -c 'import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))'

.PHONY: images
images: venv ## Build and push the images (IMAGE_ROLES, PUSH=0 to only build) to $LANDMARKS_REGISTRY
	@PYTHON=$(BIN)/python IMAGE_PLATFORM=$(IMAGE_PLATFORM) \
	  scripts/deploy/images.sh $(if $(filter 1,$(PUSH)),--push) $(IMAGE_ROLES)

.PHONY: images-refs
images-refs: venv ## Print the image references that make images pushes and make compile uses
	@for role in $(IMAGE_ROLES); do $(LANDMARKS_CONFIG) image $$role || exit 1; done

.PHONY: images-lint
images-lint: venv ## Lint images/Dockerfile with hadolint (offline)
	$(BIN)/hadolint images/Dockerfile

.PHONY: images-test
images-test: venv ## Dockerfile and image-reference tests (no Docker needed)
	$(BIN)/python -m pytest tests/images $(PYTEST_ARGS)
