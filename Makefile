# Cellar: one entry point for set-up, build, demo, tests, benchmarks and install.
#   make demo    builds the library (FIPS), runs the C demo host program and the SQLite VFS demo
#   make test    runs every test: Rust, C (ASan+UBSan), C++, Python, valgrind, symbols, SQLite,
#                the bad-input matrix coverage, forced panics, key hygiene, a short fuzz pass
#   make bench   criterion benchmarks (each beside its AWS-LC baseline)
#   make bench-python   the Python package against `cryptography` (python/bench/bench.py)
#   make install PREFIX=/usr/local   (make test-install checks it in a temporary prefix)
SHELL := /bin/bash
# rustup's default location, so a Rust installed by `make setup` is found in the same run.
export PATH := $(HOME)/.cargo/bin:$(PATH)
PREFIX ?= /usr/local
CARGO ?= cargo
PYTHON ?= python3
CC ?= cc
CXX ?= c++
REL := target/release
LIB := $(REL)/libcellar.so
BUILD := target/c
CWARN := -Wall -Wextra -Wpedantic -Werror
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIB := -L$(REL) -Wl,-rpath,$(abspath $(REL)) -lcellar -lpthread
C_TESTS := $(patsubst ffi-tests/c/%.c,%,$(wildcard ffi-tests/c/test_*.c))
# The KWP vectors come from cryptography-vectors but are committed under tests/data.
PY_REQS := pytest cryptography

.PHONY: all setup build header demo test test-rust test-c test-cpp test-python test-valgrind \
        test-symbols test-install bench bench-python install clean

all: build

# Installs what a fresh Debian machine lacks: the C toolchain, CMake, Go and Perl for the AWS-LC
# FIPS build, valgrind and pkg-config for the tests, Rust (rustup, when cargo is absent) and the
# Python test packages (pip; on an externally managed Python, Debian's own packages). Idempotent
# and quick when everything is present.
setup:
	@missing=""; \
	for t in cc:gcc c++:g++ make:make perl:perl cmake:cmake go:golang-go valgrind:valgrind \
	         pkg-config:pkg-config python3:python3; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; \
	done; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    $$missing ca-certificates >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "setup: no cargo on PATH: install a Rust toolchain (1.80 or newer) first"; exit 1; }
	@$(PYTHON) -c "import pytest, cryptography" 2>/dev/null || { \
	  echo "setup: installing Python test packages"; \
	  $(PYTHON) -m pip install -q $(PY_REQS) 2>/dev/null || \
	  $(PYTHON) -m pip install -q --user --break-system-packages $(PY_REQS) 2>/dev/null || \
	  { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-pytest python3-cryptography >/dev/null; }; }

build: setup
	$(CARGO) build --release
	@ln -sf libcellar.so $(REL)/libcellar.so.1

header:
	CELLAR_UPDATE_HEADER=1 $(CARGO) test --release --test header

$(BUILD):
	@mkdir -p $(BUILD)

demo: build | $(BUILD)
	$(CC) $(CWARN) -O2 -Iinclude demo/demo.c -o $(BUILD)/demo $(LDLIB)
	$(BUILD)/demo
	@$(MAKE) --no-print-directory demo-sqlite

test: build
	@$(MAKE) --no-print-directory test-rust test-c test-cpp test-python test-valgrind test-symbols test-install \
	  test-sqlite test-matrix-coverage test-no-hooks test-panic test-hygiene test-fuzz
	@echo "all test suites passed"

test-rust:
	$(CARGO) test --release

# Each C test is built twice: with ASan+UBSan (run here) and plain (run under valgrind).
test-c: | $(BUILD)
	@set -e; for t in $(C_TESTS); do \
	  $(CC) $(CWARN) -g -O1 $(SAN) -Iinclude -Iffi-tests/c ffi-tests/c/$$t.c -o $(BUILD)/$$t.san $(LDLIB); \
	  echo "== $$t (ASan+UBSan)"; ASAN_OPTIONS=detect_leaks=1 $(BUILD)/$$t.san; \
	done

