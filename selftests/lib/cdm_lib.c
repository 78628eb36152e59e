// SPDX-License-Identifier: GPL-2.0
/*
 * Shared helpers for the cdm guest selftests. See cdm_lib.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cdm_lib.h"

/* ---------------------------------------------------------------- files */

int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, tot = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)tot < len - 1) {
		n = read(fd, buf + tot, len - 1 - tot);
		if (n < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (n == 0)
			break;
		tot += n;
	}
	close(fd);
	buf[tot] = 0;
	while (tot > 0 && (buf[tot - 1] == '\n' || buf[tot - 1] == ' '))
		buf[--tot] = 0;
	return tot;
}

int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (close(fd) < 0)
		return -errno;
	return 0;
}

int read_long(const char *path, long *val)
{
	char buf[128];
	char *end;
	int r = read_str(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*val = strtol(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int write_long(const char *path, long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", val);
	return write_str(path, buf);
}

int read_strf(char *buf, size_t len, const char *fmt, ...)
{
	char path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return read_str(path, buf, len);
}

int write_strf(const char *s, const char *fmt, ...)
{
	char path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return write_str(path, s);
}

int read_choice(const char *path, char *buf, size_t len)
{
	int r = read_str(path, buf, len);
	char *b, *e;

	if (r < 0)
		return r;
	b = strchr(buf, '[');
	if (b && (e = strchr(b, ']'))) {
		*e = 0;
		memmove(buf, b + 1, strlen(b + 1) + 1);
	}
	return (int)strlen(buf);
}

bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------- nodes */

int parse_nodelist(const char *s, int *nodes, int max)
{
	int n = 0;

	while (*s) {
		char *end;
		long a, b;

		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		a = strtol(s, &end, 10);
		if (end == s)
			break;
		b = a;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			s = end;
		}
		for (long i = a; i <= b && n < max; i++)
			nodes[n++] = (int)i;
	}
	return n;
}

static int nodelist_file(const char *f, int *nodes, int max)
{
	char buf[256];
	int r = read_strf(buf, sizeof(buf), NODE_SYS "/%s", f);

	if (r < 0)
		return r;
	return parse_nodelist(buf, nodes, max);
}

int cdm_nodes(int *nodes, int max)
{
	int n = nodelist_file("has_coherent_device", nodes, max);
	const char *fake = getenv("CDM_TEST_FAKE_NODES");

	/* debugging aid for kernels without mm_cdm: name the nodes */
	if (n < 0 && fake)
		return parse_nodelist(fake, nodes, max);
	return n;
}

int mem_nodes(int *nodes, int max)
{
	return nodelist_file("has_memory", nodes, max);
}

bool node_is_cdm(int nid)
{
	int n[CDM_MAX_NODES];
	int c = cdm_nodes(n, CDM_MAX_NODES);

	for (int i = 0; i < c; i++)
		if (n[i] == nid)
			return true;
	return false;
}

bool node_has_memory(int nid)
{
	int n[CDM_MAX_NODES];
	int c = mem_nodes(n, CDM_MAX_NODES);

	for (int i = 0; i < c; i++)
		if (n[i] == nid)
			return true;
	return false;
}

int ram_nodes(int *nodes, int max)
{
	int m[CDM_MAX_NODES];
	int c = mem_nodes(m, CDM_MAX_NODES), n = 0;

	for (int i = 0; i < c && n < max; i++)
		if (!node_is_cdm(m[i]))
			nodes[n++] = m[i];
	return n;
}

int cdm_mem_nodes(int *nodes, int max)
{
	int m[CDM_MAX_NODES];
	int c = cdm_nodes(m, CDM_MAX_NODES), n = 0;

	for (int i = 0; i < c && n < max; i++)
		if (node_has_memory(m[i]))
			nodes[n++] = m[i];
	return n;
}

static long kv_file(const char *path, const char *key, bool nodefmt)
{
	char line[256];
	FILE *f = fopen(path, "re");
	long val = -1;
	size_t kl = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		if (nodefmt) {	/* "Node 0 MemFree:  123 kB" */
			p = strchr(p, ' ');
			if (!p)
				continue;
			p = strchr(p + 1, ' ');
			if (!p)
				continue;
			p++;
		}
		if (!strncmp(p, key, kl) && (p[kl] == ':' || p[kl] == ' ')) {
			p += kl;
			while (*p == ':' || *p == ' ')
				p++;
			val = strtol(p, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

long node_meminfo_kb(int nid, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), NODE_SYS "/node%d/meminfo", nid);
	return kv_file(path, key, true);
}

long node_used_kb(int nid)
{
	long t = node_meminfo_kb(nid, "MemTotal");
	long f = node_meminfo_kb(nid, "MemFree");

	if (t < 0 || f < 0)
		return -1;
	return t - f;
}

long meminfo_kb(const char *key)
{
	return kv_file("/proc/meminfo", key, false);
}

long vmstat_val(const char *key)
{
	return kv_file("/proc/vmstat", key, false);
}

long node_nr_hugepages(int nid)
{
	long v;
	char path[160];

	snprintf(path, sizeof(path),
		 NODE_SYS "/node%d/hugepages/hugepages-2048kB/nr_hugepages", nid);
	if (read_long(path, &v))
		return 0;	/* node without memory: no pool */
	return v;
}

long node_watermark_kb(int nid, const char *wm)
{
	FILE *f = fopen("/proc/zoneinfo", "re");
	char line[256], key[32];
	long sum = 0, v;
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone", &n) == 1)
			continue;
		if (n == nid && sscanf(line, " %31s %ld", key, &v) == 2 &&
		    !strcmp(key, wm))
			sum += v;
	}
	fclose(f);
	return sum * (PAGE_SZ / KiB);
}

int node_zone_free_low(int nid, bool movable, long *free_kb, long *low_kb)
{
	FILE *f = fopen("/proc/zoneinfo", "re");
	char line[256], zone[32] = "";
	long v;
	int n = -1;

	*free_kb = *low_kb = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone %31s", &n, zone) == 2)
			continue;
		/*
		 * ZONE_DMA is kept for DMA by lowmem_reserve: an ordinary
		 * allocation gets almost none of its free pages, so counting
		 * them would put "free" above "low" until the OOM killer runs
		 * (seen on a KASAN kernel, whose shadow leaves less above it).
		 */
		if (n != nid || !strcmp(zone, "DMA") ||
		    (!movable && !strcmp(zone, "Movable")))
			continue;
		if (sscanf(line, " pages free %ld", &v) == 1)
			*free_kb += v * (PAGE_SZ / KiB);
		else if (sscanf(line, " low %ld", &v) == 1)
			*low_kb += v * (PAGE_SZ / KiB);
	}
	fclose(f);
	return 0;
}

/* ---------------------------------------------------------------- pages */

long page_nodes(void *buf, size_t len, long *counts, long *errs)
{
	enum { BATCH = 1024 };
	void *pages[BATCH];
	int status[BATCH];
	size_t npages = len / PAGE_SZ;
	long tot = 0;

	if (counts)
		memset(counts, 0, sizeof(long) * CDM_MAX_NODES);
	if (errs)
		*errs = 0;
	for (size_t i = 0; i < npages; i += BATCH) {
		size_t n = npages - i < BATCH ? npages - i : BATCH;

		for (size_t j = 0; j < n; j++)
			pages[j] = (char *)buf + (i + j) * PAGE_SZ;
		if (move_pages(0, n, pages, NULL, status, 0) < 0)
			return -errno;
		for (size_t j = 0; j < n; j++) {
			if (status[j] >= 0 && status[j] < CDM_MAX_NODES) {
				if (counts)
					counts[status[j]]++;
			} else if (errs) {
				(*errs)++;
			}
		}
		tot += n;
	}
	return tot;
}

long pages_on_node(void *buf, size_t len, int nid)
{
	long c[CDM_MAX_NODES], e;
	long r = page_nodes(buf, len, c, &e);

	return r < 0 ? r : c[nid];
}

long pages_off_node(void *buf, size_t len, int nid)
{
	long c[CDM_MAX_NODES], e, s = 0;
	long r = page_nodes(buf, len, c, &e);

	if (r < 0)
		return r;
	for (int i = 0; i < CDM_MAX_NODES; i++)
		if (i != nid)
			s += c[i];
	return s;
}

long pages_on_cdm(void *buf, size_t len)
{
	int n[CDM_MAX_NODES];
	int k = cdm_nodes(n, CDM_MAX_NODES);
	long c[CDM_MAX_NODES], e, s = 0;
	long r = page_nodes(buf, len, c, &e);

	if (r < 0)
		return r;
	for (int i = 0; i < k; i++)
		s += c[n[i]];
	return s;
}

long move_all(void *buf, size_t len, int nid)
{
	enum { BATCH = 1024 };
	void *pages[BATCH];
	int status[BATCH], nodes[BATCH];
	size_t npages = len / PAGE_SZ;

	for (size_t i = 0; i < npages; i += BATCH) {
		size_t n = npages - i < BATCH ? npages - i : BATCH;

		for (size_t j = 0; j < n; j++) {
			pages[j] = (char *)buf + (i + j) * PAGE_SZ;
			nodes[j] = nid;
		}
		if (move_pages(0, n, pages, nodes, status, MPOL_MF_MOVE) < 0)
			return -errno;
	}
	return pages_on_node(buf, len, nid);
}

void touch_pages(void *buf, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE_SZ)
		((volatile char *)buf)[off] = (char)(off >> 12 | 1);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void fill_pattern(void *buf, size_t len, uint64_t seed)
{
	uint64_t *p = buf;

	for (size_t i = 0; i < len / 8; i++)
		p[i] = mix64(seed + i);
}

size_t check_pattern(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *p = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (p[i] != mix64(seed + i))
			return i * 8;
	return (size_t)-1;
}

uint64_t checksum(const void *buf, size_t len)
{
	const uint64_t *p = buf;
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < len / 8; i++)
		h = (h ^ mix64(p[i] + i)) * 0x100000001b3ULL;
	return h;
}

