# Cellar: one entry point for set-up, build, demo, tests, benchmarks and install.
#   make demo    builds the library (FIPS), runs the C demo host program, the SQLite VFS demo and the PostgreSQL one
#   make test    runs every test: Rust, C (ASan+UBSan), C++, Python, valgrind, symbols, SQLite, PostgreSQL,
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
# The installable static archive (only cellar_ symbols global), made from cargo's by
# scripts/static_archive.sh.
DIST_STATIC := target/dist/libcellar.a
BUILD := target/c
CWARN := -Wall -Wextra -Wpedantic -Werror
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIB := -L$(REL) -Wl,-rpath,$(abspath $(REL)) -lcellar -lpthread
C_TESTS := $(patsubst ffi-tests/c/%.c,%,$(wildcard ffi-tests/c/test_*.c))
# The KWP vectors come from cryptography-vectors but are committed under tests/data.
PY_REQS := pytest cryptography numpy pandas

.PHONY: all setup build header demo test test-rust test-c test-cpp test-python test-valgrind \
        test-symbols test-install bench bench-python install clean

all: build

# Installs what a fresh Debian machine lacks: the C toolchain, CMake, Go and Perl for the AWS-LC
# FIPS build, valgrind, pkg-config and OpenSSL's headers (test-install) for the tests, Rust (rustup, when cargo is absent) and the
# Python test packages (pip; on an externally managed Python, Debian's own packages). Idempotent
# and quick when everything is present.
setup:
	@missing=""; \
	for t in cc:gcc c++:g++ make:make perl:perl cmake:cmake go:golang-go valgrind:valgrind \
	         pkg-config:pkg-config python3:python3; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; \
	done; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	[ -f /usr/include/openssl/evp.h ] || missing="$$missing libssl-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    $$missing ca-certificates >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "setup: no cargo on PATH: install a Rust toolchain (1.80 or newer) first"; exit 1; }
	@$(PYTHON) -c "import pytest, cryptography, numpy, pandas" 2>/dev/null || { \
	  echo "setup: installing Python test packages"; \
	  $(PYTHON) -m pip install -q $(PY_REQS) 2>/dev/null || \
	  $(PYTHON) -m pip install -q --user --break-system-packages $(PY_REQS) 2>/dev/null || \
	  { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-pytest python3-cryptography python3-numpy python3-pandas >/dev/null; }; }
	@$(MAKE) --no-print-directory -s postgres-deps
	@# SoftHSM2 (the PKCS#11 token the provider's tests run against), only when its module is missing.
	@[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1 || { \
	  echo "setup: installing softhsm2"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq softhsm2 >/dev/null; }

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
	@$(MAKE) --no-print-directory demo-postgres

test: build
	@$(MAKE) --no-print-directory test-rust test-c test-cpp test-python test-valgrind test-symbols test-install \
	  test-sqlite test-postgres test-matrix-coverage test-no-hooks test-panic test-hygiene test-fuzz \
	  test-wheel test-python-data test-pkcs11 test-kmip test-fips4
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

# Installs into a temporary prefix with cargo, apt and pip poisoned on PATH, then builds host
# programs with pkg-config (shared, fully static, static archive in a dynamic program) and with
# CMake (find_package(Cellar 1.0 CONFIG)); checks FIPS mode in a static link, the module's
# integrity check, and that libcellar.a defines only cellar_ symbols (linked beside OpenSSL).
test-install: build
	bash scripts/test_install.sh

bench: build
	$(CARGO) bench

# Installs what is built; builds only what is missing, so on a complete build tree it needs no
# cargo, apt or pip (only install, sed and binutils). The static archive installed is the clean
# one (scripts/static_archive.sh: only cellar_ symbols global). Installs the header, the shared
# library (SONAME libcellar.so.1), libcellar.a, pkg-config files (cellar.pc; cellar-static.pc
# links libcellar.a into an otherwise dynamic program) and a CMake package (lib/cmake/Cellar:
# find_package(Cellar 1.0 CONFIG), targets Cellar::cellar and Cellar::cellar_static).
ABI_NUM = $(shell sed -n 's/^.define CELLAR_ABI_VERSION \(0x[0-9a-fA-F]*\|[0-9]*\).*/\1/p' include/cellar.h)
CRATE_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
install: $(LIB) $(DIST_STATIC)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/lib/cmake/Cellar
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libcellar.so.1
	ln -sf libcellar.so.1 $(DESTDIR)$(PREFIX)/lib/libcellar.so
	install -m 0644 $(DIST_STATIC) $(DESTDIR)$(PREFIX)/lib/libcellar.a
	install -m 0644 include/cellar.h $(DESTDIR)$(PREFIX)/include/cellar.h
	for pc in cellar cellar-static; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(CRATE_VERSION)|' $$pc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc; \
	done
	install -m 0644 cmake/CellarConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/Cellar/CellarConfig.cmake
	v=$(ABI_NUM); sed -e "s|@ABI_MAJOR@|$$((v >> 16))|g" -e "s|@ABI_MINOR@|$$((v & 0xffff))|g" \
	  cmake/CellarConfigVersion.cmake.in > $(DESTDIR)$(PREFIX)/lib/cmake/Cellar/CellarConfigVersion.cmake

# Built only when missing (see install); `make build` rebuilds them.
$(LIB) $(REL)/libcellar.a:
	$(CARGO) build --release
	@ln -sf libcellar.so $(REL)/libcellar.so.1

$(DIST_STATIC): $(REL)/libcellar.a scripts/static_archive.sh
	bash scripts/static_archive.sh $(REL)/libcellar.a $@

clean:
	$(CARGO) clean
	rm -rf build

# ---- hosts/sqlite: transparent encryption of SQLite databases through a Cellar VFS (issue 8) ----
#   make test-sqlite    VFS tests and forged-log / key-file tests (ASan+UBSan), the cellar-sqlite / extension shell test
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
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SAN) $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/tests/test_forge.c \
	  -o $(SQLITE_BUILD)/test_forge.san $(SQLITE_LIBS)
	@echo "== test_forge (ASan+UBSan): forged journals, WAL frames and key files"; ASAN_OPTIONS=detect_leaks=1 $(SQLITE_BUILD)/test_forge.san
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SAN) $(SQLITE_DIR)/tests/test_wipe.c -o $(SQLITE_BUILD)/test_wipe.san $(SQLITE_LIBS)
	@echo "== test_wipe (ASan+UBSan): no plaintext in memory the VFS frees"; ASAN_OPTIONS=detect_leaks=1 $(SQLITE_BUILD)/test_wipe.san
	@echo "== test_forge against the VFS with the old failure handling put back (must fail)"
	CC="$(CC)" CFLAGS="$(SQLITE_CFLAGS) -Iffi-tests/c -g -O1" LIBS="$(SQLITE_LIBS)" $(SQLITE_DIR)/tests/old_handling.sh
	@echo "== test_cli.sh"; bash $(SQLITE_DIR)/tests/test_cli.sh $(SQLITE_BUILD)

