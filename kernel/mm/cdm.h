/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Coherent device memory (CDM) nodes: the hooks only core mm calls.
 *
 * Each inline hook costs a static branch until the first CDM node exists
 * (cdm_enabled()) and calls its out-of-line half in mm/cdm.c only where a
 * CDM node is involved.  The driver API and what code outside mm/ needs
 * are in <linux/cdm.h>.
 */
#ifndef __MM_CDM_H
#define __MM_CDM_H

#include <linux/cdm.h>
#include <linux/gfp.h>
#include <linux/jump_label.h>
#include <linux/mempolicy.h>
#include <linux/migrate_mode.h>

struct folio;
struct hstate;
struct pglist_data;
struct zonelist;
struct oom_control;
struct task_struct;
struct hstate;

#ifdef CONFIG_COHERENT_DEVICE_MEMORY

/*
 * For boot code that runs before the static key is enabled, and behind
 * cdm_enabled().  __always_inline here and in the tests below that run on
 * every fault of a bound task: at -Os gcc calls them out of line.
 */
static __always_inline bool __node_is_cdm(int nid)
{
	return node_state(nid, N_COHERENT_DEVICE);
}

/**
 * struct cdm_zonelists - the zonelists only explicit placement walks
 * @zonelists: [ZONELIST_FALLBACK] is the node's zones, then system RAM by
 *	distance; [ZONELIST_NOFALLBACK] is the node's zones only
 * @named: the node and the RAM nodes it falls back to: the nodemask that
 *	opens the node to a policy that names it without a nodemask of its
 *	own (MPOL_PREFERRED, the interleave policies)
 * @ram: the RAM nodes it falls back to: where a policy naming the node
 *	allocates while the node is being evacuated
 *
 * A CDM node's zonelists in its pglist_data hold no CDM zone at all, so a
 * caller that does not name the node cannot reach it, however it picks its
 * node.  Allocated once per CDM node id and never freed: the allocator
 * reads it without a lock.
 */
struct cdm_zonelists {
	nodemask_t named;
	nodemask_t ram;
	struct zonelist zonelists[MAX_ZONELISTS];
};

extern struct cdm_zonelists *cdm_zonelists[MAX_NUMNODES];

/* Hooks for core mm, see mm/cdm.c. */
struct folio *__cdm_hugetlb_dequeue(struct hstate *h, gfp_t gfp,
				    const nodemask_t *mask, int nid,
				    struct folio *(*dequeue)(struct hstate *h,
							     int nid));
void __init cdm_init_possible_nodes(void);
bool cdm_memblock_skip(int nid);
unsigned int __init cdm_nr_boot_ram_nodes(void);
void __init cdm_boot_zone_movable(unsigned long *zone_movable_pfn);
void cdm_build_zonelist_mask(int local_node, nodemask_t *used_mask);
bool cdm_build_zonelists(struct pglist_data *pgdat);
bool __cdm_refuse_zonelist(gfp_t gfp, const nodemask_t *mask);
nodemask_t *__cdm_named_nodemask(int nid);
extern nodemask_t cdm_evacuating_nodes;
extern nodemask_t cdm_bind_nodes;
nodemask_t *__cdm_policy_evacuating(nodemask_t *mask, int *nid);
const nodemask_t *__cdm_rebind_mems(struct mempolicy *pol, nodemask_t *buf,
				    const nodemask_t *mems);
nodemask_t *__cdm_relative_mems(nodemask_t *mems);
struct zonelist *__cdm_node_zonelist(struct zonelist *zonelist, int nid,
				     gfp_t gfp, const nodemask_t *mask);
struct page *__cdm_alloc_emergency(gfp_t gfp, unsigned int order,
				   const nodemask_t *nodemask,
				   bool reclaim_failed);
void __cdm_migration_targets(nodemask_t *nmask);
void __cdm_offline_migrated(int nid, unsigned int nr_pages);
int __cdm_offline_expired(int nid);
bool __cdm_offline_batch_end(unsigned long start_pfn, unsigned long pfn);
int __cdm_policy_node(const nodemask_t *mask, int nid);
void __cdm_rebind_nodemask(struct mempolicy *pol, nodemask_t *tmp,
			   const nodemask_t *mems);
