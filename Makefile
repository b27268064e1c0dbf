# AVS suite: one non-recursive Makefile.
#   make                 build every program into build/bin (build-san/bin with SANITIZE)
#   make test            build and run every test; ends with "N passed, M failed"
#   make demo            install deps, build, run the demo pipeline (scripts/demo.sh)
#   make WERROR=1        warnings are errors (CI)
#   make SANITIZE=address,undefined
#   make CUDA=1          also build the CUDA backend, backend/cuda/, into build-cuda (needs nvcc; below)
#   make test-gpu        CUDA=1 build, pack and run every GPU test + bench/gpu.sh (test-gpu-pack:
#                        the pack alone, for the device machine: README, "Running on a GPU")
#
# Layout: every core/ backend/ backend/cpu/ ingest/ eval/ store/ report/ model/ features/ synth/ train/ predict/ audiohead/ *.c goes into one static
# library; every tools/avs-*.c is a program; every tests/test_*.c is a test binary and every
# tests/test_*.sh a test script. New files need no Makefile edit.

PKGS := libavformat libavcodec libswscale libswresample libavutil sndfile sqlite3 libpng libcjson openblas fftw3 libxxhash libisal libzip

# CUDA=1 builds into its own folder (its objects are compiled with other flags).
ifneq ($(SANITIZE),)
B ?= build-san$(if $(filter 1,$(CUDA)),-cuda)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B ?= build$(if $(filter 1,$(CUDA)),-cuda)
SAN_FLAGS :=
endif

CC ?= cc
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes \
               -Wmissing-prototypes -fopenmp -I. $(SAN_FLAGS)
ifeq ($(WERROR),1)
CFLAGS_BASE += -Werror
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(MPI_CFLAGS)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(MPI_LIBS)
ALL_CFLAGS = $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -fopenmp -lpthread -lm $(SAN_FLAGS) $(LDFLAGS)