# The same C tests without sanitizers under valgrind memcheck (about 75 s; not part of test-sqlite).
test-sqlite-valgrind: sqlite-build
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/tests/test_vfs.c \
	  -o $(SQLITE_BUILD)/test_vfs $(SQLITE_LIBS)
	CELLAR_UNDER_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	  $(SQLITE_BUILD)/test_vfs
	$(CC) $(SQLITE_CFLAGS) -Iffi-tests/c -g -O1 $(SQLITE_DIR)/cellar_vfs.c $(SQLITE_DIR)/tests/test_forge.c \
	  -o $(SQLITE_BUILD)/test_forge $(SQLITE_LIBS)
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $(SQLITE_BUILD)/test_forge

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

# Key wipes observed through the test-hooks feature's wipe log, and no key bytes in any text;
# key pages locked and no-dump in /proc/self/smaps (tests/key_memory.rs, also in test-rust
# without the smaps check of a live key's own mapping).
test-hygiene:
	$(CARGO) test --release --features test-hooks --target-dir target/hooks --test hygiene --test key_memory

# Bounded concurrency stress over every handle type (also part of `cargo test --release`).
test-stress:
	$(CARGO) test --release --test stress

# ---------------------------------------------------------------------------------------------
# The built-in PKCS#11 key provider (issue 14) against a real SoftHSM2 token. Each run makes its own
# token directory and SOFTHSM2_CONF in a temporary folder and initialises its tokens with
# softhsm2-util; nothing depends on an earlier run. The Rust and Python suites and the cellar-sqlite
# shell test (hosts/sqlite/tests/test_pkcs11_cli.sh) make their own.
.PHONY: test-pkcs11 bench-pkcs11
SOFTHSM_MODULE := /usr/lib/softhsm/libsofthsm2.so
PKCS11_PIN := 4711-cellar

