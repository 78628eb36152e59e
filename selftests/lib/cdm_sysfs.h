/* SPDX-License-Identifier: GPL-2.0 */
/* cdm selftest library: sysfs and procfs files, node lists, node and zone meminfo. */
#ifndef CDM_SYSFS_H
#define CDM_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KiB (1024UL)
#define MiB (1024UL * 1024UL)
#define GiB (1024UL * 1024UL * 1024UL)
#define PAGE_SZ 4096UL
#define HPAGE_SZ (2UL * MiB)

#define CDM_MAX_NODES 64
#define NODE_SYS "/sys/devices/system/node"
/* the 2 MiB hugetlb pool, global and a node's (format with the node id) */
#define HUGEPAGES_2M "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define NODE_HPAGE_POOL NODE_SYS "/node%d/hugepages/hugepages-2048kB/nr_hugepages"
#define MEMSYS "/sys/devices/system/memory"

/* ---- files ---- */
int read_str(const char *path, char *buf, size_t len);	/* bytes or -errno */
int write_str(const char *path, const char *s);		/* 0 or -errno */
int read_long(const char *path, long *val);		/* 0 or -errno */
int write_long(const char *path, long val);
int read_strf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int write_strf(const char *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool path_exists(const char *path);
/* the bracketed choice of a sysfs selector ("a [b] c" -> "b"): bytes or -errno */
int read_choice(const char *path, char *buf, size_t len);

/* ---- nodes ---- */
int parse_nodelist(const char *s, int *nodes, int max);
bool nodelist_has(const char *s, int node);	/* "0-1,3" has @node */
/* NODE_SYS/@state ("has_memory", ...) as a bit mask of nodes 0..63; 0 if absent */
uint64_t node_state_mask(const char *state);
int cdm_nodes(int *nodes, int max);	/* has_coherent_device */
int mem_nodes(int *nodes, int max);	/* has_memory */
/* memory block ids of node @nid (directory order): how many or -errno */
int node_blocks(int nid, int *ids, int max);
/* MEMSYS/memory@id/state without its newline: 0 or -errno */
int block_state(int id, char *buf, size_t len);
int ram_nodes(int *nodes, int max);	/* has_memory minus CDM */
bool node_is_cdm(int nid);
bool node_has_memory(int nid);
/* populated CDM nodes (CDM and has_memory) */
int cdm_mem_nodes(int *nodes, int max);
/*
 * The value of "<key>:" (or "Node N <key>:" with @nodefmt) in a file of
 * such lines (meminfo, vmstat, the capi_sim stats), -1 if absent.
 */
long kv_file(const char *path, const char *key, bool nodefmt);
/* value in kB of "Node N <key>:" in nodeN/meminfo, -1 if absent */
long node_meminfo_kb(int nid, const char *key);
long node_used_kb(int nid);	/* MemTotal - MemFree, -1 if absent */
/* the number in nodeN/cdm/@name (evacuation_error, ...), LONG_MIN if absent */
long node_cdm_long(int nid, const char *name);
long meminfo_kb(const char *key);	/* /proc/meminfo */
long vmstat_val(const char *key);	/* /proc/vmstat, -1 if absent */
long node_nr_hugepages(int nid);	/* 2 MiB pool on node */
/* sum of a watermark ("min", "low", "high") over a node's zones, kB */
long node_watermark_kb(int nid, const char *wm);
/* free and low-watermark kB summed over a node's zones above ZONE_DMA
 * (all, or not Movable) */
int node_zone_free_low(int nid, bool movable, long *free_kb, long *low_kb);
long node_pcp_free_kb(int nid);	/* free on per-CPU lists */
#endif
