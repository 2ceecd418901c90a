# trimo-sbx build.  `make` builds bin/trimo-sbx; `make check` installs the
# dependencies and runs the unit and integration tests; `make demo` runs the
# built-in example.  Modules are static archives linked one way:
# orchestrator -> runtime -> sandbox, rootfs, config -> common.

CC      ?= gcc
BUILD   ?= build
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
PKG_sandbox      := libseccomp libcap
PKG_runtime      :=
PKG_orchestrator := jansson

MODULES := orchestrator runtime sandbox rootfs config common

pkg_cflags = $(if $(PKG_$(1)),$(shell pkg-config --cflags $(PKG_$(1))))
pkg_libs   = $(if $(PKG_$(1)),$(shell pkg-config --libs $(PKG_$(1))))

define module_rules
SRC_$(1) := $$(wildcard $(1)/*.c)
OBJ_$(1) := $$(patsubst %.c,$(BUILD)/%.o,$$(filter-out $(1)/main.c,$$(SRC_$(1))))
$(BUILD)/$(1)/%.o: $(1)/%.c | $(BUILD)/$(1)
	$$(CC) $$(CFLAGS_BASE) $$(call pkg_cflags,$(1)) $$(CFLAGS) -MMD -MP -c $$< -o $$@
$(BUILD)/$(1):
	mkdir -p $$@
$(BUILD)/lib$(1).a: $$(OBJ_$(1))
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

LIBS_ALL := $(foreach m,$(MODULES),$(BUILD)/lib$(m).a)
LDLIBS_ALL := $(sort $(foreach m,$(MODULES),$(call pkg_libs,$(m))))

all: bin/trimo-sbx

bin/trimo-sbx: $(BUILD)/orchestrator/main.o $(LIBS_ALL) | bin
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBS_ALL) -Wl,--end-group $(LDLIBS_ALL)

bin:
	mkdir -p $@

# --- tests -------------------------------------------------------------
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

$(BUILD)/tests/%: tests/unit/%.c $(LIBS_ALL) | $(BUILD)/tests
	$(CC) $(CFLAGS_BASE) $(foreach m,$(MODULES),$(call pkg_cflags,$(m))) $(CFLAGS) \
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

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: bin/trimo-sbx $(BUILD)/probe
	TRIMO_SBX=$(abspath bin/trimo-sbx) TRIMO_PROBE=$(abspath $(BUILD)/probe) \
		$(PYTHON) -m pytest -ra -q tests/integration $(PYTEST_ARGS)

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit

demo: deps all $(BUILD)/probe
	scripts/demo

bench: all $(BUILD)/probe
	bench/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan bin

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)

.PHONY: all deps unit integration check asan demo bench format clean
.SECONDARY:
