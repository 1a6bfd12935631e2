# The S3-compatible server of the storage tests (SeaweedFS, as KFP deploys it), built once per
# machine into $(LANDMARKS_CACHE)/seaweedfs-<version> with the machine's Go. The test fixture
# runs the same script, so `make test` builds it on first use; this target only does it ahead.

.PHONY: s3-server
s3-server: ## Build the pinned SeaweedFS (S3 test server) once per machine (cached)
	@scripts/s3/build.sh
