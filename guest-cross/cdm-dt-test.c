// SPDX-License-Identifier: GPL-2.0
/*
 * cdm-dt-test: /init of the non-x86 guest (make check-cross).
 *
 * The guest has node 0 (CPUs and RAM) and a CPU-less node (1 by default,
 * cdmtest.node=N on the kernel command line) whose device-tree memory node
 * carries compatible = "ibm,coherent-device-memory".  This program asserts,
 * from measured state, that the firmware made that node a CDM node:
 *
 *   - it is listed in has_coherent_device and has no CPUs;
 *   - its memory is all in ZONE_MOVABLE (present == managed, other zones
 *     empty) per /proc/zoneinfo;
 *   - isolation: an unbound anonymous fill that takes node 0 below its low
 *     watermark (where a stock kernel falls back to the next node) and a
 *     tmpfs file put no page on it;
 *   - placement: mbind and set_mempolicy MPOL_BIND and move_pages put pages
 *     on it;
 *   - evacuation: offlining all its memory blocks migrates a bound buffer to
 *     node 0 with its data intact, and the blocks online again as movable.
 *
 * Output is TAP; the last line is "cdm-dt-test: N passed, M failed".  Then
 * the guest powers off (run as an ordinary program, not as PID 1, it exits
 * with 1 if a check failed).  Static, no libnuma: the NUMA calls are raw
 * syscalls.  The same program runs in the negative control (no property),
 * where the CDM checks must fail.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdm_sysfs.h"

#define MPOL_DEFAULT	0
#define MPOL_BIND	2
#define MPOL_MF_MOVE	(1 << 1)

#define NTESTS		12
#define RAM_NODE	0
#define MAXNODE		64

static int cdm = 1;		/* the node under test */
static long page_size;
static int tests_run, tests_passed, tests_failed;

static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		tests_passed++;
	else
		tests_failed++;
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static long sys_mbind(void *addr, unsigned long len, int mode,
		      const unsigned long *mask, unsigned long maxnode)
{
	return syscall(SYS_mbind, addr, len, mode, mask, maxnode, 0UL);
}

static long sys_set_mempolicy(int mode, const unsigned long *mask,
			      unsigned long maxnode)
{
	return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}

