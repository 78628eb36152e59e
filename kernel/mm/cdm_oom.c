// SPDX-License-Identifier: GPL-2.0
/*
 * The OOM killer and coherent device memory (CDM) nodes.
 *
 * A task's badness is its RSS, wherever that RSS is.  With CDM nodes that
 * is the wrong measure in both directions: killing a device job that holds
 * its memory on a CDM node frees no system RAM, and killing a RAM-only task
 * frees nothing on a CDM node that an allocation bound there ran out of.
 * The OOM killer only needs to know, for each candidate, how many of its
 * pages are on the nodes the failing allocation could use; the page tables
 * say, so walk them.
 *
 * The walk runs from select_bad_process() under rcu_read_lock(): it only
 * try-locks mmap_lock (a task whose lock is taken keeps its plain score),
 * takes page-table spinlocks, skips hugetlb (pool pages freed by a kill go
 * back to the pool, not to the node) and never sleeps.  It runs only when a
 * CDM node exists and for a global, not a memcg, OOM.
 */
#include "cdm.h"
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mempolicy.h>
#include <linux/nodemask.h>
#include <linux/oom.h>
#include <linux/pagewalk.h>
#include <linux/huge_mm.h>
#include <linux/sched/mm.h>

struct cdm_oom_walk {
	nodemask_t domain;		/* nodes the failing allocation may use */
	unsigned long in_domain;	/* pages on CDM nodes in @domain */
	unsigned long off_domain;	/* pages on CDM nodes outside @domain */
};

static void cdm_oom_count(struct cdm_oom_walk *w, unsigned long pfn,
			  unsigned long nr)
{
	int nid;

	if (!pfn_valid(pfn))
		return;
	nid = page_to_nid(pfn_to_page(pfn));
	if (!node_is_cdm(nid))
		return;
	if (node_isset(nid, w->domain))
		w->in_domain += nr;
	else
		w->off_domain += nr;
}

static int cdm_oom_pmd_entry(pmd_t *pmd, unsigned long addr,
			     unsigned long end, struct mm_walk *walk)
{
	struct cdm_oom_walk *w = walk->private;
	pte_t *start, *pte;
	spinlock_t *ptl;	/* the page table lock */

	ptl = pmd_trans_huge_lock(pmd, walk->vma);
	if (ptl) {
		pmd_t pmdval = pmdp_get(pmd);

		if (pmd_present(pmdval))
			cdm_oom_count(w, pmd_pfn(pmdval), HPAGE_PMD_NR);
		spin_unlock(ptl);
		return 0;
	}
	start = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start)
		return 0;	/* the table went away: nothing mapped */
	for (pte = start; addr < end; pte++, addr += PAGE_SIZE) {
		pte_t ptent = ptep_get(pte);

		if (pte_present(ptent))
			cdm_oom_count(w, pte_pfn(ptent), 1);
	}
	pte_unmap_unlock(start, ptl);
	return 0;
}

static int cdm_oom_test_walk(unsigned long start, unsigned long end,
			     struct mm_walk *walk)
{
	/* no struct pages to count, or pool pages a kill does not free */
	return walk->vma->vm_flags & (VM_PFNMAP | VM_IO | VM_HUGETLB) ? 1 : 0;
}

static const struct mm_walk_ops cdm_oom_walk_ops = {
	.pmd_entry	= cdm_oom_pmd_entry,
	.test_walk	= cdm_oom_test_walk,
	.walk_lock	= PGWALK_RDLOCK,
};

/* Count @task's pages on CDM nodes in and outside w->domain. */
static bool cdm_oom_walk_task(struct task_struct *task, struct cdm_oom_walk *w)
{
	struct vm_area_struct *vma;
	struct task_struct *p;
	struct mm_struct *mm;
	bool counted = false;

	p = find_lock_task_mm(task);
	if (!p)
		return false;
	mm = p->mm;
	mmgrab(mm);
	task_unlock(p);

	if (mmap_read_trylock(mm)) {
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma)
			walk_page_range_vma(vma, vma->vm_start, vma->vm_end,
					    &cdm_oom_walk_ops, w);
		mmap_read_unlock(mm);
		counted = true;
	}
	mmdrop(mm);
	return counted;
}

/* Does a thread of @task have a policy naming a node of @domain? */
static bool cdm_oom_bound_to(struct task_struct *task, const nodemask_t *domain)
{
	struct mempolicy *pol;
	struct task_struct *t;
	bool bound = false;

	rcu_read_lock();
	for_each_thread(task, t) {
		task_lock(t);
		pol = t->mempolicy;
		if (pol && pol->mode != MPOL_DEFAULT && pol->mode != MPOL_LOCAL)
			bound = nodes_intersects(pol->nodes, *domain);
		task_unlock(t);
		if (bound)
			break;
	}
	rcu_read_unlock();
	return bound;
}

/*
 * Below the score of every task that holds memory where the OOM happened,
 * and still ordered among themselves: chosen only if no such task exists,
 * so that an OOM with no useful victim kills as it would have without CDM
 * nodes instead of finding no victim at all.
 */
#define CDM_OOM_LAST_RESORT	(LONG_MIN / 2)

/*
 * cdm_oom_badness - score @task by the memory a kill would free for @oc
 *
 * An OOM of system RAM (the failing allocation could use no CDM node, or
 * not all of them): pages on CDM nodes it could not use do not count.
 * An OOM confined to CDM nodes: only pages on those nodes count, and a
 * task that holds none there and is not bound there is a last resort.
 */
long __cdm_oom_badness(struct task_struct *task, struct oom_control *oc,
		       long points)
{
	enum zone_type highest = gfp_zone(oc->gfp_mask);
	struct cdm_oom_walk w = {};
	struct zoneref *z;
	struct zone *zone;
	bool cdm_only = true;
	unsigned long rss;

	if (points == LONG_MIN || oc->memcg || !oc->zonelist || oc->order < 0)
		return points;

	for_each_zone_zonelist_nodemask(zone, z, oc->zonelist, highest,
					oc->nodemask) {
		node_set(zone_to_nid(zone), w.domain);
		if (!node_is_cdm(zone_to_nid(zone)))
			cdm_only = false;
	}
	if (nodes_empty(w.domain) || !cdm_oom_walk_task(task, &w))
		return points;

	rss = 0;
	if (cdm_only) {
		struct task_struct *p = find_lock_task_mm(task);

		if (p) {
			rss = get_mm_rss(p->mm);
			task_unlock(p);
		}
		/* what it holds elsewhere would stay where it is */
		points -= rss - min(rss, w.in_domain);
		if (!w.in_domain && !cdm_oom_bound_to(task, &w.domain))
			points += CDM_OOM_LAST_RESORT;
		return points;
	}
	return points - (long)w.off_domain;
}
