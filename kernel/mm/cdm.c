// SPDX-License-Identifier: GPL-2.0
/*
 * Coherent device memory (CDM) nodes.
 *
 * A CDM node is a CPU-less NUMA node whose memory belongs to a device.  The
 * node is named at boot (cdm_nodes=) or registered by its driver before any
 * memory is added to it, and N_COHERENT_DEVICE records it.  The node stays
 * in N_MEMORY and in the root cpuset, so the stock NUMA interfaces reach it,
 * but every path that picks nodes implicitly leaves it out.
 *
 * All the logic lives here; core mm only carries small hooks, which are
 * static-key guarded so that they cost nothing until a CDM node exists.
 */

#define pr_fmt(fmt) "cdm: " fmt

#include <linux/cpumask.h>
#include <linux/cpuset.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/hugetlb.h>
#include <linux/init.h>
#include <linux/ioport.h>
#include <linux/memblock.h>
#include <linux/memory_hotplug.h>
#include <linux/migrate.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/node.h>
#include <linux/pci.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/sysfs.h>
#include <linux/topology.h>
#include <linux/memory.h>
#include <linux/vmstat.h>
#include <linux/jiffies.h>
#include <linux/kernfs.h>
#include <linux/completion.h>
#include <linux/workqueue.h>

#define CREATE_TRACE_POINTS
#include <trace/events/cdm.h>

#include "cdm.h"
#include "internal.h"

#define CDM_MAX_RANGES	8
/* An evacuation holds device_hotplug_lock this long at a time ... */
#define CDM_EVACUATE_SLICE_MS	1000
/* ... and then lets it go this long (see cdm_offline_node()). */
#define CDM_EVACUATE_GAP_MS	50

/* Memory added with cdm_add_memory(). */
struct cdm_range {
	u64 start;
	u64 size;
	int mgid;
	const char *name;
};

enum cdm_evac_state {
	CDM_EVAC_IDLE,
	CDM_EVAC_RUNNING,
	CDM_EVAC_FAILED,
};

/**
 * struct cdm_node - per-node CDM bookkeeping
 * @owner: device that registered the node, or NULL
 * @ops: what the owner's driver does for the core, or NULL
 * @data: the owner's argument to @ops
 * @held_module: the module held while the node has memory (@ops->owner
 *	when the memory was added), or NULL
 * @reserved: named by cdm_nodes=; stays a CDM node without an owner
 * @nr_ranges: number of valid entries in @ranges
 * @ranges: memory added by cdm_add_memory()
 * @state: evacuation state, see enum cdm_evac_state
 * @deadline: of the running evacuation, in jiffies
 * @nr_used: pages in use on the node when the evacuation started
 * @nr_unmoved: pages left on the node by the last failed evacuation
 * @pages_migrated: pages migrated by the running or last evacuation
 * @last_error: what the last evacuation returned
 * @last_ms: how long the last evacuation took
 * @nr_evacuations: evacuations that succeeded
 * @nr_failed: evacuations that failed
 *
 * @owner, @ops, @data and @reserved are protected by cdm_lock and, for
 * @owner, @ops and @data, cdm_ops_rwsem; @ranges, @held_module and the
 * evacuation fields are written under device_hotplug_lock.  The emergency
 * fallback setting lives in cdm_emergency_nodes, which the allocator's
 * slow path reads.  Entries are never freed.
 * @copy_workers: how many CPUs an evacuation copies with; 0: its own and
 *	every other online CPU idle when it starts (see cdm_copy_node())
 */
struct cdm_node {
	struct device *owner;
	const struct cdm_node_ops *ops;
	void *data;
	struct module *held_module;
	bool reserved;
	int nr_ranges;
	struct cdm_range ranges[CDM_MAX_RANGES];
	enum cdm_evac_state state;
	struct task_struct *evacuator;	/* whose offlining the deadline ends */
	unsigned long deadline;
	unsigned long nr_used;
	unsigned long nr_unmoved;
	atomic_long_t pages_migrated;
	int last_error;
	unsigned int last_ms;
	unsigned long nr_evacuations;
	unsigned long nr_failed;
	unsigned int copy_workers;
};

/* Protects cdm_info[] and node ownership. */
static DEFINE_MUTEX(cdm_lock);
/*
 * Held for reading around every call into a driver's cdm_node_ops and for
 * writing while the owner changes: no call reaches a driver once
 * cdm_node_unregister() has returned.  Taken inside device_hotplug_lock.
 */
static DECLARE_RWSEM(cdm_ops_rwsem);
static struct cdm_node *cdm_info[MAX_NUMNODES];
/* Named by cdm_nodes= or by firmware; memblock reads it (see below). */
static nodemask_t cdm_boot_nodes __initdata_memblock;
/* CDM nodes that take movable allocations once RAM reclaim fails. */
static nodemask_t cdm_emergency_nodes;
/* CDM nodes being evacuated: mempolicy allocates around them. */
nodemask_t cdm_evacuating_nodes;
/*
 * CDM nodes with memory that are not being evacuated: where a bind to one
 * node starts, tested on every fault of such a task.  It is the three node
 * states that decide it, kept as one mask so that the fault makes one AND
 * of a word rather than three node-state tests; cdm_update_bind_nodes()
 * recomputes it after any of them changes.
 */
nodemask_t cdm_bind_nodes;
static DEFINE_SPINLOCK(cdm_bind_lock);

struct cdm_zonelists *cdm_zonelists[MAX_NUMNODES];

/* Enabled when the first CDM node appears; node_is_cdm() tests it. */
DEFINE_STATIC_KEY_FALSE(cdm_key);
EXPORT_SYMBOL_GPL(cdm_key);

static struct cdm_node *cdm_node_get(int nid)
{
	lockdep_assert_held(&cdm_lock);
	if (!cdm_info[nid])
		WRITE_ONCE(cdm_info[nid], kzalloc(sizeof(struct cdm_node),
						  GFP_KERNEL));
	return cdm_info[nid];
}

/*
 * Called after N_COHERENT_DEVICE, N_MEMORY or cdm_evacuating_nodes changed.
 * The lock orders the recomputations, so the last one reads the states as
 * the last change left them; the fault path reads the mask without it, as
 * it reads node_states[].
 */
static void cdm_update_bind_nodes(void)
{
	nodemask_t nodes;

	spin_lock(&cdm_bind_lock);
	nodes_and(nodes, node_states[N_COHERENT_DEVICE], node_states[N_MEMORY]);
	nodes_andnot(nodes, nodes, cdm_evacuating_nodes);
	cdm_bind_nodes = nodes;
	spin_unlock(&cdm_bind_lock);
}

/* N_MEMORY changes with the first block onlined or the last offlined. */
static int cdm_bind_nodes_callback(struct notifier_block *nb,
				   unsigned long action, void *arg)
{
	struct memory_notify *mn = arg;

	if ((action == MEM_ONLINE || action == MEM_OFFLINE) &&
	    mn->status_change_nid >= 0)
		cdm_update_bind_nodes();
	return NOTIFY_OK;
}

static void cdm_set_node(int nid)
{
	node_set_state(nid, N_COHERENT_DEVICE);
	cdm_update_bind_nodes();
	static_branch_enable(&cdm_key);
}

/*
 * cdm_nodes=<nodelist> names the node ids that are CDM nodes from boot.
 * Firmware often makes only some of them possible (QEMU: its last node;
 * real machines: one node per CXL window), so they are made possible here
 * and isolated before any driver can add memory to them.
 */
static int __init cdm_nodes_setup(char *str)
{
	nodemask_t mask;

	if (!str || nodelist_parse(str, mask) || nodes_empty(mask)) {
		pr_err("invalid cdm_nodes= list\n");
		return -EINVAL;
	}
	cdm_boot_nodes = mask;
	/*
	 * A named node may have memory at boot.  Firmware NUMA tables are
	 * parsed after the first memblock allocations (page tables, ...):
	 * keep those near the kernel image, as movable_node does.
	 */
	memblock_set_bottom_up(true);
	return 0;
}
early_param("cdm_nodes", cdm_nodes_setup);

/*
 * Architecture code that names CDM nodes from a firmware table it keeps
 * until free_area_init() (x86: cdm_soft_reserved).
 */
void __init __weak arch_cdm_boot_nodes(void)
{
}

/*
 * Called by free_area_init() before nr_node_ids is computed from
 * node_possible_map, so that the node data of the named nodes is allocated
 * like that of any possible, offline node.
 */
void __init cdm_init_possible_nodes(void)
{
	int nid;

	arch_cdm_boot_nodes();
	for_each_node_mask(nid, cdm_boot_nodes) {
		if (!node_possible(nid))
			pr_info("making node %d possible\n", nid);
		node_set(nid, node_possible_map);
		node_set_state(nid, N_COHERENT_DEVICE);
		/* Before the first build_all_zonelists(); slab is not up yet. */
		cdm_zonelists[nid] = memblock_alloc(sizeof(struct cdm_zonelists),
						    SMP_CACHE_BYTES);
		if (!cdm_zonelists[nid])
			pr_err("node %d: no memory for its zonelists, it stays closed\n",
			       nid);
	}
}

/*
 * Boot-time memory of CDM nodes.
 *
 * Firmware may describe device memory as ordinary memory of a node (ACPI
 * SRAT on x86, a device-tree memory node on powerpc and arm64).  When that
 * node is a CDM node the kernel must own nothing there that it cannot
 * migrate, or the device could never be evacuated: memblock never hands out
 * its memory (struct pages, page tables, node data and percpu areas fall
 * back to other nodes), and free_area_init() puts all of it into
 * ZONE_MOVABLE.  Firmware code names such nodes with cdm_mark_boot_node().
 */

/**
 * cdm_mark_boot_node - make a node with boot-time memory a CDM node
 * @nid: a node that firmware describes as coherent device memory
 *
 * For architecture and firmware code that parses the NUMA description.  It
 * must run before memblock allocates node data, i.e. while the firmware
 * NUMA tables are being parsed.
 */
void __init cdm_mark_boot_node(int nid)
{
	if (nid < 0 || nid >= MAX_NUMNODES)
		return;
	if (!node_isset(nid, cdm_boot_nodes))
		pr_info("node %d: firmware describes coherent device memory\n",
			nid);
	node_set(nid, cdm_boot_nodes);
}

/**
 * cdm_early_device_memory - firmware saw device memory before NUMA parsing
 * @base: physical start of the range
 * @size: its size in bytes
 *
 * For the early memory scan of the flattened device tree, which runs
 * before the first memblock allocation and long before the range's node is
 * known: allocate bottom-up, near the kernel image, until then.
 */
void __init cdm_early_device_memory(u64 base, u64 size)
{
	pr_info("[mem %#018llx-%#018llx] is coherent device memory\n",
		base, base + size - 1);
	memblock_set_bottom_up(true);
}

/* memblock: never allocate from a free range of a boot-time CDM node. */
bool __init_memblock cdm_memblock_skip(int nid)
{
	return nid >= 0 && nid < MAX_NUMNODES &&
		node_isset(nid, cdm_boot_nodes);
}

/*
 * hugetlb_cma= without a node spreads its size over the online nodes; a
 * boot-time CDM node refuses its share (memblock skips it), so divide by the
 * RAM nodes alone or that share is lost.  A CMA area on a CDM node would
 * also block its evacuation for good: hugetlb_cma=<cdm node>:size is refused.
 */
unsigned int __init cdm_nr_boot_ram_nodes(void)
{
	nodemask_t ram;

	nodes_andnot(ram, node_states[N_ONLINE], cdm_boot_nodes);
	return max(nodes_weight(ram), 1);
}

/*
 * find_zone_movable_pfns_for_nodes(): ZONE_MOVABLE of a boot-time CDM node
 * starts at its first page, whatever kernelcore= or movable_node say.
 */