static long sys_move_pages(unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

struct zone_info {
	char name[16];
	long free, min, low, present, managed;
};

/* The zones of node in /proc/zoneinfo; returns how many (at most max). */
static int node_zones(int node, struct zone_info *z, int max)
{
	static char buf[1 << 20];
	int n = 0, cur = -1;
	char *line, *save;

	if (read_str("/proc/zoneinfo", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[32], name[16];
		int nid;
		long val;

		if (sscanf(line, "Node %d, zone %15s", &nid, name) == 2) {
			cur = -1;
			if (nid == node && n < max) {
				cur = n++;
				memset(&z[cur], 0, sizeof(z[cur]));
				snprintf(z[cur].name, sizeof(z[cur].name), "%s", name);
			}
			continue;
		}
		if (cur < 0)
			continue;
		if (sscanf(line, "  pages free %ld", &val) == 1) {
			z[cur].free = val;
			continue;
		}
		if (sscanf(line, " %31s %ld", key, &val) != 2)
			continue;
		if (!strcmp(key, "min"))
			z[cur].min = val;
		else if (!strcmp(key, "low"))
			z[cur].low = val;
		else if (!strcmp(key, "present"))
			z[cur].present = val;
		else if (!strcmp(key, "managed"))
			z[cur].managed = val;
	}
	return n;
}

/* Sum of free pages, min and low watermarks over node's zones. */
static int node_free_wmarks(int node, long *free, long *min, long *low)
{
	struct zone_info z[8];
	int i, n = node_zones(node, z, 8);

	*free = *min = *low = 0;
	for (i = 0; i < n; i++) {
		*free += z[i].free;
		*min += z[i].min;
		*low += z[i].low;
	}
	return n > 0 ? 0 : -1;
}

/*
 * Where the pages of [addr, addr + len) are: counts per node (in
 * on[0..MAXNODE-1]) and of pages not present or in error.
 */
struct placement {
	long on[MAXNODE];
	long absent;
	long total;
};

static int query_pages(char *addr, size_t len, struct placement *pl)
{
	enum { BATCH = 4096 };
	static void *pages[BATCH];
	static int status[BATCH];
	size_t npages = len / page_size, i, j;

	memset(pl, 0, sizeof(*pl));
	for (i = 0; i < npages; i += BATCH) {
		size_t cnt = npages - i < BATCH ? npages - i : BATCH;

		for (j = 0; j < cnt; j++)
			pages[j] = addr + (i + j) * page_size;
		if (sys_move_pages(cnt, pages, NULL, status, 0))
			return -errno;
		for (j = 0; j < cnt; j++) {
			if (status[j] >= 0 && status[j] < MAXNODE)
				pl->on[status[j]]++;
			else
				pl->absent++;
		}
	}
	pl->total = npages;
	return 0;
}

static void touch(char *addr, size_t len)
{
	for (size_t off = 0; off < len; off += page_size)
		addr[off] = 1;
}

static char *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void node_mask(unsigned long *mask, int node)
{
	memset(mask, 0, MAXNODE / 8);
	mask[node / (8 * sizeof(long))] |= 1UL << (node % (8 * sizeof(long)));
}

/* ------------------------------------------------------------------ */

static void test_topology(bool *have_node)
{
	char buf[256], path[96];
	long total = node_meminfo_kb(cdm, "MemTotal");

	/* Sanity, true with or without the property: the node exists. */
	*have_node = total > 0;
	tap(*have_node, "node %d is online with memory (MemTotal %ld kB)", cdm, total);

	if (read_str("/sys/devices/system/node/has_coherent_device", buf, sizeof(buf)) < 0)
		tap(false, "node %d in has_coherent_device (cannot read it: %s)", cdm, strerror(errno));
	else
		tap(nodelist_has(buf, cdm), "node %d in has_coherent_device (\"%.*s\")",
		    cdm, (int)strcspn(buf, "\n"), buf);

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", cdm);
	if (read_str(path, buf, sizeof(buf)) < 0)
		tap(false, "node %d has no CPUs (cannot read %s: %s)", cdm, path, strerror(errno));
	else
		tap(buf[0] == '\n' || buf[0] == '\0', "node %d has no CPUs (cpulist \"%.*s\")",
		    cdm, (int)strcspn(buf, "\n"), buf);
}

/* All of the node's memory in Movable, present == managed, nothing else. */
static bool zones_all_movable(char *why, size_t size)
{
	struct zone_info z[8];
	int i, n = node_zones(cdm, z, 8);
	long movable = 0, total_kb = node_meminfo_kb(cdm, "MemTotal");
	size_t len = 0;
	bool ok = n > 0;

	why[0] = '\0';
	for (i = 0; i < n; i++) {
		if (len < size)
			len += snprintf(why + len, size - len, "%s%s present %ld managed %ld",
					i ? ", " : "", z[i].name, z[i].present, z[i].managed);
		if (!strcmp(z[i].name, "Movable")) {
			movable = z[i].present;
			ok &= z[i].present > 0 && z[i].present == z[i].managed;
		} else {
			ok &= z[i].present == 0;
		}
	}
	/* MemTotal counts managed pages: all of them are the Movable ones. */
	ok &= total_kb == movable * (page_size / 1024);
	if (len < size)
		snprintf(why + len, size - len, "; MemTotal %ld kB", total_kb);
	return ok;
}

static void test_zones(void)
{
	char why[512];
	bool ok = zones_all_movable(why, sizeof(why));

	tap(ok, "node %d memory all in ZONE_MOVABLE, present == managed (%s)", cdm, why);
}

/*
 * Isolation under pressure: a child maps anonymous memory with the default
 * policy and touches it until node 0's free pages are below its low
 * watermark, then touches 2 MiB more, 16 pages at a time.  Below the low
 * watermark a stock kernel allocates from the next node in the zonelist
 * (the negative control shows it); a CDM node is in no zonelist, so every
 * page must still come from node 0, down towards its min watermark.  The
 * child stops at the first page it finds on the CDM node, and a quarter of
 * the way from min to low at the latest, before OOM.  The bulk is touched
 * with THP (fast under TCG); the last part with base pages, which are the
 * ones that fall back to other nodes (THP faults stay on the local node).
 */
struct fill_result {
	long touched_pages;
	long below_low_pages;	/* touched while node 0 was below low */
	long on_cdm;
	long node0_free_min;
	long min, low;
	int err;
	int done;
};

static void fill_child(struct fill_result *r)
{
	size_t cap = (size_t)(node_meminfo_kb(RAM_NODE, "MemTotal") +
			      node_meminfo_kb(cdm, "MemTotal")) * 1024;
	char *buf = map_anon(cap);
	size_t off = 0;
	long free, min, low, floor;
	bool fine = false;
	struct placement pl;

	if (!buf || node_free_wmarks(RAM_NODE, &free, &min, &low)) {
		r->err = errno ? errno : EINVAL;
		return;
	}
	r->min = min;
	r->low = low;
	r->node0_free_min = free;
	floor = min + (low - min) / 4;
	while (off < cap) {
		size_t chunk;

		if (node_free_wmarks(RAM_NODE, &free, &min, &low)) {
			r->err = EIO;
			return;
		}
		if (free < r->node0_free_min)
			r->node0_free_min = free;
		if (free < floor || r->below_low_pages >= 512)
			break;
		/* Big steps while far above the low watermark, then 16 pages. */
		if (free - low > 8192) {
			chunk = free - low - 4096;
		} else {
			if (!fine && madvise(buf + off, cap - off, MADV_NOHUGEPAGE)) {
				r->err = errno;
				return;
			}
			fine = true;
			chunk = 16;
		}
		chunk *= page_size;
		if (chunk > cap - off)
			chunk = cap - off;
		touch(buf + off, chunk);
		r->touched_pages += chunk / page_size;
		if (free < low)
			r->below_low_pages += chunk / page_size;
		if (query_pages(buf + off, chunk, &pl)) {
			r->err = errno;
			return;
		}
		r->on_cdm += pl.on[cdm];
		off += chunk;
		if (r->on_cdm)
			break;
	}
	r->done = 1;
}

static void test_isolation_anon(void)
{
	struct fill_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long used0 = node_meminfo_kb(cdm, "MemUsed"), used1;
	int status = 0;
	pid_t pid;

	if (r == MAP_FAILED) {
		tap(false, "isolation: anon fill (mmap: %s)", strerror(errno));
		return;
	}
	memset(r, 0, sizeof(*r));
	pid = fork();
	if (pid == 0) {
		fill_child(r);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	used1 = node_meminfo_kb(cdm, "MemUsed");
	diag("anon fill: %ld MiB touched, %ld pages below node %d's low watermark (free pages "
	     "min %ld, min wmark %ld, low %ld), %ld pages on node %d, node %d MemUsed %ld -> %ld kB, "
	     "child %s %d", r->touched_pages * page_size / (long)MiB, r->below_low_pages, RAM_NODE,
	     r->node0_free_min, r->min, r->low, r->on_cdm, cdm, cdm, used0, used1,
	     WIFSIGNALED(status) ? "killed by signal" : "exit", WIFSIGNALED(status) ?
	     WTERMSIG(status) : WEXITSTATUS(status));
	tap(r->done && !r->err && r->on_cdm == 0 && r->below_low_pages >= 512 &&
	    WIFEXITED(status) && used1 - used0 < 1024,
	    "isolation: anon fill to below node %d's low watermark put no page on node %d "
	    "(%ld pages there, MemUsed +%ld kB)", RAM_NODE, cdm, r->on_cdm, used1 - used0);
	munmap(r, sizeof(*r));
}

/* A tmpfs file: its pages (page cache, shmem) stay off the CDM node. */
static void test_isolation_tmpfs(void)
{
	const size_t len = 64 * MiB;
	long file0 = node_meminfo_kb(cdm, "FilePages"), file1;
	struct placement pl = { 0 };
	char *p = MAP_FAILED;
	int fd, err = 0;

	fd = open("/tmp/cdm-file", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, len))
		err = errno;
	if (!err) {
		char block[65536];

		memset(block, 0x5a, sizeof(block));
		for (size_t off = 0; off < len && !err; off += sizeof(block))
			if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
				err = errno ? errno : EIO;
	}
	if (!err) {
		p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			err = errno;
	}
	if (!err) {
		for (size_t off = 0; off < len; off += page_size)
			(void)*(volatile char *)(p + off);
		err = -query_pages(p, len, &pl);
	}
	file1 = node_meminfo_kb(cdm, "FilePages");
	tap(!err && pl.on[cdm] == 0 && pl.on[RAM_NODE] == pl.total && file1 == 0,
	    "isolation: 64 MiB tmpfs file has no page on node %d (node %d %ld of %ld pages, "
	    "node %d FilePages %ld -> %ld kB%s%s)", cdm, RAM_NODE, pl.on[RAM_NODE], pl.total,
	    cdm, file0, file1, err ? ", error: " : "", err ? strerror(err) : "");
	if (p != MAP_FAILED)
		munmap(p, len);
	if (fd >= 0)
		close(fd);
	unlink("/tmp/cdm-file");
}

static void test_mbind(void)
{
	const size_t len = 32 * MiB;
	unsigned long mask[MAXNODE / (8 * sizeof(long))];
	struct placement pl = { 0 };
	char *p = map_anon(len);
	int err = p ? 0 : errno;

	node_mask(mask, cdm);
	if (!err && sys_mbind(p, len, MPOL_BIND, mask, MAXNODE + 1))
		err = errno;
	if (!err) {
		touch(p, len);
		err = -query_pages(p, len, &pl);
	}
	tap(!err && pl.on[cdm] == pl.total && pl.total > 0,
	    "placement: mbind(MPOL_BIND, node %d) puts all %ld pages there (%ld)%s%s",
	    cdm, pl.total, pl.on[cdm], err ? ": " : "", err ? strerror(err) : "");
	if (p)
		munmap(p, len);
}

static void test_set_mempolicy(void)
{
	const size_t len = 32 * MiB;
	unsigned long mask[MAXNODE / (8 * sizeof(long))];
	struct placement pl = { 0 };
	char *p = map_anon(len);
	int err = p ? 0 : errno;

	node_mask(mask, cdm);
	if (!err && sys_set_mempolicy(MPOL_BIND, mask, MAXNODE + 1))
		err = errno;
	if (!err) {
		touch(p, len);
		if (sys_set_mempolicy(MPOL_DEFAULT, NULL, 0))
			err = errno;
	}
	if (!err)
		err = -query_pages(p, len, &pl);
	tap(!err && pl.on[cdm] == pl.total && pl.total > 0,
	    "placement: set_mempolicy(MPOL_BIND, node %d) puts all %ld pages there (%ld)%s%s",
	    cdm, pl.total, pl.on[cdm], err ? ": " : "", err ? strerror(err) : "");
	if (p)
		munmap(p, len);
}

static void test_move_pages(void)
{
	const size_t len = 16 * MiB;
	size_t n = len / page_size;
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(*nodes)), *status = calloc(n, sizeof(*status));
	struct placement before = { 0 }, after = { 0 };
	char *p = map_anon(len);
	long moved = 0;
	int err = p && pages && nodes && status ? 0 : ENOMEM;

	/*
	 * Base pages: move_pages() reports -EBUSY for the second page of a THP
	 * whose folio the same call has already queued (upstream behaviour).
	 */
	if (!err && madvise(p, len, MADV_NOHUGEPAGE))
		err = errno;
	if (!err) {
		touch(p, len);
		err = -query_pages(p, len, &before);
	}
	if (!err) {
		for (size_t i = 0; i < n; i++) {
			pages[i] = p + i * page_size;
			nodes[i] = cdm;
		}
		if (sys_move_pages(n, pages, nodes, status, MPOL_MF_MOVE))
			err = errno;
	}
	if (!err) {
		for (size_t i = 0, shown = 0; i < n; i++) {
			if (status[i] == cdm)
				moved++;
			else if (shown++ < 4)
				diag("move_pages: page %zu status %d", i, status[i]);
		}
		err = -query_pages(p, len, &after);
	}
	tap(!err && before.on[RAM_NODE] == before.total && moved == (long)n &&
	    after.on[cdm] == after.total,
	    "placement: move_pages moves %zu pages from node %d (%ld there before) to node %d "
	    "(status %ld, now %ld there)%s%s", n, RAM_NODE, before.on[RAM_NODE], cdm, moved,
	    after.on[cdm], err ? ": " : "", err ? strerror(err) : "");
	if (p)
		munmap(p, len);
	free(pages);
	free(nodes);
	free(status);
}

static uint64_t pattern(uint64_t i)
{
	/* splitmix64: every word differs, so a lost or misplaced page shows */
	uint64_t z = i + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The memory block ids of the node (its memoryN links), sorted. */
static int node_blocks(int node, int *ids, int max)
{
	char path[96];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long id;

		if (strncmp(de->d_name, "memory", 6))
			continue;
		id = strtol(de->d_name + 6, &end, 10);
		if (end != de->d_name + 6 && !*end)
			ids[n++] = id;
	}
	closedir(d);
	return n;
}

static int set_blocks(const int *ids, int n, const char *state, int *done)
{
	char path[96];
	int i, err, first = 0;

	*done = 0;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%d/state", ids[i]);
		err = write_str(path, state);
		if (err && !first) {
			diag("%s > %s: %s", state, path, strerror(-err));
			first = -err;
		}
		if (!err)
			(*done)++;
	}
	return first;
}

