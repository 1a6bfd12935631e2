# Argo Workflows' executor (argoexec) at the version KFP pins (scripts/kfp/versions.env), a static
# binary built by scripts/kfp/build.sh from the Go module proxy. Upstream's image is
# distroless/static with /bin/argoexec (uid 8737 in its nonroot variant). The controller runs it
# by name (`argoexec init`, `argoexec wait`), hence PATH; its init container copies it into each
# pod (emissary), so it must be static.
FROM scratch
COPY rootfs/ /
COPY argoexec /bin/argoexec
ENV PATH=/bin
USER 8737:8737
ENTRYPOINT ["/bin/argoexec"]