# MODULES, TOOL_SRCS, TEST_SRCS and TEST_SCRIPTS may be narrowed on the command line to build
# and test one part alone, e.g. make check B=build-eval MODULES="core eval" TOOL_SRCS=tools/avs-eval.c ...
MODULES ?= core backend backend/cpu ingest eval store report model features synth train predict audiohead dist
# MPI ranks (dist/ranks.h): MPI=1 compiles dist/mpi/ (OpenMPI or any MPI with pkg-config ompi-c,
# mpi, or mpicc --showme); MPI=0 dist/single/ (world size 1, no MPI calls). Default: detected.
# With CUDA=1 and MPI, dist/nccl/ adds NCCL collectives for GPU ranks (NCCL from CUDA_HOME).
MPI_PC := $(firstword $(foreach p,ompi-c mpi,$(if $(shell pkg-config --exists $(p) 2>/dev/null && echo y),$(p))))
MPI ?= $(if $(MPI_PC)$(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(if $(MPI_PC),$(shell pkg-config --cflags $(MPI_PC)),$(shell mpicc --showme:compile 2>/dev/null))
MPI_LIBS := $(if $(MPI_PC),$(shell pkg-config --libs $(MPI_PC)),$(shell mpicc --showme:link 2>/dev/null))
DIST_MODULES := dist/mpi $(if $(filter 1,$(CUDA)),dist/nccl)
else
DIST_MODULES := dist/single
endif
LIB_SRCS := $(foreach m,$(MODULES) $(if $(filter dist,$(MODULES)),$(DIST_MODULES)),$(wildcard $(m)/*.c))
LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS)) $(B)/obj/sql/schema_sql.o $(B)/obj/version.o
TOOL_SRCS ?= $(wildcard tools/avs-*.c)
TOOLS := $(patsubst tools/%.c,$(B)/bin/%,$(TOOL_SRCS))
TEST_SRCS ?= $(wildcard tests/test_*.c)
TEST_SCRIPTS ?= $(wildcard tests/test_*.sh)
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
# The fault tests' LD_PRELOAD library (tests/shim/failwrite.c): no sanitizer flags (it is
# preloaded into sanitized programs after the sanitizer's own runtime).
SHIM := $(B)/tests/shim/failwrite.so
LIB := $(B)/libavs.a

# CUDA=1: the CUDA backend, backend/cuda/ (*.cu through nvcc; *.c, plain C host code that
# calls cuBLAS/cuDNN, through $(CC) with the toolkit's headers). The toolkit is the nvcc on
# PATH, else /usr/local/cuda (CUDA_HOME=... to choose). Device code for CUDA_ARCHS (SASS for
# each; sm_80's also runs on sm_86/89) plus PTX of the newest, which newer GPUs JIT-compile.
# AVS_USE_CUDA (backend/backend.c registers the CUDA table under it) is defined only when
# backend/cuda has sources; each CUDA library is linked only when a source includes its
# header; the CUDA runtime is linked statically (as nvcc does), so a binary needs only the
# driver plus cuBLAS/cuDNN where used. Sanitizer flags are not given to nvcc. No -Wshadow for
# nvcc: in C++ it flags every C header's `struct x` + function `x()` pair (avs_ops, ops.h).
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc))
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCHS ?= 80 90
CUDA_PTX ?= $(lastword $(CUDA_ARCHS))
CU_SRCS := $(wildcard backend/cuda/*.cu)
CUDA_C_SRCS := $(wildcard backend/cuda/*.c)
CUDA_ALL := $(CU_SRCS) $(CUDA_C_SRCS) $(wildcard backend/cuda/*.h backend/cuda/*.cuh)
CUDA_NSRC := $(words $(CU_SRCS) $(CUDA_C_SRCS))
NVCC_FLAGS := -O2 -g -std=c++17 -I. -I$(CUDA_HOME)/include \
              $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
              -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX) \
              -Xcompiler -Wall,-Wextra,-fopenmp
ifeq ($(WERROR),1)
NVCC_FLAGS += -Werror all-warnings -Xcompiler -Werror
endif
cuda_uses = $(if $(CUDA_ALL),$(shell grep -l -e '$(1)' $(CUDA_ALL) 2>/dev/null))
ifneq ($(CUDA_NSRC),0)
LIB_OBJS += $(patsubst %.cu,$(B)/obj/%.o,$(CU_SRCS)) $(patsubst %.c,$(B)/obj/%.o,$(CUDA_C_SRCS))
ALL_CFLAGS += -DAVS_USE_CUDA -I$(CUDA_HOME)/include $(if $(filter dist/nccl,$(DIST_MODULES)),-DAVS_USE_NCCL)
NVCC_FLAGS += -DAVS_USE_CUDA
CUDA_LIBS := $(if $(filter dist/nccl,$(DIST_MODULES)),-lnccl) $(if $(call cuda_uses,<cudnn),-lcudnn) $(if $(call cuda_uses,<cublasLt.h>),-lcublasLt) \
             $(if $(call cuda_uses,<cublas_v2.h>),-lcublas) -lcudart_static -ldl -lrt -lstdc++
# --as-needed: a program records only the shared libraries it calls into, so the GPU pack
# (make test-gpu-pack) need not carry libav*'s codec tree for programs that never decode.
LDLIBS_ALL := -Wl,--as-needed $(LDLIBS_ALL) -L$(CUDA_HOME)/lib64 $(CUDA_LIBS)
CUDA_BANNER = $(CUDA_NSRC) sources in backend/cuda for $(addprefix sm_,$(CUDA_ARCHS)) + PTX compute_$(CUDA_PTX), libs:$(filter -lcu%,$(CUDA_LIBS))
else
CUDA_BANNER = 0 kernels: no CUDA backend yet, backend/cuda has no sources
endif
endif

.PHONY: all test check demo deps clean banner bench test-gpu test-gpu-pack print-cflags print-ldlibs FORCE
# Keep object files of programs and tests (make would delete them as intermediates).
.SECONDARY:
all: banner $(TOOLS) $(TESTS) $(SHIM)

# The flags a program linked against $(B)/libavs.a needs (bench scripts that compile their own
# driver: make -s print-cflags / print-ldlibs, with the same MPI= and CUDA= as the build).
print-cflags:
	@echo $(ALL_CFLAGS)
print-ldlibs:
	@echo $(LDLIBS_ALL)

banner:
	@missing=""; for p in $(PKGS); do pkg-config --exists $$p || missing="$$missing $$p"; done; \
	 if [ -n "$$missing" ]; then echo "missing libraries:$$missing -- run: bash scripts/deps.sh"; exit 1; fi; \
	 if [ "$(CUDA)" = 1 ] && ! command -v "$(NVCC)" >/dev/null; then echo "CUDA=1: no nvcc at $(NVCC): install the CUDA toolkit (found on PATH or in /usr/local/cuda), or give CUDA_HOME=DIR or NVCC=PATH"; exit 1; fi; \
	 echo "avs build: $(B)  sanitize=$(if $(SANITIZE),$(SANITIZE),off)  werror=$(if $(filter 1,$(WERROR)),on,off)  mpi=$(if $(filter 1,$(MPI)),on$(if $(filter dist/nccl,$(DIST_MODULES)), + nccl),off)  cuda=$(if $(filter 1,$(CUDA)),on (nvcc $$($(NVCC) --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p'); $(CUDA_BANNER)),off)"

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# sql/schema.sql is the schema of record; it is compiled in as a C string.
$(B)/obj/sql/schema_sql.c: sql/schema.sql scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh avs_schema_sql $< > $@
$(B)/obj/sql/schema_sql.o: $(B)/obj/sql/schema_sql.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The source revision recorded with every training run (avs_code_rev, core/common.h): git
# describe, "-dirty" with uncommitted changes; the file is rewritten only when it changes.
AVS_REV := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(B)/obj/version.c: FORCE
	@mkdir -p $(dir $@)
	@printf '#include "core/common.h"\nconst char *avs_code_rev(void) { return "%s"; }\n' '$(AVS_REV)' > $@.new
	@cmp -s $@.new $@ 2>/dev/null && rm -f $@.new || mv -f $@.new $@
$(B)/obj/version.o: $(B)/obj/version.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

# The archive is remade when its member list changes (e.g. a narrower MODULES in the same B).
$(B)/libavs.members: FORCE
	@mkdir -p $(B); echo '$(LIB_OBJS)' | cmp -s - $@ 2>/dev/null || echo '$(LIB_OBJS)' > $@

$(LIB): $(LIB_OBJS) $(B)/libavs.members
	@rm -f $@
	ar rcs $@ $(LIB_OBJS)

FORCE:

$(B)/bin/%: $(B)/obj/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $< $(LIB) $(LDLIBS_ALL) -o $@

$(B)/tests/%: $(B)/obj/tests/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $< $(LIB) $(LDLIBS_ALL) -o $@

$(SHIM): tests/shim/failwrite.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -shared -fPIC $< -o $@ -ldl

# `make test` installs missing packages first, so that it works on a fresh machine.
test:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@AVS_BUILD=$(B) bash tests/run.sh $(TESTS) $(TEST_SCRIPTS)

check: all
	@AVS_BUILD=$(B) bash tests/run.sh $(TESTS) $(TEST_SCRIPTS)

demo:
	bash scripts/deps.sh
	$(MAKE) all
	bash scripts/demo.sh

deps:
	bash scripts/deps.sh

bench: all
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

# The GPU checks (README, "Running on a GPU"): test-gpu-pack builds CUDA=1 and packs programs,
# GPU tests and a tiny store into .gpu.tar.xz (scripts/gpu-pack.sh), which the device machine
# runs with scripts/gpu-run.sh; test-gpu packs and runs here (a machine with nvcc and a GPU).
test-gpu-pack:
	@$(MAKE) --no-print-directory CUDA=1 all
	bash scripts/gpu-pack.sh .gpu build-cuda

test-gpu: test-gpu-pack
	bash scripts/gpu-run.sh .gpu

clean:
	rm -rf build build-san build-cuda build-san-cuda .gpu .gpu.tar.xz

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