void __init cdm_boot_zone_movable(unsigned long *zone_movable_pfn)
{
	unsigned long start_pfn, end_pfn;
	int i, nid;

	for_each_node_mask(nid, cdm_boot_nodes) {
		get_pfn_range_for_nid(nid, &start_pfn, &end_pfn);
		if (start_pfn < end_pfn)
			zone_movable_pfn[nid] = start_pfn;
		/*
		 * offline_pages() refuses memory blocks with holes: a range
		 * that does not fill its sections can never be evacuated.
		 */
		for_each_mem_pfn_range(i, nid, &start_pfn, &end_pfn, NULL)
			if (!IS_ALIGNED(start_pfn | end_pfn, PAGES_PER_SECTION))
				pr_warn("node %d: [mem %#018llx-%#018llx] does not fill whole memory sections; the node cannot be evacuated\n",
					nid, PFN_PHYS(start_pfn),
					PFN_PHYS(end_pfn) - 1);
	}
}

static int __init cdm_init(void)
{
	unsigned int cpu;
	int nid;

	mutex_lock(&cdm_lock);
	for_each_node_mask(nid, cdm_boot_nodes) {
		struct cdm_node *cn = cdm_node_get(nid);

		if (cn)
			cn->reserved = true;
		pr_info("node %d is a coherent device memory node\n", nid);
	}
	mutex_unlock(&cdm_lock);

	for_each_possible_cpu(cpu)
		if (node_state(cpu_to_node(cpu), N_COHERENT_DEVICE))
			pr_warn("node %d has CPU %u: CDM nodes should be CPU-less\n",
				cpu_to_node(cpu), cpu);

	/* Boot-time CDM memory is online already, hot-added memory is not. */
	cdm_update_bind_nodes();
	hotplug_memory_notifier(cdm_bind_nodes_callback, DEFAULT_CALLBACK_PRI);
	if (!nodes_empty(node_states[N_COHERENT_DEVICE]))
		static_branch_enable(&cdm_key);
	return 0;
}
early_initcall(cdm_init);

/**
 * cdm_reserved_node - find a free node id named by cdm_nodes=
 *
 * Return: the first node named on the command line that has neither memory
 * nor an owner, or %NUMA_NO_NODE.
 */
int cdm_reserved_node(void)
{
	int nid, ret = NUMA_NO_NODE;

	mutex_lock(&cdm_lock);
	for_each_node_state(nid, N_COHERENT_DEVICE) {
		struct cdm_node *cn = cdm_info[nid];

		if (cn && cn->reserved && !cn->owner &&
		    !node_state(nid, N_MEMORY)) {
			ret = nid;
			break;
		}
	}
	mutex_unlock(&cdm_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_reserved_node);

/**
 * cdm_node_register - claim a node as a CDM node
 * @nid: a possible, CPU-less node id
 * @owner: the device whose memory the node will hold
 * @ops: what the driver does for the core (see struct cdm_node_ops), or NULL
 * @data: passed to @ops
 *
 * Must be called before memory is added to @nid, so that the node is
 * isolated from the first page on.  Once its memory is added the node
 * stays online, with its nodeN/cdm/ directory, until the owner
 * unregisters it: evacuated, it is a memory-less node that
 * nodeN/cdm/online brings back.
 *
 * Return: 0 on success; -EINVAL if @nid is not possible or has CPUs;
 * -EBUSY if it already has memory or an owner; -ENOMEM.
 */
int cdm_node_register(int nid, struct device *owner,
		      const struct cdm_node_ops *ops, void *data)
{
	struct cdm_node *cn;
	int ret = 0;

	if (nid < 0 || nid >= MAX_NUMNODES || !node_possible(nid) || !owner)
		return -EINVAL;
	if (node_state(nid, N_CPU) || !cpumask_empty(cpumask_of_node(nid)))
		return -EINVAL;

	down_write(&cdm_ops_rwsem);
	mutex_lock(&cdm_lock);
	cn = cdm_node_get(nid);
	if (cn && !cdm_zonelists[nid])
		WRITE_ONCE(cdm_zonelists[nid],
			   kzalloc(sizeof(*cdm_zonelists[nid]), GFP_KERNEL));
	if (!cn || !cdm_zonelists[nid]) {
		ret = -ENOMEM;
	} else if (cn->owner || node_state(nid, N_MEMORY)) {
		ret = -EBUSY;
	} else {
		cn->owner = get_device(owner);
		cn->ops = ops;
		cn->data = data;
		cdm_set_node(nid);
	}
	mutex_unlock(&cdm_lock);
	up_write(&cdm_ops_rwsem);
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_node_register);

/**
 * cdm_node_unregister - drop the ownership of a CDM node
 * @nid: node registered with cdm_node_register()
 *
 * The node must have no memory left (see cdm_evacuate()).  A node named by
 * cdm_nodes= stays a CDM node; a node registered at run time becomes an
 * ordinary (memory-less) node again.  Either way it goes offline, as any
 * node whose memory is gone, unless memory blocks of it remain (offline
 * memory present at boot).  No cdm_node_ops call runs once this returns,
 * even when it refuses because the node has memory again (it warns; the
 * memory can still be evacuated through nodeN/cdm/evacuate).  May be
 * called from a driver's remove callback, with or without
 * device_hotplug_lock held.
 */
void cdm_node_unregister(int nid)
{
	struct cdm_node *cn;
	bool released = false;

	if (nid < 0 || nid >= MAX_NUMNODES)
		return;

	down_write(&cdm_ops_rwsem);
	mutex_lock(&cdm_lock);
	cn = cdm_info[nid];
	if (!cn || !cn->owner) {
		pr_warn("node %d: unregister without owner\n", nid);
		goto out;
	}
	/* The driver is going: no callback may reach it any more. */
	cn->ops = NULL;
	cn->data = NULL;
	if (node_state(nid, N_MEMORY) || cn->nr_ranges) {
		pr_warn("node %d: unregister with memory present, keeping owner\n",
			nid);
	} else {
		put_device(cn->owner);
		WRITE_ONCE(cn->owner, NULL);
		node_clear(nid, cdm_emergency_nodes);
		if (!cn->reserved) {
			node_clear_state(nid, N_COHERENT_DEVICE);
			cdm_update_bind_nodes();
		}
		released = true;
	}
out:
	mutex_unlock(&cdm_lock);
	up_write(&cdm_ops_rwsem);

	/*
	 * Kept online while owned (see cdm_node_owned()): offline it now.
	 * mem_hotplug_lock, not device_hotplug_lock, which a remove
	 * callback may not take; it orders this against memory hot-add.
	 * Outside cdm_lock: removing nodeN/ waits for its sysfs writers.
	 */
	if (released && node_online(nid)) {
		mem_hotplug_begin();
		try_offline_node(nid);
		mem_hotplug_done();
	}
}
EXPORT_SYMBOL_GPL(cdm_node_unregister);

bool __cdm_node_owned(int nid)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[nid]);

	return cn && READ_ONCE(cn->owner);
}

/*
 * Memory of a CDM node is onlined into ZONE_MOVABLE only: slab, page tables
 * and other unmovable kernel memory must never land there, or the device
 * could not be evacuated.  "online" (and auto-onlining) picks ZONE_MOVABLE;
 * "online_kernel" is refused.
 */
int __cdm_online_type(int nid, int online_type)
{
	switch (online_type) {
	case MMOP_ONLINE:
	case MMOP_ONLINE_MOVABLE:
		return MMOP_ONLINE_MOVABLE;
	default:
		pr_warn_ratelimited("node %d: coherent device memory can only be onlined to ZONE_MOVABLE\n",
				    nid);
		return -EINVAL;
	}
}

/*
 * Zonelists.  build_zonelists() calls these with zonelist_update_seq held
 * for writing.  The node state is tested directly, not through the static
 * key: the boot-time zonelists are built before initcalls run.
 *
 * No zonelist in any pglist_data holds a CDM zone: a CDM node's own
 * fallback list is system RAM by distance and
 * its __GFP_THISNODE list is empty.  Whatever way an allocation picks its
 * node - a loop over N_MEMORY or mems_allowed, an interleave or spread, a
 * kernel thread on the node - it gets RAM or nothing.  Only the zonelists
 * in struct cdm_zonelists reach the node, and cdm_alloc_zonelist() hands
 * them out to callers whose nodemask names it.
 */
void cdm_build_zonelist_mask(int local_node, nodemask_t *used_mask)
{
	nodes_or(*used_mask, *used_mask, node_states[N_COHERENT_DEVICE]);
}

/* A zonelist's entries up to and including its terminator. */
static int cdm_zonerefs_len(const struct zoneref *z)
{
	int n = 0;

	while (z[n].zone)
		n++;
	return n + 1;
}

/*
 * Memory cgroup reclaim walks the current node's fallback zonelist to press
 * on every node a cgroup's pages can be on.  That list holds no CDM zone,
 * so pages a cgroup keeps on a CDM node would be charged to it but never
 * reclaimed by it: a job bound to a device that reads more files than its
 * memory.max would be OOM-killed with reclaimable page cache there.  This
 * list is every populated zone of every online node, CDM nodes included.
 * Rebuilt in place with the other zonelists: like theirs, its entries are
 * always zones that exist, so a reclaimer walking it meanwhile at worst
 * visits a node twice or misses one.
 */
static struct zonelist cdm_reclaim_list;

static void cdm_build_reclaim_zonelist(void)
{
	struct zoneref *z = cdm_reclaim_list._zonerefs;
	int nid, nr = 0;

	for_each_online_node(nid)
		nr += build_zonerefs_node(NODE_DATA(nid), z + nr);
	z[nr].zone = NULL;
	z[nr].zone_idx = 0;
}

struct zonelist *__cdm_reclaim_zonelist(struct zonelist *zonelist)
{
	return READ_ONCE(cdm_reclaim_list._zonerefs[0].zone) ?
		&cdm_reclaim_list : zonelist;
}

/*
 * Instead of build_thisnode_zonelists() for a CDM node: build its explicit
 * lists and leave its own __GFP_THISNODE list empty.  Return: false if
 * @pgdat is not a CDM node.
 */
bool cdm_build_zonelists(pg_data_t *pgdat)
{
	int nid = pgdat->node_id;
	struct cdm_zonelists *czl = cdm_zonelists[nid];
	struct zoneref *closed, *fb, *nofb;
	nodemask_t named, ram;
	int nr, i;

	cdm_build_reclaim_zonelist();
	if (!node_state(nid, N_COHERENT_DEVICE))
		return false;

	pgdat->node_zonelists[ZONELIST_NOFALLBACK]._zonerefs[0].zone = NULL;
	pgdat->node_zonelists[ZONELIST_NOFALLBACK]._zonerefs[0].zone_idx = 0;
	if (!czl)
		return true;

	closed = pgdat->node_zonelists[ZONELIST_FALLBACK]._zonerefs;
	fb = czl->zonelists[ZONELIST_FALLBACK]._zonerefs;
	nofb = czl->zonelists[ZONELIST_NOFALLBACK]._zonerefs;
	nr = build_zonerefs_node(pgdat, nofb);
	nofb[nr].zone = NULL;
	nofb[nr].zone_idx = 0;
	memcpy(fb, nofb, nr * sizeof(*fb));
	memcpy(fb + nr, closed, cdm_zonerefs_len(closed) * sizeof(*fb));

	/* Whole masks at once: the allocator reads them without a lock. */
	nodes_clear(ram);
	for (i = 0; closed[i].zone; i++)
		node_set(zonelist_node_idx(&closed[i]), ram);
	named = ram;
	node_set(nid, named);
	czl->named = named;
	czl->ram = ram;
	return true;
}

/*
 * The gate's other side (cdm_open_zonelist() opens the explicit zonelists
 * to a nodemask naming the node): anything else keeps the node's own lists
 * (system RAM, or nothing for __GFP_THISNODE) and is counted in
 * cdm_alloc_refused.
 */
bool __cdm_refuse_zonelist(gfp_t gfp, const nodemask_t *mask)
{
	/* A caller that narrowed the nodes itself did not ask for this one. */
	if (!mask || (gfp & __GFP_THISNODE))
		count_vm_event(CDM_ALLOC_REFUSED);
	return !(gfp & __GFP_THISNODE);
}

