// SPDX-License-Identifier: GPL-2.0
/*
 * placement_test - explicit placement onto CDM nodes works with stock
 * interfaces (issue 3, part C). Every case checks the node of every page
 * with move_pages(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cdm_lib.h"

#define LEN (16 * MiB)
#define NPAGES ((long)(LEN / PAGE_SZ))
#define CG "/sys/fs/cgroup/cdm_place_test"
#define DAMON_KD "/sys/kernel/mm/damon/admin/kdamonds"
#define DAMON_CTX DAMON_KD "/0/contexts/0"
#define DAMON_PAGES 8

FIXTURE(place) {
	int cdm[CDM_MAX_NODES];
	int ncdm;
	int ram[CDM_MAX_NODES];
	int nram;
	char *buf;
	size_t len;
	char weights[2][32];	/* saved weighted_interleave node0 / nodeN */
	int wnode;
};

static void place_prepare(struct __test_metadata *_metadata,
			  FIXTURE_DATA(place) *self)
{
	self->ncdm = cdm_mem_nodes(self->cdm, CDM_MAX_NODES);
	self->nram = ram_nodes(self->ram, CDM_MAX_NODES);
	ASSERT_GE(self->ncdm, 1)
		TH_LOG("no populated CDM node (is capi_sim loaded?)");
	ASSERT_GE(self->nram, 1);
	self->len = LEN;
	self->buf = NULL;
	self->wnode = -1;
}

static void damon_stop(void);

static void place_cleanup(FIXTURE_DATA(place) *self)
{
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	if (path_exists(TEST_DBG "/alloc"))
		write_str(TEST_DBG "/alloc", "free");
	if (self->wnode >= 0) {
		write_strf(self->weights[0],
			   "/sys/kernel/mm/mempolicy/weighted_interleave/node%d",
			   self->ram[0]);
		write_strf(self->weights[1],
			   "/sys/kernel/mm/mempolicy/weighted_interleave/node%d",
			   self->wnode);
	}
	if (path_exists(CG)) {
		rmdir(CG);
	}
	if (path_exists(DAMON_KD "/0"))
		damon_stop();
}

FIXTURE_SETUP(place)
{
	place_prepare(_metadata, self);
}

FIXTURE_TEARDOWN_PARENT(place)
{
	place_cleanup(self);
}

/* The single-node policies, each placing a mapping on each CDM node. */
FIXTURE(place_mode) {
	FIXTURE_DATA(place) p;
};

FIXTURE_VARIANT(place_mode) {
	int mode;
	const char *name;
};

FIXTURE_VARIANT_ADD(place_mode, bind) {
	.mode = MPOL_BIND,
	.name = "MPOL_BIND",
};

FIXTURE_VARIANT_ADD(place_mode, preferred) {
	.mode = MPOL_PREFERRED,
	.name = "MPOL_PREFERRED",
};

FIXTURE_SETUP(place_mode)
{
	place_prepare(_metadata, &self->p);
}

FIXTURE_TEARDOWN_PARENT(place_mode)
{
	place_cleanup(&self->p);
}

static void log_nodes(struct __test_metadata *_metadata, const char *what,
		      void *buf, size_t len)
{
	long c[CDM_MAX_NODES], e;
	char line[256];
	int o = 0;

	page_nodes(buf, len, c, &e);
	for (int i = 0; i < 8; i++)
		if (c[i])
			o += snprintf(line + o, sizeof(line) - o, " node%d=%ld",
				      i, c[i]);
	TH_LOG("%s:%s absent=%ld", what, o ? line : " (none)", e);
}

/* map, apply an mbind policy, touch, return the mapping */
static char *mbind_touch(struct __test_metadata *_metadata, int mode,
			 const int *nodes, int n)
{
	char *p = map_anon(LEN);

	if (!p)
		return NULL;
	if (mbind_nodes(p, LEN, mode, nodes, n, 0)) {
		TH_LOG("mbind mode %d: %s", mode, strerror(errno));
		munmap(p, LEN);
		return NULL;
	}
	touch_pages(p, LEN);
	return p;
}

TEST_F(place_mode, each_cdm_node)
{
	for (int i = 0; i < self->p.ncdm; i++) {
		char *p = mbind_touch(_metadata, variant->mode,
				      &self->p.cdm[i], 1);

		ASSERT_NE(NULL, p);
		log_nodes(_metadata, variant->name, p, LEN);
		ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->p.cdm[i]));
		munmap(p, LEN);
	}
}

TEST_F(place, bind_all_cdm_nodes)
{
	long c[CDM_MAX_NODES], e, on = 0;
	char *p = map_anon(LEN);

	ASSERT_NE(NULL, p);
	/* task policy this time */
	ASSERT_EQ(0, set_policy_nodes(MPOL_BIND, self->cdm, self->ncdm));
	touch_pages(p, LEN);
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	log_nodes(_metadata, "MPOL_BIND all CDM", p, LEN);
	ASSERT_EQ(NPAGES, page_nodes(p, LEN, c, &e));
	for (int i = 0; i < self->ncdm; i++)
		on += c[self->cdm[i]];
	ASSERT_EQ(NPAGES, on);
}

/*
 * The admin guide: "numactl --membind=0,1: node 0 first, node 1 when 0 is
 * low".  With RAM not low, a bind to RAM and a CDM node starts at the
 * local RAM node and stays there.
 */
TEST_F(place, bind_ram_and_cdm_ram_first)
{
	int nodes[2] = { self->ram[0], self->cdm[0] };
	char *p = mbind_touch(_metadata, MPOL_BIND, nodes, 2);

	ASSERT_NE(NULL, p);
	log_nodes(_metadata, "MPOL_BIND RAM and CDM", p, LEN);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->ram[0]));
	munmap(p, LEN);
}

