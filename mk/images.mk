# Container images: images/Dockerfile, one target per role. The references (registry, tag)
# come from landmarks/config.py, the one place `make compile` reads them from too:
#   LANDMARKS_REGISTRY   where images go (default ghcr.io/landmarks-platform)
#   LANDMARKS_IMAGE_TAG  immutable tag (default <version>-<git sha>, `-dirty` with local changes)
# Building needs a Docker engine, not BuildKit or buildx (the classic builder builds the
# Dockerfile); nothing here needs Docker to print or lint.

# Roles `make images` builds; kind-up builds only what a CPU cluster runs.
IMAGE_ROLES ?= component trainer trainer-cpu
# 1: push after building (tags already in the registry are skipped). 0: build locally only.
PUSH ?= 1
# GKE nodes are amd64: build for them even on an arm64 laptop. Empty: this machine's platform.
IMAGE_PLATFORM ?= linux/amd64
# official: the Dockerfile's Docker Hub bases. standin: bases built on this machine
# (scripts/images/standin-bases.sh: debootstrap'd Debian bookworm Python, PyPI TensorFlow)
# for machines without Docker Hub, such as CI; images built on them are never pushed.
BASE_IMAGES ?= official
# Prints one fact from landmarks/config.py: $(LANDMARKS_CONFIG) value tag | image ROLE
LANDMARKS_CONFIG = $(BIN)/python -c 'import sys; from landmarks.config import main; sys.exit(main(sys.argv[1:]))'

.PHONY: images
images: venv ## Build and push the images (IMAGE_ROLES; PUSH=0 builds only; BASE_IMAGES=standin without Docker Hub)
	@PYTHON=$(BIN)/python IMAGE_PLATFORM=$(IMAGE_PLATFORM) BASE_IMAGES=$(BASE_IMAGES) \
	  scripts/deploy/images.sh $(if $(filter 1,$(PUSH)),--push) $(IMAGE_ROLES)

.PHONY: images-standin-bases
images-standin-bases: venv ## Build the local stand-in base images (no Docker Hub needed; cached)
	@PYTHON=$(BIN)/python scripts/images/standin-bases.sh

.PHONY: images-refs
images-refs: venv ## Print the image references that make images pushes and make compile uses
	@for role in $(IMAGE_ROLES); do $(LANDMARKS_CONFIG) image $$role || exit 1; done

.PHONY: images-lint
images-lint: venv ## Lint images/Dockerfile with hadolint (offline)
	$(BIN)/hadolint images/Dockerfile

.PHONY: images-test
images-test: venv ## Dockerfile and image-reference tests (no Docker needed)
	$(BIN)/python -m pytest tests/images $(PYTEST_ARGS)

# The `images` marker: tests that run the built images (make test deselects them).
.PHONY: test-images
test-images: venv ## Build the images (PUSH=0, BASE_IMAGES as for make images) and run the tests that run them
	@$(MAKE) --no-print-directory images PUSH=0
	@started=$$(date +%s); \
	BASE_IMAGES=$(BASE_IMAGES) \
	  $(BIN)/python -m pytest -m images tests/images $(PYTEST_ARGS); rc=$$?; \
	echo "test-images: tests finished in $$(( $$(date +%s) - started ))s (exit $$rc)"; \
	exit $$rc