/*
 * A task whose cpuset allows CDM nodes and no other node with memory: the
 * administrator named those nodes, as a bind policy names them.  Without
 * this its user pages find no zone at all (no RAM node's zonelist holds a
 * CDM zone), and a page fault retries forever ("VM_FAULT_OOM leaked out").
 * Such a cpuset is one of movable nodes only, which the cpuset code already
 * warns about (check_insane_mems_config(), which also enables the static
 * key that brings allocations here), and it now behaves as such a cpuset
 * does on a kernel without CDM nodes: movable user pages go to its nodes,
 * the others fail.  The zonelist is that of the allowed CDM node with the
 * most free memory, one not being evacuated; the cpuset's mask still
 * filters every zone in it.  A cpuset that allows a RAM node is left alone:
 * its tasks place pages on a CDM node only with a policy.
 */
void __cdm_cpuset_zonelist(struct zonelist **zonelist, gfp_t gfp)
{
	unsigned long free, most = 0;
	struct cdm_zonelists *czl;
	int nid, best = NUMA_NO_NODE;

	if (!in_task())
		return;
	for_each_node_mask(nid, cpuset_current_mems_allowed) {
		if (!node_state(nid, N_MEMORY))
			continue;
		if (!node_is_cdm(nid))
			return;
		if (node_isset(nid, cdm_evacuating_nodes))
			continue;
		free = zone_page_state(&NODE_DATA(nid)->node_zones[ZONE_MOVABLE],
				       NR_FREE_PAGES);
		if (best == NUMA_NO_NODE || free > most) {
			best = nid;
			most = free;
		}
	}
	if (best == NUMA_NO_NODE)
		return;
	czl = READ_ONCE(cdm_zonelists[best]);
	if (czl)
		*zonelist = &czl->zonelists[gfp_zonelist(gfp)];
}

/* A policy that names CDM node @nid without a nodemask of its own. */
nodemask_t *__cdm_named_nodemask(int nid)
{
	struct cdm_zonelists *czl = READ_ONCE(cdm_zonelists[nid]);

	if (!czl)
		return NULL;
	return node_isset(nid, cdm_evacuating_nodes) ? &czl->ram : &czl->named;
}

/* The zonelist the hugetlb pool is searched in: as the page allocator. */
struct zonelist *__cdm_node_zonelist(struct zonelist *zonelist, int nid,
				     gfp_t gfp, const nodemask_t *mask)
{
	cdm_explicit_zonelist(&zonelist, nid, gfp, mask);
	return zonelist;
}

/*
 * Free and page-cache pages on CDM nodes: memory that no allocation without
 * explicit placement can get.  MemAvailable estimates what a new
 * application can use and the dirty limits bound page cache in the memory
 * it can use, so both leave these out; MemTotal and MemFree keep counting
 * the node, as /sys/devices/system/node/nodeN/meminfo does.
 */
unsigned long __cdm_private_pages(void)
{
	unsigned long pages = 0;
	int nid;

	for_each_node_state(nid, N_COHERENT_DEVICE) {
		if (!node_state(nid, N_MEMORY))
			continue;
		pages += sum_zone_node_page_state(nid, NR_FREE_PAGES);
		pages += node_page_state(NODE_DATA(nid), NR_ACTIVE_FILE);
		pages += node_page_state(NODE_DATA(nid), NR_INACTIVE_FILE);
	}
	return pages;
}

/**
 * cdm_alloc_pages - allocate pages on a CDM node for its driver
 * @nid: the node
 * @gfp: allocation flags; device memory is ZONE_MOVABLE only, so the pages
 *	must be movable (GFP_HIGHUSER_MOVABLE) for the node to be eligible
 * @order: allocation order
 *
 * The one way for kernel code to place pages on a CDM node: it names the
 * node in the nodemask the page allocator is given, which is what opens a
 * CDM node.  Pages come from @nid only (__GFP_THISNODE).  Works for any
 * node, CDM or not.
 *
 * Return: the first page, or NULL.
 */
struct page *cdm_alloc_pages(int nid, gfp_t gfp, unsigned int order)
{
	nodemask_t mask;

	if (nid < 0 || nid >= MAX_NUMNODES || !node_online(nid))
		return NULL;
	nodes_clear(mask);
	node_set(nid, mask);
	return __alloc_pages_noprof(gfp | __GFP_THISNODE, order, nid, &mask);
}
EXPORT_SYMBOL_GPL(cdm_alloc_pages);

/*
 * Hot-add and evacuation.  Both may be called from a driver's probe or
 * remove callback, which runs with device_hotplug_lock held when the PCI
 * device is hot-plugged through ACPI: take the lock only if the caller
 * does not hold it already.
 */
static bool cdm_lock_device_hotplug(void)
{
	if (device_hotplug_lock_held())
		return false;
	lock_device_hotplug();
	return true;
}

/*
 * The owner's module is held while its node has memory: unloading the
 * driver would leave memory no one could evacuate.  Called under
 * device_hotplug_lock by the owner's own cdm_add_memory() or by an
 * evacuation, which the owner's unregistration cannot race with (the node
 * has memory until the evacuation ends).  The module held is remembered:
 * ops may change before it is let go.
 */
static void cdm_hold_module(struct cdm_node *cn, bool hold)
{
	const struct cdm_node_ops *ops = READ_ONCE(cn->ops);

	if (!hold) {
		if (cn->held_module)
			module_put(cn->held_module);
		cn->held_module = NULL;
	} else if (!cn->held_module && ops && ops->owner &&
		   try_module_get(ops->owner)) {
		cn->held_module = ops->owner;
	}
}

/*
 * Pages in use on @nid: managed pages that are neither free in the buddy
 * allocator (the per-CPU vmstat deltas folded in) nor free on a per-CPU
 * page list.  A racy snapshot, as meminfo is.
 */
static unsigned long cdm_node_used_pages(int nid)
{
	unsigned long used = 0;
	pg_data_t *pgdat;
	int i, cpu;

	/* Offlining frees the per-CPU lists (zone_pcp_reset()). */
	get_online_mems();
	if (!node_state(nid, N_MEMORY))
		goto out;
	pgdat = NODE_DATA(nid);
	for (i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *zone = &pgdat->node_zones[i];
		unsigned long managed = zone_managed_pages(zone);
		unsigned long free = zone_page_state_snapshot(zone, NR_FREE_PAGES);

		if (!managed)
			continue;
		for_each_online_cpu(cpu)
			free += READ_ONCE(per_cpu_ptr(zone->per_cpu_pageset,
						      cpu)->count);
		if (managed > free)
			used += managed - free;
	}
out:
	put_online_mems();
	return used;
}

/*
 * Pages of @nid an evacuation must migrate: free hugetlb pages dissolve,
 * but those that reservations need are replaced in RAM (cdm_hugetlb_replace()).
 */
static unsigned long cdm_pages_to_migrate(int nid)
{
	unsigned long used = cdm_node_used_pages(nid);
#ifdef CONFIG_HUGETLB_PAGE
	struct hstate *h;

	for_each_hstate(h) {
		unsigned long free_node = READ_ONCE(h->free_huge_pages_node[nid]);
		unsigned long free_all = READ_ONCE(h->free_huge_pages);
		unsigned long resv = READ_ONCE(h->resv_huge_pages);
		unsigned long free_elsewhere, replaced = 0;

		/* read without hugetlb_lock: the counts need not agree */
		free_elsewhere = free_all > free_node ? free_all - free_node : 0;
		free_node = min(free_node, free_all);
		if (resv > free_elsewhere)
			replaced = min(free_node, resv - free_elsewhere);
		used -= min(used, (free_node - replaced) * pages_per_huge_page(h));
	}
#endif
	return used;
}

/*
 * Pages system RAM can take without the OOM killer: free pages above the
 * high watermarks, page cache (reclaim writes back and drops it), and
 * anonymous memory that fits in free swap.
 */
static unsigned long cdm_ram_room(void)
{
	unsigned long room = 0, anon = 0;
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		pg_data_t *pgdat = NODE_DATA(nid);
		struct zone *zone;

		if (node_is_cdm(nid))
			continue;
		for (zone = pgdat->node_zones;
		     zone < pgdat->node_zones + MAX_NR_ZONES; zone++) {
			unsigned long free = zone_page_state(zone, NR_FREE_PAGES);

			if (populated_zone(zone) && free > high_wmark_pages(zone))
				room += free - high_wmark_pages(zone);
		}
		room += node_page_state(pgdat, NR_ACTIVE_FILE) +
			node_page_state(pgdat, NR_INACTIVE_FILE);
		anon += node_page_state(pgdat, NR_ACTIVE_ANON) +
			node_page_state(pgdat, NR_INACTIVE_ANON);
	}
	return room + min_t(unsigned long, anon, max(get_nr_swap_pages(), 0L));
}

static int cdm_online_block(struct memory_block *mem, void *arg)
{
	int ret;

	if (mem->state == MEM_ONLINE)
		return 0;
	mem->online_type = MMOP_ONLINE_MOVABLE;
	ret = device_online(&mem->dev);
	return ret < 0 ? ret : 0;
}

/* Memory blocks offlined by one cdm_offline_range() call. */
struct cdm_walk {
	int nid;
	unsigned int nr;
	unsigned int max;
	unsigned long *sections;
};

static int cdm_offline_block(struct memory_block *mem, void *arg)
{
	struct cdm_walk *w = arg;
	unsigned int i;
	int ret;

	if (mem->nid != w->nid || mem->state != MEM_ONLINE)
		return 0;
	/* Onlined again by someone else between two slices: once is enough. */
	for (i = 0; i < w->nr; i++)
		if (w->sections[i] == mem->start_section_nr)
			break;
	/* Never offline a block that could not be onlined again on failure. */
	if (i == w->nr && w->nr >= w->max)
		return -ENOMEM;
	ret = device_offline(&mem->dev);
	if (ret < 0)
		return ret;
	if (!ret && i == w->nr)
		w->sections[w->nr++] = mem->start_section_nr;
	return 0;
}

/* Re-online the blocks offlined by a failed cdm_offline_range(). */
static void cdm_reonline(struct cdm_walk *w)
{
	while (w->nr) {
		struct memory_block *mem;

		mem = find_memory_block(w->sections[--w->nr]);
		if (!mem)
			continue;
		if (cdm_online_block(mem, NULL))
			pr_err("node %d: failed to re-online memory block %u\n",
			       w->nid, mem->dev.id);
		put_device(&mem->dev);
	}
}

/* Room for every memory block of [@start, @start + @size). */
static int cdm_walk_init(struct cdm_walk *w, int nid, u64 start, u64 size)
{
	u64 bs = memory_block_size_bytes();

	w->nid = nid;
	w->nr = 0;
	w->max = (ALIGN(start + size, bs) - ALIGN_DOWN(start, bs)) / bs;
	w->sections = kcalloc(w->max, sizeof(*w->sections), GFP_KERNEL);
	return w->sections ? 0 : -ENOMEM;
}

/*
 * Offline every online memory block of @nid in [@start, @start + @size).
 * All or nothing: on failure the blocks offlined so far are onlined again.
 */
static int cdm_offline_range(int nid, u64 start, u64 size)
{
	struct cdm_walk w;
	int ret;

	if (!size)
		return 0;
	ret = cdm_walk_init(&w, nid, start, size);
	if (ret)
		return ret;
	ret = walk_memory_blocks(start, size, &w, cdm_offline_block);
	if (ret)
		cdm_reonline(&w);
	kfree(w.sections);
	return ret;
}

/*
 * Offline the online blocks of [@start, @start + @size): the second block
 * first, the first block last.  Each block offlined makes
 * set_zone_contiguous() walk the zone pageblock by pageblock up to its
 * first hole.  In address order there is none, so each walk covers the rest
 * of the node, and evacuating an empty node costs the square of its size
 * (67 s for an empty 64 GiB node on the lockdep test kernel under TCG, 38 s
 * without that walk).  With the second block gone first, each walk ends
 * after the first block, and the node's span shrinks only at its end.
 */