test-pkcs11: build sqlite-build | $(BUILD)
	CELLAR_REQUIRE_SOFTHSM=1 $(CARGO) test --release --test pkcs11
	$(CC) $(CWARN) -g -O1 $(SAN) -Iinclude -Iffi-tests/c ffi-tests/pkcs11/test_pkcs11.c -o $(BUILD)/test_pkcs11.san $(LDLIB)
	$(CC) $(CWARN) -O1 -shared -fPIC ffi-tests/pkcs11/p11_filter.c -o $(BUILD)/libp11filter.so -ldl
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; mkdir "$$tmp/tokens"; \
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$$tmp/tokens" > "$$tmp/softhsm2.conf"; \
	export SOFTHSM2_CONF="$$tmp/softhsm2.conf"; \
	for t in c-main c-lock; do softhsm2-util --init-token --free --label $$t --so-pin so-pin-0815 --pin $(PKCS11_PIN) >/dev/null; done; \
	echo "== test_pkcs11 (ASan+UBSan, SoftHSM2 token in $$tmp)"; ASAN_OPTIONS=detect_leaks=1 \
	  CELLAR_TEST_FILTER_MODULE=$(abspath $(BUILD))/libp11filter.so CELLAR_P11_FILTER_HIDE=210a,210b $(BUILD)/test_pkcs11.san
	CELLAR_REQUIRE_SOFTHSM=1 CELLAR_LIBRARY=$(abspath $(LIB)) $(PYTHON) -m pytest -q python/tests/test_pkg_pkcs11.py
	@echo "== cellar-sqlite with an HSM-held tenant key"; bash $(SQLITE_DIR)/tests/test_pkcs11_cli.sh $(SQLITE_BUILD)

# Wrap/unwrap latency through SoftHSM2 beside the in-process path (criterion; prints the ratio).
bench-pkcs11: build
	$(CARGO) bench --bench pkcs11

# ---- hosts/postgres: column encryption for stock PostgreSQL, `CREATE EXTENSION cellar` (issue 16) ----
#   make test-postgres    pg_regress (PGXS installcheck) + multi-session tests on a private cluster
#   make demo-postgres    the walk-through in hosts/postgres/demo.sh
#   make bench-postgres   Cellar against pgcrypto on 100 000 rows (hosts/postgres/bench.sh; not a test)
# The extension is built for every server major with development files installed (PG_CONFIGS)
# and installed into the server's own directories (root, or sudo), as PGXS installcheck expects.
.PHONY: postgres-deps postgres-install test-postgres demo-postgres bench-postgres
PG_DIR := hosts/postgres
PG_APT := postgresql postgresql-contrib postgresql-server-dev-15
PG_CONFIGS = $(or $(wildcard /usr/lib/postgresql/*/bin/pg_config),pg_config)
# The newest installed major runs the demo and the benchmark; test-postgres builds and tests every
# major whose server development files are installed (PG_CONFIG=... on the command line: that one).
# `make setup` installs only Debian 12's postgresql-server-dev-15; newer majors come from the
# machine (PGDG packages), never from this Makefile.
PG_CONFIG ?= $(lastword $(sort $(PG_CONFIGS)))
PG_TEST_CONFIGS = $(if $(filter command line environment,$(origin PG_CONFIG)),$(PG_CONFIG),$(PG_CONFIGS))

# Development files for every server major already on the machine (a PGDG 16/17/18 server gets
# its postgresql-server-dev-N), so test-postgres can build against each; no new major is added.
PG_SERVER_DEVS = $(patsubst /usr/lib/postgresql/%/bin/postgres,postgresql-server-dev-%,$(wildcard /usr/lib/postgresql/*/bin/postgres))