test-cpp: | $(BUILD)
	$(CXX) -std=c++17 $(CWARN) -g $(SAN) -Iinclude ffi-tests/cpp/test_header.cpp -o $(BUILD)/test_header_cpp $(LDLIB)
	$(BUILD)/test_header_cpp

# The raw ctypes tests of the ABI and the `cellar` package's own tests, both against the library
# `make build` produced (the package is imported from python/, no install needed).
test-python:
	CELLAR_LIBRARY=$(abspath $(LIB)) $(PYTHON) -m pytest -q ffi-tests/python python/tests

# The Python package's benchmark (not a test): batch cells and page runs against `cryptography`.
bench-python: build
	CELLAR_LIBRARY=$(abspath $(LIB)) $(PYTHON) python/bench/bench.py

test-valgrind: | $(BUILD)
	@set -e; for t in $(C_TESTS); do \
	  $(CC) $(CWARN) -g -O1 -Iinclude -Iffi-tests/c ffi-tests/c/$$t.c -o $(BUILD)/$$t $(LDLIB); \
	  echo "== $$t (valgrind memcheck)"; \
	  CELLAR_UNDER_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $(BUILD)/$$t; \
	done

# A host that also links OpenSSL must not see AWS-LC's symbols: only cellar_ may be exported.
test-symbols:
	@bad=$$(nm -D --defined-only $(LIB) | awk '{print $$3}' | grep -v '^cellar_' || true); \
	if [ -n "$$bad" ]; then echo "non-cellar symbols exported:"; echo "$$bad"; exit 1; fi; \
	n=$$(nm -D --defined-only $(LIB) | wc -l); echo "exported symbols: $$n, all cellar_"; \
	soname=$$(readelf -d $(LIB) | grep SONAME); echo "$$soname"; echo "$$soname" | grep -q 'libcellar.so.1'

# Installs into a temporary prefix and builds a host program with nothing but pkg-config,
# linked against the shared library and, separately, the static one.
test-install: build
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory install PREFIX=$$tmp/prefix >/dev/null; \
	export PKG_CONFIG_PATH=$$tmp/prefix/lib/pkgconfig; \
	echo "pkg-config --cflags --libs cellar: $$(pkg-config --cflags --libs cellar)"; \
	$(CC) $(CWARN) ffi-tests/install/main.c $$(pkg-config --cflags --libs cellar) -o $$tmp/host; \
	LD_LIBRARY_PATH=$$tmp/prefix/lib $$tmp/host; \
	if LD_LIBRARY_PATH=$$tmp/prefix/lib ldd $$tmp/host | grep -q "libcellar.so.1 => $$tmp/prefix/lib/"; then echo "shared: links the installed libcellar.so.1"; \
	else echo "host does not load the installed library"; LD_LIBRARY_PATH=$$tmp/prefix/lib ldd $$tmp/host; exit 1; fi; \
	$(CC) $(CWARN) ffi-tests/install/main.c $$(pkg-config --cflags cellar) \
	  $$(pkg-config --static --libs cellar | sed 's/-lcellar/-l:libcellar.a/') -o $$tmp/host-static; \
	$$tmp/host-static; echo "static: links libcellar.a with pkg-config --static"

bench: build
	$(CARGO) bench

install: build
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libcellar.so.1
	ln -sf libcellar.so.1 $(DESTDIR)$(PREFIX)/lib/libcellar.so
	install -m 0644 $(REL)/libcellar.a $(DESTDIR)$(PREFIX)/lib/libcellar.a
	install -m 0644 include/cellar.h $(DESTDIR)$(PREFIX)/include/cellar.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)|' \
	  cellar.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cellar.pc

clean:
	$(CARGO) clean
	rm -rf build