void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *map_anon_aligned(size_t len, size_t align)
{
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if ((char *)a + len < p + len + align)
		munmap((char *)a + len, p + len + align - ((char *)a + len));
	return (void *)a;
}

static void make_mask(const int *nodes, int n, unsigned long *mask)
{
	memset(mask, 0, CDM_MAX_NODES / 8);
	for (int i = 0; i < n; i++)
		mask[nodes[i] / (8 * sizeof(long))] |=
			1UL << (nodes[i] % (8 * sizeof(long)));
}

int mbind_nodes(void *buf, size_t len, int mode, const int *nodes, int n,
		unsigned int flags)
{
	unsigned long mask[CDM_MAX_NODES / (8 * sizeof(long))];

	make_mask(nodes, n, mask);
	if (mbind(buf, len, mode, n ? mask : NULL, n ? CDM_MAX_NODES + 1 : 0,
		  flags))
		return -errno;
	return 0;
}

int set_policy_nodes(int mode, const int *nodes, int n)
{
	unsigned long mask[CDM_MAX_NODES / (8 * sizeof(long))];

	make_mask(nodes, n, mask);
	if (set_mempolicy(mode, n ? mask : NULL, n ? CDM_MAX_NODES + 1 : 0))
		return -errno;
	return 0;
}