static int cdm_offline_blocks(u64 start, u64 size, struct cdm_walk *w)
{
	u64 bs = memory_block_size_bytes();
	u64 first = ALIGN_DOWN(start, bs), end = start + size;
	int ret;

	if (end - first < 3 * bs)
		return walk_memory_blocks(start, size, w, cdm_offline_block);
	ret = walk_memory_blocks(first + bs, bs, w, cdm_offline_block);
	if (!ret)
		ret = walk_memory_blocks(first + 2 * bs, end - first - 2 * bs,
					 w, cdm_offline_block);
	if (!ret)
		ret = walk_memory_blocks(first, bs, w, cdm_offline_block);
	return ret;
}

/*
 * Offline every memory block of an evacuating node, until @deadline.  All
 * or nothing, as cdm_offline_range().  When @sliced (cdm_evacuate() took
 * device_hotplug_lock itself) the lock is held for one slice of
 * CDM_EVACUATE_SLICE_MS at a time: a page that stays pinned must not stop
 * memory hotplug elsewhere, or other nodes' evacuations, for the whole
 * timeout.  Blocks offlined stay offline between slices, and the node
 * stays marked evacuating, so allocations keep away from it and nothing
 * else brings it back or evacuates it meanwhile.
 */
static int cdm_offline_node(int nid, struct cdm_node *cn,
			    unsigned long deadline, bool sliced)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	u64 start = PFN_PHYS(pgdat->node_start_pfn);
	u64 size = PFN_PHYS(pgdat->node_spanned_pages);
	struct cdm_walk w;
	int ret;

	if (!size)
		return 0;
	ret = cdm_walk_init(&w, nid, start, size);
	if (ret)
		return ret;
	for (;;) {
		unsigned long slice = jiffies +
			msecs_to_jiffies(CDM_EVACUATE_SLICE_MS);

		WRITE_ONCE(cn->deadline, sliced && time_before(slice, deadline) ?
			   slice : deadline);
		/* Offlining shrinks the span: only what is left is walked. */
		start = PFN_PHYS(pgdat->node_start_pfn);
		size = PFN_PHYS(pgdat->node_spanned_pages);
		ret = size ? cdm_offline_blocks(start, size, &w) : 0;
		if (ret != -ETIMEDOUT || !sliced || !time_before(jiffies, deadline))
			break;
		unlock_device_hotplug();
		/*
		 * Long enough for a lock_device_hotplug_sysfs() caller, which
		 * retries every 5 ms by trylock, to get the lock.
		 */
		msleep_interruptible(CDM_EVACUATE_GAP_MS);
		lock_device_hotplug();
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
	}
	if (ret)
		cdm_reonline(&w);
	kfree(w.sections);
	return ret;
}

/*
 * add_memory_driver_managed() with device_hotplug_lock held: a driver
 * probe run from an ACPI hot-add holds it already.
 */
static int cdm_add_memory_resource(int mgid, u64 start, u64 size,
				   const char *name, mhp_t mhp_flags)
{
	struct resource *res;
	int ret;

	if (!mhp_range_allowed(start, size, true))
		return -E2BIG;
	res = __request_region(&iomem_resource, start, size, name,
			       IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY |
			       IORESOURCE_SYSRAM_DRIVER_MANAGED);
	if (!res)
		return -EEXIST;
	ret = add_memory_resource(mgid, res, MHP_NID_IS_MGID | mhp_flags);
	if (ret) {
		release_resource(res);
		kfree(res);
	}
	return ret;
}

/**
 * cdm_add_memory - hot-add device memory to a CDM node
 * @nid: a CDM node the caller registered with cdm_node_register()
 * @start: physical start, memory block aligned
 * @size: size in bytes, memory block aligned
 * @resource_name: "System RAM (<driver>)", as for add_memory_driver_managed()
 * @flags: CDM_MEMMAP_ON_DEVICE or 0
 *
 * Registers a static memory group for the range, adds it as driver-managed
 * System RAM and onlines every memory block into ZONE_MOVABLE.  All or
 * nothing: on failure no part of the range stays added, except when
 * onlining failed and the blocks already onlined could not be offlined
 * again: then the range stays, and an evacuation removes it.  Memory is
 * added only to a node a driver owns: the node's memory then always has
 * someone to bring it back (cdm_node_ops) and a driver whose unregister
 * takes the node offline.
 *
 * With CDM_MEMMAP_ON_DEVICE the struct pages of each memory block live at
 * the start of the block itself (the memmap_on_memory mechanism), so adding
 * device memory costs system RAM almost nothing instead of 16 MiB per GiB;
 * the price is that the kernel reads and writes those struct pages at the
 * device's latency.  They leave with the block when it is removed.
 *
 * Return: 0 on success, -EINVAL for a bad or unowned node, range or flag,
 * -EOPNOTSUPP for CDM_MEMMAP_ON_DEVICE when memory_hotplug.memmap_on_memory
 * is off (or the architecture cannot), -ENOSPC when the node already holds
 * CDM_MAX_RANGES ranges, -EBUSY while the node is being evacuated, or the
 * error of the hot-add or of onlining.
 */
int cdm_add_memory(int nid, u64 start, u64 size, const char *resource_name,
		   unsigned int flags)
{
	struct cdm_node *cn;
	struct cdm_range *r;
	bool unlock;
	char *name;
	int mgid, ret;

	if (nid < 0 || nid >= MAX_NUMNODES || !node_is_cdm(nid) ||
	    (flags & ~CDM_MEMMAP_ON_DEVICE))
		return -EINVAL;
	if ((flags & CDM_MEMMAP_ON_DEVICE) && !mhp_supports_memmap_on_memory())
		return -EOPNOTSUPP;
	cn = READ_ONCE(cdm_info[nid]);
	if (!cn || !READ_ONCE(cn->owner) || !size ||
	    !IS_ALIGNED(start | size, memory_block_size_bytes()))
		return -EINVAL;
	if (!resource_name ||
	    strstr(resource_name, "System RAM (") != resource_name ||
	    resource_name[strlen(resource_name) - 1] != ')')
		return -EINVAL;
	/* The resource keeps pointing at its name. */
	name = kstrdup(resource_name, GFP_KERNEL);
	if (!name)
		return -ENOMEM;

	unlock = cdm_lock_device_hotplug();
	if (READ_ONCE(cn->state) == CDM_EVAC_RUNNING) {
		ret = -EBUSY;	/* between two slices of an evacuation */
		goto out;
	}
	if (cn->nr_ranges == CDM_MAX_RANGES) {
		ret = -ENOSPC;
		goto out;
	}
	mgid = memory_group_register_static(nid, PFN_UP(size));
	if (mgid < 0) {
		ret = mgid;
		goto out;
	}
	ret = cdm_add_memory_resource(mgid, start, size, name,
				      flags & CDM_MEMMAP_ON_DEVICE ?
				      MHP_MEMMAP_ON_MEMORY : MHP_NONE);
	if (ret)
		goto out_group;

	ret = walk_memory_blocks(start, size, NULL, cdm_online_block);
	if (ret) {
		pr_warn("node %d: onlining [mem %#llx-%#llx] failed: %d\n",
			nid, start, start + size - 1, ret);
		if (cdm_offline_range(nid, start, size)) {
			/* Cannot undo; keep it so cdm_evacuate() can retry. */
			goto keep;
		}
		__remove_memory(start, size);
		goto out_group;
	}
	ret = 0;
keep:
	r = &cn->ranges[cn->nr_ranges++];
	r->start = start;
	r->size = size;
	r->mgid = mgid;
	r->name = name;
	name = NULL;
	cdm_hold_module(cn, true);
	goto out;
out_group:
	memory_group_unregister(mgid);
out:
	if (unlock)
		unlock_device_hotplug();
	kfree(name);
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_add_memory);

static unsigned long cdm_pages_remaining(struct cdm_node *cn)
{
	unsigned long migrated = atomic_long_read(&cn->pages_migrated);

	switch (READ_ONCE(cn->state)) {
	case CDM_EVAC_RUNNING:
		return cn->nr_used > migrated ? cn->nr_used - migrated : 0;
	case CDM_EVAC_FAILED:
		return cn->nr_unmoved;
	default:
		return 0;
	}
}

/* Record what an evacuation did, for nodeN/cdm/ and for the caller. */
static void cdm_evacuation_done(int nid, struct cdm_node *cn, int ret,
				unsigned long start_jiffies,
				struct cdm_evacuation *res)
{
	WRITE_ONCE(cn->last_error, ret);
	WRITE_ONCE(cn->last_ms, jiffies_to_msecs(jiffies - start_jiffies));
	if (ret) {
		cn->nr_unmoved = cdm_node_used_pages(nid);
		WRITE_ONCE(cn->nr_failed, cn->nr_failed + 1);
		WRITE_ONCE(cn->state, CDM_EVAC_FAILED);
		count_vm_event(CDM_EVACUATIONS_FAILED);
	} else {
		WRITE_ONCE(cn->state, CDM_EVAC_IDLE);
		WRITE_ONCE(cn->nr_evacuations, cn->nr_evacuations + 1);
		cdm_hold_module(cn, false);
	}
	if (res) {
		res->pages_migrated = atomic_long_read(&cn->pages_migrated);
		res->pages_left = ret ? cn->nr_unmoved : 0;
		res->duration_ms = cn->last_ms;
	}
}

/*
 * An evacuation's copy, before its blocks are offlined.  Offlining migrates
 * a block's pages on the evacuating CPU alone while every other CPU idles,
 * and under mem_hotplug_lock.  Instead, the evacuating task and one worker
 * per other CPU that is idle when the copy starts (or as many as
 * nodeN/cdm/copy_workers says) first migrate the node's pages to RAM,
 * each taking the node's next unclaimed stripe until none is left (a CPU
 * that is slower for any reason takes fewer), in passes of at most
 * CDM_OFFLINE_BATCH_PAGES pages or one large folio, as offlining's own (a
 * task touching a page under migration waits for one pass).  Nothing is
 * isolated meanwhile: the node is marked evacuating, so no allocation that
 * did not insist on it lands there, and offlining then finds its blocks
 * empty but for pages that were pinned, raced in or freshly faulted, which
 * it migrates itself.  The walk is do_migrate_range()'s, with
 * mem_hotplug_lock read-held for one pass at a time: memory hotplug
 * elsewhere waits one pass at most, not the whole copy.
 *
 * Only idle CPUs get a worker, and the workers run at nice 19 (cdm_copy_wq):
 * a task running elsewhere keeps its CPU (with two CPUs, one busy writer and
 * a worker on every CPU at nice 0, the writer's longest gap during an
 * evacuation went from 4 to 15 ms; at nice 19, 10 ms, one tick).  A CPU
 * that gets busy meanwhile shares with a worker at nice 19, which then
 * claims few stripes: the other CPUs copy the rest, and the copy waits at
 * most for the stripe that worker is in.
 */
static struct workqueue_struct *cdm_copy_wq;

static int __init cdm_copy_init(void)
{
	struct workqueue_attrs *attrs = alloc_workqueue_attrs();
	struct workqueue_struct *wq;

	wq = alloc_workqueue("cdm_copy", WQ_UNBOUND, 0);
	if (attrs)
		attrs->nice = MAX_NICE;
	if (!wq || !attrs || apply_workqueue_attrs(wq, attrs)) {
		pr_warn("cdm: no copy workers, evacuations copy serially\n");
		if (wq)
			destroy_workqueue(wq);
		free_workqueue_attrs(attrs);
		return 0;
	}
	free_workqueue_attrs(attrs);
	cdm_copy_wq = wq;
	return 0;
}
subsys_initcall(cdm_copy_init);

/*
 * The unit a CPU claims: small enough that data packed into one part of
 * the node is still shared out and that the copy waits little for the last
 * stripe, a multiple of the largest buddy, so free memory is skipped whole.
 */
#define CDM_COPY_STRIPE_PAGES	MAX_ORDER_NR_PAGES

