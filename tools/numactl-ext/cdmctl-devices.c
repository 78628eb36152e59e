// SPDX-License-Identifier: GPL-2.0
/* cdmctl: the devices that own CDM nodes (capi_sim and others) and the nodes. */
#include "cdmctl.h"

/* -------------------------------------------------------------- devices */

struct dev devs[MAX_DEVS];
int ndevs;

static int cmp_dev(const void *a, const void *b)
{
	return strcmp(((const struct dev *)a)->bdf,
		      ((const struct dev *)b)->bdf);
}

void scan_devices(void)
{
	char path[PATH_MAX], buf[64];
	struct dirent *de;
	DIR *d;

	ndevs = 0;
	if (cdm_sysfs_path(path, sizeof(path), CAPI_SIM_DIR))
		return;
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && ndevs < MAX_DEVS) {
		struct dev *v = &devs[ndevs];
		DIR *m;

		if (!strchr(de->d_name, ':') || strlen(de->d_name) >= sizeof(v->bdf))
			continue;
		memset(v, 0, sizeof(*v));
		memcpy(v->bdf, de->d_name, strlen(de->d_name) + 1);
		v->node = -1;
		if (cdm_sysfs_read(buf, sizeof(buf), CAPI_SIM_DIR "/%s/node",
				   v->bdf) > 0)
			v->node = atoi(buf);
		cdm_sysfs_read_u64(&v->size, CAPI_SIM_DIR "/%s/size", v->bdf);
		if (cdm_sysfs_read(v->state, sizeof(v->state),
				   CAPI_SIM_DIR "/%s/state", v->bdf) < 0)
			snprintf(v->state, sizeof(v->state), "unknown");
		if (!cdm_sysfs_path(path, sizeof(path), CAPI_SIM_DIR "/%s/misc",
				    v->bdf) && (m = opendir(path))) {
			struct dirent *me;

			while ((me = readdir(m))) {
				if (me->d_name[0] == '.' ||
				    strlen(me->d_name) >= sizeof(v->misc))
					continue;
				memcpy(v->misc, me->d_name,
				       strlen(me->d_name) + 1);
				break;
			}
			closedir(m);
		}
		ndevs++;
	}
	closedir(d);
	qsort(devs, (size_t)ndevs, sizeof(devs[0]), cmp_dev);
}

struct dev *dev_of_node(int node, const char *owner)
{
	for (int i = 0; i < ndevs; i++)
		if (devs[i].node == node)
			return &devs[i];
	for (int i = 0; owner && i < ndevs; i++)
		if (!strcmp(devs[i].bdf, owner))
			return &devs[i];
	return NULL;
}

static struct dev *dev_by_name(const char *name)
{
	char full[80];

	if (!strncmp(name, "/dev/", 5))
		name += 5;
	snprintf(full, sizeof(full), "0000:%s", name);
	for (int i = 0; i < ndevs; i++)
		if (!strcmp(devs[i].bdf, name) || !strcmp(devs[i].misc, name) ||
		    !strcmp(devs[i].bdf, full))
			return &devs[i];
	return NULL;
}

int is_number(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/*
 * Resolve a <dev|node> argument to a CDM node and, if a capi_sim device owns
 * it, that device.  Prints the error and returns an exit code on failure.
 */
int resolve(const char *arg, int *node, struct dev **dev)
{
	struct numacdm_node_info info = NUMACDM_NODE_INFO_INIT;
	int r;

	scan_devices();
	*dev = NULL;
	if (is_number(arg)) {
		long n = strtol(arg, NULL, 10);

		r = n > INT_MAX ? 0 : numacdm_node_is_cdm((int)n);
		if (r < 0) {
			err("cannot read CDM nodes: %s", strerror(errno));
			return EX_FAIL;
		}
		if (!r) {
			err("node %s is not a coherent device memory node", arg);
			return EX_NODEV;
		}
		*node = (int)n;
		if (!numacdm_node_info(*node, &info))
			*dev = dev_of_node(*node, info.owner);
		else
			*dev = dev_of_node(*node, NULL);
		return EX_OK;
	}
	*node = numacdm_node_of_device(arg);
	*dev = dev_by_name(arg);
	if (*node < 0 && !*dev) {
		err("%s: no such CDM device", arg);
		return EX_NODEV;
	}
	if (*node < 0)
		*node = (*dev)->node;
	if (*node < 0) {
		err("%s: device has no node", arg);
		return EX_NODEV;
	}
	return EX_OK;
}

/* ---------------------------------------------------------------- nodes */

/*
 * The memory blocks of @node (its nodeN/memoryM entries): how many there
 * are and how many of them are online.  0 and 0 when the node has none
 * (a driver's evacuated node) or no directory.
 */
void node_memblocks(int node, int *online, int *total)
{
	char path[PATH_MAX], state[32];
	struct dirent *de;
	DIR *d;

	*online = *total = 0;
	if (cdm_sysfs_path(path, sizeof(path), NODE_DIR "/node%d", node) ||
	    !(d = opendir(path)))
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "memory", 6) || !is_number(de->d_name + 6))
			continue;
		(*total)++;
		if (cdm_sysfs_read(state, sizeof(state), NODE_DIR "/node%d/%s/state",
				   node, de->d_name) > 0 && !strcmp(state, "online"))
			(*online)++;
	}
	closedir(d);
}

/* dist[i] = distance from @node to node i, -1 if unknown. */
void read_distances(int node, int *dist)
{
	char buf[4096], on[1024];
	struct bitmask *online;
	char *p, *end;
	unsigned int i;

	for (i = 0; i < MAX_NODES; i++)
		dist[i] = -1;
	if (cdm_sysfs_read(on, sizeof(on), NODE_DIR "/online") < 0)
		return;
	online = numacdm_parse_nodelist(on);
	if (!online)
		return;
	if (cdm_sysfs_read(buf, sizeof(buf), NODE_DIR "/node%d/distance",
			   node) < 0) {
		numa_bitmask_free(online);
		return;
	}
	/* The file has one entry per online node, in node id order. */
	p = buf;
	for (i = 0; i < online->size && i < MAX_NODES; i++) {
		long v;

		if (!numa_bitmask_isbitset(online, i))
			continue;
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		dist[i] = (int)v;
		p = end;
	}
	numa_bitmask_free(online);
}

const char *human(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
	return buf;
}
