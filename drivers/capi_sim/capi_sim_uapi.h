/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * capi_sim user-space interface: /dev/capi_simN ioctls.
 *
 * The simulated accelerator's "compute engine" operates on a user buffer by
 * physical address, as a cache-coherent device would, and reports how many
 * of the buffer's pages were resident in its own memory (the CDM node).
 */
#ifndef _UAPI_CAPI_SIM_H
#define _UAPI_CAPI_SIM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define CAPI_SIM_UAPI_VERSION	1

/* Device state, as in the sysfs "state" file. */
enum capi_sim_state {
	CAPI_SIM_STATE_ONLINE = 0,
	CAPI_SIM_STATE_EVACUATING = 1,
	CAPI_SIM_STATE_OFFLINE = 2,
	CAPI_SIM_STATE_FAILED = 3,
};

struct capi_sim_info {
	__u32 version;			/* CAPI_SIM_UAPI_VERSION */
	__s32 node;			/* CDM node id */
	__u64 size;			/* device memory, bytes */
	__u32 state;			/* enum capi_sim_state */
	__u32 link_penalty_ns;		/* simulated cost per system-RAM page */
	__u64 resident_pages;		/* pages in use on the node */
	__u64 evacuations;		/* successful evacuations */
	__u64 evacuations_failed;
};

/* Engine operations. */
enum capi_sim_op {
	CAPI_SIM_OP_FILL = 0,		/* dst[i] = low byte of pattern */
	CAPI_SIM_OP_COPY = 1,		/* dst = src */
	CAPI_SIM_OP_XOR = 2,		/* dst ^= src */
	CAPI_SIM_OP_CRC32C = 3,		/* crc = crc32c(~0, src) ^ ~0, src only */
	CAPI_SIM_OP_MAX,
};

/*
 * CAPI_SIM_IOC_RUN: src and dst must be identical or disjoint.  "pages"
 * counts the distinct pages of each buffer used (src and dst separately);
 * sim_ns = pages * device_ns + (pages - device_pages) * link_penalty_ns,
 * a simulated time (module parameters), nothing is delayed.
 */
struct capi_sim_run {
	__u32 op;			/* in: enum capi_sim_op */
	__u32 pattern;			/* in: FILL byte (low 8 bits) */
	__u64 src;			/* in: user address (COPY, XOR, CRC32C) */
	__u64 dst;			/* in: user address (FILL, COPY, XOR) */
	__u64 len;			/* in: bytes, 1 .. CAPI_SIM_RUN_MAX_LEN */
	__u64 pages;			/* out: pages touched */
	__u64 device_pages;		/* out: of those, resident on the device node */
	__u64 sim_ns;			/* out: simulated link time */
	__u32 crc;			/* out: CRC32C result */
	__u32 reserved;			/* must be 0 */
};

#define CAPI_SIM_RUN_MAX_LEN	(1ULL << 30)

/*
 * CAPI_SIM_IOC_EVACUATE and CAPI_SIM_IOC_ONLINE need CAP_SYS_ADMIN (-EPERM).
 * EVACUATE: 0 = node empty; -EBUSY = timed out, memory back online, the
 * struct is still written back; -EINTR = signal; -EALREADY = offline.
 * ONLINE: -EALREADY when the memory is online.
 */
struct capi_sim_evacuate {
	__u32 timeout_ms;		/* in: 0 = default (10 s), max 3600000 */
	__u32 reserved;			/* must be 0 */
	__u64 pages_migrated;		/* out */
	__u64 pages_unmoved;		/* out: on -EBUSY, pages that could not move */
};

#define CAPI_SIM_IOC_MAGIC	'C'
#define CAPI_SIM_IOC_INFO	_IOR(CAPI_SIM_IOC_MAGIC, 0, struct capi_sim_info)
#define CAPI_SIM_IOC_RUN	_IOWR(CAPI_SIM_IOC_MAGIC, 1, struct capi_sim_run)
#define CAPI_SIM_IOC_EVACUATE	_IOWR(CAPI_SIM_IOC_MAGIC, 2, struct capi_sim_evacuate)
#define CAPI_SIM_IOC_ONLINE	_IO(CAPI_SIM_IOC_MAGIC, 3)

#endif /* _UAPI_CAPI_SIM_H */
