# berth: `make run` and `make test` do all set-up on a fresh Debian 12 machine.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
CONFIG ?=

.PHONY: all deps build run install test unit-test integration-test asan-test fuzz lint format clean bench

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake --preset $(PRESET)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build --preset $(PRESET)
	@mkdir -p bin
	@for b in berthd berth; do \
	  if [ -x $(BUILD_DIR)/bin/$$b ]; then ln -sf ../$(BUILD_DIR)/bin/$$b bin/$$b; fi; done
	@for b in containerd-shim-berth-v2 berth-pause; do \
	  if [ -x $(BUILD_DIR)/bin/$$b ]; then ln -sf ../$(BUILD_DIR)/bin/$$b bin/$$b; fi; done

# Starts berthd in the foreground with the default config (/etc/berth/config.toml if present).
run: build
	exec bin/berthd $(if $(CONFIG),--config $(CONFIG),)

# Installs berthd, berth, the shim, berth-pause, the systemd unit and the docs under
# $(DESTDIR)$(PREFIX) (docs/install.md). The unit names the binaries by PREFIX, so the build is
# configured with it first.
PREFIX ?= /usr/local
install: deps
	cmake --preset $(PRESET) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build --preset $(PRESET)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR)

test: build
	ctest --preset $(PRESET) --output-on-failure

unit-test: build
	ctest --preset $(PRESET) --output-on-failure -LE integration

integration-test: build
	ctest --preset $(PRESET) --output-on-failure -L integration

# The whole suite under ASan+UBSan (its own build tree; bin/ keeps pointing at $(PRESET)).
asan-test: deps
	cmake --preset asan
	cmake --build --preset asan
	ctest --preset asan --output-on-failure

# Every libFuzzer target (fuzz/) for FUZZ_SECONDS each (clang, ASan+UBSan; its own build tree).
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz
	fuzz/run.sh $(FUZZ_SECONDS)

lint: deps $(BUILD_DIR)/build.ninja
	scripts/lint.sh $(BUILD_DIR)

format:
	find src tests bench fuzz -name '*.cc' -o -name '*.h' | xargs clang-format -i

bench: build
	bench/run.sh

clean:
	rm -rf build bin