TEST_F(place, preferred_many)
{
	long c[CDM_MAX_NODES], e, on = 0;
	char *p;

	for (int i = 0; i < self->ncdm; i++) {
		p = mbind_touch(_metadata, MPOL_PREFERRED_MANY, &self->cdm[i], 1);
		ASSERT_NE(NULL, p);
		log_nodes(_metadata, "MPOL_PREFERRED_MANY one", p, LEN);
		ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->cdm[i]));
		munmap(p, LEN);
	}
	p = mbind_touch(_metadata, MPOL_PREFERRED_MANY, self->cdm, self->ncdm);
	ASSERT_NE(NULL, p);
	log_nodes(_metadata, "MPOL_PREFERRED_MANY all CDM", p, LEN);
	ASSERT_EQ(NPAGES, page_nodes(p, LEN, c, &e));
	for (int i = 0; i < self->ncdm; i++)
		on += c[self->cdm[i]];
	ASSERT_EQ(NPAGES, on);
}

TEST_F(place, interleave_ram_and_cdm)
{
	for (int i = 0; i < self->ncdm; i++) {
		int nodes[2] = { self->ram[0], self->cdm[i] };
		long c[CDM_MAX_NODES], e;
		char *p = mbind_touch(_metadata, MPOL_INTERLEAVE, nodes, 2);

		ASSERT_NE(NULL, p);
		log_nodes(_metadata, "MPOL_INTERLEAVE", p, LEN);
		ASSERT_EQ(NPAGES, page_nodes(p, LEN, c, &e));
		ASSERT_EQ(NPAGES, c[nodes[0]] + c[nodes[1]]);
		/* vma interleave is by page offset: exact alternation */
		ASSERT_LE(labs(c[nodes[0]] - c[nodes[1]]), 1);
		munmap(p, LEN);
	}
}

TEST_F(place, interleave_task_policy)
{
	int nodes[2] = { self->ram[0], self->cdm[0] };
	long c[CDM_MAX_NODES], e;
	char *p = map_anon(LEN);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, set_policy_nodes(MPOL_INTERLEAVE, nodes, 2));
	touch_pages(p, LEN);
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	log_nodes(_metadata, "task MPOL_INTERLEAVE", p, LEN);
	ASSERT_EQ(NPAGES, page_nodes(p, LEN, c, &e));
	ASSERT_EQ(NPAGES, c[nodes[0]] + c[nodes[1]]);
	ASSERT_GE(c[nodes[1]], NPAGES * 45 / 100);
	ASSERT_GE(c[nodes[0]], NPAGES * 45 / 100);
}

TEST_F(place, weighted_interleave)
{
	char path[160];
	int nodes[2] = { self->ram[0], self->cdm[0] };
	long c[CDM_MAX_NODES], e;
	char *p;

	snprintf(path, sizeof(path),
		 "/sys/kernel/mm/mempolicy/weighted_interleave/node%d", nodes[1]);
	if (!path_exists(path))
		SKIP(return, "no %s (CONFIG_NUMA without weighted interleave?)",
		     path);
	ASSERT_LT(0, read_strf(self->weights[0], sizeof(self->weights[0]),
			       "/sys/kernel/mm/mempolicy/weighted_interleave/node%d",
			       nodes[0]));
	ASSERT_LT(0, read_str(path, self->weights[1], sizeof(self->weights[1])));
	self->wnode = nodes[1];
	ASSERT_EQ(0, write_strf("1",
				"/sys/kernel/mm/mempolicy/weighted_interleave/node%d",
				nodes[0]));
	ASSERT_EQ(0, write_str(path, "3"));
	p = mbind_touch(_metadata, MPOL_WEIGHTED_INTERLEAVE, nodes, 2);
	ASSERT_NE(NULL, p);
	log_nodes(_metadata, "MPOL_WEIGHTED_INTERLEAVE 1:3", p, LEN);
	ASSERT_EQ(NPAGES, page_nodes(p, LEN, c, &e));
	ASSERT_EQ(NPAGES, c[nodes[0]] + c[nodes[1]]);
	/* 3 of every 4 pages on the CDM node */
	ASSERT_GE(c[nodes[1]], NPAGES * 70 / 100);
	ASSERT_LE(c[nodes[1]], NPAGES * 80 / 100);
}

/* run numactl <opt> <self> --helper and parse "nodeN=count" */
static int numactl_run(struct __test_metadata *_metadata, const char *opt,
		       long *counts, long *pages)
{
	char self_exe[256], out[4096], mib[16];
	char *argv[] = { "/usr/bin/numactl", (char *)opt, self_exe, "--helper",
			 mib, NULL };
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	int st;

	if (n <= 0)
		return -1;
	self_exe[n] = 0;
	snprintf(mib, sizeof(mib), "%lu", LEN / MiB);
	st = run_cmd(argv, out, sizeof(out), 60);
	TH_LOG("numactl %s: exit %d: %s", opt, st, out);
	memset(counts, 0, sizeof(long) * CDM_MAX_NODES);
	*pages = 0;
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		int nd;
		long v;

		if (sscanf(l, "node%d=%ld", &nd, &v) == 2 && nd >= 0 &&
		    nd < CDM_MAX_NODES)
			counts[nd] = v;
		else if (sscanf(l, "pages=%ld", &v) == 1)
			*pages = v;
	}
	return st;
}

TEST_F(place, numactl_membind)
{
	char opt[64];
	long c[CDM_MAX_NODES], pages;

	if (!path_exists("/usr/bin/numactl"))
		SKIP(return, "/usr/bin/numactl missing from the guest");
	for (int i = 0; i < self->ncdm; i++) {
		snprintf(opt, sizeof(opt), "--membind=%d", self->cdm[i]);
		ASSERT_EQ(0, numactl_run(_metadata, opt, c, &pages));
		ASSERT_EQ(NPAGES, pages);
		ASSERT_EQ(NPAGES, c[self->cdm[i]]);
	}
}

TEST_F(place, numactl_preferred)
{
	char opt[64];
	long c[CDM_MAX_NODES], pages;

	if (!path_exists("/usr/bin/numactl"))
		SKIP(return, "/usr/bin/numactl missing from the guest");
	snprintf(opt, sizeof(opt), "--preferred=%d", self->cdm[0]);
	ASSERT_EQ(0, numactl_run(_metadata, opt, c, &pages));
	ASSERT_EQ(NPAGES, pages);
	ASSERT_EQ(NPAGES, c[self->cdm[0]]);
}

