# trimo-sbx build.  `make` builds bin/trimo-sbx; `make check` installs the
# dependencies and runs the unit and integration tests; `make demo` runs the
# built-in example.  Modules are static archives linked one way:
# orchestrator -> runtime -> sandbox, rootfs, config -> common.

CC      ?= gcc
BUILD   ?= build
BIN     ?= bin
OPT     ?= -O2 -g
PYTHON  ?= /usr/bin/python3
SANFLAGS ?=

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(OPT) \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -fno-common -fstack-protector-strong \
	-I. $(SANFLAGS)
LDFLAGS_BASE := $(SANFLAGS) -Wl,--as-needed -Wl,-z,relro,-z,now

# pkg-config packages per module: each library is compiled and linked
# only where it is used.
PKG_common       :=
PKG_config       := inih
PKG_rootfs       := libarchive jansson nettle
PKG_sandbox      := libseccomp libcap jansson
PKG_runtime      := libsystemd
PKG_orchestrator := jansson

MODULES := orchestrator runtime sandbox rootfs config common

.DEFAULT_GOAL := all

pkg_cflags = $(if $(PKG_$(1)),$(shell pkg-config --cflags $(PKG_$(1))))
pkg_libs   = $(if $(PKG_$(1)),$(shell pkg-config --libs $(PKG_$(1))))