static void test_evacuation(bool have_node)
{
	const size_t len = 64 * MiB;
	size_t words = len / sizeof(uint64_t), bad = 0;
	unsigned long mask[MAXNODE / (8 * sizeof(long))];
	struct placement before = { 0 }, after = { 0 };
	long total0 = node_meminfo_kb(cdm, "MemTotal"), total_off, total_on;
	uint64_t *p = (uint64_t *)map_anon(len);
	int ids[256], n = have_node ? node_blocks(cdm, ids, 256) : -1, off = 0, on = 0;
	int err = p ? 0 : errno, off_err = 0, on_err = 0;
	bool movable;
	char why[512];

	node_mask(mask, cdm);
	if (!err && sys_mbind(p, len, MPOL_BIND, mask, MAXNODE + 1))
		err = errno;
	if (!err) {
		for (size_t i = 0; i < words; i++)
			p[i] = pattern(i);
		err = -query_pages((char *)p, len, &before);
	}
	diag("evacuation: %d memory blocks on node %d, 64 MiB buffer %ld of %ld pages there",
	     n, cdm, before.on[cdm], before.total);
	if (!err && n > 0)
		off_err = set_blocks(ids, n, "offline", &off);
	/* 0, or -1 if the node's sysfs directory went with its last memory */
	total_off = node_meminfo_kb(cdm, "MemTotal");
	tap(!err && n > 0 && off == n && !off_err && total_off <= 0,
	    "evacuation: all %d memory blocks of node %d offline (%d done, MemTotal %ld -> %ld kB)%s%s",
	    n, cdm, off, total0, total_off, err || off_err ? ": " : "",
	    err || off_err ? strerror(err ? err : off_err) : "");

	if (!err)
		err = -query_pages((char *)p, len, &after);
	if (!err)
		for (size_t i = 0; i < words; i++)
			bad += p[i] != pattern(i);
	tap(!err && before.on[cdm] == before.total && after.on[RAM_NODE] == after.total &&
	    bad == 0,
	    "evacuation: the bound buffer moved from node %d (%ld pages before) to node %d "
	    "(%ld of %ld after), %zu of %zu words differ", cdm, before.on[cdm], RAM_NODE,
	    after.on[RAM_NODE], after.total, bad, words);

	if (n > 0)
		on_err = set_blocks(ids, n, "online_movable", &on);
	total_on = node_meminfo_kb(cdm, "MemTotal");
	movable = zones_all_movable(why, sizeof(why));
	tap(n > 0 && on == n && !on_err && total_on == total0 && movable,
	    "evacuation: the blocks online again as movable (%d of %d, MemTotal %ld kB; %s)",
	    on, n, total_on, why);
	if (p)
		munmap(p, len);
}