TEST_F(place, numactl_interleave)
{
	char opt[64];
	long c[CDM_MAX_NODES], pages;
	int a = self->ram[0], b = self->cdm[self->ncdm - 1];

	if (!path_exists("/usr/bin/numactl"))
		SKIP(return, "/usr/bin/numactl missing from the guest");
	snprintf(opt, sizeof(opt), "--interleave=%d,%d", a, b);
	ASSERT_EQ(0, numactl_run(_metadata, opt, c, &pages));
	ASSERT_EQ(NPAGES, pages);
	ASSERT_EQ(NPAGES, c[a] + c[b]);
	ASSERT_GE(c[b], NPAGES * 45 / 100);
	ASSERT_GE(c[a], NPAGES * 45 / 100);
}

TEST_F(place, mbind_mf_move)
{
	for (int i = 0; i < self->ncdm; i++) {
		char *p = map_anon(LEN);

		ASSERT_NE(NULL, p);
		ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, self->ram, 1, 0));
		fill_pattern(p, LEN, 7 + i);
		ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->ram[0]));
		ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, &self->cdm[i], 1,
					 MPOL_MF_MOVE | MPOL_MF_STRICT));
		log_nodes(_metadata, "mbind MPOL_MF_MOVE", p, LEN);
		ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->cdm[i]));
		ASSERT_EQ((size_t)-1, check_pattern(p, LEN, 7 + i));
		munmap(p, LEN);
	}
}

TEST_F(place, mbind_mf_move_all_shared)
{
	int node = self->cdm[0];
	long moved_plain;
	pid_t child;
	char *p = map_anon(LEN);
	int st;

	ASSERT_NE(NULL, p);
	fill_pattern(p, LEN, 99);
	child = fork_kid();
	ASSERT_LE(0, child);
	if (!child) {	/* keeps the COW pages mapped twice */
		for (;;)
			pause();
	}
	/* MPOL_MF_MOVE leaves pages mapped by other processes alone */
	mbind_nodes(p, LEN, MPOL_BIND, &node, 1, MPOL_MF_MOVE);
	moved_plain = pages_on_node(p, LEN, node);
	TH_LOG("MPOL_MF_MOVE moved %ld of %ld shared pages", moved_plain,
	       NPAGES);
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, &node, 1, MPOL_MF_MOVE_ALL));
	log_nodes(_metadata, "mbind MPOL_MF_MOVE_ALL", p, LEN);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, node));
	ASSERT_EQ((size_t)-1, check_pattern(p, LEN, 99));
}

TEST_F(place, move_pages_to_cdm)
{
	for (int i = 0; i < self->ncdm; i++) {
		char *p = map_anon(LEN);

		ASSERT_NE(NULL, p);
		fill_pattern(p, LEN, 3);
		ASSERT_EQ(NPAGES, move_all(p, LEN, self->cdm[i]));
		ASSERT_EQ((size_t)-1, check_pattern(p, LEN, 3));
		/* and to the other CDM node, and back to RAM */
		if (self->ncdm > 1) {
			int o = self->cdm[(i + 1) % self->ncdm];

			ASSERT_EQ(NPAGES, move_all(p, LEN, o));
		}
		ASSERT_EQ(NPAGES, move_all(p, LEN, self->ram[0]));
		ASSERT_EQ((size_t)-1, check_pattern(p, LEN, 3));
		munmap(p, LEN);
	}
}

