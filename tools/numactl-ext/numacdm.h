/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libnumacdm - coherent device memory (CDM) nodes for libnuma users.
 *
 * A CDM node is a CPU-less NUMA node whose memory belongs to a device and is
 * isolated from ordinary allocations: the kernel lists it in
 * /sys/devices/system/node/has_coherent_device and gives it a nodeN/cdm/
 * directory.  Memory lands there only through an explicit policy
 * (mbind/set_mempolicy with MPOL_BIND or MPOL_PREFERRED) or move_pages().
 *
 * Every function reports errors errno-style: it returns -1 (int) or NULL
 * (pointer) and sets errno.  Bitmasks are libnuma bitmasks; free them with
 * numa_bitmask_free().
 *
 * Names: everything here starts with numacdm_ (NUMACDM_ for constants), a
 * namespace of its own that libnuma's numa_ functions cannot collide with.
 * The shared library versions its symbols (NUMACDM_1.0); see numacdm(3).
 *
 * All /sys and /proc paths are read below the prefix given by the environment
 * variable CDM_SYSFS_ROOT (default: empty, i.e. the real files), so that tests
 * can point the library at a fake tree.
 */
#ifndef NUMACDM_H
#define NUMACDM_H

#include <stddef.h>
#include <stdint.h>
#include <numa.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NUMACDM_VERSION_MAJOR	1
#define NUMACDM_VERSION_MINOR	0

/*
 * numacdm_available - 1 if the kernel supports CDM nodes (whether or not
 * one exists), 0 if it does not, -1 + errno if that cannot be read.
 */
int numacdm_available(void);

/*
 * numacdm_nodes - every CDM node, whether its memory is online or not.
 * Returns an empty mask (not an error) on a kernel without CDM support.
 */
struct bitmask *numacdm_nodes(void);

/*
 * numacdm_sysram_nodes - nodes with memory that are not CDM nodes: the nodes
 * "all" should mean for ordinary allocations.
 */
struct bitmask *numacdm_sysram_nodes(void);

/* 1 if @node is a CDM node, 0 if not, -1 + errno (EINVAL for node < 0). */
int numacdm_node_is_cdm(int node);

/*
 * numacdm_node_of_device - the CDM node owned by a device.  @name is a PCI
 * address ("0000:00:03.0"; the "0000:" domain may be left out) or a capi_sim
 * misc device name ("capi_sim0", also "/dev/capi_sim0").  Returns the node id,
 * or -1 with errno ENODEV (no such device) or EINVAL (name NULL/empty).
 */
int numacdm_node_of_device(const char *name);

/*
 * numacdm_alloc - @size bytes of anonymous memory bound (MPOL_BIND) to CDM
 * node @node.  Pages are allocated on first touch, on @node only.  NULL with
 * errno EINVAL if @size is 0 or @node is not a CDM node, or the errno of
 * mmap()/mbind() (ENOMEM, ...).
 */
void *numacdm_alloc(size_t size, int node);

/* numacdm_free - release memory from numacdm_alloc(). 0, or -1 + errno. */
int numacdm_free(void *ptr, size_t size);

/* Evacuation state of a CDM node, from nodeN/cdm/evacuation_state. */
enum numacdm_evac_state {
	NUMACDM_EVAC_UNKNOWN = 0,	/* node directory absent (no memory) */
	NUMACDM_EVAC_IDLE,
	NUMACDM_EVAC_RUNNING,
	NUMACDM_EVAC_FAILED,
};

/*
 * What numacdm_node_info() reports.  Set @size to sizeof(struct
 * numacdm_node_info) before the call (NUMACDM_NODE_INFO_INIT does): later
 * versions of the library append fields and fill only those that fit in
 * @size, so a program built against an older header keeps working, and
 * one built against a newer header learns from @size (set on return to
 * the bytes filled) which fields this library knew.
 */
struct numacdm_node_info {
	uint32_t size;		/* in: sizeof(*info); out: bytes filled */
	int node;
	int present;		/* the node has memory (in has_memory) */
	char owner[64];		/* owning device (PCI address) or "none" */
	int emergency_fallback;	/* 0/1, -1 unknown */
	enum numacdm_evac_state evac_state;
	uint64_t pages_migrated;
	uint64_t pages_remaining;
	uint64_t mem_total;	/* bytes, from nodeN/meminfo */
	uint64_t mem_free;
	uint64_t mem_used;
};

#define NUMACDM_NODE_INFO_INIT { .size = sizeof(struct numacdm_node_info) }
/* The size of the first version of the structure, the smallest accepted. */
#define NUMACDM_NODE_INFO_SIZE_1 \
	(offsetof(struct numacdm_node_info, mem_used) + sizeof(uint64_t))

/*
 * numacdm_node_info - read the state of CDM node @node.  A CDM node whose
 * memory is gone has present = 0; if it has no nodeN/ directory either (no
 * driver owns it any more) the counters are 0 and owner is "none".  -1 + errno EINVAL if @node is not a CDM node or
 * info->size is below NUMACDM_NODE_INFO_SIZE_1.
 */
int numacdm_node_info(int node, struct numacdm_node_info *info);

/* Name of an evacuation state: "idle", "running", "failed", "unknown". */
const char *numacdm_evac_state_name(enum numacdm_evac_state s);

/*
 * The prefix in front of /sys and /proc: $CDM_SYSFS_ROOT (read with
 * secure_getenv(), for tests), or "".
 */
const char *numacdm_sysfs_root(void);

/*
 * numacdm_parse_nodelist - parse a kernel nodelist ("1-2,4") into a new
 * bitmask.  An empty string gives an empty mask.  NULL + EINVAL on syntax
 * errors.
 */
struct bitmask *numacdm_parse_nodelist(const char *list);

#ifdef __cplusplus
}
#endif

#endif /* NUMACDM_H */