postgres-deps:
	$(call sqlite_apt,$(sort $(PG_APT) $(PG_SERVER_DEVS)))

postgres-install: build postgres-deps
	@set -e; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	for pgc in $(PG_CONFIGS); do \
	  [ -f "$$($$pgc --pgxs)" ] || continue; \
	  $(MAKE) --no-print-directory -s -C $(PG_DIR) clean PG_CONFIG=$$pgc >/dev/null; \
	  $(MAKE) --no-print-directory -s -C $(PG_DIR) PG_CONFIG=$$pgc; \
	  $$SUDO $(MAKE) --no-print-directory -s -C $(PG_DIR) install PG_CONFIG=$$pgc >/dev/null; \
	  echo "cellar extension installed for PostgreSQL $$($$pgc --version | awk '{print $$2}')"; \
	done; \
	$(MAKE) --no-print-directory -s -C $(PG_DIR) clean PG_CONFIG=$(PG_CONFIG) >/dev/null; \
	$(MAKE) --no-print-directory -s -C $(PG_DIR) PG_CONFIG=$(PG_CONFIG)

test-postgres: postgres-install
	@set -e; n=0; for pgc in $(PG_TEST_CONFIGS); do \
	  [ -f "$$($$pgc --pgxs)" ] || { echo "test-postgres: $$pgc has no PGXS (server development files): skipped"; continue; }; \
	  n=$$((n + 1)); echo "== test-postgres: PostgreSQL $$($$pgc --version | awk '{print $$2}') ($$pgc)"; \
	  $(MAKE) --no-print-directory -s -C $(PG_DIR) clean PG_CONFIG=$$pgc >/dev/null; \
	  $(MAKE) --no-print-directory -s -C $(PG_DIR) PG_CONFIG=$$pgc; \
	  PG_CONFIG=$$pgc bash $(PG_DIR)/tests/run.sh; \
	done; [ $$n -gt 0 ] || { echo "test-postgres: no PostgreSQL server development files (make setup)"; exit 1; }

demo-postgres: postgres-install
	PG_CONFIG=$(PG_CONFIG) bash $(PG_DIR)/demo.sh

bench-postgres: postgres-install
	PG_CONFIG=$(PG_CONFIG) bash $(PG_DIR)/bench.sh

# ---------------------------------------------------------------------------------------------
# Python for data teams (issue 17): a wheel that carries the library; Arrow, Parquet and Dask.
#   make wheel              dist/cellar-<version>-py3-none-<platform>.whl with libcellar.so inside
#                           (manylinux tag checked by `auditwheel show`, else linux_<arch>)
#   make test-wheel         installs that wheel into a fresh venv outside the checkout, with no
#                           build tools on PATH and CELLAR_LIBRARY unset, and smoke-tests it
#   make test-python-data   cellar.arrow, cellar.parquet and the Dask example (LocalCluster)
#   make bench-python-arrow 1 000 000 values through cellar.arrow beside the C batch call
.PHONY: setup-python-data setup-wheel wheel test-wheel test-python-data bench-python-arrow
PY_DATA_REQS := pyarrow pandas 'dask[dataframe]' distributed polars
PY_WHEEL_REQS := build wheel auditwheel setuptools

setup-python-data:
	@$(PYTHON) -c "import pytest, pyarrow, pandas, dask.dataframe, distributed, polars" 2>/dev/null || { \
	  echo "setup: installing Python data packages"; \
	  $(PYTHON) -m pip install -q --disable-pip-version-check pytest $(PY_DATA_REQS) 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check --user --break-system-packages pytest $(PY_DATA_REQS); }