long smaps_anon_huge_kb(void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (isxdigit((unsigned char)line[0]) &&
		    !isupper((unsigned char)line[0]) &&
		    sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			continue;
		}
		if (in && !strncmp(line, "AnonHugePages:", 14)) {
			v = strtol(line + 14, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* ---------------------------------------------------------------- processes */

pid_t fork_kid(void)
{
	pid_t parent = getpid();
	pid_t c = fork();

	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return c;
}

int set_oom_adj(int v)
{
	return write_long("/proc/self/oom_score_adj", v);
}

bool kernel_has_kasan(void)
{
	static int known = -1;
	char line[256];
	FILE *f;

	if (known >= 0)
		return known;
	known = 0;
	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return false;
	while (!known && fgets(line, sizeof(line), f))
		known = strstr(line, " __asan_load8") != NULL;
	fclose(f);
	return known;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_child(pid_t pid, int *st, int timeout_s)
{
	uint64_t end = now_ms() + (uint64_t)timeout_s * 1000;

	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

int run_cmd(char *const argv[], char *out, size_t outlen, int timeout_s)
{
	int pfd[2], st = 0;
	size_t tot = 0;
	pid_t pid;
	uint64_t end;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork_kid();
	if (pid < 0)
		return -1;
	if (!pid) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "execv %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	end = now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int left = (int)(end - now_ms());
		char tmp[4096];
		ssize_t n;

		if (now_ms() >= end || poll(&p, 1, left > 0 ? left : 0) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(pfd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && tot + 1 < outlen) {
			size_t c = (size_t)n < outlen - 1 - tot ? (size_t)n :
				   outlen - 1 - tot;
			memcpy(out + tot, tmp, c);
			tot += c;
		}
	}
	if (out && outlen)
		out[tot] = 0;
	close(pfd[0]);
	if (wait_child(pid, &st, timeout_s + 5)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static void report(int fd, struct fill_report *r)
{
	if (write(fd, r, sizeof(*r)) != sizeof(*r))
		_exit(3);
}

pid_t fill_start(const struct fill_opts *o, int *rfd)
{
	bool stop = false;
	char *wbuf;
	int pfd[2], ffd;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork_kid();
	if (pid < 0)
		return -1;
	if (pid) {
		close(pfd[1]);
		*rfd = pfd[0];
		return pid;
	}
	/* child */
	close(pfd[0]);
	ffd = -1;
	wbuf = NULL;
	set_oom_adj(1000);
	if (o->mode >= 0 && set_policy_nodes(o->mode, o->nodes, o->nnodes)) {
		struct fill_report r = { .chunk = -2, .err = errno };

		report(pfd[1], &r);
		_exit(2);
	}
	if (o->file_dir) {
		char path[256];

		snprintf(path, sizeof(path), "%s/fill.%d", o->file_dir, getpid());
		ffd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (ffd < 0 || unlink(path)) {
			struct fill_report r = { .chunk = -2, .err = errno };

			report(pfd[1], &r);
			_exit(2);
		}
		wbuf = map_anon(o->chunk);
		if (!wbuf)
			_exit(2);
		memset(wbuf, 0x5a, o->chunk);
	}
	for (long i = 0; (size_t)i * o->chunk < o->max_bytes; i++) {
		struct fill_report r = { .chunk = i };
		long c[CDM_MAX_NODES], e;
		size_t qlen = o->chunk;
		char *p;

		if (ffd >= 0) {
			size_t done = 0;

			/* 1 MiB at a time, watching node 0's free memory */
			while (done < o->chunk) {
				size_t w = o->chunk - done < MiB ?
					   o->chunk - done : MiB;
				ssize_t n;

				if (o->stop_at_low) {
					long fr, lo;

					node_zone_free_low(0, o->stop_at_low == 1,
							   &fr, &lo);
					if (fr < lo) {
						stop = true;
						break;
					}
				}
				n = write(ffd, wbuf + done, w);
				if (n <= 0) {
					r.err = n < 0 ? errno : ENOSPC;
					report(pfd[1], &r);
					_exit(1);
				}
				done += n;
			}
			qlen = done & ~(PAGE_SZ - 1);
			if (!qlen) {	/* stopped before this chunk began */
				r.stopped_low = stop;
				report(pfd[1], &r);
				break;
			}
			p = mmap(NULL, qlen, PROT_READ, MAP_SHARED, ffd,
				 (off_t)i * o->chunk);
			if (p == MAP_FAILED)
				p = NULL;
		} else {
			p = o->thp ? map_anon_aligned(o->chunk, HPAGE_SZ) :
				     map_anon(o->chunk);
		}
		if (!p) {
			r.err = errno ? errno : ENOMEM;
			report(pfd[1], &r);
			_exit(1);
		}
		if (ffd >= 0) {
			/* map the page cache just written, to ask its node */
			for (size_t off = 0; off < qlen; off += PAGE_SZ)
				(void)((volatile char *)p)[off];
		}
		if (o->thp)
			madvise(p, o->chunk, MADV_HUGEPAGE);
		if (ffd < 0)
			touch_pages(p, o->chunk);
		r.pages = page_nodes(p, qlen, c, &e);
		if (r.pages < 0) {
			r.err = (int)-r.pages;
			report(pfd[1], &r);
			_exit(1);
		}
		for (int n = 0; n < 4; n++)
			r.nodes[n] = c[n];
		for (int n = 0; n < CDM_MAX_NODES; n++)
			if (c[n] && node_is_cdm(n))
				r.on_cdm += c[n];
		r.node0_free_kb = node_meminfo_kb(0, "MemFree");
		if (ffd >= 0)
			munmap(p, qlen);
		r.stopped_low = stop;
		report(pfd[1], &r);
		if (stop)
			break;
	}
	{
		struct fill_report r = { .chunk = -1 };

		report(pfd[1], &r);
	}
	if (o->keep)
		for (;;)
			pause();
	_exit(0);
}

void fill_collect(int rfd, struct fill_result *r)
{
	struct fill_report rep;

	memset(r, 0, sizeof(*r));
	r->first_cdm_chunk = -1;
	r->min_node0_free_kb = -1;
	while (read(rfd, &rep, sizeof(rep)) == sizeof(rep)) {
		if (rep.chunk == -1)
			break;
		if (rep.chunk == -2) {
			r->err = rep.err;
			break;
		}
		if (rep.err) {
			r->err = rep.err;
			continue;
		}
		r->chunks++;
		r->stopped_low |= rep.stopped_low;
		r->pages += rep.pages;
		r->on_cdm += rep.on_cdm;
		for (int n = 0; n < 4; n++)
			r->nodes[n] += rep.nodes[n];
		if (rep.on_cdm && r->first_cdm_chunk < 0) {
			r->first_cdm_chunk = rep.chunk;
			r->node0_free_at_first_cdm = rep.node0_free_kb;
		}
		if (r->min_node0_free_kb < 0 ||
		    rep.node0_free_kb < r->min_node0_free_kb)
			r->min_node0_free_kb = rep.node0_free_kb;
	}
}

int fill_run(const struct fill_opts *o, struct fill_result *r, int timeout_s)
{
	int rfd, st = 0;
	pid_t pid = fill_start(o, &rfd);

	if (pid < 0)
		return -errno;
	fill_collect(rfd, r);
	close(rfd);
	if (o->keep)
		kill(pid, SIGKILL);
	if (wait_child(pid, &st, timeout_s)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		r->status = st;
		return -ETIMEDOUT;
	}
	r->status = st;
	r->oom_killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !o->keep;
	return 0;
}

static void *watch_fn(void *arg)
{
	struct cdm_watch *w = arg;

	while (!w->stop) {
		for (int i = 0; i < w->n; i++) {
			long f = node_meminfo_kb(w->nodes[i], "MemFree");

			if (f >= 0 && f < w->min_free[i])
				w->min_free[i] = f;
		}
		{
			long f = node_meminfo_kb(0, "MemFree");

			if (f >= 0 && (w->min_node0_free < 0 ||
				       f < w->min_node0_free))
				w->min_node0_free = f;
		}
		usleep(5000);
	}
	return NULL;
}

void watch_start(struct cdm_watch *w)
{
	pthread_t t;

	memset(w, 0, sizeof(*w));
	w->n = cdm_mem_nodes(w->nodes, CDM_MAX_NODES);
	for (int i = 0; i < w->n; i++) {
		w->base_free[i] = node_meminfo_kb(w->nodes[i], "MemFree");
		w->min_free[i] = w->base_free[i];
	}
	w->min_node0_free = -1;
	pthread_create(&t, NULL, watch_fn, w);
	w->tid = (unsigned long)t;
}

void watch_stop(struct cdm_watch *w)
{
	w->stop = 1;
	pthread_join((pthread_t)w->tid, NULL);
}

long watch_max_drop(const struct cdm_watch *w)
{
	long m = 0;

	for (int i = 0; i < w->n; i++)
		if (w->base_free[i] - w->min_free[i] > m)
			m = w->base_free[i] - w->min_free[i];
	return m;
}

/* ---------------------------------------------------------------- modules */

int load_module(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = syscall(SYS_finit_module, fd, params ? params : "", 0);
	r = r ? -errno : 0;
	close(fd);
	return r;
}

int unload_module(const char *name)
{
	for (int i = 0; i < 100; i++) {
		if (!syscall(SYS_delete_module, name, O_NONBLOCK))
			return 0;
		if (errno != EAGAIN && errno != EBUSY)
			return -errno;
		usleep(50000);
	}
	return -EBUSY;
}

bool module_loaded(const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/module/%s/initstate", name);
	return path_exists(p);
}

int ensure_debugfs(void)
{
	if (path_exists("/sys/kernel/debug/.") &&
	    path_exists("/sys/kernel/debug/bdi"))
		return 0;
	if (mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) &&
	    errno != EBUSY)
		return -errno;
	return 0;
}

int test_kmod_ready(void)
{
	int r = ensure_debugfs();

	if (r)
		return r;
	if (path_exists(TEST_DBG "/alloc"))
		return 0;
	r = load_module(TEST_KO, "");
	if (r && r != -EEXIST)
		return r;
	return path_exists(TEST_DBG "/alloc") ? 0 : -ENOENT;
}

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

int kmsg_reports(int fd, char *first, size_t len)
{
	static const char *const pat[] = {
		"WARNING:", "BUG:", "Oops", "Call Trace", "lockdep", "KASAN",
		"UBSAN", "kernel BUG", "general protection", "possible recursive",
		"circular locking", "page allocation failure",
	};
	char rec[8192];
	bool in_oom = false;
	int n = 0;

	if (first && len)
		first[0] = 0;
	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t r = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (r < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[r] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		/* an OOM kill the test provoked dumps a stack: not a report */
		if (strstr(msg, "invoked oom-killer")) {
			in_oom = true;
			continue;
		}
		if (in_oom) {
			if (strstr(msg, "Out of memory") || strstr(msg, "oom-kill:"))
				in_oom = false;
			continue;
		}
		for (size_t i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
			if (strstr(msg, pat[i])) {
				if (!n && first)
					snprintf(first, len, "%s", msg);
				n++;
				break;
			}
		}
	}
	return n;
}

/* ---------------------------------------------------------------- capi_sim */

int capi_attr(const struct capi_dev *d, const char *attr, char *buf, size_t len)
{
	return read_strf(buf, len, "%s/%s", d->path, attr);
}

int capi_write(const struct capi_dev *d, const char *attr, const char *val)
{
	return write_strf(val, "%s/%s", d->path, attr);
}

int capi_refresh(struct capi_dev *d)
{
	char buf[64];
	int r;

	r = capi_attr(d, "node", buf, sizeof(buf));
	if (r < 0)
		return r;
	d->node = atoi(buf);
	r = capi_attr(d, "size", buf, sizeof(buf));
	if (r < 0)
		return r;
	d->size = strtoull(buf, NULL, 0);
	r = capi_attr(d, "state", d->state, sizeof(d->state));
	return r < 0 ? r : 0;
}

long capi_stat(const struct capi_dev *d, const char *key)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/stats", d->path);
	return kv_file(path, key, false);
}

int capi_devs(struct capi_dev *d, int max)
{
	DIR *dir = opendir(CAPI_DRV);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir)) && n < max) {
		if (!strchr(e->d_name, ':') || e->d_name[0] == '.' ||
		    strlen(e->d_name) >= sizeof(d[n].bdf))
			continue;
		memcpy(d[n].bdf, e->d_name, strlen(e->d_name) + 1);
		snprintf(d[n].path, sizeof(d[n].path),
			 "/sys/bus/pci/devices/%s", e->d_name);
		if (capi_refresh(&d[n]))
			continue;
		n++;
	}
	closedir(dir);
	/* largest first, then by BDF */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (d[j].size > d[i].size ||
			    (d[j].size == d[i].size &&
			     strcmp(d[j].bdf, d[i].bdf) < 0)) {
				struct capi_dev t = d[i];

				d[i] = d[j];
				d[j] = t;
			}
	return n;
}

int capi_info(int fd, struct capi_sim_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, CAPI_SIM_IOC_INFO, info) ? -errno : 0;
}

int capi_open_node(int node)
{
	DIR *dir = opendir("/dev");
	struct dirent *e;
	int ret = -ENODEV;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		struct capi_sim_info info;
		char p[300];
		int fd;

		if (strncmp(e->d_name, "capi_sim", 8))
			continue;
		snprintf(p, sizeof(p), "/dev/%s", e->d_name);
		fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!capi_info(fd, &info) && info.node == node) {
			ret = fd;
			break;
		}
		close(fd);
	}
	closedir(dir);
	return ret;
}