# ---- hosts/sqlite: transparent encryption of SQLite databases through a Cellar VFS (issue 8) ----
#   make test-sqlite    VFS tests (ASan+UBSan) and the cellar-sqlite / extension shell test
#   make demo-sqlite    the cellar-sqlite walk-through (hosts/sqlite/demo.sh)
#   make bench-sqlite   one workload on plain SQLite, Cellar XTS, Cellar GCM and SQLCipher
.PHONY: sqlite-deps sqlite-bench-deps sqlite-build test-sqlite test-sqlite-valgrind demo-sqlite bench-sqlite
SQLITE_DIR := hosts/sqlite
SQLITE_BUILD := target/sqlite
SQLITE_CFLAGS := $(CWARN) -Iinclude -I$(SQLITE_DIR)
SQLITE_LIBS := $(LDLIB) -lsqlite3
SQLITE_BENCH_ROUNDS ?= 5

# Debian packages, installed only when missing: the headers and shell for the VFS, SQLCipher for
# the benchmark.
define sqlite_apt
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f '$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

sqlite-deps:
	$(call sqlite_apt,libsqlite3-dev sqlite3)

sqlite-bench-deps:
	$(call sqlite_apt,libsqlite3-dev sqlite3 libsqlcipher-dev sqlcipher)

sqlite-build: build sqlite-deps
	@mkdir -p $(SQLITE_BUILD)
	$(CC) $(SQLITE_CFLAGS) -O2 $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/cellar_sqlite.c -o $(SQLITE_BUILD)/cellar-sqlite $(SQLITE_LIBS)
	$(CC) $(SQLITE_CFLAGS) -O2 -fPIC -shared -DCELLAR_VFS_EXTENSION $(SQLITE_DIR)/cellar_vfs.c -o $(SQLITE_BUILD)/cellarvfs.so $(LDLIB)

test-sqlite: sqlite-build
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SAN) $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/tests/test_vfs.c \
	  -o $(SQLITE_BUILD)/test_vfs.san $(SQLITE_LIBS)
	@echo "== test_vfs (ASan+UBSan)"; ASAN_OPTIONS=detect_leaks=1 $(SQLITE_BUILD)/test_vfs.san
	@echo "== test_cli.sh"; bash $(SQLITE_DIR)/tests/test_cli.sh $(SQLITE_BUILD)

# The same C tests without sanitizers under valgrind memcheck (about 75 s; not part of test-sqlite).
test-sqlite-valgrind: sqlite-build
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/tests/test_vfs.c \
	  -o $(SQLITE_BUILD)/test_vfs $(SQLITE_LIBS)
	CELLAR_UNDER_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	  $(SQLITE_BUILD)/test_vfs

demo-sqlite: sqlite-build
	bash $(SQLITE_DIR)/demo.sh $(SQLITE_BUILD)

bench-sqlite: sqlite-build sqlite-bench-deps
	$(CC) $(SQLITE_CFLAGS) -O2 $(SQLITE_DIR)/bench.c $(SQLITE_DIR)/cellar_vfs.c -o $(SQLITE_BUILD)/bench $(SQLITE_LIBS)
	$(CC) $(CWARN) -O2 -DBENCH_SQLCIPHER -I/usr/include/sqlcipher $(SQLITE_DIR)/bench.c -o $(SQLITE_BUILD)/bench-sqlcipher -lsqlcipher
	bash $(SQLITE_DIR)/bench.sh $(SQLITE_BUILD) $(SQLITE_BENCH_ROUNDS)

# ---- Fuzzing (issue 7): cargo-fuzz on stable via RUSTC_BOOTSTRAP=1, no sanitizer (see scripts/fuzz.sh)
.PHONY: test-fuzz fuzz-long
FUZZ_SECONDS ?= 180

# Short pass for CI: every target for 15 s on its committed seed corpus.
test-fuzz:
	bash scripts/fuzz.sh 15

# Longer local run: FUZZ_SECONDS per target (default 180).
fuzz-long:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

# ---------------------------------------------------------------------------------------------
# Hardening (issue 7): the bad-input matrix covers every header function; the panic hook test.
.PHONY: test-matrix-coverage test-panic test-no-hooks test-hygiene test-stress
HOOKS_REL := target/hooks/release

test-matrix-coverage:
	@bash scripts/check_matrix.sh

