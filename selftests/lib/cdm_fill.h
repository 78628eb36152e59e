/* SPDX-License-Identifier: GPL-2.0 */
/* cdm selftest library: child processes, memory fills, the CDM free-memory watcher. */
#ifndef CDM_FILL_H
#define CDM_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cdm_sysfs.h"

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
	 * Stop once node 0's free memory is below its low
	 * watermarks, summed over all zones (1) or over the zones below
	 * ZONE_MOVABLE (2: page cache that is not movable, like ramfs).
	 */
	int stop_at_low;
};
struct fill_result {
	long chunks, pages, on_cdm, nodes[4];
	long first_cdm_chunk;	/* -1 none */
	long node0_free_at_first_cdm;
	long node0_free_before_first_cdm;	/* after the chunk before; -1 none */
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
	int fd[CDM_MAX_NODES], fd0;	/* nodeN/meminfo, open for the run */
	long base_free[CDM_MAX_NODES], min_free[CDM_MAX_NODES];
	long min_node0_free;
	volatile int stop;
	unsigned long tid;
};
void watch_start(struct cdm_watch *w);
void watch_stop(struct cdm_watch *w);
/* largest drop of MemFree in kB over all watched nodes */
long watch_max_drop(const struct cdm_watch *w);

#endif