TEST_F(place, migrate_pages_to_cdm)
{
	int node = self->cdm[0];
	int to_c[2], to_p[2];
	unsigned long from = 0, to = 0;
	long res[2] = { -1, -1 };
	pid_t child;
	char b = 0;
	int st;

	ASSERT_EQ(0, pipe(to_c));
	ASSERT_EQ(0, pipe(to_p));
	child = fork_kid();
	ASSERT_LE(0, child);
	if (!child) {
		char *p = map_anon(LEN);

		if (!p)
			_exit(1);
		if (mbind_nodes(p, LEN, MPOL_BIND, self->ram, 1, 0))
			_exit(4);
		fill_pattern(p, LEN, 5);
		if (write(to_p[1], &b, 1) != 1 || read(to_c[0], &b, 1) != 1)
			_exit(2);
		res[0] = pages_on_node(p, LEN, node);
		res[1] = check_pattern(p, LEN, 5) == (size_t)-1;
		if (write(to_p[1], res, sizeof(res)) != sizeof(res))
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(1, read(to_p[0], &b, 1));
	for (int i = 0; i < self->nram; i++)
		from |= 1UL << self->ram[i];
	to = 1UL << node;
	/* returns the number of pages it could not move */
	ASSERT_LE(0, migrate_pages(child, sizeof(long) * 8, &from, &to));
	ASSERT_EQ(1, write(to_c[1], &b, 1));
	ASSERT_EQ(sizeof(res), read(to_p[0], res, sizeof(res)));
	waitpid(child, &st, 0);
	TH_LOG("migrate_pages: %ld of %ld pages on node %d, data %s", res[0],
	       NPAGES, node, res[1] ? "intact" : "CORRUPT");
	/* the buffer had an MPOL_BIND to RAM; migrate_pages moves it anyway */
	ASSERT_EQ(NPAGES, res[0]);
	ASSERT_EQ(1, res[1]);
}

static int kmod_alloc(int nid, int order, int *got)
{
	char cmd[32], buf[64];
	int r;

	snprintf(cmd, sizeof(cmd), "%d %d", nid, order);
	r = write_str(TEST_DBG "/alloc", cmd);
	if (r)
		return r;
	if (read_str(TEST_DBG "/alloc", buf, sizeof(buf)) < 0)
		return -EIO;
	*got = atoi(buf);
	return 0;
}

TEST_F(place, kmod_alloc_pages_node)
{
	int r, got = -1;

	r = test_kmod_ready();
	ASSERT_EQ(0, r) TH_LOG("cdm_test_kmod: %s", strerror(-r));
	for (int i = 0; i < self->ncdm; i++) {
		for (int order = 0; order <= 9; order += 9) {
			r = kmod_alloc(self->cdm[i], order, &got);
			ASSERT_EQ(0, r) TH_LOG("node %d order %d: %s",
					       self->cdm[i], order, strerror(-r));
			TH_LOG("alloc_pages_node(%d, order %d) -> node %d",
			       self->cdm[i], order, got);
			ASSERT_EQ(self->cdm[i], got);
		}
	}
	ASSERT_EQ(0, kmod_alloc(self->ram[0], 0, &got));
	ASSERT_EQ(self->ram[0], got);
	ASSERT_EQ(0, write_str(TEST_DBG "/alloc", "free"));
}

/* the smallest populated CDM node */
static int small_cdm(FIXTURE_DATA(place) *self)
{
	int best = self->cdm[0];

	for (int i = 1; i < self->ncdm; i++)
		if (node_meminfo_kb(self->cdm[i], "MemTotal") <
		    node_meminfo_kb(best, "MemTotal"))
			best = self->cdm[i];
	return best;
}

TEST_F_TIMEOUT(place, full_node_preferred_falls_back, 300)
{
	int node = small_cdm(self);
	long free_kb = node_meminfo_kb(node, "MemFree");
	struct fill_opts o = {
		.chunk = 4 * MiB, .mode = MPOL_PREFERRED, .nnodes = 1,
		.nodes = { node },
	};
	struct fill_result r;
	long other_cdm;

	o.max_bytes = ((size_t)free_kb * KiB + 64 * MiB) / o.chunk * o.chunk;
	ASSERT_EQ(0, fill_run(&o, &r, 240));
	other_cdm = r.on_cdm - r.nodes[node];
	TH_LOG("PREFERRED node %d (free %ld kB): %ld pages, node0 %ld, node%d %ld, other CDM %ld, err %d, status 0x%x",
	       node, free_kb, r.pages, r.nodes[0], node, r.nodes[node],
	       other_cdm, r.err, r.status);
	ASSERT_FALSE(r.oom_killed);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ((long)(o.max_bytes / PAGE_SZ), r.pages);
	/* the node filled up (allow watermarks/pcp), the rest went to RAM */
	ASSERT_GE(r.nodes[node] * 4, free_kb * 85 / 100);
	ASSERT_GE(r.nodes[self->ram[0]], 64 * MiB / PAGE_SZ / 2);
	ASSERT_EQ(0, other_cdm);
}

/*
 * The admin guide: "numactl --preferred-many=1,2: nodes 1/2, RAM when both
 * full".  Fill past the free memory of every CDM node under one
 * MPOL_PREFERRED_MANY naming them all: each node fills up, the rest lands
 * in system RAM, and the task is not OOM-killed.
 */
TEST_F_TIMEOUT(place, full_nodes_preferred_many_falls_back, 300)
{
	struct fill_opts o = {
		.chunk = 4 * MiB, .mode = MPOL_PREFERRED_MANY,
	};
	long free_kb[CDM_MAX_NODES], total_kb = 0, on_named = 0;
	struct fill_result r;

	for (int i = 0; i < self->ncdm && o.nnodes < 4; i++) {
		if (self->cdm[i] >= 4)
			continue;	/* fill_result counts nodes 0..3 */
		o.nodes[o.nnodes] = self->cdm[i];
		free_kb[o.nnodes] = node_meminfo_kb(self->cdm[i], "MemFree");
		total_kb += free_kb[o.nnodes++];
	}
	if (o.nnodes < 2)
		SKIP(return, "needs two CDM nodes among nodes 0-3");
	o.max_bytes = ((size_t)total_kb * KiB + 128 * MiB) / o.chunk * o.chunk;
	ASSERT_EQ(0, fill_run(&o, &r, 240));
	for (int i = 0; i < o.nnodes; i++) {
		TH_LOG("PREFERRED_MANY: node %d (free %ld kB) got %ld pages",
		       o.nodes[i], free_kb[i], r.nodes[o.nodes[i]]);
		on_named += r.nodes[o.nodes[i]];
	}
	TH_LOG("%ld pages, node%d %ld, on CDM nodes %ld, err %d, status 0x%x",
	       r.pages, self->ram[0], r.nodes[self->ram[0]], r.on_cdm, r.err,
	       r.status);
	ASSERT_FALSE(r.oom_killed);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ((long)(o.max_bytes / PAGE_SZ), r.pages);
	/* every named node filled up (allow watermarks and pcp lists) */
	for (int i = 0; i < o.nnodes; i++)
		ASSERT_GE(r.nodes[o.nodes[i]] * 4, free_kb[i] * 85 / 100);
	/* the rest went to RAM, none to a CDM node the policy did not name */
	ASSERT_GE(r.nodes[self->ram[0]], 128 * MiB / PAGE_SZ / 2);
	ASSERT_EQ(r.on_cdm, on_named);
}

TEST_F_TIMEOUT(place, full_node_bind_ooms_no_spill, 300)
{
	int node = small_cdm(self);
	long free_kb = node_meminfo_kb(node, "MemFree");
	struct fill_opts o = {
		.chunk = 4 * MiB, .mode = MPOL_BIND, .nnodes = 1,
		.nodes = { node },
	};
	struct fill_result r;
	struct oom_quiet q;
	char first[256];
	int reports;

	o.max_bytes = (size_t)free_kb * KiB + 64 * MiB;
	oom_quiet_begin(&q);
	ASSERT_EQ(0, fill_run(&o, &r, 240));
	reports = oom_quiet_end(&q, first, sizeof(first));
	TH_LOG("BIND node %d (free %ld kB): %ld pages before the end, node%d %ld, elsewhere %ld, err %d, status 0x%x",
	       node, free_kb, r.pages, node, r.nodes[node],
	       r.pages - r.nodes[node], r.err, r.status);
	ASSERT_EQ(0, reports) TH_LOG("kernel report: %s", first);
	/* never a spill: every page the child got is on the node */
	ASSERT_EQ(r.pages, r.nodes[node]);
	/* and it could not get the whole request: OOM-killed */
	ASSERT_TRUE(r.oom_killed || r.err)
		TH_LOG("child got %ld pages > node free", r.pages);
	ASSERT_GE(r.nodes[node] * 4, free_kb * 80 / 100);
}

static int cg_setup(const char *mems)
{
	char buf[256];

	if (read_str("/sys/fs/cgroup/cgroup.subtree_control", buf,
		     sizeof(buf)) < 0)
		return -ENOENT;
	if (!strstr(buf, "cpuset") &&
	    write_str("/sys/fs/cgroup/cgroup.subtree_control", "+cpuset"))
		return -EOPNOTSUPP;
	if (mkdir(CG, 0755) && errno != EEXIST)
		return -errno;
	return write_str(CG "/cpuset.mems", mems);
}

/* what a task in the cgroup got trying each way onto a node */
struct cg_tries {
	long pages;		/* pages on the node afterwards */
	int mbind_bind;		/* 0 or -errno of each call */
	int mbind_preferred;
	int set_mempolicy_bind;
	int move_pages;
};

/* a child in the cgroup (cpuset.mems @mems) tries every way onto @node */
static int cg_try(struct __test_metadata *_metadata, const char *mems,
		  int node, struct cg_tries *t)
{
	struct cg_tries res = { .pages = -1 };
	int pfd[2];
	pid_t c;
	int st;

	if (pipe(pfd))
		return -errno;
	c = fork_kid();
	if (!c) {
		char pid[32];
		char *p = map_anon(LEN);
		long moved;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (!p || write_str(CG "/cgroup.procs", pid))
			_exit(1);
		res.mbind_bind = mbind_nodes(p, LEN / 4, MPOL_BIND, &node, 1, 0);
		res.mbind_preferred = mbind_nodes(p + LEN / 4, LEN / 4,
						  MPOL_PREFERRED, &node, 1, 0);
		res.set_mempolicy_bind = set_policy_nodes(MPOL_BIND, &node, 1);
		touch_pages(p, LEN);
		set_policy_nodes(MPOL_DEFAULT, NULL, 0);
		moved = move_all(p + LEN / 2, LEN / 2, node);
		res.move_pages = moved < 0 ? (int)moved : 0;
		res.pages = pages_on_node(p, LEN, node);
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &res, sizeof(res)) != sizeof(res))
		res.pages = -1;
	close(pfd[0]);
	waitpid(c, &st, 0);
	*t = res;
	TH_LOG("cpuset.mems=%s: %ld pages on node %d; mbind BIND %d, mbind PREFERRED %d, set_mempolicy BIND %d, move_pages %d",
	       mems, t->pages, node, t->mbind_bind, t->mbind_preferred,
	       t->set_mempolicy_bind, t->move_pages);
	return res.pages < 0 ? -EIO : 0;
}

