# knobs: build, test, demo, bench.
#
#   make demo        install missing Debian packages, build, train a beta-VAE on built-in dSprites
#   make test        install, build, run the whole suite (last line: "N passed, N failed")
#   make test SAN=1  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench       speed benchmarks against PyTorch (never part of `make test`)
#   make fuzz        libFuzzer targets for every parser (clang)
#   make ref         regenerate tests/ref/*.safetensors with PyTorch/NumPy/scikit-learn
#   make install     install knobs, libknobs.so/.a, knobs.h, knobs.pc, knobs.1 under PREFIX
#                    [/usr/local] (and DESTDIR); make uninstall removes them
#   make install-python  the python/knobs package (ctypes over libknobs.so) into PYTHONDIR
#
# Sources are found by wildcard: a new src/<module>/x.c or tests/test_x.c needs no edit here.

CC      ?= cc
SAN     ?= 0
DEBUG   ?= 0
BUILD   := build$(if $(filter 1,$(SAN)),-san,)
PYTHON  ?= /usr/bin/python3

# Packages a fresh Debian 12 needs to build, and to test (a real Fashion-MNIST to read; NumPy for
# the python/knobs tests; groff to check the man page). PyTorch and scikit-learn are only for
# `make ref` and `make bench` (PyTorch comparison).
DEB_BUILD := build-essential pkg-config libopenblas-dev zlib1g-dev libpng-dev libcjson-dev \
             libhdf5-dev libmicrohttpd-dev libopenmpi-dev openmpi-bin libplplot-dev \
             plplot-driver-cairo
DEB_TEST  := dataset-fashion-mnist python3-numpy groff-base chromium
DEB_REF   := python3-torch python3-numpy python3-sklearn

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wno-unused-parameter -Werror
# -O3 vectorises the elementwise kernels (GCC 12's -O2 cost model does not); -fno-math-errno
# lets sqrtf vectorise (Adam) and changes no value; never -ffast-math/-Ofast (STYLE.md).
OPT     := $(if $(filter 1,$(DEBUG)),-O0 -g,-O3 -g -march=native) -fno-math-errno
SAN_ON  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SANFLAGS?= $(if $(filter 1,$(SAN)),$(SAN_ON))
HDF5_CFLAGS := -I/usr/include/hdf5/serial
HDF5_LIBS   := -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -pthread -Iinclude -Isrc \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread $(HDF5_CFLAGS) -MMD -MP
LDLIBS  += $(SANFLAGS) -pthread $(HDF5_LIBS) -lpng -lz -lcjson -lmicrohttpd -lm -ldl

# Open MPI, when mpicc exists: only the command links it (src/cli/mpi.c); `knobs --version` says
# whether it has it. Without mpicc knobs builds and runs as one process.
MPICC      := $(shell command -v mpicc 2>/dev/null)
MPI_CFLAGS := $(if $(MPICC),-DKNOBS_HAVE_MPI $(shell mpicc --showme:compile 2>/dev/null))
MPI_LIBS   := $(if $(MPICC),$(shell mpicc --showme:link 2>/dev/null))

# PLplot, when pkg-config finds it: only the command links it (src/cli/plot.c, the PNG plots of
# `knobs report`, drawn through its pngcairo device); `knobs --version` says whether it has it.
# Without it knobs report writes its tables and says that it drew no plots.
PLPLOT        := $(shell pkg-config --exists plplot 2>/dev/null && echo yes)
PLPLOT_CFLAGS := $(if $(PLPLOT),-DKNOBS_HAVE_PLPLOT $(shell pkg-config --cflags plplot))
PLPLOT_LIBS   := $(if $(PLPLOT),$(shell pkg-config --libs plplot))

LIB_SRC  := $(sort $(wildcard src/core/*.c src/nn/*.c src/models/*.c src/data/*.c \
                              src/metrics/*.c src/io/*.c src/apps/*.c src/run/*.c \
                              src/serve/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

SRC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ  := $(SRC_OBJ) $(BUILD)/gen/panel.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libknobs.a
KNOBS    := $(BUILD)/knobs
MAN      := $(BUILD)/knobs.1

# The version is written once, in include/knobs.h; the shared library's soname carries the major.
VERSION  := $(shell sed -n 's/^[#]define KNOBS_VERSION "\([0-9.]*\)".*/\1/p' include/knobs.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
SONAME   := libknobs.so.$(SOMAJOR)
SO       := $(BUILD)/libknobs.so.$(VERSION)
SOLINK   := $(BUILD)/libknobs.so
# Library objects serve both libknobs.a and libknobs.so: position independent, and only the
# declarations of knobs.h marked KNOBS_API are visible outside the shared library.
LIB_CFLAGS := -fPIC -fvisibility=hidden

# Where `make install` puts things (DESTDIR is prepended to all of them, for staged installs).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PYTHONDIR  ?= $(PREFIX)/lib/python3/dist-packages
INSTALL    ?= install

.PHONY: all deps test demo bench fuzz ref clean check-deps install uninstall install-python \
        uninstall-python
all: $(KNOBS) $(LIB) $(SOLINK) $(MAN)

# Install whatever of $(DEB_BUILD) is missing (needs root; prints what it would do otherwise).
deps:
	@sh scripts/deps.sh $(DEB_BUILD)

# Objects depend on the flags they were built with: a change of CFLAGS rebuilds them.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW   := $(CC) $(CFLAGS) | $(LIB_CFLAGS) | $(LDLIBS) | $(MPI_CFLAGS) $(MPI_LIBS) | $(PLPLOT_CFLAGS) $(PLPLOT_LIBS)
$(shell mkdir -p $(BUILD) && echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_STAMP) || echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))