int __cdm_collapse_target_node(int target, const u32 *node_load,
			       nodemask_t *alloc_nmask);
struct page *__cdm_alloc_pages_mask(gfp_t gfp, unsigned int order, int nid,
				    const nodemask_t *mask);
nodemask_t *__cdm_policy_extra_nodes(nodemask_t *buf, const nodemask_t *mask,
				     int nid);
long __cdm_oom_badness(struct task_struct *task, struct oom_control *oc,
		       long points);
bool __cdm_hugetlb_replace(struct hstate *h);
nodemask_t *__cdm_hugetlb_target(int *nid, gfp_t *gfp);
void __cdm_hugetlb_move_surplus(struct hstate *h, int from, int to);
unsigned long __cdm_private_pages(void);
struct zonelist *__cdm_reclaim_zonelist(struct zonelist *zonelist);
void __cdm_cpuset_zonelist(struct zonelist **zonelist, gfp_t gfp);
/* cpusets_insane_config(), without <linux/cpuset.h> and what it pulls in */
extern struct static_key_false cpusets_insane_config_key;

/*
 * If @mask names CDM node @nid, point @zonelist at the node's explicit
 * zonelist for @gfp and return true; else leave it.
 */
static __always_inline bool cdm_explicit_zonelist(struct zonelist **zonelist,
						  int nid, gfp_t gfp,
						  const nodemask_t *mask)
{
	struct cdm_zonelists *czl = READ_ONCE(cdm_zonelists[nid]);

	if (!czl || !mask || !node_isset(nid, *mask))
		return false;
	*zonelist = &czl->zonelists[gfp_zonelist(gfp)];
	return true;
}

/*
 * The page allocator's gate.  An allocation that prefers a CDM node walks
 * the node's explicit zonelist only if @mask names the node; otherwise it
 * keeps the node's own zonelist, which holds system RAM only.  False: the
 * allocation is refused (__GFP_THISNODE without a mask naming the node).
 * A task's user allocation without a nodemask may also be opened by its
 * cpuset, once a cpuset of movable nodes only exists (see mm/cdm.c).
 */
static __always_inline bool cdm_open_zonelist(struct zonelist **zonelist,
					      int nid, gfp_t gfp,
					      const nodemask_t *mask)
{
	if (!cdm_enabled())
		return true;
	if (__node_is_cdm(nid)) {
		if (likely(cdm_explicit_zonelist(zonelist, nid, gfp, mask)))
			return true;
		return __cdm_refuse_zonelist(gfp, mask);
	}
	if (IS_ENABLED(CONFIG_CPUSETS) &&
	    static_branch_unlikely(&cpusets_insane_config_key) && !mask &&
	    (gfp & (__GFP_HARDWALL | __GFP_THISNODE)) == __GFP_HARDWALL)
		__cdm_cpuset_zonelist(zonelist, gfp);
	return true;
}

/*
 * The nodemask that opens CDM node @nid to a policy naming it without one
 * (MPOL_PREFERRED, interleave): the node and the RAM nodes it falls back
 * to.  NULL for any other node.
 */
static inline nodemask_t *cdm_named_nodemask(int nid)
{
	return node_is_cdm(nid) ? __cdm_named_nodemask(nid) : NULL;
}

/*
 * The allocator's slow path: a movable allocation may take a page from a
 * CDM node whose emergency_fallback knob is on once direct reclaim of system
 * RAM freed nothing and compaction gave it no page (@reclaim_failed), or on
 * entering the slow path when RAM holds nothing reclaim could free.  Any
 * allocation that gets no such page after reclaim failed gets RAM's per-CPU
 * lists drained.
 */
static inline struct page *
cdm_alloc_emergency(gfp_t gfp, unsigned int order, const nodemask_t *nodemask,
		    bool reclaim_failed)
{
	if (!cdm_enabled())
		return NULL;
	return __cdm_alloc_emergency(gfp, order, nodemask, reclaim_failed);
}