TEST_F(place, cpuset_excludes_cdm)
{
	int node = self->cdm[0];
	struct cg_tries t;
	char mems[64];
	int r;

	r = cg_setup("0");
	if (r == -ENOENT)
		SKIP(return, "cgroup2 not mounted at /sys/fs/cgroup");
	ASSERT_EQ(0, r) TH_LOG("cpuset setup: %s", strerror(-r));
	snprintf(mems, sizeof(mems), "%d", self->ram[0]);
	ASSERT_EQ(0, write_str(CG "/cpuset.mems", mems));
	ASSERT_EQ(0, cg_try(_metadata, mems, node, &t));
	ASSERT_EQ(0, t.pages);
	/* the admin guide's errors, exactly */
	ASSERT_EQ(-EINVAL, t.mbind_bind);
	ASSERT_EQ(-EINVAL, t.mbind_preferred);
	ASSERT_EQ(-EINVAL, t.set_mempolicy_bind);
	ASSERT_EQ(-EACCES, t.move_pages);

	/* positive control: with the node in cpuset.mems it works */
	snprintf(mems, sizeof(mems), "%d,%d", self->ram[0], node);
	ASSERT_EQ(0, write_str(CG "/cpuset.mems", mems));
	ASSERT_EQ(0, cg_try(_metadata, mems, node, &t));
	ASSERT_EQ(NPAGES, t.pages);
	ASSERT_EQ(0, t.mbind_bind);
	ASSERT_EQ(0, t.mbind_preferred);
	ASSERT_EQ(0, t.set_mempolicy_bind);
	ASSERT_EQ(0, t.move_pages);
	ASSERT_EQ(0, rmdir(CG));
}

/*
 * A cpuset whose only nodes with memory are CDM nodes names them, as a bind
 * policy does: a task in it without a policy gets its movable user pages
 * there, as a cpuset of movable-only nodes gets them on stock Linux.  Such
 * a task used to find no zone at all, and its first page fault retried
 * forever ("VM_FAULT_OOM leaked out to the #PF handler").  The child
 * reports through memory shared before it joins the cpuset: a pipe buffer
 * is a user allocation that cannot be movable, which such a cpuset refuses
 * (with an allocation failure report on the console).
 */
TEST_F(place, cpuset_of_cdm_nodes_only)
{
	int node = self->cdm[0];
	long *got;
	char mems[64];
	pid_t c;
	int r, st;

	snprintf(mems, sizeof(mems), "%d", node);
	r = cg_setup(mems);
	if (r == -ENOENT)
		SKIP(return, "cgroup2 not mounted at /sys/fs/cgroup");
	ASSERT_EQ(0, r) TH_LOG("cpuset setup: %s", strerror(-r));
	got = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, got);
	got[0] = got[1] = -1;
	c = fork_kid();
	if (!c) {
		char pid[32];
		char *p;

		/* the fault that retried forever ends the child instead */
		alarm(20);
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_str(CG "/cgroup.procs", pid))
			_exit(1);
		p = map_anon(LEN);
		if (!p)
			_exit(2);
		touch_pages(p, LEN);
		got[0] = pages_on_node(p, LEN, node);
		got[1] = pages_on_node(p, LEN, self->ram[0]);
		_exit(0);
	}
	ASSERT_EQ(c, waitpid(c, &st, 0));
	TH_LOG("cpuset.mems=%s, no policy: %ld pages on node %d, %ld on node %d; child %s %d",
	       mems, got[0], node, got[1], self->ram[0],
	       WIFSIGNALED(st) ? "killed by signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	ASSERT_EQ(NPAGES, got[0]);
	ASSERT_EQ(0, got[1]);
	munmap(got, PAGE_SZ);
	ASSERT_EQ(0, rmdir(CG));
}