static void setup(void)
{
	char cmdline[4096], *s;

	if (getpid() == 1) {
		mkdir("/proc", 0755);
		mkdir("/sys", 0755);
		mkdir("/dev", 0755);
		mkdir("/tmp", 01777);
		mount("proc", "/proc", "proc", 0, NULL);
		mount("sysfs", "/sys", "sysfs", 0, NULL);
		mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
		mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
	}
	if (read_str("/proc/cmdline", cmdline, sizeof(cmdline)) >= 0 &&
	    (s = strstr(cmdline, "cdmtest.node=")))
		cdm = atoi(s + strlen("cdmtest.node="));
	page_size = sysconf(_SC_PAGESIZE);
}

int main(void)
{
	bool have_node;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setup();
	printf("TAP version 13\n1..%d\n", NTESTS);
	diag("cdm-dt-test: node %d under test, RAM node %d, page size %ld", cdm, RAM_NODE, page_size);

	test_topology(&have_node);		/* 1-3 */
	test_zones();				/* 4 */
	test_isolation_anon();			/* 5 */
	test_isolation_tmpfs();			/* 6 */
	test_mbind();				/* 7 */
	test_set_mempolicy();			/* 8 */
	test_move_pages();			/* 9 */
	test_evacuation(have_node);		/* 10-12 */

	if (tests_run != NTESTS)
		tap(false, "ran %d tests, planned %d", tests_run, NTESTS);
	printf("cdm-dt-test: %d passed, %d failed\n", tests_passed, tests_failed);
	fflush(stdout);
	/* As /init it powers the guest off; run as a program it just exits. */
	if (getpid() != 1)
		return tests_failed ? 1 : 0;
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