/* hugetlb's pool search walks the zonelist the page allocator would. */
static inline struct zonelist *cdm_node_zonelist(struct zonelist *zonelist,
						 int nid, gfp_t gfp,
						 const nodemask_t *mask)
{
	return node_is_cdm(nid) ? __cdm_node_zonelist(zonelist, nid, gfp, mask) :
				  zonelist;
}

/* Memory offlining never migrates pages onto a CDM node. */
static inline void cdm_migration_targets(nodemask_t *nmask)
{
	if (cdm_enabled())
		__cdm_migration_targets(nmask);
}

static inline void cdm_offline_migrated(int nid, unsigned int nr_pages)
{
	if (node_is_cdm(nid))
		__cdm_offline_migrated(nid, nr_pages);
}

bool __cdm_node_owned(int nid);

/* A driver's CDM node stays online, memory-less, until it unregisters. */
static inline bool cdm_node_owned(int nid)
{
	return node_is_cdm(nid) && __cdm_node_owned(nid);
}

/* -ETIMEDOUT once the deadline of a running cdm_evacuate() has passed. */
static inline int cdm_offline_expired(int nid)
{
	return node_is_cdm(nid) ? __cdm_offline_expired(nid) : 0;
}

/*
 * Offlining migrates everything it finds in a memory block at once, and
 * looks at signals and the deadline only between such passes; a task that
 * touches a page of a pass waits until the pass's migrate_pages() batch
 * has been copied.  On a CDM node a pass ends after CDM_OFFLINE_BATCH_PAGES
 * page frames, and a large folio is a pass of its own, so both an
 * evacuation's timeout and that wait are bounded by one short batch.
 */
#define CDM_OFFLINE_BATCH_PAGES	64
static inline bool cdm_offline_batch_end(unsigned long start_pfn,
					 unsigned long pfn)
{
	return cdm_enabled() && pfn != start_pfn &&
	       __cdm_offline_batch_end(start_pfn, pfn);
}

/*
 * True, with the node in @nid, if @mask names exactly one node and that node
 * is in cdm_bind_nodes: a bind to one device, which may start there.
 */
static __always_inline bool cdm_bind_to_one(const nodemask_t *mask, int *nid)
{
	if (small_const_nbits(MAX_NUMNODES)) {
		/* One word, as most configurations have: no popcount. */
		unsigned long w = mask->bits[0] &
				  BITMAP_LAST_WORD_MASK(MAX_NUMNODES);

		if (!(w & cdm_bind_nodes.bits[0]) || (w & (w - 1)))
			return false;
		*nid = __ffs(w);
		return true;
	}
	if (nodes_weight(*mask) != 1 ||
	    !nodes_intersects(*mask, cdm_bind_nodes))
		return false;
	*nid = first_node(*mask);
	return true;
}

/*
 * The end of policy_nodemask(), on every fault of a task with a policy: a
 * mask naming one CDM node, as "numactl --membind=N" does, starts on that
 * node, unless it is being evacuated; any other MPOL_BIND or
 * MPOL_PREFERRED_MANY mask holding CDM nodes starts from the mask node
 * nearest to @nid when @nid is outside the mask; a CDM node the policy
 * names without a mask (MPOL_PREFERRED, interleave) is opened by its own
 * mask; a CDM node being evacuated is allocated around.  The bind to one
 * device costs the tests up to its return, no distance search.
 * A policy that does not name @nid opens nothing: MPOL_LOCAL, and the
 * implicit per-node policy of a task on a CDM node's CPU (MPOL_PREFERRED
 * with MPOL_F_MORON, which no user policy of that mode has).
 */
