# Container images of Stoker: one image per daemon, ghcr.io/stoker/<daemon>:<version>.
#
#   docker build --target source-controller -t ghcr.io/stoker/source-controller:0.1.0 .
#   make images        # every daemon, tagged with the project version (CMakeLists.txt)
#
# Why one image per daemon rather than one image whose entrypoint the Deployment picks:
# the install manifests (kustomize/) and the injector's default agent image
# (`injector --agent-image`, default ghcr.io/stoker/agent:<version>) name a per-daemon
# image and pass only `args`, so each image must start its own daemon; an image name also
# says in `kubectl get pods -o wide`, audit logs and registry policies which daemon runs.
# Every per-daemon stage is the same `runtime` stage plus an ENTRYPOINT, so the images
# share every layer: a node pulling all six downloads the libraries and binaries once.
# The binaries are all in every image (`agent sync` / `agent drift` by hand, any daemon's
# --help); each image only starts its own.
#
# Stages: build (Debian bookworm, the -dev packages, CMake) -> runtime (bookworm-slim,
# the runtime libraries, user 65532, the six binaries) -> one stage per daemon. Without
# --target, docker builds the last stage (agent).

# ---- build ---------------------------------------------------------------------------------
FROM debian:bookworm AS build

# The build dependencies of cmake/StokerDeps.cmake (DESIGN.md §10; scripts/deps.sh minus the
# test, lint and fuzz tools). libcmocka-dev and python3 are needed to configure only: the
# project has no switch that turns its unit tests off, so CMake checks for them even though
# only the daemons are built below. libwebsockets-evlib-uv is the libuv event-loop plugin.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		cmake ninja-build gcc libc6-dev pkg-config python3-minimal \
		libgit2-dev libcurl4-openssl-dev libyajl-dev libyaml-dev libssl-dev \
		libwebsockets-dev libwebsockets-evlib-uv libuv1-dev zlib1g-dev libcmocka-dev \
	&& rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# RelWithDebInfo is what `make build` uses (CMakeLists.txt's default): -O2 with the
# hardening flags of cmake/StokerFlags.cmake, plus debug info for readable core dumps (the
# six binaries are about 7 MB together). STK_E2E=OFF: no end-to-end tests registered.
ARG BUILD_TYPE=RelWithDebInfo
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DSTK_E2E=OFF \
	&& cmake --build /build -j "$(nproc)" --target \
		source-controller profile-controller sync-controller notification-controller \
		injector agent \
	&& mkdir -p /out/usr/local/bin \
	&& for d in source-controller profile-controller sync-controller \
			notification-controller injector agent; do \
		install -m 0755 "/build/bin/$d" /out/usr/local/bin/ \
		&& "/out/usr/local/bin/$d" --version || exit 1; \
	done

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# The shared libraries the daemons link (libcurl4, libgit2-1.5, libssl3, libuv1,
# libwebsockets17, libyajl2, libyaml-0-2, zlib1g) and libwebsockets-evlib-uv, which
# libwebsockets loads at run time for its libuv event loop: without it every daemon stops
# at start-up with "libwebsockets failed to start on the libuv loop". ca-certificates:
# https Git servers and notification providers.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		ca-certificates libcurl4 libgit2-1.5 libssl3 libuv1 libwebsockets17 \
		libwebsockets-evlib-uv libyajl2 libyaml-0-2 zlib1g \
	&& rm -rf /var/lib/apt/lists/*

# A numeric non-root user, so `runAsNonRoot: true` can be verified by the kubelet. /data
# is the source-controller's default --storage-path (mount a volume there in a cluster).
# The agent has no runAsUser of its own in a pod: it runs as the gateway pod's user when
# the pod sets one, as 65532 otherwise.
RUN echo 'stoker:x:65532:' >>/etc/group \
	&& echo 'stoker:x:65532:65532:stoker:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
	&& install -d -o 65532 -g 65532 -m 0750 /data

COPY --from=build /out/ /

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="stoker" \
	org.opencontainers.image.description="Keeps Ignition SCADA gateways in the state declared in Git" \
	org.opencontainers.image.version="${VERSION}"

USER 65532:65532
WORKDIR /

# ---- one stage per daemon ------------------------------------------------------------------
# Ports: metrics 8080, health 8081 (controllers and injector); artifacts 9090; webhook
# receiver 9292; admission 9443; agent health 8082 and metrics 8083.

FROM runtime AS source-controller
EXPOSE 8080 8081 9090
ENTRYPOINT ["/usr/local/bin/source-controller"]

FROM runtime AS profile-controller
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/profile-controller"]

FROM runtime AS sync-controller
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/sync-controller"]

FROM runtime AS notification-controller
EXPOSE 8080 8081 9292
ENTRYPOINT ["/usr/local/bin/notification-controller"]

FROM runtime AS injector
EXPOSE 8080 8081 9443
ENTRYPOINT ["/usr/local/bin/injector"]

FROM runtime AS agent
EXPOSE 8082 8083
ENTRYPOINT ["/usr/local/bin/agent"]
