# Front door to the build. `make help` lists the targets.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure

.PHONY: help deps build test test-unit test-asan test-valgrind e2e run run-down bench fuzz \
	fmt lint clean control-plane images

help:
	@echo "make run         bring up the local control plane with Stoker (the main job)"
	@echo "make test        every test: an ASan+UBSan run, then unit, integration,"
	@echo "                 fuzz-corpus, valgrind and end-to-end tests (ctest)"
	@echo "make deps        install the Debian packages the project needs"
	@echo "make build       compile into $(BUILD)/bin"
	@echo "make test-unit   unit tests and fuzz corpora only"
	@echo "make test-asan   unit tests under AddressSanitizer + UBSan"
	@echo "make test-valgrind  unit and integration tests under valgrind"
	@echo "make e2e         end-to-end tests against a local control plane"
	@echo "make bench       benchmarks, each beside its baseline"
	@echo "make fuzz        run every libFuzzer target for FUZZ_SECONDS (clang)"
	@echo "make fmt / lint  format the C sources / check format and banned functions"
	@echo "make images      build the container images ghcr.io/stoker/<daemon>:$(VERSION) (Docker)"
	@echo "make clean       remove build trees"

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

control-plane: deps
	@e2e/lib/build-control-plane.sh >/dev/null

test-unit: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L 'unit|fuzz' -j $(JOBS)

$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTK_SANITIZE=ON \
		$(CMAKE_FLAGS)

# Unit, fuzz-corpus and integration tests under ASan+UBSan (integration against a
# cluster of the sanitizer tree's own).
test-asan: deps control-plane $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest $(CTEST_FLAGS) -L 'unit|fuzz|integration' -j $(JOBS)

# Unit and integration tests under valgrind (their `valgrind` twins).
test-valgrind: build control-plane
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L valgrind -j $(JOBS)

e2e: build control-plane
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L e2e

# Everything; the last thing printed is ctest's summary of the full suite (which includes
# the valgrind twins).
test: test-asan build control-plane
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS)

run: build control-plane
	@scripts/run.sh

run-down:
	@e2e/cluster down --name run

bench: build
	@bench/run.sh $(BUILD)

$(FUZZ_BUILD)/build.ninja: | deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSTK_FUZZ=ON -DSTK_E2E=OFF $(CMAKE_FLAGS)

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fmt: deps
	@git ls-files '*.c' '*.h' '*.h.in' | grep -v '\.in$$' | xargs clang-format -i

lint: deps
	@scripts/lint.sh

# Container images (Dockerfile): one per daemon, $(IMAGE_REPO)/<daemon>:$(VERSION), the
# version being the project's (CMakeLists.txt). Needs Docker (or DOCKER=podman).
VERSION ?= $(shell sed -n 's/^project.stoker VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
IMAGE_REPO ?= ghcr.io/stoker
DOCKER ?= docker
IMAGES := source-controller profile-controller sync-controller notification-controller \
	injector agent

images:
	@command -v $(DOCKER) >/dev/null 2>&1 || { echo "make images: '$(DOCKER)' not found;" \
		"install Docker (or set DOCKER=podman) to build the images" >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "make images: cannot reach the Docker" \
		"daemon ('$(DOCKER) info' failed); start it or set DOCKER_HOST" >&2; exit 1; }
	@test -n "$(VERSION)" || { echo "make images: no version in CMakeLists.txt" >&2; exit 1; }
	@set -e; for d in $(IMAGES); do \
		echo "$(DOCKER) build --target $$d -t $(IMAGE_REPO)/$$d:$(VERSION) ."; \
		$(DOCKER) build --build-arg VERSION=$(VERSION) --target $$d \
			-t $(IMAGE_REPO)/$$d:$(VERSION) .; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
