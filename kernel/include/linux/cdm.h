/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Coherent device memory (CDM) nodes.
 *
 * A CDM node is a CPU-less NUMA node whose memory belongs to a device
 * (accelerator HBM, CXL type 2 memory, ...).  Its memory is onlined into
 * ZONE_MOVABLE only, it is left out of every implicit allocation path and
 * it is reached only by explicit placement (a mempolicy or move_pages(2)
 * naming it, cdm_alloc_pages() in the kernel).  The owning driver can
 * evacuate it at any time.
 *
 * This header is the API for drivers, firmware code and the few callers
 * outside mm/; the hooks only core mm calls are in mm/cdm.h.
 */
#ifndef _LINUX_CDM_H
#define _LINUX_CDM_H

#include <linux/errno.h>
#include <linux/types.h>
#include <linux/nodemask.h>
#include <linux/jump_label.h>

struct device;
struct attribute_group;
struct module;
struct page;
struct pci_bus;

/*
 * Device-tree memory nodes compatible with this are coherent device memory
 * (the binding IBM used on POWER9 for NVLink-attached GPU memory).
 */
#define CDM_DT_COMPATIBLE "ibm,coherent-device-memory"

/* cdm_add_memory(): the range's struct pages live on the device memory. */
#define CDM_MEMMAP_ON_DEVICE	0x1

/*
 * The deadline of an evacuation, in ms, wherever one is asked for (the
 * kernel API, nodeN/cdm/evacuate, drivers' interfaces): 0 means the
 * default; more than the maximum is refused.  There is no "no deadline".
 */
#define CDM_EVACUATE_DEFAULT_MS	10000
#define CDM_EVACUATE_MAX_MS	3600000

/**
 * struct cdm_evacuation - what one cdm_evacuate() did
 * @pages_migrated: base pages migrated off the node (a THP counts as 512)
 * @pages_left: on failure, pages still in use on the node; otherwise 0
 * @duration_ms: time from the start of the evacuation to its end (not
 *	counting the wait for device_hotplug_lock)
 */
struct cdm_evacuation {
	unsigned long pages_migrated;
	unsigned long pages_left;
	unsigned int duration_ms;
};

/**
 * struct cdm_node_ops - what the core needs from the driver of a CDM node
 * @owner: the driver's module.  The core holds it while the node has
 *	memory, so the driver cannot be unloaded under its memory: rmmod
 *	fails ("in use") until the node is evacuated, whoever evacuates it.
 * @online: add the node's memory again with cdm_add_memory(), for
 *	cdm_node_online() (nodeN/cdm/online).  Called with device_hotplug_lock
 *	held, never once cdm_node_unregister() has returned.  Optional:
 *	without it the node cannot be brought back from user space.  It must
 *	not take a lock the driver holds around cdm_node_unregister(), nor
 *	call cdm_node_register() or cdm_node_unregister(): unregistration
 *	waits for it.
 *
 * Evacuation needs nothing from the driver: the core migrates, removes
 * and accounts, however it was asked (nodeN/cdm/evacuate, the driver's
 * own interface, its remove callback).
 */
struct cdm_node_ops {
	struct module *owner;
	int (*online)(int nid, void *data);
};

/**
 * struct cdm_node_stats - a CDM node's memory use and evacuations so far
 * @pages_used: pages in use on the node now (neither free nor on a
 *	per-CPU free list)
 * @evacuations: cdm_evacuate() calls that succeeded
 * @evacuations_failed: those that failed (not counting -EALREADY, -EINVAL)
 * @last: the result of the last one
 */
struct cdm_node_stats {
	unsigned long pages_used;
	unsigned long evacuations;
	unsigned long evacuations_failed;
	struct cdm_evacuation last;
};

/* What a CDM node's memory is doing, for drivers that report it. */
enum cdm_node_state {
	CDM_NODE_OFFLINE,	/* no memory: evacuated, or never added */
	CDM_NODE_ONLINE,	/* memory online */
	CDM_NODE_EVACUATING,	/* an evacuation is running */
	CDM_NODE_FAILED,	/* memory online, the last evacuation failed */
};

#ifdef CONFIG_COHERENT_DEVICE_MEMORY

DECLARE_STATIC_KEY_FALSE(cdm_key);

/* True once a CDM node exists; keeps every hook free until then. */
static __always_inline bool cdm_enabled(void)
{
	return static_branch_unlikely(&cdm_key);
}

static __always_inline bool node_is_cdm(int nid)
{
	return cdm_enabled() && nid >= 0 &&
		node_state(nid, N_COHERENT_DEVICE);
}