static __always_inline nodemask_t *
cdm_policy_nodemask(nodemask_t *mask, const struct mempolicy *pol, int *nid)
{
	int only;

	if (!cdm_enabled())
		return mask;
	if (!mask)
		return *nid >= 0 && __node_is_cdm(*nid) &&
		       pol->mode != MPOL_LOCAL && !(pol->flags & MPOL_F_MORON) &&
		       node_isset(*nid, pol->nodes) ?
		       __cdm_named_nodemask(*nid) : NULL;
	if (cdm_bind_to_one(mask, &only)) {
		if (pol->home_node == NUMA_NO_NODE)
			*nid = only;
		return mask;
	}
	if (unlikely(nodes_intersects(*mask, cdm_evacuating_nodes)))
		return __cdm_policy_evacuating(mask, nid);
	/* One node not opened above (RAM, a CDM node without memory): @nid */
	if (pol->home_node == NUMA_NO_NODE &&
	    (*nid < 0 || !node_isset(*nid, *mask)) &&
	    nodes_weight(*mask) != 1)
		*nid = __cdm_policy_node(mask, *nid);
	return mask;
}

/* The mems MPOL_F_RELATIVE_NODES positions count in, see mm/cdm.c. */
static inline nodemask_t *cdm_relative_mems(nodemask_t *mems)
{
	return cdm_enabled() ? __cdm_relative_mems(mems) : mems;
}

/* mpol_rebind_nodemask(): the mems a policy is remapped between. */
static inline const nodemask_t *cdm_rebind_mems(struct mempolicy *pol,
						nodemask_t *buf,
						const nodemask_t *mems)
{
	return cdm_enabled() ? __cdm_rebind_mems(pol, buf, mems) : mems;
}

/*
 * First pass of a policy allocation whose mask holds CDM nodes missing
 * from @nid's zonelist: each mask node in distance order, those above
 * their low watermark first, as a zonelist is walked; no reclaim.
 * There is none when @nid is the only CDM node of the mask, as in every
 * bind to one device; that test is inline because it runs on each fault.
 */
static __always_inline struct page *
cdm_alloc_pages_mask(gfp_t gfp, unsigned int order, int nid,
		     const nodemask_t *mask)
{
	unsigned long nr_cdm;

	if (!cdm_enabled() || !mask)
		return NULL;
	if (small_const_nbits(MAX_NUMNODES)) {
		/* The same test on one word, as most configurations have. */
		unsigned long cdm = mask->bits[0] &
				    node_states[N_COHERENT_DEVICE].bits[0];

		if (nid >= 0)
			cdm &= ~BIT(nid);
		return cdm ? __cdm_alloc_pages_mask(gfp, order, nid, mask) :
			     NULL;
	}
	nr_cdm = bitmap_weight_and(mask->bits,
				   node_states[N_COHERENT_DEVICE].bits,
				   MAX_NUMNODES);
	if (!nr_cdm || (nr_cdm == 1 && nid >= 0 && node_isset(nid, *mask) &&
			node_state(nid, N_COHERENT_DEVICE)))
		return NULL;
	return __cdm_alloc_pages_mask(gfp, order, nid, mask);
}

/*
 * The hugetlb pool's counterpart: a free huge page from the CDM nodes of
 * @mask other than @nid, which @nid's zonelist lacks, in node order.
 * @dequeue takes one from a node's free list, under hugetlb_lock.
 */
static inline struct folio *
cdm_hugetlb_dequeue(struct hstate *h, gfp_t gfp, const nodemask_t *mask,
		    int nid, struct folio *(*dequeue)(struct hstate *h, int nid))
{
	if (!cdm_enabled() || !mask)
		return NULL;
	return __cdm_hugetlb_dequeue(h, gfp, mask, nid, dequeue);
}

/* N_MEMORY without the CDM nodes, for paths that spread over all nodes. */
static inline nodemask_t *cdm_sysram_nodes(nodemask_t *buf)
{
	if (!cdm_enabled())
		return &node_states[N_MEMORY];
	nodes_andnot(*buf, node_states[N_MEMORY],
		     node_states[N_COHERENT_DEVICE]);
	return buf;
}

/* NUMA balancing never moves a page onto a CDM node nor off one. */
static inline bool cdm_numa_migrate_denied(int from, int to)
{
	return node_is_cdm(from) || node_is_cdm(to);
}

