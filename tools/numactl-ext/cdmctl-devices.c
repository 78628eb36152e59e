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
	/* a name too long for one is no PCI address */
	if (snprintf(full, sizeof(full), "0000:%s", name) >= (int)sizeof(full))
		full[0] = '\0';
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

/* Append @node to the @n targets at *@t unless it is there already. */
static int add_target(struct target **t, int *n, int node, struct dev *dev)
{
	struct target *nt;

	for (int i = 0; i < *n; i++)
		if ((*t)[i].node == node)
			return EX_OK;
	nt = realloc(*t, (size_t)(*n + 1) * sizeof(**t));
	if (!nt) {
		err("out of memory");
		return EX_FAIL;
	}
	*t = nt;
	nt[*n].node = node;
	nt[*n].dev = dev;
	(*n)++;
	return EX_OK;
}

/* CDM node @node (@arg: how the user named it) as a target. */
static int add_node(struct target **t, int *n, long node, const char *arg)
{
	struct numacdm_node_info info = NUMACDM_NODE_INFO_INIT;
	int r = node > INT_MAX ? 0 : numacdm_node_is_cdm((int)node);

	if (r < 0) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	if (!r) {
		err("node %s is not a coherent device memory node", arg);
		return EX_NODEV;
	}
	return add_target(t, n, (int)node,
			  dev_of_node((int)node, numacdm_node_info((int)node, &info) ?
					    NULL : info.owner));
}

/* One element of a <dev|node> list: "all", "N", "N-M" or a device. */
static int add_element(struct target **t, int *n, const char *e)
{
	struct bitmask *m;
	struct dev *dev;
	char num[16];
	int node, r = EX_OK;

	if (!strcmp(e, "all") || (e[strspn(e, "0123456789-")] == '\0' &&
				  strchr(e, '-'))) {
		m = strcmp(e, "all") ? numacdm_parse_nodelist(e) : numacdm_nodes();
		if (!m && errno == EINVAL) {
			err("'%s' is not a node range (N-M)", e);
			return EX_USAGE;
		}
		if (!m) {
			err("cannot read CDM nodes: %s", strerror(errno));
			return EX_FAIL;
		}
		for (unsigned int i = 0; !r && i < m->size; i++) {
			if (!numa_bitmask_isbitset(m, i))
				continue;
			snprintf(num, sizeof(num), "%u", i);
			r = add_node(t, n, i, num);
		}
		numa_bitmask_free(m);
		return r;
	}
	if (is_number(e))
		return add_node(t, n, strlen(e) > 9 ? LONG_MAX : strtol(e, NULL, 10),
				e);
	node = numacdm_node_of_device(e);
	dev = dev_by_name(e);
	if (node < 0 && !dev) {
		err("%s: no such CDM device", e);
		return EX_NODEV;
	}
	if (node < 0)
		node = dev->node;
	if (node < 0) {
		err("%s: device has no node", e);
		return EX_NODEV;
	}
	return add_target(t, n, node, dev);
}

/*
 * Resolve a <dev|node> list - comma-separated node ids ("2"), node ranges
 * ("1-3"), devices ("capi_sim0", "0000:00:03.0") and "all" (every CDM
 * node) - to CDM nodes and, where a capi_sim device owns one, that device.
 * The targets are in the order given, each once.  Every element is checked
 * before any command acts: on failure prints the error, frees nothing the
 * caller has to, and returns an exit code.
 */
int resolve_targets(const char *arg, struct target **t, int *n)
{
	const char *e = arg;
	int r = EX_OK;

	*t = NULL;
	*n = 0;
	scan_devices();
	while (!r) {
		size_t len = strcspn(e, ",");
		char elem[256];

		if (!len || len >= sizeof(elem)) {
			err("'%s': %s element in the node list", arg,
			    len ? "an overlong" : "an empty");
			r = EX_USAGE;
			break;
		}
		memcpy(elem, e, len);
		elem[len] = '\0';
		r = add_element(t, n, elem);
		if (!e[len])
			break;
		e += len + 1;
	}
	if (!r && !*n) {
		err("'%s': there is no coherent device memory node", arg);
		r = EX_NODEV;
	}
	if (r) {
		free(*t);
		*t = NULL;
		*n = 0;
	}
	return r;
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
