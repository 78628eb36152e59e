// SPDX-License-Identifier: GPL-2.0
/*
 * cdm selftest library: page placement (move_pages queries, policies, mappings), data
 * patterns, checksums and the concurrent writer.
 * See cdm_pages.h.
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

uint64_t pagemap_pfn(int pagemap_fd, const void *addr)
{
	off_t off = (off_t)((uintptr_t)addr / PAGE_SZ * sizeof(uint64_t));
	uint64_t e;

	if (pread(pagemap_fd, &e, sizeof(e), off) != sizeof(e) ||
	    !(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
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
