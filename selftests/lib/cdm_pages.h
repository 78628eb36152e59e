/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cdm selftest library: page placement, data patterns, checksums, the
 * concurrent writer.
 */
#ifndef CDM_PAGES_H
#define CDM_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef MPOL_WEIGHTED_INTERLEAVE
#define MPOL_WEIGHTED_INTERLEAVE 6
#endif

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

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
/*
 * PFN of the page mapped at @addr, read from @pagemap_fd (an open
 * /proc/self/pagemap; PFNs show to root only); 0 when not present.
 */
uint64_t pagemap_pfn(int pagemap_fd, const void *addr);

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