struct cdm_copy {
	struct cdm_node *cn;
	int nid;
	unsigned long start_pfn, end_pfn, deadline;
	atomic_long_t next_pfn;		/* the first unclaimed stripe */
	bool stop;
	atomic_t running;
	struct completion done;
	nodemask_t targets;
};

struct cdm_copy_worker {
	struct work_struct work;
	struct cdm_copy *copy;
	unsigned long first_pfn;
};

/* A signal reaches the evacuating task only; the workers see c->stop. */
static bool cdm_copy_stopped(struct cdm_copy *c)
{
	return READ_ONCE(c->stop) || time_after(jiffies, c->deadline) ||
	       signal_pending(current);
}

/* Isolate one pass of @c's in-use folios from [*@pfn, @end) to @list. */
static void cdm_copy_isolate(struct cdm_copy *c, unsigned long *pfn,
			     unsigned long end, struct list_head *list)
{
	unsigned long nr = 0;

	for (; *pfn < end && nr < CDM_OFFLINE_BATCH_PAGES; (*pfn)++) {
		struct page *page = pfn_to_online_page(*pfn);
		struct folio *folio;
		unsigned int order;
		bool large;

		if (!page) {
			*pfn = ALIGN(*pfn + 1, PAGES_PER_SECTION) - 1;
			continue;
		}
		if (PageBuddy(page)) {
			/* racy, as in scan_movable_pages(): at worst a rescan */
			order = buddy_order_unsafe(page);
			if (order <= MAX_PAGE_ORDER)
				*pfn |= (1UL << order) - 1;
			continue;
		}
		folio = page_folio(page);
		large = folio_test_large(folio);
		if (large && nr)
			break;	/* a large folio is a pass of its own */
		if (!folio_try_get(folio))
			continue;
		if (page_folio(page) != folio || folio_nid(folio) != c->nid ||
		    folio_contain_hwpoisoned_page(folio)) {
			folio_put(folio);	/* left to offlining */
			continue;
		}
		large = folio_test_large(folio);
		if (large)
			*pfn = folio_pfn(folio) + folio_nr_pages(folio) - 1;
		if (isolate_folio_to_list(folio, list))
			nr += folio_nr_pages(folio);
		folio_put(folio);
		if (large) {
			(*pfn)++;
			break;
		}
	}
}

static void cdm_copy_range(struct cdm_copy *c, unsigned long pfn,
			   unsigned long end)
{
	struct migration_target_control mtc = {
		.nid = c->nid,
		.nmask = &c->targets,
		.gfp_mask = GFP_USER | __GFP_MOVABLE | __GFP_RETRY_MAYFAIL,
		.reason = MR_MEMORY_HOTPLUG,
	};

	while (pfn < end && !cdm_copy_stopped(c)) {
		unsigned int nr_succeeded = 0;
		unsigned long migrated;
		LIST_HEAD(list);

		/* No block goes offline, nor its memmap away, during a pass. */
		get_online_mems();
		cdm_copy_isolate(c, &pfn, end, &list);
		if (!list_empty(&list)) {
			if (migrate_pages(&list, alloc_migration_target, NULL,
					  (unsigned long)&mtc, MIGRATE_SYNC,
					  MR_MEMORY_HOTPLUG, &nr_succeeded))
				putback_movable_pages(&list);
		}
		put_online_mems();
		if (nr_succeeded) {
			atomic_long_t *total = &c->cn->pages_migrated;

			count_vm_events(CDM_PAGES_EVACUATED, nr_succeeded);
			migrated = atomic_long_add_return(nr_succeeded, total);
			trace_cdm_evacuate_progress(c->nid, migrated,
						    cdm_pages_remaining(c->cn));
		}
		cond_resched();
	}
}

/*
 * Copy the stripe at @pfn, each CPU's own to begin with, then the node's
 * next unclaimed stripe until none is left.
 */
static void cdm_copy_stripes(struct cdm_copy *c, unsigned long pfn)
{
	while (pfn < c->end_pfn && !cdm_copy_stopped(c)) {
		cdm_copy_range(c, max(pfn, c->start_pfn),
			       min(pfn + CDM_COPY_STRIPE_PAGES, c->end_pfn));
		pfn = atomic_long_fetch_add(CDM_COPY_STRIPE_PAGES, &c->next_pfn);
	}
}

static void cdm_copy_work(struct work_struct *work)
{
	struct cdm_copy_worker *w = container_of(work, struct cdm_copy_worker,
						 work);
	struct cdm_copy *c = w->copy;

	cdm_copy_stripes(c, w->first_pfn);
	if (atomic_dec_and_test(&c->running))
		complete(&c->done);
}

#define CDM_COPY_MAX_WORKERS	16

/* Online CPUs other than this one with nothing to run, at this moment. */
static unsigned int cdm_idle_cpus(void)
{
	unsigned int cpu, self = raw_smp_processor_id(), nr = 0;

	for_each_online_cpu(cpu)
		if (cpu != self && idle_cpu(cpu))
			nr++;
	return nr;
}

/*
 * Migrate what is on @nid to system RAM with up to CDM_COPY_MAX_WORKERS
 * CPUs, the caller's among them, until @deadline or a signal.  Errors are
 * offlining's to report: what is left is left for it.
 */
static void cdm_copy_node(int nid, struct cdm_node *cn, unsigned long deadline)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	struct cdm_copy_worker *workers;
	struct cdm_copy c = {
		.cn = cn,
		.nid = nid,
		.start_pfn = pgdat->node_start_pfn,
		.end_pfn = pgdat_end_pfn(pgdat),
		.deadline = deadline,
		.targets = node_states[N_MEMORY],
	};
	unsigned long first_pfn = ALIGN_DOWN(c.start_pfn, CDM_COPY_STRIPE_PAGES);
	unsigned int i, nr;

	if (c.start_pfn >= c.end_pfn)
		return;
	cdm_migration_targets(&c.targets);
	if (nodes_empty(c.targets))
		return;
	nr = READ_ONCE(cn->copy_workers) ?: 1 + cdm_idle_cpus();
	nr = min3(nr, (unsigned int)CDM_COPY_MAX_WORKERS,
		  (unsigned int)DIV_ROUND_UP(c.end_pfn - first_pfn,
					     CDM_COPY_STRIPE_PAGES));
	workers = nr > 1 && cdm_copy_wq ?
		  kcalloc(nr - 1, sizeof(*workers), GFP_KERNEL) : NULL;
	if (!workers)
		nr = 1;		/* the caller alone */
	/* stripe i is CPU i's first, the rest go to whoever asks first */
	atomic_long_set(&c.next_pfn, first_pfn + nr * CDM_COPY_STRIPE_PAGES);
	atomic_set(&c.running, nr);
	init_completion(&c.done);
	for (i = 0; i < nr - 1; i++) {
		workers[i].copy = &c;
		workers[i].first_pfn = first_pfn + (i + 1) * CDM_COPY_STRIPE_PAGES;
		INIT_WORK(&workers[i].work, cdm_copy_work);
		queue_work(cdm_copy_wq, &workers[i].work);
	}
	cdm_copy_stripes(&c, first_pfn);
	if (!atomic_dec_and_test(&c.running) &&
	    wait_for_completion_interruptible(&c.done)) {
		WRITE_ONCE(c.stop, true);
		wait_for_completion(&c.done);	/* within one pass */
	}
	for (i = 0; i < nr - 1; i++)
		flush_work(&workers[i].work);
	kfree(workers);
}

/**
 * cdm_evacuate - migrate everything off a CDM node and remove its memory
 * @nid: the CDM node
 * @timeout_ms: give up after this long; 0 means CDM_EVACUATE_DEFAULT_MS
 * @res: if not NULL, what the evacuation did, on success or failure
 *
 * Offlines every memory block of @nid, migrating its pages to system RAM
 * nodes (never to another CDM node), then removes the memory added by
 * cdm_add_memory() and unregisters its memory groups.  Called without
 * device_hotplug_lock, it takes the lock for CDM_EVACUATE_SLICE_MS at a
 * time, so that pages that stay pinned hold up no other memory hotplug for
 * the whole timeout; a caller that holds the lock (a remove callback run
 * by an ACPI eject) keeps it throughout.  Memory that was
 * present at boot is left offline.  Any pending signal ends the wait, as
 * for offlining through sysfs.  The result stays readable in nodeN/cdm/.
 *
 * Return: 0 when the node has no memory left; -ENOMEM, before anything
 * moved, when system RAM cannot take the node's pages (free memory above
 * the high watermarks, page cache and swap space count); -EBUSY on timeout
 * or when a page cannot be migrated at all, or while another evacuation of
 * the node runs; -EINTR on a signal; -EALREADY
 * when the node has no memory; -EINVAL for a non-CDM node or a timeout
 * above CDM_EVACUATE_MAX_MS.  On failure every block is online again and
 * @res->pages_left pages are still in use on the node.
 */
int cdm_evacuate(int nid, unsigned int timeout_ms, struct cdm_evacuation *res)
{
	unsigned long start_jiffies, deadline, need, room;
	struct cdm_node *cn;
	bool unlock;
	int ret, i;

	if (res)
		memset(res, 0, sizeof(*res));
	if (nid < 0 || nid >= MAX_NUMNODES || !node_is_cdm(nid) ||
	    timeout_ms > CDM_EVACUATE_MAX_MS)
		return -EINVAL;
	cn = READ_ONCE(cdm_info[nid]);
	if (!cn)
		return -EINVAL;
	if (!timeout_ms)
		timeout_ms = CDM_EVACUATE_DEFAULT_MS;

	unlock = cdm_lock_device_hotplug();
	start_jiffies = jiffies;	/* not the wait for the lock */
	if (READ_ONCE(cn->state) == CDM_EVAC_RUNNING) {
		/* Another one, between two of its slices: its pages left. */
		if (res)
			res->pages_left = cdm_pages_remaining(cn);
		ret = -EBUSY;
		goto out;
	}
	if (!node_state(nid, N_MEMORY) && !cn->nr_ranges) {
		ret = -EALREADY;
		goto out;
	}

	/*
	 * Say up front when system RAM cannot take the pages, instead of
	 * filling it to its min watermark (where unrelated tasks' allocations
	 * OOM) and then failing at the deadline.  Racy by nature: the
	 * deadline still covers RAM that fills up meanwhile.
	 */
	need = cdm_pages_to_migrate(nid);
	room = cdm_ram_room();
	if (need > room) {
		atomic_long_set(&cn->pages_migrated, 0);
		cdm_evacuation_done(nid, cn, -ENOMEM, start_jiffies, res);
		pr_info("node %d: evacuation needs %lu MiB of system RAM, %lu MiB can be made free: %lu MiB short, not started\n",
			nid, need >> (20 - PAGE_SHIFT), room >> (20 - PAGE_SHIFT),
			(need - room) >> (20 - PAGE_SHIFT));
		ret = -ENOMEM;
		goto out;
	}

	cn->nr_used = cdm_node_used_pages(nid);
	cn->nr_unmoved = 0;
	atomic_long_set(&cn->pages_migrated, 0);
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	cn->deadline = deadline;
	WRITE_ONCE(cn->evacuator, current);
	WRITE_ONCE(cn->state, CDM_EVAC_RUNNING);
	node_set(nid, cdm_evacuating_nodes);
	cdm_update_bind_nodes();
	count_vm_event(CDM_EVACUATIONS);
	trace_cdm_evacuate_start(nid, cn->nr_used, timeout_ms);

	/*
	 * The copy needs no device_hotplug_lock: a caller that took it lets
	 * it go meanwhile, as between two slices.
	 */
	if (unlock)
		unlock_device_hotplug();
	cdm_copy_node(nid, cn, deadline);
	if (unlock)
		lock_device_hotplug();
	ret = cdm_offline_node(nid, cn, deadline, unlock);
	node_clear(nid, cdm_evacuating_nodes);
	cdm_update_bind_nodes();
	if (ret == -ETIMEDOUT)
		ret = -EBUSY;
	if (!ret) {
		for (i = cn->nr_ranges - 1; i >= 0; i--) {
			struct cdm_range *r = &cn->ranges[i];

			__remove_memory(r->start, r->size);
			memory_group_unregister(r->mgid);
			kfree(r->name);
		}
		cn->nr_ranges = 0;
	}
	cdm_evacuation_done(nid, cn, ret, start_jiffies, res);
	if (ret)
		pr_info("node %d: evacuation failed (%d), %lu pages not migrated\n",
			nid, ret, cn->nr_unmoved);
	trace_cdm_evacuate_end(nid, ret, atomic_long_read(&cn->pages_migrated),
			       cn->nr_unmoved, cn->last_ms);
out:
	if (unlock)
		unlock_device_hotplug();
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_evacuate);

