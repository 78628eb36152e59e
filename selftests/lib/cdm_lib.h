/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the cdm guest selftests: sysfs/procfs access, node
 * meminfo, per-page node queries with move_pages(2), data patterns, child
 * processes that fill memory, the capi_sim driver's interfaces and the
 * cdm_test_kmod debugfs interface.
 */
#ifndef CDM_LIB_H
#define CDM_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../drivers/capi_sim/capi_sim_uapi.h"

#ifndef MPOL_WEIGHTED_INTERLEAVE
#define MPOL_WEIGHTED_INTERLEAVE 6
#endif

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define KiB (1024UL)
#define MiB (1024UL * 1024UL)
#define GiB (1024UL * 1024UL * 1024UL)
#define PAGE_SZ 4096UL
#define HPAGE_SZ (2UL * MiB)

#define CDM_MAX_NODES 64
#define CDM_MAX_DEVS 8

#define NODE_SYS "/sys/devices/system/node"
#define CAPI_DRV "/sys/bus/pci/drivers/capi_sim"
#define CAPI_KO "/lib/modules/cdm/capi_sim.ko"
#define TEST_KO "/lib/modules/cdm/cdm_test_kmod.ko"
#define TEST_DBG "/sys/kernel/debug/cdm_test"

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
int cdm_nodes(int *nodes, int max);	/* has_coherent_device */
int mem_nodes(int *nodes, int max);	/* has_memory */
int ram_nodes(int *nodes, int max);	/* has_memory minus CDM */
bool node_is_cdm(int nid);
bool node_has_memory(int nid);
/* populated CDM nodes (CDM and has_memory) */
int cdm_mem_nodes(int *nodes, int max);
/* value in kB of "Node N <key>:" in nodeN/meminfo, -1 if absent */
long node_meminfo_kb(int nid, const char *key);
long node_used_kb(int nid);	/* MemTotal - MemFree, -1 if absent */
long meminfo_kb(const char *key);	/* /proc/meminfo */
long vmstat_val(const char *key);	/* /proc/vmstat, -1 if absent */
long node_nr_hugepages(int nid);	/* 2 MiB pool on node */
/* sum of a watermark ("min", "low", "high") over a node's zones, kB */
long node_watermark_kb(int nid, const char *wm);
/* free and low-watermark kB summed over a node's zones above ZONE_DMA
 * (all, or not Movable) */
int node_zone_free_low(int nid, bool movable, long *free_kb, long *low_kb);

/* ---- pages ---- */
/*
 * Query the node of every page of [buf, buf+len) with move_pages(2).
 * counts[] (CDM_MAX_NODES) gets per-node counts; *errs gets pages with a
 * negative status (e.g. -ENOENT: not present). Returns pages queried or -errno.
 */
long page_nodes(void *buf, size_t len, long *counts, long *errs);
long pages_on_node(void *buf, size_t len, int nid);
long pages_off_node(void *buf, size_t len, int nid);	/* present, elsewhere */
long pages_on_cdm(void *buf, size_t len);
/* move every page to nid; returns pages now on nid or -errno */
long move_all(void *buf, size_t len, int nid);
void touch_pages(void *buf, size_t len);

/* deterministic per-offset pattern */
void fill_pattern(void *buf, size_t len, uint64_t seed);
/* returns offset of first mismatch, or (size_t)-1 when equal */
size_t check_pattern(const void *buf, size_t len, uint64_t seed);
uint64_t checksum(const void *buf, size_t len);

void *map_anon(size_t len);	/* MAP_PRIVATE|MAP_ANONYMOUS, NULL on failure */
void *map_anon_aligned(size_t len, size_t align);
int mbind_nodes(void *buf, size_t len, int mode, const int *nodes, int n,
		unsigned int flags);
int set_policy_nodes(int mode, const int *nodes, int n);
/* THP: AnonHugePages (kB) for the mapping containing addr, -1 on error */
long smaps_anon_huge_kb(void *addr);

/* ---- processes ---- */
int set_oom_adj(int v);
/* fork(); the child gets SIGKILL when the forking thread exits */
pid_t fork_kid(void);
/* run argv, capture stdout into out; returns exit status, -1 on error,
 * 128+sig when killed; kills it after timeout_s */
int run_cmd(char *const argv[], char *out, size_t outlen, int timeout_s);
/* waitpid with deadline; returns status in *st or -ETIMEDOUT */
int wait_child(pid_t pid, int *st, int timeout_s);
uint64_t now_ms(void);
/* the running kernel has KASAN (its __asan_* symbols are in kallsyms) */
bool kernel_has_kasan(void);

/*
 * Fill memory in a forked child until @max_bytes or failure, @chunk at a
 * time (MAP_PRIVATE anon, or with write(2) into an unlinked file in
 * @file_dir, so the memory goes away with the child), with policy
 * (@mode/@nodes, mode -1 = none), optional MADV_HUGEPAGE. After each chunk
 * the child writes a struct fill_report to the pipe. The child has
 * oom_score_adj 1000.
 */