# Forced panics at the C boundary, against a library built with the test-only `test-hooks`
# feature in its own target dir (the release library never carries the hook).
test-panic: | $(BUILD)
	$(CARGO) build --release --features test-hooks --target-dir target/hooks
	@ln -sf libcellar.so $(HOOKS_REL)/libcellar.so.1
	$(CC) $(CWARN) -g -O1 $(SAN) -Iinclude -Iffi-tests/c ffi-tests/panic/test_panic.c -o $(BUILD)/test_panic.san \
	  -L$(HOOKS_REL) -Wl,-rpath,$(abspath $(HOOKS_REL)) -lcellar -lpthread
	@echo "== test_panic (ASan+UBSan, test-hooks library; each forced panic prints a line)"; RUST_BACKTRACE=0 ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_panic.san

# The release library exports no test hook, and the header declares none.
test-no-hooks:
	@if nm -D --defined-only $(LIB) | awk '{print $$3}' | grep '^cellar_test_'; then \
	  echo "test hooks exported by $(LIB)"; exit 1; fi
	@if grep -n 'cellar_test_' include/cellar.h; then echo "test hooks in include/cellar.h"; exit 1; fi
	@echo "no cellar_test_* symbol in $(LIB) or include/cellar.h"

# Key wipes observed through the test-hooks feature's wipe log, and no key bytes in any text.
test-hygiene:
	$(CARGO) test --release --features test-hooks --target-dir target/hooks --test hygiene

# Bounded concurrency stress over every handle type (also part of `cargo test --release`).
test-stress:
	$(CARGO) test --release --test stress

# KMIP (issue 15): the KMIP provider against a real PyKMIP server. PyKMIP (with SQLAlchemy 1.4,
# which it needs) lives in its own virtual environment under target/, made once; each run starts
# its own server (scripts/kmip_server.sh: fresh CA and certificates, a free loopback port) and
# stops it by process id.
.PHONY: setup-kmip test-kmip bench-kmip
KMIP_VENV := target/kmip-venv
KMIP_PY := $(KMIP_VENV)/bin/python

setup-kmip:
	@[ -x $(KMIP_PY) ] && $(KMIP_PY) -c "import kmip, sqlalchemy" 2>/dev/null || { \
	  echo "setup-kmip: installing PyKMIP into $(KMIP_VENV)"; \
	  $(PYTHON) -m venv $(KMIP_VENV) 2>/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; \
	    $(PYTHON) -m venv $(KMIP_VENV); }; \
	  $(KMIP_PY) -m pip install -q 'pykmip==0.11.0' 'sqlalchemy<2' pytest; }
	@command -v openssl >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openssl >/dev/null; }

test-kmip: build setup-kmip | $(BUILD)
	CELLAR_KMIP_PYTHON=$(abspath $(KMIP_PY)) $(CARGO) test --release --test kmip -- --include-ignored --test-threads 4
	$(CC) $(CWARN) -g -O1 $(SAN) -Iinclude -Iffi-tests/c ffi-tests/kmip/test_kmip.c -o $(BUILD)/test_kmip.san $(LDLIB)
	@set -e; tmp=$$(mktemp -d); \
	trap 'bash scripts/kmip_server.sh stop "$$tmp/server"; rm -rf "$$tmp"' EXIT; \
	eval "$$(KMIP_PYTHON=$(abspath $(KMIP_PY)) bash scripts/kmip_server.sh start $$tmp/server)"; \
	export KMIP_DIR KMIP_PORT; \
	echo "== test_kmip (ASan+UBSan, PyKMIP on 127.0.0.1:$$KMIP_PORT)"; ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_kmip.san; \
	echo "== cellar.kmip (pytest)"; CELLAR_LIBRARY=$(abspath $(LIB)) PYTHONPATH=python $(PYTHON) -m pytest -q ffi-tests/kmip/test_kmip_py.py

bench-kmip: build setup-kmip
	CELLAR_KMIP_PYTHON=$(abspath $(KMIP_PY)) $(CARGO) bench --bench kmip