/*
 * cgroup v2 migrates a task's pages when its cpuset.mems changes, old nodes
 * to new by position.  cpuset.mems is where a task may allocate, not where
 * its pages go: the change must move no page onto a CDM node, and none a
 * policy put on one off it.  mems {RAM, A} -> {A, B} (B another CDM node,
 * else A alone) would remap RAM -> A and A -> B on a stock kernel.
 */
TEST_F(place, cpuset_mems_change_moves_nothing_onto_or_off_cdm)
{
	int a = self->cdm[0], b = self->cdm[self->ncdm - 1];
	int go[2], rep[2], st, r;
	long res[2] = { -1, -1 };
	char mems[64];
	pid_t c;

	snprintf(mems, sizeof(mems), "%d,%d", self->ram[0], a);
	r = cg_setup(mems);
	if (r == -ENOENT)
		SKIP(return, "cgroup2 not mounted at /sys/fs/cgroup");
	ASSERT_EQ(0, r) TH_LOG("cpuset setup: %s", strerror(-r));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(rep));
	c = fork_kid();
	if (!c) {
		char *ram = map_anon(LEN), *dev = map_anon(LEN), pid[32];
		char byte;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (!ram || !dev || write_str(CG "/cgroup.procs", pid) ||
		    mbind_nodes(dev, LEN, MPOL_BIND, &a, 1, 0))
			_exit(1);
		touch_pages(ram, LEN);		/* default policy: RAM */
		touch_pages(dev, LEN);		/* bound: node a */
		res[0] = pages_on_node(ram, LEN, self->ram[0]);
		res[1] = pages_on_node(dev, LEN, a);
		if (write(rep[1], res, sizeof(res)) != sizeof(res) ||
		    read(go[0], &byte, 1) != 1)
			_exit(2);
		res[0] = pages_on_node(ram, LEN, self->ram[0]);
		res[1] = pages_on_node(dev, LEN, a);
		if (write(rep[1], res, sizeof(res)) != sizeof(res))
			_exit(3);
		_exit(0);
	}
	close(go[0]);
	close(rep[1]);
	ASSERT_EQ((ssize_t)sizeof(res), read(rep[0], res, sizeof(res)));
	ASSERT_EQ(NPAGES, res[0]);
	ASSERT_EQ(NPAGES, res[1]);

	/* The write returns after the migration work is flushed. */
	if (a != b)
		snprintf(mems, sizeof(mems), "%d,%d", a, b);
	else
		snprintf(mems, sizeof(mems), "%d", a);
	ASSERT_EQ(0, write_str(CG "/cpuset.mems", mems));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ((ssize_t)sizeof(res), read(rep[0], res, sizeof(res)));
	TH_LOG("cpuset.mems %d,%d -> %s: %ld of %ld RAM pages still on node %d, %ld bound pages still on node %d",
	       self->ram[0], a, mems, res[0], NPAGES, self->ram[0], res[1], a);
	EXPECT_EQ(NPAGES, res[0]);
	EXPECT_EQ(NPAGES, res[1]);
	waitpid(c, &st, 0);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(go[1]);
	close(rep[0]);
	EXPECT_EQ(0, rmdir(CG));
}

#ifndef MPOL_F_STATIC_NODES
#define MPOL_F_STATIC_NODES	(1 << 15)
#define MPOL_F_RELATIVE_NODES	(1 << 14)
#endif

/* a task policy MPOL_BIND|@flags to @bit; pages of a new buffer on @node */
static long bind_flags_on_node(struct __test_metadata *_metadata, int flags,
			       int bit, int node)
{
	unsigned long mask = 1UL << bit;
	char *p = map_anon(LEN);
	long on;

	if (!p || set_mempolicy(MPOL_BIND | flags, &mask, sizeof(mask) * 8))
		return -errno;
	touch_pages(p, LEN);
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	log_nodes(_metadata, flags == MPOL_F_STATIC_NODES ?
		  "MPOL_BIND|MPOL_F_STATIC_NODES" :
		  "MPOL_BIND|MPOL_F_RELATIVE_NODES", p, LEN);
	on = pages_on_node(p, LEN, node);
	munmap(p, LEN);
	return on;
}

/* set_mempolicy(2) flags: the nodes as named, and relative to mems_allowed */
TEST_F(place, policy_static_and_relative_nodes)
{
	int node = self->cdm[0], rel = 0;

	ASSERT_EQ(NPAGES, bind_flags_on_node(_metadata, MPOL_F_STATIC_NODES,
					     node, node));
	/* the node's position among the allowed nodes */
	for (int n = 0; n < node; n++)
		rel += mems_allowed_has(n);
	ASSERT_EQ(NPAGES, bind_flags_on_node(_metadata, MPOL_F_RELATIVE_NODES,
					     rel, node));
}

#ifndef __NR_set_mempolicy_home_node
#define __NR_set_mempolicy_home_node 450
#endif

/* a bind to RAM and the node, with the node as home: pages go there */
TEST_F(place, set_mempolicy_home_node)
{
	int nodes[2] = { self->ram[0], self->cdm[0] };
	char *p = map_anon(LEN);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, nodes, 2, 0));
	ASSERT_EQ(0, syscall(__NR_set_mempolicy_home_node, (unsigned long)p,
			     LEN, self->cdm[0], 0))
		TH_LOG("set_mempolicy_home_node: %s", strerror(errno));
	touch_pages(p, LEN);
	log_nodes(_metadata, "MPOL_BIND ram+cdm, home node cdm", p, LEN);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->cdm[0]));
	munmap(p, LEN);
}