struct fill_report {
	long chunk;		/* chunk index */
	long pages;		/* pages in chunk */
	long on_cdm;		/* pages of the chunk on any CDM node */
	long nodes[4];		/* per node counts for node 0..3 */
	long node0_free_kb;	/* node 0 MemFree when the chunk was done */
	int err;		/* 0, or errno of a failure (child stops) */
	int stopped_low;	/* stopped at the low watermarks */
};
struct fill_opts {
	size_t max_bytes;
	size_t chunk;
	int mode;		/* -1: no policy */
	int nodes[4];
	int nnodes;
	bool thp;
	bool keep;		/* after filling, wait to be killed */
	const char *file_dir;	/* fill an unlinked file there with write(2) */
	/*
	 * File mode: stop once node 0's free memory is below its low
	 * watermarks, summed over all zones (1) or over the zones below
	 * ZONE_MOVABLE (2: page cache that is not movable, like ramfs).
	 */
	int stop_at_low;
};
struct fill_result {
	long chunks, pages, on_cdm, nodes[4];
	long first_cdm_chunk;	/* -1 none */
	long node0_free_at_first_cdm;
	long min_node0_free_kb;
	int stopped_low;
	int err;
	int status;		/* wait status */
	bool oom_killed;	/* SIGKILL */
};
pid_t fill_start(const struct fill_opts *o, int *rfd);
/* read all reports until EOF (child exit, or @stop_after_fill and keep) */
void fill_collect(int rfd, struct fill_result *r);
int fill_run(const struct fill_opts *o, struct fill_result *r, int timeout_s);

/* peak tracker: thread polling node MemFree of the CDM nodes */
struct cdm_watch {
	int n, nodes[CDM_MAX_NODES];
	long base_free[CDM_MAX_NODES], min_free[CDM_MAX_NODES];
	long min_node0_free;
	volatile int stop;
	unsigned long tid;
};
void watch_start(struct cdm_watch *w);
void watch_stop(struct cdm_watch *w);
/* largest drop of MemFree in kB over all watched nodes */
long watch_max_drop(const struct cdm_watch *w);

/* ---- modules, debugfs, kmsg ---- */
int load_module(const char *path, const char *params);	/* 0, -EEXIST ok */
int unload_module(const char *name);
bool module_loaded(const char *name);
int ensure_debugfs(void);
int test_kmod_ready(void);	/* loads cdm_test_kmod if needed */
int kmsg_open(void);		/* positioned at the end */
/* count kernel report lines since open; copy the first into buf */
int kmsg_reports(int fd, char *first, size_t len);

/*
 * A test that provokes the OOM killer on purpose scans /dev/kmsg for real
 * kernel reports (WARNING, BUG, ...) outside the OOM killer's own stack dump
 * ("invoked oom-killer" .. "Out of memory"), as scripts/check-console does.
 * end() returns the number of real reports.
 */
struct oom_quiet {
	int saved;
	int kfd;
};
int oom_quiet_begin(struct oom_quiet *q);
int oom_quiet_end(struct oom_quiet *q, char *first, size_t len);

/* ---- capi_sim ---- */
struct capi_dev {
	char bdf[64];
	char path[512];		/* /sys/bus/pci/devices/<bdf> */
	int node;
	unsigned long long size;
	char state[32];
};
int capi_devs(struct capi_dev *d, int max);	/* bound devices, by size desc */
int capi_refresh(struct capi_dev *d);
int capi_attr(const struct capi_dev *d, const char *attr, char *buf, size_t len);
int capi_write(const struct capi_dev *d, const char *attr, const char *val);
long capi_stat(const struct capi_dev *d, const char *key);
/* open /dev/capi_simN whose INFO reports @node; -errno */
int capi_open_node(int node);
int capi_info(int fd, struct capi_sim_info *info);
int capi_evac_ioctl(int fd, unsigned int timeout_ms,
		    unsigned long long *migrated, unsigned long long *unmoved);
int capi_online_ioctl(int fd);
/* poll until state equals @state; 0 or -ETIMEDOUT */
int capi_wait_state(struct capi_dev *d, const char *state, int timeout_ms);
/* poll until node has (want=true) or lacks memory */
int wait_node_memory(int nid, bool want, int timeout_ms);
/* node in this task's Mems_allowed (cpuset follows hotplug) */
bool mems_allowed_has(int nid);
/* node has memory and is in Mems_allowed */
int wait_node_usable(int nid, int timeout_ms);
/*
 * Bring every capi_sim device back online: module loaded, devices bound,
 * states online. Returns number of online devices.
 */
int capi_restore_all(void);
int capi_run(int fd, struct capi_sim_run *run);

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* ---- concurrent writer (thread or process) ---- */
struct writer {
	uint64_t *buf;
	size_t words;
	volatile int stop;
	long passes;
	long errors;
	long first_bad;
};

void writer_loop(struct writer *w);

/* ---- xorshift ---- */
static inline uint64_t xs64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#endif