$(SRC_OBJ): $(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The knob panel's page, embedded in the library as a byte array (no network, no build step).
$(BUILD)/gen/panel.c: web/panel.html
	@mkdir -p $(dir $@)
	@od -An -v -tx1 $< | awk 'BEGIN { print "#include <stddef.h>"; print "const unsigned char kn_panel_html[] = {" } \
	  { for (i = 1; i <= NF; i++) { printf "0x%s,", $$i; n++ } print "" } \
	  END { print "0x00};"; printf "const size_t kn_panel_html_len = %d;\n", n }' > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/panel.o: $(BUILD)/gen/panel.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libknobs.so.X.Y.Z with soname libknobs.so.X, and the libknobs.so link for -lknobs.
$(SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $(LIB_OBJ) $(LDLIBS)

$(SOLINK): $(SO)
	ln -sf $(notdir $(SO)) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

# The man page is generated from the built binary's own help, so it never drifts from it.
$(MAN): $(KNOBS) scripts/man.sh
	sh scripts/man.sh $(KNOBS) > $@.tmp && mv $@.tmp $@

$(CLI_OBJ): CFLAGS += $(MPI_CFLAGS) $(PLPLOT_CFLAGS)

$(KNOBS): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS) $(MPI_LIBS) $(PLPLOT_LIBS)

$(BUILD)/tests/%: tests/%.c tests/t.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

test: deps
	@sh scripts/deps.sh $(DEB_TEST)
	@$(MAKE) --no-print-directory all $(TEST_BIN) $(BENCH_BIN)
	@sh tests/run.sh $(BUILD) $(TEST_BIN)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(KNOBS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh bench/run.sh $(BUILD)

# libFuzzer targets: clang only; each links the library built with -fsanitize=fuzzer-no-link.
FUZZ_BUILD := build-fuzz
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang \
	  SANFLAGS="-fsanitize=address,undefined,fuzzer-no-link" $(FUZZ_BUILD)/libknobs.a
	@sh tests/fuzz/build.sh $(FUZZ_BUILD)

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(KNOBS) $(DESTDIR)$(BINDIR)/knobs
	$(INSTALL) -m 755 $(SO) $(DESTDIR)$(LIBDIR)/$(notdir $(SO))
	ln -sf $(notdir $(SO)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libknobs.so
	$(INSTALL) -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libknobs.a
	$(INSTALL) -m 644 include/knobs.h $(DESTDIR)$(INCLUDEDIR)/knobs.h
	$(INSTALL) -m 644 $(MAN) $(DESTDIR)$(MANDIR)/man1/knobs.1
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' knobs.pc.in > $(BUILD)/knobs.pc
	$(INSTALL) -m 644 $(BUILD)/knobs.pc $(DESTDIR)$(PKGCONFIGDIR)/knobs.pc
	@# refresh the loader's cache for a real install into a directory it searches
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  case "$(LIBDIR)" in /usr/local/lib|/usr/lib|/usr/lib/*) ldconfig ;; esac; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/knobs $(DESTDIR)$(LIBDIR)/$(notdir $(SO)) \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libknobs.so $(DESTDIR)$(LIBDIR)/libknobs.a \
	  $(DESTDIR)$(INCLUDEDIR)/knobs.h $(DESTDIR)$(PKGCONFIGDIR)/knobs.pc \
	  $(DESTDIR)$(MANDIR)/man1/knobs.1

# python/knobs is pure Python (ctypes): it finds libknobs.so via $$KNOBS_LIB, a build/ next to
# the package, or the system's loader (after `make install`).
install-python:
	$(INSTALL) -d $(DESTDIR)$(PYTHONDIR)/knobs
	$(INSTALL) -m 644 python/knobs/*.py $(DESTDIR)$(PYTHONDIR)/knobs/

uninstall-python:
	rm -rf $(DESTDIR)$(PYTHONDIR)/knobs

ref:
	@for f in tests/ref/make_*.py; do echo "$(PYTHON) $$f"; $(PYTHON) $$f || exit 1; done

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