/* THP under a bind to the node: huge pages on the node itself */
TEST_F(place, thp_bind_cdm_node)
{
	int node = self->cdm[0];
	char *p = map_anon_aligned(LEN, HPAGE_SZ);
	long huge_kb;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, madvise(p, LEN, MADV_HUGEPAGE));
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, &node, 1, 0));
	touch_pages(p, LEN);
	huge_kb = smaps_anon_huge_kb(p);
	log_nodes(_metadata, "THP, MPOL_BIND", p, LEN);
	TH_LOG("AnonHugePages %ld kB", huge_kb);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, node));
	ASSERT_LT(0, huge_kb);
}

/* tmpfs mounted with a policy that names the node */
TEST_F(place, tmpfs_mpol_names_cdm_node)
{
	static const char *const modes[] = { "bind", "prefer", "interleave" };
	const char *dir = "/tmp/cdm_place_tmpfs";
	int node = self->cdm[0];

	mkdir(dir, 0700);
	for (unsigned int m = 0; m < 3; m++) {
		char opts[96], path[96];
		char *p;
		int fd;

		snprintf(opts, sizeof(opts), "size=32m,huge=never,mpol=%s:%d",
			 modes[m], node);
		ASSERT_EQ(0, mount("tmpfs", dir, "tmpfs", 0, opts));
		snprintf(path, sizeof(path), "%s/f", dir);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, LEN));
		p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		touch_pages(p, LEN);
		log_nodes(_metadata, opts, p, LEN);
		ASSERT_EQ(NPAGES, pages_on_node(p, LEN, node));
		munmap(p, LEN);
		close(fd);
		ASSERT_EQ(0, umount(dir));
	}
	rmdir(dir);
}

/* the per-node hugetlb pool on the node, used by a bound mapping */
TEST_F(place, hugetlb_node_pool)
{
	char knob[160];
	int node = self->cdm[0];
	size_t len = 4 * HPAGE_SZ;
	long v = -1;
	char *p;

	snprintf(knob, sizeof(knob), NODE_HPAGE_POOL, node);
	if (!path_exists(knob))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	ASSERT_EQ(0, write_str(knob, "4"));
	ASSERT_EQ(0, read_long(knob, &v));
	TH_LOG("node%d nr_hugepages=4: %ld", node, v);
	ASSERT_EQ(4, v);
	/*
	 * A reservation counts the pool of a CDM node only for a task whose
	 * policy binds it there (isolation_test: hugetlb_reservation_cdm_pool);
	 * a VMA policy comes after mmap(), so it needs MAP_NORESERVE.
	 */
	ASSERT_EQ(0, set_policy_nodes(MPOL_BIND, &node, 1));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 5, len);
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	log_nodes(_metadata, "MAP_HUGETLB, task MPOL_BIND", p, len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, node));
	munmap(p, len);

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE,
		 -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, mbind_nodes(p, len, MPOL_BIND, &node, 1, 0));
	memset(p, 6, len);
	log_nodes(_metadata, "MAP_HUGETLB|MAP_NORESERVE, mbind MPOL_BIND", p,
		  len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, node));
	munmap(p, len);
	ASSERT_EQ(0, write_str(knob, "0"));
}

/*
 * A bind whose mask holds a CDM node that is not on the start node's
 * zonelist: {0, N} from node 0, and {N, M} for two devices (the bind starts
 * on the nearer).  The pool pages are on the other mask node only, so each
 * fault must take one from there (cdm_hugetlb_dequeue()); with the pool
 * search missing that node, the reserved fault would SIGBUS instead.
 */
TEST_F(place, hugetlb_pool_of_other_mask_node)
{
	char knob0[160], knob[160], saved0[32] = "";
	size_t len = 2 * HPAGE_SZ;
	int cases[3][3], ncases = 0, c;	/* mask node, mask node, pool node */

	snprintf(knob0, sizeof(knob0), NODE_HPAGE_POOL, self->ram[0]);
	if (!path_exists(knob0))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	ASSERT_LT(0, read_str(knob0, saved0, sizeof(saved0)));
	cases[ncases][0] = self->ram[0];
	cases[ncases][1] = cases[ncases][2] = self->cdm[0];
	ncases++;
	for (c = 0; c < 2 && self->ncdm > 1; c++) {
		cases[ncases][0] = self->cdm[0];
		cases[ncases][1] = self->cdm[1];
		cases[ncases][2] = self->cdm[c];
		ncases++;
	}
	/* No pool page in RAM: only the CDM node's pool can serve. */
	ASSERT_EQ(0, write_str(knob0, "0"));
	for (c = 0; c < ncases; c++) {
		int node = cases[c][2];
		long v = -1;
		char *p;

		snprintf(knob, sizeof(knob), NODE_HPAGE_POOL, node);
		ASSERT_EQ(0, write_str(knob, "2"));
		ASSERT_EQ(0, read_long(knob, &v));
		ASSERT_EQ(2, v);
		ASSERT_EQ(0, set_policy_nodes(MPOL_BIND, cases[c], 2));
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		ASSERT_NE(MAP_FAILED, p);
		memset(p, 7, len);
		set_policy_nodes(MPOL_DEFAULT, NULL, 0);
		TH_LOG("bind {%d,%d}, pool on node %d only", cases[c][0],
		       cases[c][1], node);
		log_nodes(_metadata, "MAP_HUGETLB", p, len);
		ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, node));
		munmap(p, len);
		ASSERT_EQ(0, write_str(knob, "0"));
	}
	ASSERT_EQ(0, write_str(knob0, saved0));
}