/**
 * cdm_device_evacuate - empty the CDM nodes of a device about to go
 * @dev: a device being removed, which may own CDM nodes (or whose
 *	children may)
 *
 * For hot-unplug code that can still say no: an ACPI eject request, which
 * firmware is told the outcome of (_OST).  A driver's remove callback
 * cannot fail, and the memory must leave before the device does, so a
 * remove that finds pages pinned can only wait or lose them.  This runs
 * before the driver is unbound: each node owned by @dev or a device below
 * it is evacuated with the default timeout, and on failure the removal is
 * refused with the memory online again and nothing lost.  The caller holds
 * device_hotplug_lock, for at most that timeout per node.
 *
 * Return: 0 when no such node has memory left; otherwise the error of the
 * first evacuation that failed (-EBUSY: pages stayed in use), and the
 * caller must not remove @dev.  The nodes this call emptied before that
 * are brought back (cdm_node_online()), so a refusal leaves the device as
 * it was.
 */
int cdm_device_evacuate(struct device *dev)
{
	nodemask_t owned = NODE_MASK_NONE, emptied = NODE_MASK_NONE;
	struct cdm_evacuation res;
	struct device *owner;
	int nid, ret = 0;

	mutex_lock(&cdm_lock);
	for_each_node_state(nid, N_COHERENT_DEVICE) {
		owner = cdm_info[nid] ? cdm_info[nid]->owner : NULL;
		/* An owner that is gone keeps a stale parent pointer. */
		if (!owner || !device_is_registered(owner))
			continue;
		for (; owner && owner != dev; owner = owner->parent)
			;
		if (owner)
			node_set(nid, owned);
	}
	mutex_unlock(&cdm_lock);

	for_each_node_mask(nid, owned) {
		ret = cdm_evacuate(nid, 0, &res);
		if (!ret)
			node_set(nid, emptied);
		if (ret == -EALREADY)
			ret = 0;
		if (ret) {
			pr_warn("removal of %s refused: node %d still has %lu pages in use (%d)\n",
				dev_name(dev), nid, res.pages_left, ret);
			break;
		}
	}
	if (ret)
		for_each_node_mask(nid, emptied)
			cdm_node_online(nid);
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_device_evacuate);

#ifdef CONFIG_PCI
/**
 * cdm_pci_slot_evacuate - cdm_device_evacuate() each function of a PCI slot
 * @bus: the bus the slot is on
 * @slot: the slot's device number (PCI_SLOT() of its functions)
 *
 * For a PCI hotplug driver's eject request, before any driver is unbound.
 *
 * Return: 0, or the error of the first function whose memory cannot leave:
 * the eject must then be refused.
 */
int cdm_pci_slot_evacuate(struct pci_bus *bus, unsigned int slot)
{
	struct pci_dev *dev;
	int ret = 0;

	pci_lock_rescan_remove();
	list_for_each_entry(dev, &bus->devices, bus_list)
		if (!ret && PCI_SLOT(dev->devfn) == slot)
			ret = cdm_device_evacuate(&dev->dev);
	pci_unlock_rescan_remove();
	return ret;
}
#endif

/* Online the offline memory blocks of one node; see cdm_node_online(). */
struct cdm_online_walk {
	int nid;
	int nr;
};

static int cdm_online_node_block(struct memory_block *mem, void *arg)
{
	struct cdm_online_walk *w = arg;
	int ret;

	if (mem->nid != w->nid || mem->state != MEM_OFFLINE)
		return 0;
	ret = cdm_online_block(mem, NULL);
	if (!ret)
		w->nr++;
	return ret;
}

/**
 * cdm_node_online - bring an evacuated CDM node's memory back
 * @nid: the CDM node
 *
 * What nodeN/cdm/online does, for every kind of CDM node: the owning
 * driver adds its memory again (its cdm_node_ops.online); memory no driver
 * owns (present at boot, or added by dax/kmem) was offlined, not removed,
 * by cdm_evacuate() and its memory blocks are onlined again, into
 * ZONE_MOVABLE.
 *
 * Return: 0 on success; -EALREADY when the node has its memory (a node no
 * driver owns: no block is offline); -ENODEV when there is nothing to
 * bring back (no memory block of the node, or an owner that cannot);
 * -EBUSY while the node is being evacuated; -EINVAL for a non-CDM node;
 * the error of the driver or of onlining.
 */
int cdm_node_online(int nid)
{
	struct cdm_online_walk w = { .nid = nid };
	struct cdm_node *cn;
	bool unlock;
	int ret;

	if (nid < 0 || nid >= MAX_NUMNODES || !node_is_cdm(nid))
		return -EINVAL;
	cn = READ_ONCE(cdm_info[nid]);
	if (!cn)
		return -EINVAL;

	unlock = cdm_lock_device_hotplug();
	down_read(&cdm_ops_rwsem);
	if (READ_ONCE(cn->state) == CDM_EVAC_RUNNING) {
		ret = -EBUSY;	/* between two slices of an evacuation */
	} else if (cn->owner) {
		if (node_state(nid, N_MEMORY) || cn->nr_ranges) {
			ret = -EALREADY;
		} else if (!cn->ops || !cn->ops->online ||
			   !try_module_get(cn->ops->owner)) {
			ret = -ENODEV;	/* no callback, or being unloaded */
		} else {
			ret = cn->ops->online(nid, cn->data);
			module_put(cn->ops->owner);
		}
	} else {
		ret = for_each_memory_block(&w, cdm_online_node_block);
		if (!ret && !w.nr)
			ret = node_state(nid, N_MEMORY) ? -EALREADY : -ENODEV;
	}
	up_read(&cdm_ops_rwsem);
	if (unlock)
		unlock_device_hotplug();
	if (!ret)
		pr_info("node %d: memory back online\n", nid);
	return ret;
}
EXPORT_SYMBOL_GPL(cdm_node_online);

/**
 * cdm_node_state - what a CDM node's memory is doing
 * @nid: the CDM node
 *
 * A lockless snapshot, for drivers that report a state of their own.
 */
enum cdm_node_state cdm_node_state(int nid)
{
	struct cdm_node *cn;

	if (nid < 0 || nid >= MAX_NUMNODES)
		return CDM_NODE_OFFLINE;
	cn = READ_ONCE(cdm_info[nid]);
	if (cn && READ_ONCE(cn->state) == CDM_EVAC_RUNNING)
		return CDM_NODE_EVACUATING;
	if (!node_state(nid, N_MEMORY) && !(cn && READ_ONCE(cn->nr_ranges)))
		return CDM_NODE_OFFLINE;
	if (cn && READ_ONCE(cn->state) == CDM_EVAC_FAILED)
		return CDM_NODE_FAILED;
	return CDM_NODE_ONLINE;
}
EXPORT_SYMBOL_GPL(cdm_node_state);

/**
 * cdm_node_stats - a CDM node's memory use and evacuations so far
 * @nid: the CDM node
 * @stats: filled in; zero for a node that is not a CDM node
 *
 * A lockless snapshot, as the nodeN/cdm/ files: a sysfs reader must not
 * wait for device_hotplug_lock, which a removal draining it may hold.
 */
void cdm_node_stats(int nid, struct cdm_node_stats *stats)
{
	struct cdm_node *cn = NULL;

	*stats = (struct cdm_node_stats){ };
	if (nid >= 0 && nid < MAX_NUMNODES)
		cn = READ_ONCE(cdm_info[nid]);
	if (!cn)
		return;
	stats->pages_used = cdm_node_used_pages(nid);
	stats->evacuations = READ_ONCE(cn->nr_evacuations);
	stats->evacuations_failed = READ_ONCE(cn->nr_failed);
	stats->last.pages_migrated = atomic_long_read(&cn->pages_migrated);
	stats->last.pages_left = cdm_pages_remaining(cn);
	stats->last.duration_ms = READ_ONCE(cn->last_ms);
}
EXPORT_SYMBOL_GPL(cdm_node_stats);

/* Hooks in mm/memory_hotplug.c, all under device_hotplug_lock. */

void __cdm_migration_targets(nodemask_t *nmask)
{
	nodes_andnot(*nmask, *nmask, node_states[N_COHERENT_DEVICE]);
}

/*
 * Only the evacuation's own offlining sees its deadline (and counts as its
 * progress): an admin offlining a block of the node between two slices
 * must not time out on the last slice's end.
 */
static bool cdm_is_evacuator(struct cdm_node *cn)
{
	return cn && READ_ONCE(cn->state) == CDM_EVAC_RUNNING &&
		READ_ONCE(cn->evacuator) == current;
}

void __cdm_offline_migrated(int nid, unsigned int nr_pages)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[nid]);
	unsigned long migrated;

	if (!nr_pages)
		return;
	count_vm_events(CDM_PAGES_EVACUATED, nr_pages);
	if (!cdm_is_evacuator(cn))
		return;
	migrated = atomic_long_add_return(nr_pages, &cn->pages_migrated);
	trace_cdm_evacuate_progress(nid, migrated, cdm_pages_remaining(cn));
}

int __cdm_offline_expired(int nid)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[nid]);

	if (cdm_is_evacuator(cn) && time_after(jiffies, READ_ONCE(cn->deadline)))
		return -ETIMEDOUT;
	return 0;
}

bool __cdm_offline_batch_end(unsigned long start_pfn, unsigned long pfn)
{
	if (!node_is_cdm(pfn_to_nid(start_pfn)))
		return false;
	if (pfn - start_pfn >= CDM_OFFLINE_BATCH_PAGES)
		return true;
	/*
	 * A large folio after small ones would make them wait for its copy
	 * and it for theirs: it starts a pass of its own.  No reference is
	 * held; a folio split or freed meanwhile only ends a pass early.
	 */
	return pfn_valid(pfn) && PageCompound(pfn_to_page(pfn));
}

/*
 * Mempolicy.  A CDM node is on no other node's zonelist, so an MPOL_BIND
 * or MPOL_PREFERRED_MANY allocation that starts, as stock kernels do, from
 * the local node's list filtered by the mask never reaches it.
 */
static int cdm_nearest_node(int nid, const nodemask_t *mask)
{
	int n, best = NUMA_NO_NODE, best_dist = INT_MAX;

	for_each_node_mask(n, *mask) {
		int dist = node_distance(nid, n);

		if (dist < best_dist) {
			best = n;
			best_dist = dist;
		}
	}
	return best;
}

#ifdef CONFIG_HUGETLB_PAGE
/* See cdm_hugetlb_replace(): a gigantic page has no buddy replacement. */
bool __cdm_hugetlb_replace(struct hstate *h)
{
	return !hstate_is_gigantic(h);
}

/*
 * A free huge page replaced on another node takes its share of the old
 * node's surplus count along, as move_hugetlb_state() does for a migrated
 * one, so the per-node counts stay true.  Under hugetlb_lock.
 */
void __cdm_hugetlb_move_surplus(struct hstate *h, int from, int to)
{
	lockdep_assert_held(&hugetlb_lock);
	if (h->surplus_huge_pages_node[from]) {
		h->surplus_huge_pages_node[from]--;
		h->surplus_huge_pages_node[to]++;
	}
}

/*
 * Where alloc_and_dissolve_hugetlb_folio() puts the page that replaces a
 * free huge page of CDM node *@nid being evacuated: any system RAM node,
 * the nearest first (*@nid), never the isolated node itself, so
 * __GFP_THISNODE goes.  NULL: no RAM node at all; the allocation fails.
 */
