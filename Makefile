# Hudong developer entry points. The two set-up commands of the README:
#   make run    install what is missing, build, run `hudong serve --dev`
#   make test   install what is missing, build, run every test (unit, integration,
#               e2e with Chromium and GStreamer, fuzz, ASan+UBSan, format check)
JOBS ?= 2

.PHONY: all deps build asan fuzz run test test-quick e2e format format-check clean

all: build

deps:
	@bash tools/install-deps.sh

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHD_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)

fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHD_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS)

run: deps build
	./build/hudong serve --dev

test: deps
	@bash tools/test.sh

# unit + integration tests of the normal build only (fast inner loop)
test-quick: build
	@cd build && ctest --output-on-failure -LE e2e

e2e: build
	@cd tests/e2e && HUDONG_BIN=$(CURDIR)/build/hudong node --test --test-concurrency=1 ./*.test.mjs

format:
	@find src include tests -name '*.[ch]' -not -path '*/node_modules/*' | xargs clang-format -i

format-check:
	@bash tools/format-check.sh

clean:
	rm -rf build build-asan build-fuzz