/* Physical address of the page at @p, 0 when not present. */
static unsigned long long page_phys(const void *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t pfn;

	if (fd < 0)
		return 0;
	pfn = pagemap_pfn(fd, p);
	close(fd);
	return pfn * PAGE_SZ;
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Start one kdamond on physical addresses whose regions are the pages of
 * @p, with one scheme: migrate_cold to @nid of every region not accessed.
 * 0 or -errno.
 */
static int damon_start_migrate_cold(char *p, int nid)
{
	unsigned long long phys[DAMON_PAGES];
	char nr[16], target[16];
	const char *const setup[][2] = {
		{ DAMON_KD "/nr_kdamonds", "1" },
		{ DAMON_KD "/0/contexts/nr_contexts", "1" },
		{ DAMON_CTX "/operations", "paddr" },
		{ DAMON_CTX "/targets/nr_targets", "1" },
		{ DAMON_CTX "/targets/0/regions/nr_regions", nr },
		{ DAMON_CTX "/schemes/nr_schemes", "1" },
		{ DAMON_CTX "/schemes/0/action", "migrate_cold" },
		{ DAMON_CTX "/schemes/0/target_nid", target },
		/* every bound of the pattern is 0 until written */
		{ DAMON_CTX "/schemes/0/access_pattern/nr_accesses/max", "0" },
		{ DAMON_CTX "/schemes/0/access_pattern/sz/max", "1099511627776" },
		{ DAMON_CTX "/schemes/0/access_pattern/age/max", "4294967295" },
	};
	char v[32];
	int r = 0;

	for (int i = 0; i < DAMON_PAGES; i++) {
		phys[i] = page_phys(p + i * PAGE_SZ);
		if (!phys[i])
			return -ENOENT;
	}
	/* DAMON wants its regions sorted and apart */
	qsort(phys, DAMON_PAGES, sizeof(phys[0]), cmp_ull);
	snprintf(nr, sizeof(nr), "%d", DAMON_PAGES);
	snprintf(target, sizeof(target), "%d", nid);
	for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]) && !r; i++)
		r = write_str(setup[i][0], setup[i][1]);
	for (int i = 0; i < DAMON_PAGES && !r; i++) {
		snprintf(v, sizeof(v), "%llu", phys[i]);
		r = write_strf(v, DAMON_CTX "/targets/0/regions/%d/start", i);
		snprintf(v, sizeof(v), "%llu", phys[i] + PAGE_SZ);
		if (!r)
			r = write_strf(v, DAMON_CTX "/targets/0/regions/%d/end",
				       i);
	}
	return r ? r : write_str(DAMON_KD "/0/state", "on");
}

/* DAMOS's own account of the scheme, for the log of a failure */
static void damon_log_stats(struct __test_metadata *_metadata)
{
	static const char *const stat[] = { "nr_tried", "sz_tried",
					    "nr_applied", "sz_applied",
					    "qt_exceeds" };
	char v[32], line[160] = "";
	size_t n = 0;

	write_str(DAMON_KD "/0/state", "update_schemes_stats");
	for (size_t i = 0; i < sizeof(stat) / sizeof(stat[0]); i++) {
		if (read_strf(v, sizeof(v), DAMON_CTX "/schemes/0/stats/%s",
			      stat[i]) < 0)
			snprintf(v, sizeof(v), "?");
		v[strcspn(v, "\n")] = 0;
		n += snprintf(line + n, sizeof(line) - n, " %s=%s", stat[i], v);
	}
	TH_LOG("DAMOS stats:%s", line);
}

static void damon_stop(void)
{
	write_str(DAMON_KD "/0/state", "off");
	write_str(DAMON_KD "/nr_kdamonds", "0");
}

/*
 * Pages of @p on @nid once kdamond has moved all DAMON_PAGES there, or
 * what it had moved when 60 s ran out: a bound on a measured state.
 */
static long damon_wait_moved(char *p, int nid)
{
	uint64_t end = now_ms() + 60000;
	long on;

	while ((on = pages_on_node(p, DAMON_PAGES * PAGE_SZ, nid)) !=
	       DAMON_PAGES && now_ms() < end)
		usleep(20 * 1000);
	return on;
}

/*
 * DAMOS migrate_cold with a CDM node as target_nid moves the cold pages
 * there: an administrator named the node, so this is explicit placement
 * (MR_DAMON opens the node as move_pages(2) does).  And back: with a RAM
 * target the same pages leave the device node.
 */
TEST_F_TIMEOUT(place, damon_migrate_cold_to_and_from_cdm, 300)
{
	size_t len = DAMON_PAGES * PAGE_SZ;
	int node = self->cdm[0];
	long on;
	char *p;
	int r;

	if (!path_exists(DAMON_KD))
		SKIP(return, "CONFIG_DAMON_SYSFS off");
	p = map_anon(len);
	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 41);
	/* also drains the per-CPU LRU batches: DAMON takes LRU pages only */
	ASSERT_EQ(DAMON_PAGES, move_all(p, len, self->ram[0]));

	r = damon_start_migrate_cold(p, node);
	ASSERT_EQ(0, r) TH_LOG("DAMON sysfs: %s", strerror(-r));
	on = damon_wait_moved(p, node);
	damon_log_stats(_metadata);
	damon_stop();
	log_nodes(_metadata, "DAMOS migrate_cold to the CDM node", p, len);
	ASSERT_EQ(DAMON_PAGES, on);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 41));

	/* the migration left the new pages in kdamond's LRU batch */
	ASSERT_EQ(DAMON_PAGES, move_all(p, len, node));
	r = damon_start_migrate_cold(p, self->ram[0]);
	ASSERT_EQ(0, r) TH_LOG("DAMON sysfs: %s", strerror(-r));
	on = damon_wait_moved(p, self->ram[0]);
	damon_log_stats(_metadata);
	damon_stop();
	log_nodes(_metadata, "DAMOS migrate_cold to RAM", p, len);
	ASSERT_EQ(DAMON_PAGES, on);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 41));
	munmap(p, len);
}

/* numactl helper: allocate <MiB>, touch, print the node of every page */
static int helper(int argc, char **argv)
{
	size_t len = (argc > 2 ? strtoul(argv[2], NULL, 0) : 16) * MiB;
	long c[CDM_MAX_NODES], e, n;
	char *p = map_anon(len);

	if (!p)
		return 1;
	touch_pages(p, len);
	n = page_nodes(p, len, c, &e);
	printf("pages=%ld\nabsent=%ld\n", n, e);
	for (int i = 0; i < CDM_MAX_NODES; i++)
		if (c[i])
			printf("node%d=%ld\n", i, c[i]);
	return n < 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--helper"))
		return helper(argc, argv);
	set_oom_adj(-1000);
	return test_harness_run(argc, argv);
}
