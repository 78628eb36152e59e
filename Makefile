# cdm — coherent device memory as a NUMA node.  One entry point:
#   make run     build everything, boot the QEMU guest, run the demo
#   make check   build everything, boot the guest, run every selftest
# See README.md.  Everything generated lives under build/ (ignored).

SHELL      := /bin/bash
TOP        := $(abspath .)
B          := $(TOP)/build
KSRC       := $(B)/linux
NPROC      := $(shell nproc)
KASAN      ?= 0
# A KASAN kernel is a flavour of its own: kernel objects, modules and
# initramfs under build/*-kasan, so switching does not rebuild the other.
# The scripts read KASAN from the environment to find them.
export KASAN
FLAVOUR    := $(if $(filter 1,$(KASAN)),-kasan)
KOBJ       := $(B)/kobj$(FLAVOUR)
MODSRC     := $(B)/modsrc$(FLAVOUR)
V          ?= 0
export CCACHE_DIR ?= $(B)/ccache
export CCACHE_MAXSIZE ?= 5G
# no second preprocessor run on a miss (scripts/kernel-build says why)
export CCACHE_DEPEND ?= 1

KMAKE      = $(MAKE) -C $(KSRC) O=$(KOBJ) CC="ccache gcc" HOSTCC="ccache gcc" \
	     -j$(NPROC) $(if $(filter 1,$(V)),V=1,-s)
LOCK       = flock $(B)/.kernel.lock
BZIMAGE    = $(KOBJ)/arch/x86/boot/bzImage
INITRAMFS  = $(B)/initramfs$(FLAVOUR).cpio.gz
VMRUN      = $(TOP)/scripts/vm-run

.PHONY: all deps kernel modules selftests tools initramfs check run shell \
	kernel-export clean distclean help check-upstream cross check-cross check-bisect check-bisect-boot
all: initramfs

help:
	@echo "make run | check | bench | shell | kernel | modules | selftests | tools | initramfs | deps | clean | distclean"
	@echo "variables: KASAN=1 (KASAN kernel), V=1 (verbose), VMRUN_ARGS='--cpus 3 ...'"
	@echo "cross builds: make cross | check-cross (arm64 + ppc64le kernels; arm64 boot test)"
	@echo "the series: make check-bisect (each commit passes checkpatch --strict and builds) | check-bisect-boot (and boots and binds)"
	@echo "independent tools: make stress [STRESS_MINUTES=10 STRESS_SEED=N] | soak [SOAK_CYCLES=1000]"
	@echo "Debian packages: make deb [KCONFIG=<a distribution's kernel config>] | check-deb (build/deb/out)"

deps:
	@$(TOP)/scripts/deps

# The kernel: extract + patch (scripts/kernel-prepare), then the one kernel
# builder (scripts/kernel-build, also used by check-upstream, cross and
# bench) configures from the checked-in fragments on tinyconfig and builds.
# The config is regenerated only when a fragment or the series changes;
# ccache makes rebuilds cheap.
KFRAGS     = $(TOP)/config/cdm.config $(TOP)/config/firmware.config \
	     $(if $(filter 1,$(KASAN)),$(TOP)/config/kasan.config)
kernel: deps
	@mkdir -p $(B)
	@$(LOCK) $(TOP)/scripts/kernel-prepare
	@$(LOCK) $(TOP)/scripts/kernel-build --targets "bzImage modules modules_prepare" \
		$(KSRC) $(KOBJ) x86_64 $(KFRAGS)

modules: kernel
	@mkdir -p $(MODSRC)
	@rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='*.mod*' \
		--exclude='.*.cmd' --exclude='modules.order' --exclude='Module.symvers' \
		--include='Kbuild' --include='drivers/***' --include='selftests/' \
		--include='selftests/kmod/***' --exclude='*' $(TOP)/ $(MODSRC)/
	@$(LOCK) $(KMAKE) M=$(MODSRC) modules
	@echo "modules: $$(cd $(MODSRC) && find . -name '*.ko' | sort | tr '\n' ' ')"

selftests: deps
	@$(MAKE) -s -C $(TOP)/selftests O=$(B)/selftests KDIR=$(KSRC)

tools: deps
	@$(MAKE) -s -C $(TOP)/guest O=$(B)/tools
	@$(MAKE) -s -C $(TOP)/tools/numactl-ext O=$(B)/numactl-ext KDIR=$(KSRC) all numactl selftests

initramfs: kernel modules selftests tools
	@$(TOP)/scripts/mkinitramfs $(INITRAMFS)

check: initramfs
	@$(TOP)/scripts/kernel-snapshot --check
	@$(TOP)/scripts/run-selftests $(VMRUN_ARGS)

# Software no one here wrote (numactl's tests, kernel selftests, hwloc) on
# our kernel and on a stock 6.12 from the same fragments (build/kobj-stock).
# Every commit of the series passes checkpatch --strict and builds on its own
# (scripts/check-bisect; about a minute a commit with a warm ccache).
check-bisect: kernel
	@$(LOCK) $(TOP)/scripts/check-bisect