nodemask_t *__cdm_hugetlb_target(int *nid, gfp_t *gfp)
{
	struct cdm_zonelists *czl = READ_ONCE(cdm_zonelists[*nid]);
	int best;

	if (!czl)
		return NULL;
	best = cdm_nearest_node(*nid, &czl->ram);
	if (best == NUMA_NO_NODE)
		return NULL;
	*nid = best;
	*gfp &= ~__GFP_THISNODE;
	return &czl->ram;
}
#endif

int __cdm_policy_node(const nodemask_t *mask, int nid)
{
	nodemask_t usable;
	int best;

	if (nid < 0)
		nid = numa_node_id();
	if (node_isset(nid, *mask) ||
	    !nodes_intersects(*mask, node_states[N_COHERENT_DEVICE]))
		return nid;
	nodes_and(usable, *mask, node_states[N_MEMORY]);
	best = cdm_nearest_node(nid, &usable);
	return best == NUMA_NO_NODE ? nid : best;
}

/*
 * A mask node's free list is searched only while the task's cpuset allows
 * the node (its memory is all ZONE_MOVABLE), as for the zonelist's nodes,
 * and again if the cpuset changed meanwhile.
 */
struct folio *__cdm_hugetlb_dequeue(struct hstate *h, gfp_t gfp,
				    const nodemask_t *mask, int nid,
				    struct folio *(*dequeue)(struct hstate *h,
							     int nid))
{
	unsigned int cookie;
	struct folio *folio;
	nodemask_t cdm;
	int node;

	__cdm_policy_extra_nodes(&cdm, mask, nid);
	do {
		cookie = read_mems_allowed_begin();
		for_each_node_mask(node, cdm) {
			struct zone *movable;

			movable = &NODE_DATA(node)->node_zones[ZONE_MOVABLE];
			if (!cpuset_zone_allowed(movable, gfp))
				continue;
			folio = dequeue(h, node);
			if (folio)
				return folio;
		}
	} while (read_mems_allowed_retry(cookie));
	return NULL;
}

nodemask_t *__cdm_policy_extra_nodes(nodemask_t *buf, const nodemask_t *mask,
				     int nid)
{
	nodes_and(*buf, *mask, node_states[N_COHERENT_DEVICE]);
	if (nid >= 0)
		node_clear(nid, *buf);
	return buf;
}

/*
 * @nid has a zone @gfp may use and, with @above_low, can serve @order there
 * above the zone's low watermark, counting free CMA pages for a movable
 * request as the fast path does.  Highest zone first: the lower ones
 * rarely pass with their lowmem_reserve.
 */
static bool cdm_node_can_serve(int nid, gfp_t gfp, unsigned int order,
			       bool above_low)
{
	unsigned int alloc_flags = gfp_migratetype(gfp) == MIGRATE_MOVABLE ?
				   ALLOC_CMA : 0;
	enum zone_type highest = gfp_zone(gfp);
	pg_data_t *pgdat = NODE_DATA(nid);
	int i;

	for (i = highest; i >= 0; i--) {
		struct zone *zone = &pgdat->node_zones[i];

		if (!managed_zone(zone))
			continue;
		if (!above_low ||
		    zone_watermark_ok(zone, order, low_wmark_pages(zone),
				      highest, alloc_flags))
			return true;
	}
	return false;
}

struct page *__cdm_alloc_pages_mask(gfp_t gfp, unsigned int order, int nid,
				    const nodemask_t *mask)
{
	nodemask_t todo, tried = NODE_MASK_NONE;
	gfp_t this_gfp, ctx_gfp;
	int pass;

	if (gfp & __GFP_THISNODE)
		return NULL;
	if (nid < 0)
		nid = numa_node_id();
	if (nodes_empty(*__cdm_policy_extra_nodes(&todo, mask, nid)))
		return NULL;

	/*
	 * As a zonelist is walked: every node above its low watermark
	 * first, nearest first (the fast path), and only then any node
	 * below it, down to min (the slow path before reclaim).  Otherwise
	 * a bind to a RAM node and a CDM node would take RAM down to min
	 * for user pages, leaving nothing for the kernel allocations only
	 * RAM can serve (page tables under the same policy), which then
	 * go to the OOM killer while the device has room.  Each attempt is
	 * the first pass of alloc_pages_preferred_many(): one node, no
	 * reclaim; a node tried once, whose attempt went down to min, is
	 * not tried again.  The zones are judged as the allocator will use
	 * them (current_gfp_context(): a long-term pin is never movable).
	 */
	this_gfp = (gfp | __GFP_THISNODE | __GFP_NOWARN) &
		   ~(__GFP_DIRECT_RECLAIM | __GFP_NOFAIL);
	ctx_gfp = current_gfp_context(gfp);
	for (pass = 0; pass < 2; pass++) {
		nodes_and(todo, *mask, node_states[N_MEMORY]);
		nodes_andnot(todo, todo, tried);
		while (!nodes_empty(todo)) {
			int n = cdm_nearest_node(nid, &todo);
			struct page *page;

			node_clear(n, todo);
			if (!cdm_node_can_serve(n, ctx_gfp, order, pass == 0))
				continue;
			node_set(n, tried);
			page = __alloc_pages_noprof(this_gfp, order, n,
						    (nodemask_t *)mask);
			if (page)
				return page;
		}
	}
	return NULL;
}

/* System RAM holds memory reclaim could free: page cache, or swappable anon. */
static bool cdm_ram_reclaimable(void)
{
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		pg_data_t *pgdat = NODE_DATA(nid);

		if (node_state(nid, N_COHERENT_DEVICE))
			continue;
		if (node_page_state(pgdat, NR_ACTIVE_FILE) ||
		    node_page_state(pgdat, NR_INACTIVE_FILE))
			return true;
		if (get_nr_swap_pages() > 0 &&
		    (node_page_state(pgdat, NR_ACTIVE_ANON) ||
		     node_page_state(pgdat, NR_INACTIVE_ANON)))
			return true;
	}
	return false;
}

/*
 * Reclaim of RAM just failed for an allocation that could not take a page
 * from a device.  With the emergency fallback on, or under a bind to RAM
 * and a CDM node (__cdm_alloc_pages_mask()), RAM stays near its watermarks
 * for as long as devices take the overflow, and movable allocations refill
 * a CPU's per-CPU lists in bulk (up to the lists' high mark, megabytes)
 * after passing the watermark check: the zone's free count can sit below
 * its min watermark with those pages still free on a per-CPU list.  The
 * page allocator drains the lists only after reclaim made progress, so a
 * kernel allocation, which can never use device memory, would go to the
 * OOM killer with the pages it needs in plain sight.  Drain them when a RAM
 * zone the allocation may use fails its min watermark; the allocator's
 * retry then finds them.  Like the stock drain after reclaim, this skips a
 * drain that another CPU already runs.
 */
static void cdm_drain_ram_pcp(gfp_t gfp, unsigned int order)
{
	enum zone_type highest = gfp_zone(gfp);
	struct zone *zone;

	for_each_populated_zone(zone) {
		if (node_is_cdm(zone_to_nid(zone)) || zone_idx(zone) > highest)
			continue;
		if (!zone_watermark_ok(zone, order, min_wmark_pages(zone),
				       highest, 0)) {
			drain_all_pages(NULL);
			return;
		}
	}
}

/* An emergency page from the nearest emergency node that has one. */
static struct page *cdm_emergency_page(gfp_t gfp, unsigned int order,
				       const nodemask_t *nodemask)
{
	nodemask_t todo, one;
	int local = numa_node_id();

	nodes_and(todo, cdm_emergency_nodes, node_states[N_MEMORY]);
	nodes_andnot(todo, todo, cdm_evacuating_nodes);
	if (nodemask)
		nodes_and(todo, todo, *nodemask);
	gfp = (gfp | __GFP_THISNODE | __GFP_NOWARN) &
	      ~(__GFP_DIRECT_RECLAIM | __GFP_NOFAIL);
	while (!nodes_empty(todo)) {
		int n = cdm_nearest_node(local, &todo);
		struct page *page;

		node_clear(n, todo);
		nodes_clear(one);
		node_set(n, one);
		page = __alloc_pages_noprof(gfp, order, n, &one);
		if (page) {
			count_vm_event(CDM_EMERGENCY_ALLOC);
			return page;
		}
	}
	return NULL;
}

/*
 * McKenney's "emergency" use of device memory, off by default: called by
 * the page allocator's slow path once direct reclaim of system RAM freed
 * nothing and compaction gave this allocation no page (@reclaim_failed),
 * or, on entering the slow path (RAM below its low watermark), when RAM
 * holds nothing reclaim could free: no page cache, and no swap for
 * anonymous memory.  The second case keeps movable allocations from eating
 * the reserves between the min and low watermarks that kernel allocations,
 * which can never use device memory, depend on; the first keeps clean page
 * cache from spilling while it can be dropped.  A reclaim that freed pages
 * which another task then took is not a failure: the allocator retries it,
 * as it would without the fallback, and a reader of a clean file keeps
 * recycling its own cache instead of spilling it.  Only movable allocations
 * that may reclaim and leave their node qualify (readahead, which is
 * __GFP_NORETRY, never does), each emergency node nearest first, within the
 * caller's nodemask (a task bound to RAM never spills), without reclaiming
 * the device.  The pages stay evacuable like any other page of the node;
 * they return to RAM when the node is evacuated or when their owner moves
 * them (migratepages(8), move_pages(2)).  An allocation that gets no such
 * page after reclaim failed gets RAM's per-CPU lists drained instead, with
 * the fallback on or off: a bind to RAM and a CDM node keeps RAM near its
 * watermarks too while the device takes the overflow.
 */
struct page *__cdm_alloc_emergency(gfp_t gfp, unsigned int order,
				   const nodemask_t *nodemask,
				   bool reclaim_failed)
{
	struct page *page;

	if (!(gfp & __GFP_DIRECT_RECLAIM))
		return NULL;
	if (!nodes_empty(cdm_emergency_nodes) &&
	    gfp_migratetype(gfp) == MIGRATE_MOVABLE &&
	    !(gfp & (__GFP_THISNODE | __GFP_NORETRY)) &&
	    (reclaim_failed || !cdm_ram_reclaimable())) {
		page = cdm_emergency_page(gfp, order, nodemask);
		if (page)
			return page;
	}
	if (reclaim_failed)
		cdm_drain_ram_pcp(gfp, order);
	return NULL;
}

/*
 * A policy whose nodemask names a CDM node that is being evacuated: its
 * allocations go to the other nodes of the mask that have memory, or, when
 * there are none, to system RAM - the RAM nodes the evacuating node falls
 * back to, nearest first - never onto a CDM node the policy did not name.
 * Nothing is written to the policy: once the node is back, the same policy
 * allocates there again.
 */
nodemask_t *__cdm_policy_evacuating(nodemask_t *mask, int *nid)
{
	struct cdm_zonelists *czl;
	nodemask_t usable;
	int n;

	nodes_andnot(usable, *mask, cdm_evacuating_nodes);
	nodes_and(usable, usable, node_states[N_MEMORY]);
	if (!nodes_empty(usable)) {
		*nid = cdm_nearest_node(*nid < 0 ? numa_node_id() : *nid,
					&usable);
		return mask;
	}
	nodes_and(usable, *mask, cdm_evacuating_nodes);
	n = first_node(usable);
	czl = READ_ONCE(cdm_zonelists[n]);
	if (!czl)
		return mask;
	*nid = n;
	return &czl->ram;
}

/*
 * MPOL_F_RELATIVE_NODES: node N of the user's mask is the Nth node of the
 * task's mems.  A CDM node leaves the mems while it is evacuated, which
 * would shift every position after it, and differently when the policy is
 * set (mems with memory) and when it is rebound.  Count every CDM node
 * away (registered, without memory) as present, in both places: a
 * relative mask means the same nodes before and after any evacuation or
 * re-add, and one set while a device is away lands where it will land
 * once the device is back (allocating from RAM meanwhile, as a policy
 * naming an evacuated node does).
 */