int capi_evac_ioctl(int fd, unsigned int timeout_ms,
		    unsigned long long *migrated, unsigned long long *unmoved)
{
	struct capi_sim_evacuate ev = { .timeout_ms = timeout_ms };
	int r = ioctl(fd, CAPI_SIM_IOC_EVACUATE, &ev) ? -errno : 0;

	if (migrated)
		*migrated = ev.pages_migrated;
	if (unmoved)
		*unmoved = ev.pages_unmoved;
	return r;
}

int capi_online_ioctl(int fd)
{
	return ioctl(fd, CAPI_SIM_IOC_ONLINE) ? -errno : 0;
}

int capi_run(int fd, struct capi_sim_run *run)
{
	return ioctl(fd, CAPI_SIM_IOC_RUN, run) ? -errno : 0;
}

int capi_wait_state(struct capi_dev *d, const char *state, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	do {
		if (!capi_refresh(d) && !strcmp(d->state, state))
			return 0;
		usleep(20000);
	} while (now_ms() < end);
	return -ETIMEDOUT;
}

int wait_node_memory(int nid, bool want, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	do {
		if (node_has_memory(nid) == want)
			return 0;
		usleep(20000);
	} while (now_ms() < end);
	return -ETIMEDOUT;
}

bool mems_allowed_has(int nid)
{
	FILE *f = fopen("/proc/self/status", "re");
	char l[512];
	bool has = false;

	while (f && fgets(l, sizeof(l), f)) {
		if (!strncmp(l, "Mems_allowed_list:", 18)) {
			int n[CDM_MAX_NODES];
			int c = parse_nodelist(l + 18, n, CDM_MAX_NODES);

			for (int i = 0; i < c; i++)
				has |= n[i] == nid;
		}
	}
	if (f)
		fclose(f);
	return has;
}

int wait_node_usable(int nid, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	do {
		if (node_has_memory(nid) && mems_allowed_has(nid))
			return 0;
		usleep(20000);
	} while (now_ms() < end);
	return -ETIMEDOUT;
}

static bool is_ivshmem(const char *bdf)
{
	char v[32], d[32];

	if (read_strf(v, sizeof(v), "/sys/bus/pci/devices/%s/vendor", bdf) < 0 ||
	    read_strf(d, sizeof(d), "/sys/bus/pci/devices/%s/device", bdf) < 0)
		return false;
	return !strcmp(v, "0x1af4") && !strcmp(d, "0x1110");
}

int capi_restore_all(void)
{
	struct capi_dev d[CDM_MAX_DEVS];
	DIR *dir;
	struct dirent *e;
	int n, online = 0;

	if (!module_loaded("capi_sim"))
		load_module(CAPI_KO, "");
	dir = opendir("/sys/bus/pci/devices");
	while (dir && (e = readdir(dir))) {
		char p[512];

		if (e->d_name[0] == '.' || !is_ivshmem(e->d_name))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver",
			 e->d_name);
		if (!path_exists(p))
			write_str(CAPI_DRV "/bind", e->d_name);
	}
	if (dir)
		closedir(dir);
	n = capi_devs(d, CDM_MAX_DEVS);
	for (int i = 0; i < n; i++) {
		if (!strcmp(d[i].state, "evacuating"))
			capi_wait_state(&d[i], "offline", 60000);
		capi_refresh(&d[i]);
		/* "failed": the last evacuation failed, memory is online */
		if (!strcmp(d[i].state, "failed") &&
		    !wait_node_usable(d[i].node, 10000)) {
			online++;
			continue;
		}
		if (strcmp(d[i].state, "online"))
			capi_write(&d[i], "online", "1");
		if (!capi_wait_state(&d[i], "online", 30000) &&
		    !wait_node_usable(d[i].node, 10000))
			online++;
	}
	return online;
}

/* ---------------------------------------------------------------- crc32c */

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	const unsigned char *p = buf;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82F63B78 : c >> 1;
			table[i] = c;
		}
	}
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* ---------------------------------------------------------------- OOM */

int oom_quiet_begin(struct oom_quiet *q)
{
	char buf[64];

	q->saved = -1;
	q->kfd = kmsg_open();
	(void)buf;
	return 0;
}

int oom_quiet_end(struct oom_quiet *q, char *first, size_t len)
{
	int n = kmsg_reports(q->kfd, first, len);

	if (q->kfd >= 0)
		close(q->kfd);
	q->kfd = -1;
	return n;
}

/* ---------------------------------------------------------------- writer */

static inline uint64_t wval(uint64_t gen, size_t i)
{
	return (gen << 40) ^ (i * 0x9e3779b97f4a7c15ULL);
}

/*
 * Write generation g over the buffer page by page, re-reading each page
 * right after writing it; before overwriting a page, check it still holds
 * generation g-1. Any difference is corruption (only this writer writes).
 */
void writer_loop(struct writer *w)
{
	size_t wpp = PAGE_SZ / 8;

	for (uint64_t gen = 1; !w->stop; gen++) {
		for (size_t pg = 0; pg < w->words / wpp; pg++) {
			uint64_t *q = w->buf + pg * wpp;

			for (size_t i = 0; i < wpp; i++) {
				size_t k = pg * wpp + i;

				if (gen > 1 && q[i] != wval(gen - 1, k)) {
					if (!w->errors++)
						w->first_bad = k;
				}
				q[i] = wval(gen, k);
			}
			for (size_t i = 0; i < wpp; i++)
				if (q[i] != wval(gen, pg * wpp + i) &&
				    !w->errors++)
					w->first_bad = pg * wpp + i;
		}
		w->passes++;
	}
}

