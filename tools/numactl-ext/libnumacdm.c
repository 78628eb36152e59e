// SPDX-License-Identifier: LGPL-2.1-only
/*
 * libnumacdm - coherent device memory nodes for libnuma users.
 * See numacdm.h for the interface.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <numa.h>
#include <numaif.h>

#include "numacdm.h"
#include "sysfs.h"

#define NODE_DIR	"/sys/devices/system/node"
#define CAPI_SIM_DIR	"/sys/bus/pci/drivers/capi_sim"

const char *numacdm_sysfs_root(void)
{
	/* A test hook: never honoured in a set-uid or file-capability program. */
	const char *r = secure_getenv("CDM_SYSFS_ROOT");

	return r ? r : "";
}

int numacdm_available(void)
{
	char buf[16];

	if (cdm_sysfs_read(buf, sizeof(buf), NODE_DIR "/has_coherent_device") >= 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* Walk a nodelist; calls fn(node) for each node; -1 + EINVAL on bad syntax. */
static int walk_nodelist(const char *s, int (*fn)(int, void *), void *arg)
{
	while (isspace((unsigned char)*s))
		s++;
	while (*s && !isspace((unsigned char)*s)) {
		long a, b;
		char *end;

		if (!isdigit((unsigned char)*s))
			goto bad;
		a = strtol(s, &end, 10);
		b = a;
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				goto bad;
			b = strtol(s, &end, 10);
			s = end;
		}
		if (a < 0 || b < a || b > 65535)
			goto bad;
		for (long i = a; i <= b; i++)
			if (fn((int)i, arg))
				return -1;
		if (*s == ',')
			s++;
		else if (*s && !isspace((unsigned char)*s))
			goto bad;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s)
		goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

static int track_max(int n, void *arg)
{
	int *max = arg;

	if (n > *max)
		*max = n;
	return 0;
}

static int set_bit_cb(int n, void *arg)
{
	numa_bitmask_setbit(arg, (unsigned int)n);
	return 0;
}

struct bitmask *numacdm_parse_nodelist(const char *list)
{
	struct bitmask *bmp;
	int max = -1, bits;

	if (!list) {
		errno = EINVAL;
		return NULL;
	}
	if (walk_nodelist(list, track_max, &max))
		return NULL;
	bits = numa_num_possible_nodes();
	if (bits < max + 1)
		bits = max + 1;
	if (bits < 1)
		bits = 1;
	bmp = numa_bitmask_alloc((unsigned int)bits);
	if (!bmp) {
		errno = ENOMEM;
		return NULL;
	}
	walk_nodelist(list, set_bit_cb, bmp);
	return bmp;
}

/* Read a nodelist file; a missing file reads as empty if @missing_ok. */
static struct bitmask *read_nodelist(const char *file, int missing_ok)
{
	char buf[4096];

	if (cdm_sysfs_read(buf, sizeof(buf), NODE_DIR "/%s", file) < 0) {
		if (!(missing_ok && errno == ENOENT))
			return NULL;
		buf[0] = '\0';
	}
	return numacdm_parse_nodelist(buf);
}

struct bitmask *numacdm_nodes(void)
{
	return read_nodelist("has_coherent_device", 1);
}

struct bitmask *numacdm_sysram_nodes(void)
{
	struct bitmask *mem, *cdm, *out;

	mem = read_nodelist("has_memory", 0);
	if (!mem && errno == ENOENT)
		mem = read_nodelist("online", 0);
	if (!mem)
		return NULL;
	cdm = numacdm_nodes();
	if (!cdm) {
		numa_bitmask_free(mem);
		return NULL;
	}
	out = numa_bitmask_alloc(mem->size);
	if (!out) {
		numa_bitmask_free(mem);
		numa_bitmask_free(cdm);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int i = 0; i < mem->size; i++)
		if (numa_bitmask_isbitset(mem, i) &&
		    !(i < cdm->size && numa_bitmask_isbitset(cdm, i)))
			numa_bitmask_setbit(out, i);
	numa_bitmask_free(mem);
	numa_bitmask_free(cdm);
	return out;
}

int numacdm_node_is_cdm(int node)
{
	struct bitmask *cdm;
	int ret;

	if (node < 0) {
		errno = EINVAL;
		return -1;
	}
	cdm = numacdm_nodes();
	if (!cdm)
		return -1;
	ret = (unsigned int)node < cdm->size &&
	      numa_bitmask_isbitset(cdm, (unsigned int)node);
	numa_bitmask_free(cdm);
	return ret;
}

static int read_node_file(int *node, const char *fmt, const char *name)
{
	char buf[64];
	char *end;
	long v;

	if (cdm_sysfs_read(buf, sizeof(buf), fmt, name) < 0)
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v < 0 || v > INT_MAX) {
		errno = ENODEV;	/* the device has no node (yet) */
		return -1;
	}
	*node = (int)v;
	return 0;
}

static int valid_component(const char *s)
{
	return *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

int numacdm_node_of_device(const char *name)
{
	char bdf[PATH_MAX], path[PATH_MAX], buf[128];
	struct bitmask *cdm;
	DIR *d;
	struct dirent *de;
	int node = -1;

	if (!name || !*name) {
		errno = EINVAL;
		return -1;
	}
	if (!strncmp(name, "/dev/", 5))
		name += 5;
	if (!valid_component(name) || strlen(name) > 64) {
		errno = ENODEV;
		return -1;
	}

	/* A PCI address: the driver's node file. */
	if (strchr(name, ':')) {
		if (strchr(name, ':') == strrchr(name, ':'))
			snprintf(bdf, sizeof(bdf), "0000:%s", name);
		else
			snprintf(bdf, sizeof(bdf), "%s", name);
		if (!read_node_file(&node, CAPI_SIM_DIR "/%s/node", bdf))
			return node;
		if (errno != ENOENT)
			return -1;
	} else {
		/* A misc device name: /sys/class/misc/NAME/device/node. */
		if (!read_node_file(&node, "/sys/class/misc/%s/device/node",
				    name))
			return node;
		/* ... or capi_sim/<BDF>/misc/NAME. */
		d = cdm_sysfs_path(path, sizeof(path), CAPI_SIM_DIR) ? NULL :
		    opendir(path);
		while (d && (de = readdir(d))) {
			if (!strchr(de->d_name, ':'))
				continue;
			if (cdm_sysfs_path(path, sizeof(path), CAPI_SIM_DIR
					   "/%s/misc/%s", de->d_name, name) ||
			    access(path, F_OK))
				continue;
			snprintf(bdf, sizeof(bdf), "%s", de->d_name);
			closedir(d);
			d = NULL;
			if (!read_node_file(&node, CAPI_SIM_DIR "/%s/node",
					    bdf))
				return node;
			return -1;
		}
		if (d)
			closedir(d);
		snprintf(bdf, sizeof(bdf), "%s", name);
	}

	/* Any other driver: the node whose cdm/owner names the device. */
	cdm = numacdm_nodes();
	if (!cdm)
		return -1;
	for (unsigned int i = 0; i < cdm->size; i++) {
		if (!numa_bitmask_isbitset(cdm, i))
			continue;
		if (cdm_sysfs_read(buf, sizeof(buf),
				   NODE_DIR "/node%u/cdm/owner", i) < 0)
			continue;
		if (!strcmp(buf, bdf) || !strcmp(buf, name)) {
			numa_bitmask_free(cdm);
			return (int)i;
		}
	}
	numa_bitmask_free(cdm);
	errno = ENODEV;
	return -1;
}

const char *numacdm_evac_state_name(enum numacdm_evac_state s)
{
	switch (s) {
	case NUMACDM_EVAC_IDLE:
		return "idle";
	case NUMACDM_EVAC_RUNNING:
		return "running";
	case NUMACDM_EVAC_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

static void parse_meminfo(struct numacdm_node_info *info, const char *buf)
{
	const char *p = buf;

	/* "Node 1 MemTotal:       524288 kB" */
	while (*p) {
		const char *eol = strchr(p, '\n');
		char key[32];
		unsigned long long kb;
		int node;

		if (sscanf(p, "Node %d %31[^:]: %llu", &node, key, &kb) == 3) {
			if (!strcmp(key, "MemTotal"))
				info->mem_total = kb * 1024;
			else if (!strcmp(key, "MemFree"))
				info->mem_free = kb * 1024;
			else if (!strcmp(key, "MemUsed"))
				info->mem_used = kb * 1024;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
}

/* Fill the whole structure of this version; the caller gets what fits. */
static int node_info(int node, struct numacdm_node_info *info)
{
	char buf[8192];
	uint64_t v;
	int r;

	r = numacdm_node_is_cdm(node);
	if (r < 0)
		return -1;
	if (!r) {
		errno = EINVAL;
		return -1;
	}
	info->node = node;
	info->emergency_fallback = -1;
	snprintf(info->owner, sizeof(info->owner), "none");

	if (cdm_sysfs_read(buf, sizeof(buf), NODE_DIR "/node%d/cdm/owner",
			   node) < 0) {
		if (errno != ENOENT)
			return -1;
		return 0;	/* node has no memory: no nodeN/ */
	}
	/*
	 * A driver's node keeps nodeN/ while evacuated (memory-less, until
	 * its driver lets go): the node has memory when has_memory says so.
	 */
	{
		struct bitmask *mem = read_nodelist("has_memory", 0);

		info->present = !mem || (node < (int)mem->size &&
					 numa_bitmask_isbitset(mem, node));
		if (mem)
			numa_bitmask_free(mem);
	}
	buf[sizeof(info->owner) - 1] = '\0';
	memcpy(info->owner, buf, strlen(buf) + 1);
	if (!cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/emergency_fallback",
				node))
		info->emergency_fallback = v != 0;
	if (cdm_sysfs_read(buf, sizeof(buf),
			   NODE_DIR "/node%d/cdm/evacuation_state", node) >= 0) {
		if (!strcmp(buf, "idle"))
			info->evac_state = NUMACDM_EVAC_IDLE;
		else if (!strcmp(buf, "running"))
			info->evac_state = NUMACDM_EVAC_RUNNING;
		else if (!strcmp(buf, "failed"))
			info->evac_state = NUMACDM_EVAC_FAILED;
	}
	if (!cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/pages_migrated",
				node))
		info->pages_migrated = v;
	if (!cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/pages_remaining",
				node))
		info->pages_remaining = v;
	if (cdm_sysfs_read(buf, sizeof(buf), NODE_DIR "/node%d/meminfo",
			   node) >= 0)
		parse_meminfo(info, buf);
	if (!info->mem_used && info->mem_total >= info->mem_free)
		info->mem_used = info->mem_total - info->mem_free;
	return 0;
}

int numacdm_node_info(int node, struct numacdm_node_info *info)
{
	struct numacdm_node_info full;
	uint32_t size;

	if (!info || info->size < NUMACDM_NODE_INFO_SIZE_1) {
		errno = EINVAL;
		return -1;
	}
	size = info->size < sizeof(full) ? info->size : sizeof(full);
	memset(&full, 0, sizeof(full));
	if (node_info(node, &full))
		return -1;
	full.size = size;
	memcpy(info, &full, size);
	return 0;
}

void *numacdm_alloc(size_t size, int node)
{
	struct bitmask *mask;
	void *p;
	int r, e;

	if (!size || node < 0) {
		errno = EINVAL;
		return NULL;
	}
	r = numacdm_node_is_cdm(node);
	if (r <= 0) {
		if (!r)
			errno = EINVAL;
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	mask = numa_bitmask_alloc((unsigned int)node + 1);
	if (!mask) {
		munmap(p, size);
		errno = ENOMEM;
		return NULL;
	}
	numa_bitmask_setbit(mask, (unsigned int)node);
	/* maxnode is the number of bits the kernel reads: size + 1. */
	if (mbind(p, size, MPOL_BIND, mask->maskp, mask->size + 1, 0)) {
		e = errno;
		numa_bitmask_free(mask);
		munmap(p, size);
		errno = e;
		return NULL;
	}
	numa_bitmask_free(mask);
	return p;
}

int numacdm_free(void *ptr, size_t size)
{
	if (!ptr || !size) {
		errno = EINVAL;
		return -1;
	}
	return munmap(ptr, size);
}
