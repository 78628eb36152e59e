// SPDX-License-Identifier: GPL-2.0
/*
 * cdm selftest library: sysfs and procfs files, node lists, node and zone meminfo.
 * See cdm_sysfs.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

bool nodelist_has(const char *s, int node)
{
	int nodes[CDM_MAX_NODES], n = parse_nodelist(s, nodes, CDM_MAX_NODES);

	for (int i = 0; i < n; i++)
		if (nodes[i] == node)
			return true;
	return false;
}

uint64_t node_state_mask(const char *state)
{
	int nodes[CDM_MAX_NODES], n = nodelist_file(state, nodes, CDM_MAX_NODES);
	uint64_t mask = 0;

	for (int i = 0; i < n; i++)
		if (nodes[i] >= 0 && nodes[i] < 64)
			mask |= 1ULL << nodes[i];
	return mask;
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

long kv_file(const char *path, const char *key, bool nodefmt)
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

long node_cdm_long(int nid, const char *name)
{
	char buf[64];

	if (read_strf(buf, sizeof(buf), NODE_SYS "/node%d/cdm/%s", nid,
		      name) < 0)
		return LONG_MIN;
	return atol(buf);
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

/*
 * Sum over node @nid's zones of the /proc/zoneinfo field @key ("min",
 * "low", "high", or "count:" of the per-CPU lists), in kB.
 */
static long node_zoneinfo_sum_kb(int nid, const char *key)
{
	FILE *f = fopen("/proc/zoneinfo", "re");
	char line[256], k[32];
	long sum = 0, v;
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone", &n) == 1)
			continue;
		if (n == nid && sscanf(line, " %31s %ld", k, &v) == 2 &&
		    !strcmp(k, key))
			sum += v;
	}
	fclose(f);
	return sum * (PAGE_SZ / KiB);
}

long node_watermark_kb(int nid, const char *wm)
{
	return node_zoneinfo_sum_kb(nid, wm);
}

/* kB of free pages waiting on node @nid's per-CPU lists, which MemFree leaves out. */
long node_pcp_free_kb(int nid)
{
	return node_zoneinfo_sum_kb(nid, "count:");
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

int node_blocks(int nid, int *ids, int max)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), NODE_SYS "/node%d", nid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max)
		if (!strncmp(de->d_name, "memory", 6) &&
		    de->d_name[6] >= '0' && de->d_name[6] <= '9')
			ids[n++] = atoi(de->d_name + 6);
	closedir(d);
	return n;
}

int block_state(int id, char *buf, size_t len)
{
	char path[128];
	int r;

	snprintf(path, sizeof(path), MEMSYS "/memory%d/state", id);
	r = read_str(path, buf, len);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}