setup-wheel:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "setup: installing python3-venv"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; }
	@$(PYTHON) -c "import build, wheel, setuptools, auditwheel" 2>/dev/null || { \
	  echo "setup: installing wheel build tools ($(PY_WHEEL_REQS))"; \
	  $(PYTHON) -m pip install -q --disable-pip-version-check $(PY_WHEEL_REQS) 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check --user --break-system-packages $(PY_WHEEL_REQS); }

wheel: build setup-wheel
	PATH="$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$$HOME/.local/bin:$$PATH" \
	  $(PYTHON) python/tools/build_wheel.py --lib $(LIB) --out dist

test-wheel: wheel
	PYTHON=$(PYTHON) bash python/tools/test_wheel.sh

test-python-data: build setup-python-data
	CELLAR_LIBRARY=$(abspath $(LIB)) $(PYTHON) -m pytest -q python/tests_data

bench-python-arrow: build setup-python-data
	CELLAR_LIBRARY=$(abspath $(LIB)) $(PYTHON) python/bench/bench_arrow.py

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

test-kmip: build setup-kmip sqlite-build | $(BUILD)
	CELLAR_KMIP_PYTHON=$(abspath $(KMIP_PY)) $(CARGO) test --release --test kmip -- --include-ignored --test-threads 4
	$(CC) $(CWARN) -g -O1 $(SAN) -Iinclude -Iffi-tests/c ffi-tests/kmip/test_kmip.c -o $(BUILD)/test_kmip.san $(LDLIB)
	@set -e; tmp=$$(mktemp -d); \
	trap 'bash scripts/kmip_server.sh stop "$$tmp/server"; rm -rf "$$tmp"' EXIT; \
	eval "$$(KMIP_PYTHON=$(abspath $(KMIP_PY)) bash scripts/kmip_server.sh start $$tmp/server)"; \
	export KMIP_DIR KMIP_PORT; \
	echo "== test_kmip (ASan+UBSan, PyKMIP on 127.0.0.1:$$KMIP_PORT)"; ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_kmip.san; \
	echo "== cellar.kmip (pytest)"; CELLAR_LIBRARY=$(abspath $(LIB)) PYTHONPATH=python $(PYTHON) -m pytest -q ffi-tests/kmip/test_kmip_py.py; \
	echo "== cellar-sqlite with a KMIP-held tenant key"; bash $(SQLITE_DIR)/tests/test_kmip_cli.sh $(SQLITE_BUILD)

bench-kmip: build setup-kmip
	CELLAR_KMIP_PYTHON=$(abspath $(KMIP_PY)) $(CARGO) bench --bench kmip

# ---- Module line (issue 19, docs/FIPS.md "Module line", "Identification")
.PHONY: identify identify-fips4 test-fips4 bench-lines
FIPS4_DIR := target/fips4

# Prints what the built library reports: Cellar's and the module's versions, the module line and
# certificate (or "in CMVP review"), FIPS mode, the self-test result, and whether
# cellar_init(CELLAR_INIT_REQUIRE_FIPS) accepts it. Fails unless all hold.
identify: build
	$(PYTHON) scripts/identify.py $(abspath $(LIB))

identify-fips4:
	$(CARGO) build --release --manifest-path fips4/Cargo.toml --target-dir $(FIPS4_DIR)
	$(PYTHON) scripts/identify.py $(abspath $(FIPS4_DIR))/release/libcellar.so

# The opt-in AWS-LC FIPS 4.x line (fips4/Cargo.toml, its own Cargo.lock and target dir): the Rust
# suites (lib + the tests/*.rs listed there) against AWS-LC FIPS 4.2.0. The first run builds
# AWS-LC 4.x once.
test-fips4:
	$(CARGO) test --release --locked --manifest-path fips4/Cargo.toml --target-dir $(FIPS4_DIR)

# Both lines side by side, same machine, alternating rounds (scripts/bench_lines.sh): XTS and GCM
# 8 KiB pages, RANDOMIZED and DETERMINISTIC 64-byte cells, wrap, derive. ROUNDS=n (default 3).
bench-lines:
	bash scripts/bench_lines.sh $(ROUNDS)