define module_rules
SRC_$(1) := $$(wildcard $(1)/*.c)
OBJ_$(1) := $$(patsubst %.c,$(BUILD)/%.o,$$(filter-out $(1)/main.c $(1)/%_main.c,$$(SRC_$(1))))
$(BUILD)/$(1)/%.o: $(1)/%.c | $(BUILD)/$(1)
	$$(CC) $$(CFLAGS_BASE) $$(call pkg_cflags,$(1)) $$(CFLAGS) -MMD -MP -c $$< -o $$@
$(BUILD)/$(1):
	mkdir -p $$@
$(BUILD)/lib$(1).a: $$(OBJ_$(1)) | $(BUILD)
	rm -f $$@ && ar rcs $$@ $$(OBJ_$(1))
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

# The default seccomp programs are built by libseccomp at build time and
# compiled in (building them costs more than the rest of a sandbox start).
GEN_SECCOMP_OBJS := $(BUILD)/sandbox/seccomp.o $(BUILD)/sandbox/seccomp_profile.o \
	$(BUILD)/sandbox/caps.o $(OBJ_common)
$(BUILD)/gen/seccomp_gen: sandbox/gen/seccomp_gen.c $(GEN_SECCOMP_OBJS) | $(BUILD)/gen
	$(CC) $(CFLAGS_BASE) $(call pkg_cflags,sandbox) $(CFLAGS) -MMD -MP -o $@ $< \
		$(GEN_SECCOMP_OBJS) $(LDFLAGS_BASE) $(call pkg_libs,sandbox)
$(BUILD)/gen/seccomp_bpf.c: $(BUILD)/gen/seccomp_gen
	$< $@.tmp && mv $@.tmp $@
$(BUILD)/gen/seccomp_bpf.o: $(BUILD)/gen/seccomp_bpf.c
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@
$(BUILD)/gen:
	mkdir -p $@
OBJ_sandbox += $(BUILD)/gen/seccomp_bpf.o
$(BUILD)/libsandbox.a: $(BUILD)/gen/seccomp_bpf.o

LIBS_ALL := $(foreach m,$(MODULES),$(BUILD)/lib$(m).a)
LDLIBS_ALL := $(sort $(foreach m,$(MODULES),$(call pkg_libs,$(m))))

# bin/trimo-sbx links only what every start needs (libc, libseccomp,
# libcap, jansson, inih: --as-needed drops the rest).  Heavy libraries live
# in helpers it runs for the rare work that needs them.
BINS := $(BIN)/trimo-sbx $(BIN)/trimo-sbx-scope $(BIN)/trimo-sbx-image $(BIN)/trimo-sbx-git \
	$(BIN)/git-remote-trimo

all: $(BINS)

$(BIN)/trimo-sbx: $(BUILD)/orchestrator/main.o $(LIBS_ALL) | $(BIN)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBS_ALL) -Wl,--end-group $(LDLIBS_ALL)

# libarchive (and libxml2, ICU behind it) for image imports
$(BIN)/trimo-sbx-image: $(BUILD)/orchestrator/image_main.o $(LIBS_ALL) | $(BIN)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBS_ALL) -Wl,--end-group $(LDLIBS_ALL)

# libsystemd (sd-bus) for the rootless cgroup v2 scope
$(BIN)/trimo-sbx-scope: $(BUILD)/orchestrator/scope_main.o $(LIBS_ALL) | $(BIN)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBS_ALL) -Wl,--end-group $(LDLIBS_ALL)

# git (docs/git.md): libgit2 lives only in the helper trimo-sbx-git
# (orchestrator/git2/); git-remote-trimo is bound into sandboxes, so it is
# static and needs nothing but libc.
OBJ_git2 := $(patsubst %.c,$(BUILD)/%.o,$(wildcard orchestrator/git2/*.c))
$(BUILD)/orchestrator/git2/%.o: orchestrator/git2/%.c | $(BUILD)/orchestrator/git2
	$(CC) $(CFLAGS_BASE) -Wno-missing-field-initializers \
		$(shell pkg-config --cflags libgit2 jansson) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/orchestrator/git2:
	mkdir -p $@
$(BIN)/trimo-sbx-git: $(BUILD)/orchestrator/git_main.o $(OBJ_git2) $(LIBS_ALL) | $(BIN)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< $(OBJ_git2) -Wl,--start-group $(LIBS_ALL) \
		-Wl,--end-group $(LDLIBS_ALL) $(shell pkg-config --libs libgit2)
$(BIN)/git-remote-trimo: orchestrator/remote_trimo_main.c orchestrator/push_proto.c \
		orchestrator/push_proto.h | $(BIN)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
		-Wno-unused-parameter -I. -static -s -o $@ \
		orchestrator/remote_trimo_main.c orchestrator/push_proto.c

$(BIN):
	mkdir -p $@

# --- tests -------------------------------------------------------------
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

$(BUILD)/tests/%: tests/unit/%.c $(LIBS_ALL) | $(BUILD)/tests
	$(CC) $(CFLAGS_BASE) $(foreach m,$(MODULES),$(call pkg_cflags,$(m))) $(CFLAGS) \
		-DTEST_BIN_DIR='"$(abspath $(BIN))"' \
		-Wno-missing-prototypes -MMD -MP -o $@ $< $(LDFLAGS_BASE) \
		-Wl,--start-group $(LIBS_ALL) -Wl,--end-group $(LDLIBS_ALL) -lcmocka

$(BUILD)/tests:
	mkdir -p $@

# The static probe program the integration tests put into their rootfs.
$(BUILD)/probe: tests/probe.c | $(BUILD)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -o $@ $<

$(BUILD):
	mkdir -p $@

deps:
	scripts/install-deps

unit: $(UNIT_BINS) $(BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BINS) $(BUILD)/probe
	TRIMO_SBX=$(abspath $(BIN)/trimo-sbx) TRIMO_PROBE=$(abspath $(BUILD)/probe) \
		$(PYTHON) -m pytest -ra -q tests/integration $(PYTEST_ARGS)

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	@if command -v qemu-system-x86_64 >/dev/null; then $(MAKE) check-vm; \
	else echo "check-vm skipped: qemu-system-x86_64 not installed"; fi

# The cgroup v2 tests in a qemu guest that boots Debian's own kernel (this
# host is hybrid v1); see tests/vm/README.md.  VM_PYTEST_ARGS go to pytest.
check-vm: all $(if $(wildcard tests/probe.c),$(BUILD)/probe)
	tests/vm/run --timeout 1500 --user "$${TRIMO_TEST_USER:-trimo-test}" $(if $(VM_TESTS),-e VM_TESTS=$(VM_TESTS)) -- sh tests/vm/check $(VM_PYTEST_ARGS)

# Unit and integration tests with every binary under AddressSanitizer and
# UBSan (the sandbox child and init too).
asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin OPT="-O1 -g -fno-omit-frame-pointer" \
		SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit integration

demo: deps all $(BUILD)/probe
	scripts/demo

bench: all $(BUILD)/probe
	bench/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan bin

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)

.PHONY: all deps unit integration check check-vm asan demo bench format clean
.SECONDARY:
