// SPDX-License-Identifier: GPL-2.0
/* cdmctl: cdmctl list and cdmctl status. */
#include "cdmctl.h"

/* ------------------------------------------------------------ list/status */

static const char *node_state(const struct numacdm_node_info *in,
			      const struct dev *d)
{
	if (d)
		return d->state;
	return in->present ? "online" : "offline";
}

/*
 * One CDM node as JSON, into @o.  Keys as daxctl's where they mean the
 * same: "chardev" (the device's character device, capi_simN), "size"
 * (bytes), "target_node", "online_memblocks", "total_memblocks".
 */
static void json_node(struct json_object *o, const struct numacdm_node_info *in,
		      const struct dev *d, struct bitmask *sysram, int stats)
{
	struct json_object *dj;
	int dist[MAX_NODES];

	jnum(o, "target_node", in->node);
	if (d) {
		jstr(o, "device", d->bdf);
		jstr(o, "chardev", d->misc[0] ? d->misc : NULL);
	} else if (in->present && strcmp(in->owner, "none")) {
		jstr(o, "device", in->owner);
		jstr(o, "chardev", NULL);
	} else {
		jstr(o, "device", NULL);
		jstr(o, "chardev", NULL);
	}
	jstr(o, "owner", in->owner);
	jstr(o, "state", node_state(in, d));
	jbool(o, "memory_online", in->present);
	jmemblocks(o, in->node);
	jsize(o, "size", d && d->size ? d->size : in->mem_total);
	jsize(o, "total_bytes", in->mem_total);
	jsize(o, "used_bytes", in->mem_used);
	jsize(o, "free_bytes", in->mem_free);
	jstr(o, "evacuation_state", numacdm_evac_state_name(in->evac_state));
	ju64(o, "pages_migrated", in->pages_migrated);
	ju64(o, "pages_remaining", in->pages_remaining);
	if (in->emergency_fallback < 0)
		jadd(o, "emergency_fallback", NULL);
	else
		jbool(o, "emergency_fallback", in->emergency_fallback);
	read_distances(in->node, dist);
	dj = json_object_new_object();
	for (unsigned int i = 0; i < sysram->size && i < MAX_NODES; i++) {
		char k[16];

		if (!numa_bitmask_isbitset(sysram, i) || dist[i] < 0)
			continue;
		snprintf(k, sizeof(k), "%u", i);
		jnum(dj, k, dist[i]);
	}
	jadd(o, "distance", dj);
	if (stats) {
		struct json_object *sj = json_object_new_object();
		char buf[2048];

		if (d && cdm_sysfs_read(buf, sizeof(buf),
					CAPI_SIM_DIR "/%s/stats", d->bdf) >= 0) {
			char *save = NULL;

			for (char *l = strtok_r(buf, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save)) {
				char key[64];
				unsigned long long v;

				if (sscanf(l, "%63s %llu", key, &v) == 2)
					ju64(sj, key, v);
			}
		}
		jadd(o, "stats", sj);
	}
}

static struct json_object *json_nodelist(struct bitmask *m)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; i < m->size; i++)
		if (numa_bitmask_isbitset(m, i))
			json_object_array_add(a, json_object_new_int((int)i));
	return a;
}

static int get_masks(struct bitmask **cdm, struct bitmask **sysram)
{
	*cdm = numacdm_nodes();
	*sysram = *cdm ? numacdm_sysram_nodes() : NULL;
	if (!*cdm || !*sysram) {
		err("cannot read the node topology: %s", strerror(errno));
		if (*cdm)
			numa_bitmask_free(*cdm);
		return EX_FAIL;
	}
	return EX_OK;
}

/*
 * A kernel without CDM support is not a kernel without CDM nodes: list
 * says which (exit 3 and a message for the first, an empty list and exit 0
 * for the second).  A CDM node whose files cannot be read is named on
 * stderr, left out, and makes the exit code 1.
 */
int cmd_list(void)
{
	struct bitmask *cdm, *sysram;
	char a[32], b[32], c[32];
	struct json_object *jo = NULL, *ja = NULL;
	int count = 0, unreadable = 0, ret, supported = numacdm_available();

	if (supported < 0) {
		err("cannot read the node topology: %s", strerror(errno));
		return EX_FAIL;
	}
	ret = get_masks(&cdm, &sysram);
	if (ret)
		return ret;
	if (!supported)
		err("this kernel has no coherent device memory support (no %s)",
		    NODE_DIR "/has_coherent_device");
	scan_devices();
	if (json) {
		jo = json_object_new_object();
		ja = json_object_new_array();
		jbool(jo, "cdm_supported", supported);
		jadd(jo, "sysram_nodes", json_nodelist(sysram));
		jadd(jo, "cdm_nodes", ja);
	} else if (!supported) {
		numa_bitmask_free(cdm);
		numa_bitmask_free(sysram);
		return EX_NODEV;
	} else {
		printf("%-4s %-14s %-10s %-11s %-10s %-8s %-10s %-7s %s\n",
		       "NODE", "DEVICE", "MISC", "STATE", "SIZE", "USED",
		       "FREE", "EVAC", "DISTANCE");
	}
	for (unsigned int i = 0; i < cdm->size; i++) {
		struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
		int dist[MAX_NODES];
		struct dev *d;
		char dl[256] = "";
		size_t off = 0;

		if (!numa_bitmask_isbitset(cdm, i))
			continue;
		if (numacdm_node_info((int)i, &in)) {
			err("node %u: %s", i, strerror(errno));
			unreadable++;
			continue;
		}
		d = dev_of_node((int)i, in.owner);
		count++;
		if (json) {
			struct json_object *o = json_object_new_object();

			json_node(o, &in, d, sysram, 0);
			json_object_array_add(ja, o);
			continue;
		}
		read_distances((int)i, dist);
		for (unsigned int j = 0; j < sysram->size && j < MAX_NODES; j++) {
			if (!numa_bitmask_isbitset(sysram, j) || dist[j] < 0)
				continue;
			off += (size_t)snprintf(dl + off, sizeof(dl) - off,
						"%s%u:%d", off ? "," : "", j,
						dist[j]);
			if (off >= sizeof(dl))
				break;
		}
		printf("%-4u %-14s %-10s %-11s %-10s %-8s %-10s %-7s %s\n", i,
		       d ? d->bdf : (in.present ? in.owner : "-"),
		       d && d->misc[0] ? d->misc : "-", node_state(&in, d),
		       human(d && d->size ? d->size : in.mem_total, a,
			     sizeof(a)),
		       in.present ? human(in.mem_used, b, sizeof(b)) : "-",
		       in.present ? human(in.mem_free, c, sizeof(c)) : "-",
		       in.present ? numacdm_evac_state_name(in.evac_state) :
				    "-",
		       dl[0] ? dl : "-");
	}
	if (json) {
		jprint(jo);
	} else if (!count && !unreadable) {
		printf("(no coherent device memory nodes)\n");
	}
	numa_bitmask_free(cdm);
	numa_bitmask_free(sysram);
	/* A node left out of the list must not look like a complete list. */
	if (!supported)
		return EX_NODEV;
	return unreadable ? EX_FAIL : EX_OK;
}

/* cdmctl status: one target; with --json into @o. */
int cmd_status(const struct target *t, struct json_object *o)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct bitmask *cdm, *sysram;
	int dist[MAX_NODES];
	struct dev *d = t->dev;
	char a[32], b[32], c[32], buf[2048];
	int node = t->node, ret;

	if (numacdm_node_info(node, &in)) {
		err("node %d: %s", node, strerror(errno));
		return json_failed(o, t, EX_FAIL, errno);
	}
	ret = get_masks(&cdm, &sysram);
	if (ret)
		return json_failed(o, t, ret, errno);
	if (o) {
		json_node(o, &in, d, sysram, 1);
		goto out;
	}
	printf("node:               %d\n", node);
	if (d)
		printf("device:             %s%s%s%s\n", d->bdf,
		       d->misc[0] ? " (/dev/" : "", d->misc,
		       d->misc[0] ? ")" : "");
	printf("owner:              %s\n", in.owner);
	printf("state:              %s\n", node_state(&in, d));
	printf("memory online:      %s\n", in.present ? "yes" : "no");
	printf("size:               %s\n",
	       human(d && d->size ? d->size : in.mem_total, a, sizeof(a)));
	if (in.present) {
		printf("total/used/free:    %s / %s / %s\n",
		       human(in.mem_total, a, sizeof(a)),
		       human(in.mem_used, b, sizeof(b)),
		       human(in.mem_free, c, sizeof(c)));
		printf("evacuation:         %s (pages migrated %" PRIu64
		       ", remaining %" PRIu64 ")\n",
		       numacdm_evac_state_name(in.evac_state),
		       in.pages_migrated, in.pages_remaining);
		printf("emergency fallback: %s\n",
		       in.emergency_fallback < 0 ? "unknown" :
		       in.emergency_fallback ? "on" : "off");
	}
	read_distances(node, dist);
	printf("distance:          ");
	ret = 0;
	for (unsigned int j = 0; j < sysram->size && j < MAX_NODES; j++)
		if (numa_bitmask_isbitset(sysram, j) && dist[j] >= 0) {
			printf(" node%u=%d", j, dist[j]);
			ret = 1;
		}
	printf("%s\n", ret ? "" : " -");
	ret = EX_OK;
	if (d && cdm_sysfs_read(buf, sizeof(buf), CAPI_SIM_DIR "/%s/stats",
				d->bdf) >= 0) {
		char *save = NULL;

		printf("device stats:\n");
		for (char *l = strtok_r(buf, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save))
			printf("  %s\n", l);
	}
out:
	numa_bitmask_free(cdm);
	numa_bitmask_free(sysram);
	return ret;
}
