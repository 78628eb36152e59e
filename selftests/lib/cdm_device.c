// SPDX-License-Identifier: GPL-2.0
/*
 * cdm selftest library: the capi_sim device: sysfs attributes, ioctls, states.
 * See cdm_device.h.
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

int memory_blocks_movable(int nid)
{
	char path[160], z[64];
	int n = 0;

	for (int b = 0; b < 4096; b++) {
		snprintf(path, sizeof(path), MEMSYS "/memory%d/node%d", b, nid);
		if (!path_exists(path))
			continue;
		snprintf(path, sizeof(path), MEMSYS "/memory%d/valid_zones", b);
		if (read_str(path, z, sizeof(z)) > 0 && !strcmp(z, "Movable"))
			n++;
	}
	return n;
}

/*
 * Does memory block @b hold a reserved page (/proc/kpageflags KPF_RESERVED)?
 * memblock allocates top-down at boot, also inside movablecore's range (a
 * KASAN kernel puts its shadow there): such a block can never be offlined,
 * and trying dumps the page ("page dumped because: unmovable page").
 */
bool memory_block_has_reserved(int b)
{
	enum { KPF_RESERVED = 32 };
	uint64_t flags[512];
	char buf[64];
	long bsz, first, n;
	bool res = false;
	int fd;

	if (read_str(MEMSYS "/block_size_bytes", buf, sizeof(buf)) < 0)
		return true;
	bsz = strtol(buf, NULL, 16);
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return false;	/* cannot tell: let offlining decide */
	first = b * (bsz / PAGE_SZ);
	for (long pfn = first; !res && pfn < first + bsz / (long)PAGE_SZ; pfn += n) {
		ssize_t got = pread(fd, flags, sizeof(flags), pfn * 8);

		if (got <= 0)
			break;
		n = got / 8;
		for (long i = 0; i < n; i++)
			if (flags[i] & (1ULL << KPF_RESERVED))
				res = true;
	}
	close(fd);
	return res;
}

/* write "offline" in a child with an alarm: offlining may never finish */
int memory_block_offline(int b, int timeout_s)
{
	char path[128];
	pid_t c;
	int st;

	snprintf(path, sizeof(path), MEMSYS "/memory%d/state", b);
	c = fork_kid();
	if (!c) {
		int r;

		alarm(timeout_s);
		r = write_str(path, "offline");
		_exit(r ? -r : 0);
	}
	if (wait_child(c, &st, timeout_s + 10)) {
		kill(c, SIGKILL);
		waitpid(c, &st, 0);
		return -ETIMEDOUT;
	}
	if (WIFSIGNALED(st))
		return -ETIMEDOUT;
	return -WEXITSTATUS(st);
}