int cdm_reserved_node(void);
int cdm_node_register(int nid, struct device *owner,
		      const struct cdm_node_ops *ops, void *data);
void cdm_node_unregister(int nid);
int cdm_add_memory(int nid, u64 start, u64 size, const char *resource_name,
		   unsigned int flags);
int cdm_evacuate(int nid, unsigned int timeout_ms, struct cdm_evacuation *res);
int cdm_device_evacuate(struct device *dev);
int cdm_pci_slot_evacuate(struct pci_bus *bus, unsigned int slot);
int cdm_node_online(int nid);
enum cdm_node_state cdm_node_state(int nid);
void cdm_node_stats(int nid, struct cdm_node_stats *stats);
struct page *cdm_alloc_pages(int nid, gfp_t gfp, unsigned int order);

/* For firmware code, drivers/base and cpuset, see mm/cdm.c. */
extern const struct attribute_group cdm_node_attr_group;
void __init cdm_mark_boot_node(int nid);
void __init arch_cdm_boot_nodes(void);
void __init cdm_early_device_memory(u64 base, u64 size);
int __cdm_online_type(int nid, int online_type);
int __cdm_spread_node(int node, const nodemask_t *mask);

/* Zone a memory block of @nid is onlined to: MMOP_ONLINE_MOVABLE or -EINVAL. */
static inline int cdm_online_type(int nid, int online_type)
{
	return node_is_cdm(nid) ? __cdm_online_type(nid, online_type) :
				  online_type;
}

/* next_node_in() for page cache and slab spreading over cpuset mems. */
static inline int cdm_spread_node(int node, const nodemask_t *mask)
{
	if (cdm_enabled())
		return __cdm_spread_node(node, mask);
	return next_node_in(node, *mask);
}

/*
 * A cpuset.mems change migrates a task's pages from the old to the new
 * nodes by position (cpuset_migrate_mm()).  cpuset.mems says where a task
 * may allocate, not where its pages go: leave CDM nodes out of both masks,
 * so no page is remapped onto a device, and none that a policy or
 * move_pages() put on one is moved off it by the cpuset.
 */
static inline void cdm_cpuset_migrate_masks(nodemask_t *from, nodemask_t *to)
{
	if (!cdm_enabled())
		return;
	nodes_andnot(*from, *from, node_states[N_COHERENT_DEVICE]);
	nodes_andnot(*to, *to, node_states[N_COHERENT_DEVICE]);
}

#else /* !CONFIG_COHERENT_DEVICE_MEMORY */

static inline bool cdm_enabled(void)
{
	return false;
}

static inline bool node_is_cdm(int nid)
{
	return false;
}

static inline int cdm_reserved_node(void)
{
	return NUMA_NO_NODE;
}

static inline int cdm_node_register(int nid, struct device *owner,
				    const struct cdm_node_ops *ops, void *data)
{
	return -EOPNOTSUPP;
}

static inline void cdm_node_unregister(int nid)
{
}

static inline int cdm_add_memory(int nid, u64 start, u64 size,
				 const char *resource_name, unsigned int flags)
{
	return -EOPNOTSUPP;
}

static inline int cdm_evacuate(int nid, unsigned int timeout_ms,
			       struct cdm_evacuation *res)
{
	return -EOPNOTSUPP;
}

static inline int cdm_device_evacuate(struct device *dev)
{
	return 0;
}

static inline int cdm_pci_slot_evacuate(struct pci_bus *bus,
					unsigned int slot)
{
	return 0;
}

static inline int cdm_node_online(int nid)
{
	return -EOPNOTSUPP;
}

static inline enum cdm_node_state cdm_node_state(int nid)
{
	return CDM_NODE_OFFLINE;
}

static inline void cdm_node_stats(int nid, struct cdm_node_stats *stats)
{
	*stats = (struct cdm_node_stats){ };
}

static inline void cdm_mark_boot_node(int nid)
{
}

static inline void cdm_early_device_memory(u64 base, u64 size)
{
}

static inline int cdm_online_type(int nid, int online_type)
{
	return online_type;
}

static inline struct page *cdm_alloc_pages(int nid, gfp_t gfp,
					   unsigned int order)
{
	return NULL;
}

static inline int cdm_spread_node(int node, const nodemask_t *mask)
{
	return next_node_in(node, *mask);
}

static inline void cdm_cpuset_migrate_masks(nodemask_t *from, nodemask_t *to)
{
}

#endif /* CONFIG_COHERENT_DEVICE_MEMORY */
#endif /* _LINUX_CDM_H */