nodemask_t *__cdm_relative_mems(nodemask_t *mems)
{
	nodemask_t away;

	nodes_andnot(away, node_states[N_COHERENT_DEVICE],
		     node_states[N_MEMORY]);
	nodes_or(*mems, *mems, away);
	return mems;
}

/*
 * cpuset rebinding after memory hotplug remaps a policy's nodes by their
 * positions in the old and new mems_allowed, so a CDM node coming or
 * going would shift every policy naming a node with a higher id.  Count
 * every CDM node as present in both masks: a CDM node's hotplug then
 * moves no policy at all, and a policy naming it allocates from RAM while
 * it is gone (it is not in mems_allowed) and from the node once it is back.
 * Relative policies count positions in the mems and the CDM nodes away,
 * as when they were set (__cdm_relative_mems()).
 */
const nodemask_t *__cdm_rebind_mems(struct mempolicy *pol, nodemask_t *buf,
				    const nodemask_t *mems)
{
	if (pol->flags & MPOL_F_RELATIVE_NODES) {
		*buf = *mems;
		return __cdm_relative_mems(buf);
	}
	nodes_or(*buf, *mems, node_states[N_COHERENT_DEVICE]);
	if (!(pol->flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)))
		nodes_or(pol->w.cpuset_mems_allowed, pol->w.cpuset_mems_allowed,
			 node_states[N_COHERENT_DEVICE]);
	return buf;
}

/*
 * cpuset page cache and slab spreading (cpuset.memory_spread_page and
 * memory_spread_slab) rotate over the task's mems_allowed and allocate on
 * the chosen node first.  Skip CDM nodes, unless the cpuset was confined to
 * CDM nodes only, which is an explicit choice.
 */
int __cdm_spread_node(int node, const nodemask_t *mask)
{
	nodemask_t sysram;

	nodes_andnot(sysram, *mask, node_states[N_COHERENT_DEVICE]);
	if (nodes_empty(sysram))
		return next_node_in(node, *mask);
	return next_node_in(node, sysram);
}

/*
 * khugepaged (and MADV_COLLAPSE) allocates the huge page on the node that
 * holds most of the small pages, ties included in @alloc_nmask.  Collapse
 * onto a CDM node only when every small page already is there; otherwise
 * use the system RAM node holding most of them, or the RAM node nearest to
 * the CDM node.  With nothing counted (MADV_COLLAPSE of a range with no
 * page yet), @target is only khugepaged's default, node 0: never a reason
 * to go to a device.
 */
int __cdm_collapse_target_node(int target, const u32 *node_load,
			       nodemask_t *alloc_nmask)
{
	u32 total = 0, best_load = 0;
	int nid, best = NUMA_NO_NODE;
	nodemask_t sysram;

	for (nid = 0; nid < MAX_NUMNODES; nid++)
		total += node_load[nid];
	if (total && node_load[target] == total)
		return target;

	nodes_andnot(sysram, node_states[N_MEMORY],
		     node_states[N_COHERENT_DEVICE]);
	for_each_node_mask(nid, sysram) {
		if (node_load[nid] > best_load) {
			best_load = node_load[nid];
			best = nid;
		}
	}
	if (best == NUMA_NO_NODE)
		best = cdm_nearest_node(target, &sysram);
	if (best == NUMA_NO_NODE)
		return target;
	nodes_clear(*alloc_nmask);
	node_set(best, *alloc_nmask);
	return best;
}

/*
 * When cpuset mems change (a CDM node gains or loses its memory, which
 * changes the root cpuset's mems), mpol_rebind_nodemask() remaps a
 * policy's nodes by position, which can move a policy from one device to
 * another, or from a RAM node onto a device, and falls back to all of mems
 * when nothing is left.  @tmp is the rebound mask, @mems the new mems.
 * Drop the CDM nodes the policy does not name (the static mask, or the
 * nodes it had); if nothing is left, keep the named nodes still in @mems,
 * else use the system RAM nodes of @mems.  A relative mask names nodes by
 * position, counted as when it was set (__cdm_relative_mems()): where the
 * positions land is what its owner asked for, device or not.
 */
void __cdm_rebind_nodemask(struct mempolicy *pol, nodemask_t *tmp,
			   const nodemask_t *mems)
{
	const nodemask_t *named = pol->flags & MPOL_F_STATIC_NODES ?
				  &pol->w.user_nodemask : &pol->nodes;
	nodemask_t unnamed;

	if (pol->flags & MPOL_F_RELATIVE_NODES)
		return;
	nodes_and(unnamed, *tmp, node_states[N_COHERENT_DEVICE]);
	nodes_andnot(unnamed, unnamed, *named);
	if (nodes_empty(unnamed))
		return;
	nodes_andnot(*tmp, *tmp, unnamed);
	if (nodes_empty(*tmp))
		nodes_and(*tmp, *named, *mems);
	if (nodes_empty(*tmp))
		nodes_andnot(*tmp, *mems, node_states[N_COHERENT_DEVICE]);
	if (nodes_empty(*tmp))
		*tmp = *mems;
}

/* nodeN/cdm/ attributes; the group exists on CDM nodes only. */

static ssize_t owner_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);
	ssize_t len;

	/*
	 * cdm_lock: the node (kept online while owned) outlives its owner,
	 * whose reference cdm_node_unregister() drops under the lock.
	 */
	mutex_lock(&cdm_lock);
	len = sysfs_emit(buf, "%s\n", cn && cn->owner ? dev_name(cn->owner) :
			 "none");
	mutex_unlock(&cdm_lock);
	return len;
}
static DEVICE_ATTR_RO(owner);

static ssize_t emergency_fallback_show(struct device *dev,
				       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", node_isset(dev->id, cdm_emergency_nodes));
}

/* The slow path reads the mask without a lock: a bit flip is atomic. */
static ssize_t emergency_fallback_store(struct device *dev,
					struct device_attribute *attr,
					const char *buf, size_t count)
{
	int nid = dev->id;
	bool on;
	int ret;

	ret = kstrtobool(buf, &on);
	if (ret)
		return ret;
	mutex_lock(&cdm_lock);
	if (on != node_isset(nid, cdm_emergency_nodes)) {
		if (on)
			node_set(nid, cdm_emergency_nodes);
		else
			node_clear(nid, cdm_emergency_nodes);
		pr_info("node %d: emergency fallback %s\n", nid,
			on ? "enabled" : "disabled");
	}
	mutex_unlock(&cdm_lock);
	return count;
}
static DEVICE_ATTR_RW(emergency_fallback);

static const char * const cdm_evac_state_names[] = {
	[CDM_EVAC_IDLE] = "idle",
	[CDM_EVAC_RUNNING] = "running",
	[CDM_EVAC_FAILED] = "failed",
};

static ssize_t evacuation_state_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%s\n",
			  cdm_evac_state_names[cn ? READ_ONCE(cn->state) :
					       CDM_EVAC_IDLE]);
}
static DEVICE_ATTR_RO(evacuation_state);

static ssize_t pages_migrated_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%ld\n",
			  cn ? atomic_long_read(&cn->pages_migrated) : 0);
}
static DEVICE_ATTR_RO(pages_migrated);

static ssize_t pages_remaining_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%lu\n", cn ? cdm_pages_remaining(cn) : 0);
}
static DEVICE_ATTR_RO(pages_remaining);

static ssize_t evacuation_error_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%d\n", cn ? READ_ONCE(cn->last_error) : 0);
}
static DEVICE_ATTR_RO(evacuation_error);

static ssize_t evacuation_ms_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%u\n", cn ? READ_ONCE(cn->last_ms) : 0);
}
static DEVICE_ATTR_RO(evacuation_ms);

/* CPUs an evacuation of the node copies with; 0: its own and the idle ones */
static ssize_t copy_workers_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);

	return sysfs_emit(buf, "%u\n", cn ? READ_ONCE(cn->copy_workers) : 0);
}

static ssize_t copy_workers_store(struct device *dev,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	struct cdm_node *cn = READ_ONCE(cdm_info[dev->id]);
	unsigned int nr;
	int ret;

	ret = kstrtouint(buf, 0, &nr);
	if (ret)
		return ret;
	if (!cn || nr > CDM_COPY_MAX_WORKERS)
		return -EINVAL;
	WRITE_ONCE(cn->copy_workers, nr);
	return count;
}
static DEVICE_ATTR_RW(copy_workers);

/*
 * nodeN/cdm/evacuate and nodeN/cdm/online: the one interface to every CDM
 * node, driver-owned or not.  The kernfs active reference is dropped while
 * the write runs: nodeN/ is removed, under mem_hotplug_lock, when the node
 * goes offline (its last memory removed, or its driver unregistering),
 * which must not wait for a write that takes that lock.  Only the node id
 * is used meanwhile; cdm_info[] entries are never freed.
 * An evacuation is not run under device_hotplug_lock, so that
 * cdm_evacuate() can let it go between slices; an online takes it with
 * lock_device_hotplug_sysfs(), as the memory block files do.
 */
static ssize_t cdm_node_store_op(struct device *dev,
				 struct device_attribute *attr, size_t count,
				 bool evacuate, unsigned int timeout_ms)
{
	struct kernfs_node *dir, *kn = NULL;
	int nid = dev->id;
	int ret;

	/* sysfs_break_active_protection(), for a file in the cdm/ group */
	kobject_get(&dev->kobj);
	dir = kernfs_find_and_get(dev->kobj.sd, "cdm");
	if (dir) {
		kn = kernfs_find_and_get(dir, attr->attr.name);
		kernfs_put(dir);
	}
	if (!kn) {
		kobject_put(&dev->kobj);
		return -ENODEV;
	}
	kernfs_break_active_protection(kn);

	if (evacuate) {
		/* Takes device_hotplug_lock itself, one slice at a time. */
		ret = cdm_evacuate(nid, timeout_ms, NULL);
	} else {
		ret = lock_device_hotplug_sysfs();
		if (!ret) {
			ret = cdm_node_online(nid);
			unlock_device_hotplug();
		}
	}
	sysfs_unbreak_active_protection(kn);
	return ret ? ret : count;
}

/* A timeout in ms, 0 for the default: returns when cdm_evacuate() does. */
static ssize_t evacuate_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	unsigned int timeout_ms;
	int ret;

	ret = kstrtouint(buf, 0, &timeout_ms);
	if (ret)
		return ret;
	return cdm_node_store_op(dev, attr, count, true, timeout_ms);
}
static DEVICE_ATTR_WO(evacuate);

/* "1": cdm_node_online(). */
static ssize_t online_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	unsigned int v;

	if (kstrtouint(buf, 0, &v) || v != 1)
		return -EINVAL;
	return cdm_node_store_op(dev, attr, count, false, 0);
}
static DEVICE_ATTR_WO(online);

static struct attribute *cdm_node_attrs[] = {
	&dev_attr_owner.attr,
	&dev_attr_emergency_fallback.attr,
	&dev_attr_evacuation_state.attr,
	&dev_attr_pages_migrated.attr,
	&dev_attr_pages_remaining.attr,
	&dev_attr_evacuation_error.attr,
	&dev_attr_evacuation_ms.attr,
	&dev_attr_copy_workers.attr,
	&dev_attr_evacuate.attr,
	&dev_attr_online.attr,
	NULL
};

static umode_t cdm_node_attr_visible(struct kobject *kobj,
				     struct attribute *attr, int n)
{
	return attr->mode;
}

static bool cdm_node_group_visible(struct kobject *kobj)
{
	return node_state(kobj_to_dev(kobj)->id, N_COHERENT_DEVICE);
}

DEFINE_SYSFS_GROUP_VISIBLE(cdm_node);

const struct attribute_group cdm_node_attr_group = {
	.name = "cdm",
	.attrs = cdm_node_attrs,
	.is_visible = SYSFS_GROUP_VISIBLE(cdm_node),
};