# The same, and each commit boots and places pages on a CDM node
# (about two minutes a commit).
check-bisect-boot: initramfs
	@$(LOCK) $(TOP)/scripts/check-bisect --boot

check-upstream: initramfs
	@$(LOCK) $(TOP)/scripts/kernel-prepare --stock
	@$(LOCK) $(TOP)/scripts/kernel-build --localversion -stock $(B)/linux-stock $(B)/kobj-stock \
		x86_64 $(TOP)/config/cdm.config $(TOP)/config/stock.config
	@$(TOP)/scripts/check-upstream $(VMRUN_ARGS)

# Cross builds: the patched kernel for each of CROSS_ARCHS with Debian's
# cross compilers (build/kobj-ARCH; config/cross.config + config/ARCH.config
# on tinyconfig).  PREPARE=0 builds build/linux as it is, without
# scripts/kernel-prepare (while the series is being edited there).
# check-cross also boots the arm64 kernel under QEMU TCG with a device tree
# that marks node 1 as coherent device memory (scripts/check-cross).
CROSS_ARCHS ?= arm64 ppc64le
PREPARE     ?= 1
cross:
	@$(TOP)/scripts/deps cross
	@mkdir -p $(B)
	@$(if $(filter 0,$(PREPARE)),,t=$$(date +%s); $(LOCK) $(TOP)/scripts/kernel-prepare && \
		echo "cross: build/linux prepared in $$(( $$(date +%s) - t )) s (with any wait for the kernel lock)")
	@for a in $(CROSS_ARCHS); do \
		KERNEL_QUEUED=$$(date +%s) $(LOCK) $(TOP)/scripts/kernel-build $(KSRC) $(B)/kobj-$$a \
			$$a $(TOP)/config/cross.config $(TOP)/config/$$a.config || exit 1; done

check-cross:
	@start=$$(date +%s); rc=0; \
	$(MAKE) -s --no-print-directory cross && $(TOP)/scripts/check-cross || rc=$$?; \
	echo "make check-cross: $$([ $$rc = 0 ] && echo passed || echo FAILED) in $$(( $$(date +%s) - start )) s"; \
	exit $$rc

# Benchmarks: ours vs stock 6.12 vs the memcpy limit (BENCHMARKS.md).  Builds
# its own non-debug kernel pair from build/linux, so it prepares the tree but
# does not build the debug test kernel.
.PHONY: bench
bench: deps
	@mkdir -p $(B)
	@$(LOCK) $(TOP)/scripts/kernel-prepare
	@$(TOP)/scripts/deps bench
	@$(TOP)/scripts/bench

# Independent tools against isolation and evacuation, on the KASAN +
# lockdep kernel (scripts/stress): stress-ng, trinity, an evacuation cycler
# and checksummed sentinels for STRESS_MINUTES (default 10); make soak
# evacuates and re-adds each device SOAK_CYCLES times (default 1000, each
# evacuation with SOAK_TIMEOUT_MS, default 60000).
# Both print "stress: N passed, M failed" / "soak: ...".
.PHONY: stress soak
stress soak:
	@$(TOP)/scripts/deps stress
	@$(MAKE) -s --no-print-directory KASAN=1 initramfs
	@KASAN=1 $(TOP)/scripts/stress $@

# Debian packages (scripts/deb, packaging/): linux-image/linux-headers
# -<release>-cdm from the series with the test kernel's fragments, or with
# KCONFIG=FILE the cdm options merged onto that distribution config
# (hours on 2 cores); cdm-tools, libnumacdm1, libnumacdm-dev; numactl,
# libnuma1, libnuma-dev 2.0.16-1+cdm1 (Debian's source + the numactl
# patches).  Into build/deb/out/; a part is rebuilt only when its sources
# changed; lintian must report no error.  check-deb installs them together
# in a debootstrapped bookworm root (cached) and tests them there
# (scripts/check-deb): "check-deb: N passed, M failed".
KCONFIG ?=
.PHONY: deb check-deb
deb:
	@$(TOP)/scripts/deps deb
	@mkdir -p $(B)
	@$(if $(filter 0,$(PREPARE)),,$(LOCK) $(TOP)/scripts/kernel-prepare)
	@KCONFIG="$(if $(KCONFIG),$(abspath $(KCONFIG)))" $(TOP)/scripts/deb

check-deb: deb
	@$(TOP)/scripts/check-deb

run: initramfs
	@$(VMRUN) $(VMRUN_ARGS) -- /opt/cdm/demo.sh

shell: initramfs
	@$(VMRUN) --interactive $(VMRUN_ARGS) -- /bin/sh

kernel-export:
	@$(TOP)/scripts/kernel-export
	@$(TOP)/scripts/kernel-snapshot

clean:
	rm -rf $(KOBJ) $(MODSRC) $(B)/selftests $(B)/tools $(B)/initramfs* $(B)/logs

distclean:
	rm -rf $(B)