/* khugepaged and MADV_COLLAPSE: the node to allocate the huge page on. */
static inline int cdm_collapse_target_node(int target, const u32 *node_load,
					   nodemask_t *alloc_nmask)
{
	if (!node_is_cdm(target))
		return target;
	return __cdm_collapse_target_node(target, node_load, alloc_nmask);
}

/* cpuset rebinding of a mempolicy nodemask: see mm/cdm.c. */
static inline void cdm_rebind_nodemask(struct mempolicy *pol,
				       nodemask_t *tmp,
				       const nodemask_t *mems)
{
	if (cdm_enabled())
		__cdm_rebind_nodemask(pol, tmp, mems);
}

/* OOM badness counting only what a kill frees where the OOM is. */
static inline long cdm_oom_badness(struct task_struct *task,
				   struct oom_control *oc, long points)
{
	if (!cdm_enabled())
		return points;
	return __cdm_oom_badness(task, oc, points);
}

/*
 * Memory offlining dissolves the node's free huge pages, but not one that
 * a reservation holds: it fails instead.  On a CDM node being evacuated a
 * new huge page in system RAM takes the reserved page's place, as
 * alloc_contig_range() replaces free huge pages, so the pool never blocks
 * the evacuation and the reservation stays honoured.  Gigantic pages have
 * no buddy allocation to replace them with.
 */
static inline bool cdm_hugetlb_replace(struct hstate *h, int nid)
{
	return cdm_enabled() && node_isset(nid, cdm_evacuating_nodes) &&
	       __cdm_hugetlb_replace(h);
}

/* The nodes of a replacement huge page, see __cdm_hugetlb_target(). */
static inline nodemask_t *cdm_hugetlb_target(int *nid, gfp_t *gfp)
{
	if (cdm_enabled() && node_isset(*nid, cdm_evacuating_nodes))
		return __cdm_hugetlb_target(nid, gfp);
	return NULL;
}

/* Under hugetlb_lock, see __cdm_hugetlb_move_surplus(). */
static inline void cdm_hugetlb_move_surplus(struct hstate *h, int from,
					    int to)
{
	if (cdm_enabled() && from != to)
		__cdm_hugetlb_move_surplus(h, from, to);
}

/*
 * gather_surplus_pages() allocates a reservation's surplus pages on each
 * node of mems_allowed (within an MPOL_BIND mask) without a nodemask, so
 * the gate sends a CDM node's share to RAM, where a task bound to the node
 * can never fault it in.  Give the bind's mask for a CDM node it names,
 * unless the node is being evacuated: then RAM is where the task's faults
 * look (__cdm_policy_evacuating()), and where the pages must go.
 */
static inline nodemask_t *cdm_surplus_nodemask(int nid, nodemask_t *mbind)
{
	return cdm_enabled() && mbind && __node_is_cdm(nid) &&
	       !node_isset(nid, cdm_evacuating_nodes) ? mbind : NULL;
}

/* Free and page-cache pages on CDM nodes, see __cdm_private_pages(). */
static inline unsigned long cdm_private_pages(void)
{
	return cdm_enabled() ? __cdm_private_pages() : 0;
}

/* What memory cgroup reclaim walks, see __cdm_reclaim_zonelist(). */
static inline struct zonelist *cdm_reclaim_zonelist(struct zonelist *zonelist)
{
	return cdm_enabled() ? __cdm_reclaim_zonelist(zonelist) : zonelist;
}

#else /* !CONFIG_COHERENT_DEVICE_MEMORY */

static inline bool __node_is_cdm(int nid)
{
	return false;
}

static inline void cdm_init_possible_nodes(void)
{
}

static inline bool cdm_memblock_skip(int nid)
{
	return false;
}

static inline unsigned int cdm_nr_boot_ram_nodes(void)
{
	return nr_online_nodes;
}

static inline void cdm_boot_zone_movable(unsigned long *zone_movable_pfn)
{
}

