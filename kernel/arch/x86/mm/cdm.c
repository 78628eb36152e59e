// SPDX-License-Identifier: GPL-2.0
/*
 * x86 firmware glue for coherent device memory (CDM) nodes.
 *
 * ACPI SRAT assigns device memory to a proximity domain like any memory;
 * cdm_nodes= (mm/cdm.c) names such nodes on the command line.  Platforms
 * may instead tag device memory as EFI specific-purpose memory
 * (EFI_MEMORY_SP): the kernel keeps it out of the page allocator as
 * "Soft Reserved" e820 ranges and offers it to device DAX, whose kmem
 * driver can hot-add it.  With cdm_soft_reserved on the command line, the
 * node of every soft-reserved range becomes a CDM node, so that memory is
 * added to an isolated, evacuable node instead of an ordinary one.
 */

#define pr_fmt(fmt) "cdm: " fmt

#include <linux/cdm.h>
#include <linux/init.h>
#include <linux/mm.h>
#include <linux/numa.h>
#include <asm/e820/api.h>

static bool cdm_soft_reserved __initdata;

static int __init cdm_soft_reserved_setup(char *str)
{
	cdm_soft_reserved = true;
	return 0;
}
early_param("cdm_soft_reserved", cdm_soft_reserved_setup);

/*
 * Called by free_area_init(), long after ACPI SRAT was parsed, before the
 * possible nodes are counted.  A node that also has ordinary RAM is left
 * alone: that RAM already holds node data and early allocations, and the
 * firmware meant it for general use.  A node whose memory is all soft
 * reserved has none at boot, so no earlier allocation could have used it.
 */
void __init arch_cdm_boot_nodes(void)
{
	unsigned long start_pfn, end_pfn;
	int i, nid;

	if (!cdm_soft_reserved)
		return;
	for (i = 0; i < e820_table->nr_entries; i++) {
		struct e820_entry *entry = &e820_table->entries[i];
		u64 end = entry->addr + entry->size - 1;

		if (entry->type != E820_TYPE_SOFT_RESERVED)
			continue;
		nid = phys_to_target_node(entry->addr);
		if (nid == NUMA_NO_NODE) {
			pr_warn("soft reserved [mem %#010llx-%#010llx] has no NUMA node, left alone\n",
				entry->addr, end);
			continue;
		}
		get_pfn_range_for_nid(nid, &start_pfn, &end_pfn);
		if (start_pfn < end_pfn) {
			pr_warn("soft reserved [mem %#010llx-%#010llx]: node %d also has RAM, not a CDM node\n",
				entry->addr, end, nid);
			continue;
		}
		pr_info("soft reserved [mem %#010llx-%#010llx] is coherent device memory of node %d\n",
			entry->addr, end, nid);
		cdm_mark_boot_node(nid);
	}
}