static inline void cdm_build_zonelist_mask(int local_node,
					   nodemask_t *used_mask)
{
}

static inline bool cdm_build_zonelists(struct pglist_data *pgdat)
{
	return false;
}

static inline bool cdm_open_zonelist(struct zonelist **zonelist, int nid,
				     gfp_t gfp, const nodemask_t *mask)
{
	return true;
}

static inline nodemask_t *cdm_named_nodemask(int nid)
{
	return NULL;
}

static inline struct zonelist *cdm_node_zonelist(struct zonelist *zonelist,
						 int nid, gfp_t gfp,
						 const nodemask_t *mask)
{
	return zonelist;
}

static inline struct page *
cdm_alloc_emergency(gfp_t gfp, unsigned int order, const nodemask_t *nodemask,
		    bool reclaim_failed)
{
	return NULL;
}

static inline void cdm_migration_targets(nodemask_t *nmask)
{
}

static inline void cdm_offline_migrated(int nid, unsigned int nr_pages)
{
}

static inline bool cdm_node_owned(int nid)
{
	return false;
}

static inline int cdm_offline_expired(int nid)
{
	return 0;
}

static inline bool cdm_offline_batch_end(unsigned long start_pfn,
					 unsigned long pfn)
{
	return false;
}

static inline nodemask_t *cdm_policy_nodemask(nodemask_t *mask,
					      const struct mempolicy *pol,
					      int *nid)
{
	return mask;
}

static inline const nodemask_t *cdm_rebind_mems(struct mempolicy *pol,
						nodemask_t *buf,
						const nodemask_t *mems)
{
	return mems;
}

static inline nodemask_t *cdm_relative_mems(nodemask_t *mems)
{
	return mems;
}

static inline struct page *cdm_alloc_pages_mask(gfp_t gfp, unsigned int order,
						int nid, const nodemask_t *mask)
{
	return NULL;
}

static inline struct folio *
cdm_hugetlb_dequeue(struct hstate *h, gfp_t gfp, const nodemask_t *mask,
		    int nid, struct folio *(*dequeue)(struct hstate *h, int nid))
{
	return NULL;
}

static inline nodemask_t *cdm_sysram_nodes(nodemask_t *buf)
{
	return &node_states[N_MEMORY];
}

static inline bool cdm_hugetlb_replace(struct hstate *h, int nid)
{
	return false;
}

static inline nodemask_t *cdm_hugetlb_target(int *nid, gfp_t *gfp)
{
	return NULL;
}

static inline void cdm_hugetlb_move_surplus(struct hstate *h, int from,
					    int to)
{
}

static inline nodemask_t *cdm_surplus_nodemask(int nid, nodemask_t *mbind)
{
	return NULL;
}

static inline bool cdm_numa_migrate_denied(int from, int to)
{
	return false;
}

static inline int cdm_collapse_target_node(int target, const u32 *node_load,
					   nodemask_t *alloc_nmask)
{
	return target;
}

static inline void cdm_rebind_nodemask(struct mempolicy *pol,
				       nodemask_t *tmp,
				       const nodemask_t *mems)
{
}

static inline long cdm_oom_badness(struct task_struct *task,
				   struct oom_control *oc, long points)
{
	return points;
}

static inline unsigned long cdm_private_pages(void)
{
	return 0;
}

static inline struct zonelist *cdm_reclaim_zonelist(struct zonelist *zonelist)
{
	return zonelist;
}

#endif /* CONFIG_COHERENT_DEVICE_MEMORY */

/*
 * alloc_migration_target()'s nodemask: move_pages(2), migrate_pages(2)
 * and the DAMOS migrate_hot/migrate_cold actions name their target node,
 * so a CDM node there opens to them.
 */
static inline nodemask_t *cdm_migration_nodemask(nodemask_t *mask,
						 enum migrate_reason reason,
						 int nid)
{
	if (!mask && (reason == MR_SYSCALL || reason == MR_DAMON))
		return cdm_named_nodemask(nid);
	return mask;
}

#endif /* __MM_CDM_H */
