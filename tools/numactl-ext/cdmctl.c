// SPDX-License-Identifier: GPL-2.0
/*
 * cdmctl - inspect and control coherent device memory (CDM) nodes.
 *
 *   cdmctl [-j|--json] [-u|--human] [-q|--quiet] COMMAND [OPTIONS] [ARGS]
 *   cdmctl list
 *   cdmctl status <dev|node>
 *   cdmctl evacuate <dev|node> [-t|--timeout MS] [--dry-run]
 *   cdmctl online <dev|node> [-r|--restore]
 *   cdmctl run -n|--node N [-p|--preferred] -- CMD [ARGS...]
 *   cdmctl where <pid|self>
 *   cdmctl users <dev|node>
 *   cdmctl unspill <dev|node>
 *   cdmctl help [COMMAND] | cdmctl COMMAND -h | cdmctl version | cdmctl -V
 *
 * A table of commands, each parsing its own options with getopt_long();
 * -j/-u (and -q where there is progress) also after the command.  JSON
 * through json-c.
 *
 * See cdmctl.8 for the exit codes.  All /sys and /proc paths are read below
 * $CDM_SYSFS_ROOT (tests point it at a fake tree).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <numa.h>
#include <numaif.h>
#include <getopt.h>
#include <json-c/json.h>

#include "numacdm.h"
#include "sysfs.h"

#define VERSION		"1.0"
#define NODE_DIR	"/sys/devices/system/node"
#define CAPI_SIM_DIR	"/sys/bus/pci/drivers/capi_sim"
#define MAX_NODES	1024
#define MAX_DEVS	64
#define EVAC_MAX_MS	3600000u	/* the capi_sim driver's maximum */
/* The default timeout: EVAC_BASE_MS + EVAC_SLACK x (used bytes / rate). */
#define EVAC_BASE_MS	10000.0
#define EVAC_SLACK	3.0
/* The rate when no evacuation of the device was measured: conservative. */
#define EVAC_DEFAULT_RATE (8.0 * 1048576)

enum {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_NODEV = 3,
	EX_PERM = 4,
	EX_EVAC = 5,
	EX_NOTHING = 6,
	EX_NOEXEC = 126,
	EX_NOTFOUND = 127,
};

static int last_errno;		/* errno of the last failure, 0 unknown */
static char last_msg[512];	/* the last error message */
static int json;		/* -j, --json */
static int human_sizes;		/* -u, --human: sizes in JSON as strings */
static int quiet;		/* -q, --quiet: no progress */

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cdmctl: %s\n", last_msg);
}

/* -------------------------------------------------------------- devices */

struct dev {
	char bdf[64];
	char misc[64];		/* capi_simN, or "" */
	int node;		/* -1 unknown */
	uint64_t size;
	char state[32];
};

static struct dev devs[MAX_DEVS];
static int ndevs;

static int cmp_dev(const void *a, const void *b)
{
	return strcmp(((const struct dev *)a)->bdf,
		      ((const struct dev *)b)->bdf);
}

static void scan_devices(void)
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

static struct dev *dev_of_node(int node, const char *owner)
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

static int is_number(const char *s)
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
static int resolve(const char *arg, int *node, struct dev **dev)
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

/* dist[i] = distance from @node to node i, -1 if unknown. */
static void read_distances(int node, int *dist)
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

static const char *human(uint64_t b, char *buf, size_t len)
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

/* ----------------------------------------------------------------- json */

/*
 * Length of the valid UTF-8 sequence at @s (1 to 4), or 0 if the bytes
 * there are not one: overlong forms, surrogates and code points above
 * U+10FFFF included.  Never reads past a NUL.
 */
static int utf8_seq_len(const unsigned char *s)
{
	uint32_t cp;
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A JSON string.  Names come from the system (process names, cgroup
 * paths) and may hold any bytes: what is not valid UTF-8 becomes U+FFFD
 * before json-c sees it (json-c copies bytes as they are), so the output
 * is always valid UTF-8.  json-c escapes quotes and control characters.
 */
static struct json_object *jstring(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	struct json_object *o;
	char *buf = malloc(strlen(str) * 3 + 1), *p = buf;

	if (!buf)
		return json_object_new_string("");
	while (*s) {
		int n = utf8_seq_len(s);

		if (!n) {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
			s++;
		} else {
			memcpy(p, s, (size_t)n);
			p += n;
			s += n;
		}
	}
	*p = '\0';
	o = json_object_new_string(buf);
	free(buf);
	return o;
}

/* @b bytes as daxctl's util_display_size() shows them: "256.00 MiB". */
static const char *size_str(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	int u = -1;

	if (b < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", b);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.2f %s", v, unit[u]);
	return buf;
}

static void jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);	/* v NULL: null */
}

static void jstr(struct json_object *o, const char *k, const char *v)
{
	jadd(o, k, v ? jstring(v) : NULL);
}

static void jnum(struct json_object *o, const char *k, int64_t v)
{
	jadd(o, k, json_object_new_int64(v));
}

static void ju64(struct json_object *o, const char *k, uint64_t v)
{
	jadd(o, k, json_object_new_uint64(v));
}

/* A size in bytes: a number, or with --human a string ("4.00 MiB"). */
static void jsize(struct json_object *o, const char *k, uint64_t v)
{
	char buf[32];

	if (human_sizes)
		jadd(o, k, json_object_new_string(size_str(v, buf, sizeof(buf))));
	else
		ju64(o, k, v);
}

static void jbool(struct json_object *o, const char *k, int v)
{
	jadd(o, k, json_object_new_boolean(v));
}

/* A number of seconds, with two decimals in the text. */
static void jsecs(struct json_object *o, const char *k, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.2f", v);
	jadd(o, k, json_object_new_double_s(v, buf));
}

/* Print @o (pretty, 2 spaces, as daxctl does) and free it. */
static void jprint(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ------------------------------------------------------------ list/status */

static const char *node_state(const struct numacdm_node_info *in,
			      const struct dev *d)
{
	if (d)
		return d->state;
	return in->present ? "online" : "offline";
}

/*
 * One CDM node as JSON.  Keys as daxctl's where they mean the same:
 * "chardev" (the device's character device, capi_simN), "size" (bytes),
 * "state".
 */
static struct json_object *json_node(const struct numacdm_node_info *in,
				     const struct dev *d,
				     struct bitmask *sysram, int stats)
{
	struct json_object *o = json_object_new_object(), *dj;
	int dist[MAX_NODES];

	jnum(o, "node", in->node);
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
	return o;
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
 * for the second).
 */
static int cmd_list(void)
{
	struct bitmask *cdm, *sysram;
	char a[32], b[32], c[32];
	struct json_object *jo = NULL, *ja = NULL;
	int count = 0, ret, supported = numacdm_available();

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
			continue;
		}
		d = dev_of_node((int)i, in.owner);
		count++;
		if (json) {
			json_object_array_add(ja, json_node(&in, d, sysram, 0));
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
	} else if (!count) {
		printf("(no coherent device memory nodes)\n");
	}
	numa_bitmask_free(cdm);
	numa_bitmask_free(sysram);
	return supported ? EX_OK : EX_NODEV;
}

static int cmd_status(const char *arg)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct bitmask *cdm, *sysram;
	int dist[MAX_NODES];
	struct dev *d;
	char a[32], b[32], c[32], buf[2048];
	int node, ret;

	ret = resolve(arg, &node, &d);
	if (ret)
		return ret;
	if (numacdm_node_info(node, &in)) {
		err("node %d: %s", node, strerror(errno));
		return EX_FAIL;
	}
	ret = get_masks(&cdm, &sysram);
	if (ret)
		return ret;
	if (json) {
		jprint(json_node(&in, d, sysram, 1));
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

/* ------------------------------------------------------ evacuate/online */

/*
 * resolve() for evacuate/online: the node belongs to a capi_sim device
 * (*d set), or to no driver at all (*d NULL): memory that firmware
 * described at boot, evacuated through nodeN/cdm/evacuate and brought back
 * by onlining its memory blocks.  A node another driver owns is that
 * driver's business.
 */
static int resolve_evac_target(const char *arg, int *node, struct dev **d)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	int ret = resolve(arg, node, d);

	if (ret || *d)
		return ret;
	if (!numacdm_node_info(*node, &in) && strcmp(in.owner, "none")) {
		err("%s: node %d is owned by %s, which is not a capi_sim device",
		    arg, *node, in.owner);
		return EX_NODEV;
	}
	return EX_OK;
}

/* bytes of memory online on @node, 0 if none or unknown */
static uint64_t node_online_bytes(int node)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;

	if (numacdm_node_info(node, &in) || !in.present)
		return 0;
	return in.mem_total;
}

static int errno_exit(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return EX_PERM;
	case ENOENT:
	case ENODEV:
		return EX_NODEV;
	case EINVAL:
		return EX_USAGE;
	case EALREADY:
		return EX_NOTHING;
	default:
		return EX_FAIL;
	}
}

struct evac_job {
	char rel[PATH_MAX];
	char val[32];
	atomic_int done;
	int err;
};

static void *evac_thread(void *arg)
{
	struct evac_job *j = arg;

	j->err = cdm_sysfs_write(j->val, "%s", j->rel) ? errno : 0;
	atomic_store(&j->done, 1);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_eta(double s, char *buf, size_t len)
{
	if (s < 0 || s > 1e7)
		snprintf(buf, len, "--:--");
	else if (s >= 3600)
		snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600,
			 (int)s / 60 % 60, (int)s % 60);
	else
		snprintf(buf, len, "%02d:%02d", (int)s / 60, (int)s % 60);
}

/*
 * Progress on stderr, in bytes: a bar redrawn in place on a terminal; one
 * line per 10 % step otherwise (logs).  Nothing with --quiet, nothing for
 * what is over within 0.2 s; a last frame at 100 % when the work is done.
 */
struct progress {
	const char *what;	/* "evacuate", "restore", "unspill" */
	int node;
	int tty;
	int shown;		/* a frame was printed */
	int step;		/* last 10 % step printed (no terminal) */
	double t0;
	uint64_t done, total;	/* bytes */
};

static void progress_init(struct progress *p, const char *what, int node)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->node = node;
	p->tty = isatty(STDERR_FILENO);
	p->step = -1;
	p->t0 = now_s();
}

static void progress_frame(struct progress *p, int final)
{
	double el = now_s() - p->t0, rate, pct;
	uint64_t done = p->done, total = p->total;
	char a[32], b[32], eta[16];
	int step;

	if (quiet || (!final && el < 0.2) || (final && !p->shown))
		return;
	if (final)
		done = total = total > done ? total : done;
	rate = el > 0 ? (double)done / el : 0;
	pct = total ? 100.0 * (double)done / (double)total : (final ? 100 : 0);
	if (pct > 100)
		pct = 100;
	fmt_eta(final ? 0 : rate > 0 ? (double)(total - done) / rate : -1, eta,
		sizeof(eta));
	human(done, a, sizeof(a));
	human(total, b, sizeof(b));
	if (p->tty) {
		int w = 20, fill = (int)(pct * w / 100);

		fprintf(stderr, "\r%s: node %d: [%.*s%*s] %5.1f%% %s of %s, %.1f MiB/s, ETA %s  ",
			p->what, p->node, fill, "####################",
			w - fill, "", pct, a, b, rate / 1048576, eta);
		if (final)
			fputc('\n', stderr);
	} else {
		step = (int)(pct / 10);
		if (step <= p->step)
			return;
		p->step = step;
		fprintf(stderr, "%s: node %d: %s of %s (%.1f%%), %.1f MiB/s, ETA %s\n",
			p->what, p->node, a, b, pct, rate / 1048576, eta);
	}
	p->shown = 1;
}

/* End the bar's line after a failure (the last frame stays as it was). */
static void progress_end(struct progress *p)
{
	if (p->shown && p->tty)
		fputc('\n', stderr);
}

/* Pages and microseconds of the device's last evacuation (0 if unknown). */
static void last_evacuation(const struct dev *d, uint64_t *pages, uint64_t *us)
{
	char buf[1024], *p;

	*pages = 0;
	*us = 0;
	if (!d || cdm_sysfs_read(buf, sizeof(buf), CAPI_SIM_DIR "/%s/stats",
				 d->bdf) < 0)
		return;
	p = strstr(buf, "last_evacuated_pages ");
	if (p)
		*pages = strtoull(p + 21, NULL, 10);
	p = strstr(buf, "last_evacuation_us ");
	if (p)
		*us = strtoull(p + 19, NULL, 10);
}

/*
 * Evacuation rate in bytes/s: the device's last evacuation's, or
 * EVAC_DEFAULT_RATE when none was measured (*measured 0).
 */
static double evac_rate(const struct dev *d, int *measured)
{
	uint64_t pages, us;

	last_evacuation(d, &pages, &us);
	*measured = pages && us;
	if (!*measured)
		return EVAC_DEFAULT_RATE;
	/* pages_migrated counts base pages of the kernel's page size */
	return (double)pages * (double)sysconf(_SC_PAGESIZE) /
	       ((double)us / 1e6);
}

/*
 * The default timeout: EVAC_BASE_MS + EVAC_SLACK x the time moving @used
 * bytes takes at @rate bytes/s, at most EVAC_MAX_MS.
 */
static unsigned int default_timeout_ms(uint64_t used, double rate)
{
	double ms = EVAC_BASE_MS + EVAC_SLACK * (double)used / rate * 1000;

	return ms >= EVAC_MAX_MS ? EVAC_MAX_MS : (unsigned int)ms;
}

/* MemAvailable of /proc/meminfo in bytes (system RAM only on a CDM kernel). */
static int ram_available(uint64_t *bytes)
{
	char buf[4096], *p;

	if (cdm_sysfs_read(buf, sizeof(buf), "/proc/meminfo") < 0)
		return -1;
	p = strstr(buf, "MemAvailable:");
	if (!p)
		return -1;
	*bytes = strtoull(p + 13, NULL, 10) * 1024;
	return 0;
}

/*
 * cdmctl evacuate --dry-run: what an evacuation would move, whether system
 * RAM can take it, how long it would take at the rate of the device's
 * last evacuation and the timeout cdmctl would give it.  Reads only; exit
 * 1 when RAM cannot take it (what the evacuation itself would return), 0
 * otherwise.
 */
static int evacuate_dry_run(const char *arg)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	uint64_t avail = 0;
	double est = -1, rate;
	char a[32], b[32];
	struct dev *d;
	int node, ret, fits, measured;

	ret = resolve_evac_target(arg, &node, &d);
	if (ret)
		return ret;
	if (numacdm_node_info(node, &in) || !in.present) {
		err("node %d has no memory online (already evacuated?)", node);
		return EX_NOTHING;
	}
	if (ram_available(&avail)) {
		err("/proc/meminfo: %s", strerror(errno));
		return EX_FAIL;
	}
	fits = in.mem_used <= avail;
	rate = evac_rate(d, &measured);
	if (measured)
		est = (double)in.mem_used / rate;
	if (json) {
		struct json_object *o = json_object_new_object();

		jnum(o, "node", node);
		jstr(o, "device", d ? d->bdf : NULL);
		jstr(o, "owner", in.owner);
		jsize(o, "in_use_bytes", in.mem_used);
		jsize(o, "ram_available_bytes", avail);
		jbool(o, "fits", fits);
		if (est >= 0)
			jsecs(o, "estimated_seconds", est);
		else
			jadd(o, "estimated_seconds", NULL);
		ju64(o, "rate_bytes_per_second", (uint64_t)rate);
		jbool(o, "rate_measured", measured);
		ju64(o, "default_timeout_ms",
		     default_timeout_ms(in.mem_used, rate));
		jprint(o);
	} else {
		printf("node %d (%s): %s in use would move to system RAM\n",
		       node, d ? d->bdf : in.owner,
		       human(in.mem_used, a, sizeof(a)));
		printf("system RAM available: %s: %s\n",
		       human(avail, b, sizeof(b)),
		       fits ? "fits" : "does NOT fit");
		if (est >= 0)
			printf("estimated time: %.1f s (at the rate of the last evacuation, %.1f MiB/s)\n",
			       est, rate / 1048576.0);
		else
			printf("estimated time: unknown (no earlier evacuation of this device)\n");
		printf("default timeout: %u ms (%s)\n",
		       default_timeout_ms(in.mem_used, rate),
		       measured ? "10 s + 3 x the estimate" :
		       "10 s + 3 x the time at 8 MiB/s");
	}
	return fits ? EX_OK : EX_FAIL;
}

/* The result of evacuate or online as JSON (exit status @ret). */
static void json_result(int node, const struct dev *d, const char *result,
			int e, const char *msg, struct json_object *o)
{
	jnum(o, "node", node);
	jstr(o, "device", d ? d->bdf : NULL);
	jstr(o, "chardev", d && d->misc[0] ? d->misc : NULL);
	jstr(o, "result", result);
	if (e > 0)
		jnum(o, "errno", e);
	if (msg)
		jstr(o, "message", msg);
}

/*
 * An evacuation that did not succeed: its JSON "result" in *@result, the
 * message for the user in @msg; returns the exit status @exit.
 */
static int __attribute__((format(printf, 6, 7)))
evac_failed(const char **result, const char *what, int exit, char *msg,
	    size_t len, const char *fmt, ...)
{
	va_list ap;

	*result = what;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return exit;
}

/*
 * cdmctl evacuate.  @timeout_ms: the --timeout value, -1 without one (the
 * default: see default_timeout_ms()), 0 for none.
 */
static int cmd_evacuate(const char *arg, long timeout_ms)
{
	struct evac_job job = { .done = 0 };
	const char *who = "firmware";	/* the owner, for messages */
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct progress pg;
	struct dev *d;
	pthread_t th;
	int node, ret, measured;
	unsigned int tmo;
	uint64_t v = 0, us = 0, used = 0;
	long psz = sysconf(_SC_PAGESIZE);
	const char *result = "ok";
	char msg[256] = "";
	double secs;

	ret = resolve_evac_target(arg, &node, &d);
	if (ret)
		return ret;
	if (!numacdm_node_info(node, &in) && in.present)
		used = in.mem_used;
	if (timeout_ms < 0)
		tmo = default_timeout_ms(used, evac_rate(d, &measured));
	else
		tmo = (unsigned int)timeout_ms;
	if (d) {
		who = d->bdf;
		if (!strcmp(d->state, "offline")) {
			err("%s: node %d is already evacuated (device offline)",
			    who, node);
			return EX_NOTHING;
		}
		snprintf(job.rel, sizeof(job.rel), CAPI_SIM_DIR "/%s/evacuate",
			 d->bdf);
		/*
		 * The driver refuses 0 and reads 1 as its own default: "no
		 * timeout" is its maximum, 1 ms is 2.
		 */
		if (!tmo)
			tmo = EVAC_MAX_MS;
		else if (tmo == 1)
			tmo = 2;
	} else {
		if (!node_online_bytes(node)) {
			err("%s: node %d has no memory online (already evacuated?)",
			    who, node);
			return EX_NOTHING;
		}
		snprintf(job.rel, sizeof(job.rel), NODE_DIR "/node%d/cdm/evacuate",
			 node);
	}
	snprintf(job.val, sizeof(job.val), "%u\n", tmo);
	progress_init(&pg, "evacuate", node);
	if (pthread_create(&th, NULL, evac_thread, &job)) {
		err("cannot start the evacuation thread");
		return EX_FAIL;
	}
	while (!atomic_load(&job.done)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		uint64_t done, left;

		if (!cdm_sysfs_read_u64(&done, NODE_DIR "/node%d/cdm/pages_migrated",
					node) &&
		    !cdm_sysfs_read_u64(&left, NODE_DIR "/node%d/cdm/pages_remaining",
					node)) {
			pg.done = done * (uint64_t)psz;
			pg.total = (done + left) * (uint64_t)psz;
			progress_frame(&pg, 0);
		}
		nanosleep(&ts, NULL);
	}
	pthread_join(th, NULL);
	secs = now_s() - pg.t0;

	switch (job.err) {
	case 0:
		if (!d) {
			cdm_sysfs_read_u64(&v, NODE_DIR
					   "/node%d/cdm/pages_migrated", node);
		} else {
			last_evacuation(d, &v, &us);
		}
		if (us)
			secs = (double)us / 1e6;
		pg.done = v * (uint64_t)psz;
		progress_frame(&pg, 1);
		if (json)
			break;
		printf("node %d (%s) evacuated: %" PRIu64
		       " pages migrated in %.2f s (%s)\n", node, who, v, secs,
		       human(v * (uint64_t)psz, msg, sizeof(msg)));
		if (!d)
			printf("its memory blocks are offline; bring them back with 'cdmctl online %d'\n",
			       node);
		return EX_OK;
	case EBUSY:
		progress_end(&pg);
		cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/pages_remaining",
				   node);
		ret = evac_failed(&result, "timeout", EX_EVAC, msg, sizeof(msg),
				  "evacuation of node %d timed out after %u ms: %" PRIu64
				  " pages could not be migrated; the memory is back online",
				  node, tmo, v);
		break;
	case EINTR:
		progress_end(&pg);
		ret = evac_failed(&result, "interrupted", EX_EVAC, msg, sizeof(msg),
				  "evacuation of node %d interrupted; the memory is back online",
				  node);
		break;
	case EALREADY:
		ret = evac_failed(&result, "nothing", EX_NOTHING, msg, sizeof(msg),
				  "node %d has no memory to evacuate", node);
		break;
	case EINVAL:
		ret = evac_failed(&result, "rejected", EX_USAGE, msg, sizeof(msg),
				  "the request was rejected (timeout %u ms)", tmo);
		break;
	default:
		progress_end(&pg);
		ret = evac_failed(&result, "error", errno_exit(job.err), msg,
				  sizeof(msg), "evacuate: %s%s", strerror(job.err),
				  job.err == EACCES || job.err == EPERM ?
				  " (needs root)" : "");
		break;
	}
	if (job.err) {
		err("%s: %s", who, msg);
		if (job.err != EBUSY)
			cdm_sysfs_read_u64(&v, NODE_DIR
					   "/node%d/cdm/pages_remaining", node);
	}
	if (json) {
		struct json_object *o = json_object_new_object();

		json_result(node, d, result, job.err, job.err ? msg : NULL, o);
		ju64(o, job.err ? "pages_remaining" : "pages_migrated", v);
		jsize(o, job.err ? "bytes_remaining" : "bytes",
		      v * (uint64_t)psz);
		jsecs(o, "seconds", secs);
		ju64(o, "timeout_ms", tmo);
		jprint(o);
	}
	return ret;
}

/*
 * Memory firmware described at boot is offlined, not removed, by an
 * evacuation: online its blocks again (ZONE_MOVABLE: the kernel picks it
 * for a CDM node).
 */
static int online_firmware_node(int node, struct json_object *o)
{
	char path[PATH_MAX], rel[PATH_MAX], st[32], a[32];
	struct dirent *de;
	int n = 0, failed = 0, e = 0;
	DIR *dir;

	if (cdm_sysfs_path(path, sizeof(path), NODE_DIR "/node%d", node) ||
	    !(dir = opendir(path))) {
		err("node %d: no memory blocks (%s)", node, strerror(errno));
		return EX_NODEV;
	}
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "memory", 6) ||
		    !isdigit((unsigned char)de->d_name[6]))
			continue;
		snprintf(rel, sizeof(rel), "/sys/devices/system/memory/%s/state",
			 de->d_name);
		if (cdm_sysfs_read(st, sizeof(st), "%s", rel) < 0 ||
		    strcmp(st, "offline"))
			continue;
		if (cdm_sysfs_write("online\n", "%s", rel)) {
			e = errno;
			failed++;
			err("node %d: %s: online: %s%s", node, de->d_name,
			    strerror(e), e == EACCES || e == EPERM ?
			    " (needs root)" : "");
			continue;
		}
		n++;
	}
	closedir(dir);
	if (failed) {
		last_errno = e;
		return errno_exit(e);
	}
	if (!n) {
		err("node %d is already online", node);
		return EX_NOTHING;
	}
	if (o) {
		json_result(node, NULL, "ok", 0, NULL, o);
		jnum(o, "memory_blocks", n);
		jsize(o, "bytes", node_online_bytes(node));
		return EX_OK;
	}
	printf("node %d (firmware) online: %d memory blocks, %s\n", node, n,
	       human(node_online_bytes(node), a, sizeof(a)));
	return EX_OK;
}

/* Bring @node's memory back; EX_NOTHING if it is online already. */
static int online_node(int node, struct dev *d, struct json_object *o)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	char rel[PATH_MAX], a[32];

	if (!d)
		return online_firmware_node(node, o);
	if (!strcmp(d->state, "online")) {
		err("%s: node %d is already online", d->bdf, node);
		return EX_NOTHING;
	}
	snprintf(rel, sizeof(rel), CAPI_SIM_DIR "/%s/online", d->bdf);
	if (cdm_sysfs_write("1\n", "%s", rel)) {
		int e = errno;

		last_errno = e;
		if (e == EALREADY) {
			err("%s: node %d is already online", d->bdf, node);
			return EX_NOTHING;
		}
		err("%s: online: %s%s", d->bdf, strerror(e),
		    e == EACCES || e == EPERM ? " (needs root)" : "");
		return errno_exit(e);
	}
	if (o) {
		json_result(node, d, "ok", 0, NULL, o);
		jsize(o, "bytes", !numacdm_node_info(node, &in) && in.present ?
			 in.mem_total : 0);
	} else if (!numacdm_node_info(node, &in) && in.present)
		printf("node %d (%s) online: %s\n", node, d->bdf,
		       human(in.mem_total, a, sizeof(a)));
	else
		printf("node %d (%s) online\n", node, d->bdf);
	return EX_OK;
}

/* ------------------------------------------------------ restore, unspill */

/*
 * Two ways of putting pages where their policy says they belong, both
 * read from numa_maps, which shows each VMA's policy (or its task's):
 *
 * restore (online --restore): after an evacuation, pages that left a node
 * belong back there if their policy still names it - CDM hotplug never
 * rewrites a policy, so a task bound to the node keeps "bind:N" through
 * the evacuation and the re-add.  The pages of MPOL_BIND, MPOL_PREFERRED
 * and MPOL_PREFERRED_MANY VMAs naming the node that sit outside the
 * policy's nodes move onto the node.  Interleave policies are left alone:
 * which of their pages were on the node is not known.
 *
 * unspill: pages on the node whose policy does not name it at all - they
 * got there through the emergency fallback, or by hand - move to system
 * RAM once it has room again: to the policy's first system-RAM node, or
 * to the RAM node nearest to the device node.
 *
 * move_pages(MPOL_MF_MOVE) moves only pages that one process maps, so page
 * cache and memory shared with other processes stay where they are; they
 * are counted as "shared".
 */
enum page_fix { PF_RESTORE, PF_UNSPILL };

struct fix_vma {
	int pid;
	unsigned long start, end, pagesize;
	unsigned long nr_misplaced;	/* pages to move, from numa_maps */
	struct bitmask *policy;		/* the policy's nodes, or NULL */
	int target;			/* node the pages move to */
};

struct page_fixer {
	enum page_fix how;
	int node;			/* the CDM node */
	int ram_node;			/* nearest system-RAM node to it */
	struct bitmask *cdm;		/* every CDM node */
	struct fix_vma *v;
	size_t nr, cap;
	uint64_t bytes_total, bytes_moved;
	unsigned long moved, shared, failed, denied, denied_procs;
	int last_err;
	struct progress pg;
};

static int mask_has(const struct bitmask *m, int node)
{
	return m && node >= 0 && (unsigned int)node < m->size &&
	       numa_bitmask_isbitset(m, (unsigned int)node);
}

/*
 * The policy of a numa_maps line, after its address: "default", "local",
 * "bind:1-2", "prefer=static:1", "prefer (many):1,3", "interleave:0-1",
 * "weighted interleave:0-1".  Returns its node list (NULL for none) and
 * sets *@keeps if the mode keeps pages on its nodes (bind, preferred).
 */
static struct bitmask *policy_nodes(const char *pol, int *keeps)
{
	static const struct { const char *name; int keeps; } modes[] = {
		{ "bind", 1 }, { "prefer (many)", 1 }, { "prefer", 1 },
		{ "weighted interleave", 0 }, { "interleave", 0 },
	};
	char list[256];
	size_t n;

	*keeps = 0;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		size_t l = strlen(modes[i].name);
		const char *c;

		if (strncmp(pol, modes[i].name, l) ||
		    (pol[l] != ':' && pol[l] != '='))
			continue;
		c = strchr(pol + l, ':');
		if (!c)
			return NULL;
		n = strcspn(c + 1, " \n");
		if (!n || n >= sizeof(list))
			return NULL;
		memcpy(list, c + 1, n);
		list[n] = '\0';
		*keeps = modes[i].keeps;
		return numacdm_parse_nodelist(list);
	}
	return NULL;
}

/* /proc/PID/maps read forward once, with one line of lookahead. */
struct maps_reader {
	FILE *f;
	unsigned long start, end;	/* of the line read ahead */
	int ahead;
};

/*
 * End of the VMA that starts at @start, 0 if none.  numa_maps and maps list
 * the VMAs in the same ascending order, so the caller asks for ascending
 * starts and one pass over maps serves them all (a rewind per VMA made a
 * process with many mappings quadratic).
 */
static unsigned long vma_end(struct maps_reader *m, unsigned long start)
{
	char line[PATH_MAX + 128];

	for (;;) {
		if (!m->ahead) {
			if (!fgets(line, sizeof(line), m->f))
				return 0;
			/* the rest of an overlong line is no mapping */
			while (!strchr(line, '\n') &&
			       fgets(line, sizeof(line), m->f))
				;
			if (sscanf(line, "%lx-%lx", &m->start, &m->end) != 2)
				continue;
			m->ahead = 1;
		}
		if (m->start > start)
			return 0;	/* keep it for a later, higher start */
		m->ahead = 0;
		if (m->start == start)
			return m->end;
	}
}

/* Does page on @nid (a move_pages status) have to move? */
static int misplaced(const struct page_fixer *f, const struct fix_vma *v,
		     int nid)
{
	if (nid < 0)
		return 0;	/* not resident */
	if (f->how == PF_RESTORE)
		return !mask_has(v->policy, nid);
	return nid == f->node;
}

/* Which VMAs of a numa_maps line need fixing; fills @v, 0 if none. */
static int fix_candidate(const struct page_fixer *f, char *pol,
			 struct fix_vma *v)
{
	char *t, *save = NULL;
	int keeps;

	v->policy = policy_nodes(pol, &keeps);
	if (f->how == PF_RESTORE) {
		if (!keeps || !mask_has(v->policy, f->node))
			goto none;
		v->target = f->node;
	} else {
		if (mask_has(v->policy, f->node))
			goto none;
		v->target = f->ram_node;
		for (unsigned int i = 0; v->policy && i < v->policy->size; i++)
			if (numa_bitmask_isbitset(v->policy, i) &&
			    !mask_has(f->cdm, (int)i)) {
				v->target = (int)i;
				break;
			}
	}
	for (t = strtok_r(pol, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save)) {
		unsigned long long cnt;
		int nd;

		if (sscanf(t, "N%d=%llu", &nd, &cnt) == 2 &&
		    misplaced(f, v, nd))
			v->nr_misplaced += cnt;
		else if (sscanf(t, "kernelpagesize_kB=%llu", &cnt) == 1)
			v->pagesize = cnt * 1024;
	}
	if (v->nr_misplaced && v->target >= 0)
		return 1;
none:
	if (v->policy)
		numa_bitmask_free(v->policy);
	v->policy = NULL;
	return 0;
}

static int fixer_add(struct page_fixer *f, const struct fix_vma *v)
{
	if (f->nr == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct fix_vma *n = realloc(f->v, cap * sizeof(*n));

		if (!n)
			return -1;
		f->v = n;
		f->cap = cap;
	}
	f->v[f->nr++] = *v;
	f->bytes_total += (uint64_t)v->nr_misplaced * v->pagesize;
	return 0;
}

/* The VMAs of process @pid with pages to move. */
static void fixer_scan_pid(struct page_fixer *f, int pid)
{
	char rel[64], path[PATH_MAX], line[8192];
	struct maps_reader maps = { NULL };
	FILE *nm;

	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(nm = fopen(path, "re"))) {
		if (errno == EACCES || errno == EPERM)
			f->denied_procs++;
		return;		/* gone, or not ours to read */
	}
	snprintf(rel, sizeof(rel), "/proc/%d/maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(maps.f = fopen(path, "re"))) {
		fclose(nm);
		return;
	}
	while (fgets(line, sizeof(line), nm)) {
		struct fix_vma v = { .pid = pid,
				       .pagesize = (unsigned long)sysconf(_SC_PAGESIZE) };
		char *pol = strchr(line, ' ');

		if (!pol || sscanf(line, "%lx", &v.start) != 1 ||
		    !fix_candidate(f, pol + 1, &v))
			continue;
		v.end = vma_end(&maps, v.start);
		if (!v.end || fixer_add(f, &v))
			numa_bitmask_free(v.policy);
	}
	fclose(maps.f);
	fclose(nm);
}

#define FIX_BATCH	512

/* Move the misplaced pages of one VMA to its target node. */
static void fix_vma(struct page_fixer *f, const struct fix_vma *v)
{
	void *pages[FIX_BATCH];
	int nodes[FIX_BATCH], status[FIX_BATCH];
	unsigned long addr = v->start;

	while (addr < v->end) {
		unsigned long n = 0, k = 0;

		for (; addr < v->end && n < FIX_BATCH; addr += v->pagesize)
			pages[n++] = (void *)addr;
		if (move_pages(v->pid, n, pages, NULL, status, 0)) {
			if (errno == EPERM || errno == EACCES)
				f->denied += v->nr_misplaced;
			else if (errno != ESRCH)
				f->last_err = errno;
			return;
		}
		for (unsigned long i = 0; i < n; i++)
			if (misplaced(f, v, status[i]))
				pages[k++] = pages[i];
		if (!k)
			continue;
		for (unsigned long i = 0; i < k; i++)
			nodes[i] = v->target;
		if (move_pages(v->pid, k, pages, nodes, status, MPOL_MF_MOVE) < 0) {
			if (errno == EPERM || errno == EACCES) {
				f->denied += k;
			} else if (errno != ESRCH) {
				f->last_err = errno;
				f->failed += k;
			}
			return;
		}
		for (unsigned long i = 0; i < k; i++) {
			if (status[i] == v->target) {
				f->moved++;
				f->bytes_moved += v->pagesize;
			} else if (status[i] == -EACCES) {
				f->shared++;
			} else {
				f->failed++;
				if (status[i] < 0)
					f->last_err = -status[i];
			}
		}
		f->pg.done = f->bytes_moved;
		f->pg.total = f->bytes_total;
		progress_frame(&f->pg, 0);
	}
}

/* The system-RAM node nearest to @node, -1 if none. */
static int nearest_ram_node(int node, const struct bitmask *cdm)
{
	static int dist[MAX_NODES];
	int best = -1;

	read_distances(node, dist);
	for (int i = 0; i < MAX_NODES; i++)
		if (dist[i] >= 0 && i != node && !mask_has(cdm, i) &&
		    (best < 0 || dist[i] < dist[best]))
			best = i;
	return best;
}

/*
 * cdmctl online --restore (PF_RESTORE) and cdmctl unspill (PF_UNSPILL):
 * see the comment at the top of this section.
 */
static int fix_pages(int node, enum page_fix how, struct json_object *o)
{
	struct page_fixer f = { .how = how, .node = node };
	const char *done = how == PF_RESTORE ? "restored" : "returned to system RAM";
	char path[PATH_MAX], a[32];
	int ret = EX_OK;
	double secs;
	struct dirent *de;
	DIR *dir;

	f.cdm = numacdm_nodes();
	if (!f.cdm) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	f.ram_node = nearest_ram_node(node, f.cdm);
	if (how == PF_UNSPILL && f.ram_node < 0) {
		err("node %d: no system-RAM node to return pages to", node);
		numa_bitmask_free(f.cdm);
		return EX_FAIL;
	}
	if (cdm_sysfs_path(path, sizeof(path), "/proc") ||
	    !(dir = opendir(path))) {
		err("/proc: %s", strerror(errno));
		numa_bitmask_free(f.cdm);
		return EX_FAIL;
	}
	while ((de = readdir(dir)))
		if (is_number(de->d_name) && atoi(de->d_name) != (int)getpid())
			fixer_scan_pid(&f, atoi(de->d_name));
	closedir(dir);

	progress_init(&f.pg, how == PF_RESTORE ? "restore" : "unspill", node);
	for (size_t i = 0; i < f.nr; i++) {
		fix_vma(&f, &f.v[i]);
		numa_bitmask_free(f.v[i].policy);
	}
	free(f.v);
	numa_bitmask_free(f.cdm);
	secs = now_s() - f.pg.t0;
	if (f.failed || f.denied) {
		progress_end(&f.pg);
	} else {
		f.pg.done = f.pg.total = f.bytes_moved;
		progress_frame(&f.pg, 1);
	}

	if (o) {
		ju64(o, "pages_moved", f.moved);
		jsize(o, "bytes", f.bytes_moved);
		jsecs(o, "seconds", secs);
		ju64(o, "pages_shared", f.shared);
		ju64(o, "pages_failed", f.failed);
		ju64(o, "pages_denied", f.denied);
		ju64(o, "unreadable_processes", f.denied_procs);
		if (f.failed) {
			jnum(o, "errno", f.last_err ? f.last_err : EBUSY);
			jstr(o, "message",
			     strerror(f.last_err ? f.last_err : EBUSY));
		}
	} else {
		printf("node %d: %s %" PRIu64 " pages (%s) in %.2f s\n", node,
		       done, (uint64_t)f.moved,
		       human(f.bytes_moved, a, sizeof(a)), secs);
	}
	if (f.shared && !o)
		printf("node %d: %lu pages mapped by several processes stay where they are\n",
		       node, f.shared);
	if (f.failed) {
		err("node %d: %lu pages could not move (%s)", node, f.failed,
		    strerror(f.last_err ? f.last_err : EBUSY));
		ret = EX_EVAC;
	}
	if (f.denied || f.denied_procs) {
		err("node %d: other users' processes were left alone (%lu not readable, %lu pages not movable; needs root)",
		    node, f.denied_procs, f.denied);
		if (ret == EX_OK)
			ret = EX_PERM;
	}
	return ret;
}

/* The "result" of a failed command, from its exit status. */
static const char *result_of(int ret)
{
	switch (ret) {
	case EX_OK:
		return "ok";
	case EX_NOTHING:
		return "nothing";
	case EX_PERM:
		return "denied";
	case EX_NODEV:
		return "nodev";
	case EX_EVAC:
		return "incomplete";
	default:
		return "error";
	}
}

/*
 * cdmctl online [--restore]: with --restore, a node already online is not
 * an error; its pages come back either way.  With --json one result
 * object: node, device, chardev, result, bytes (memory_blocks for
 * firmware memory), errno and message on failure, and with --restore a
 * "restore" object (see fix_pages()).
 */
static int cmd_online(const char *arg, int restore)
{
	struct json_object *o = NULL, *r = NULL;
	struct dev *d;
	int node, ret;

	ret = resolve_evac_target(arg, &node, &d);
	if (ret)
		return ret;
	if (json)
		o = json_object_new_object();
	if (restore && node_online_bytes(node)) {
		if (o) {
			json_result(node, d, "nothing", 0, NULL, o);
			jsize(o, "bytes", node_online_bytes(node));
		}
	} else {
		last_errno = 0;
		ret = online_node(node, d, o);
		if (ret && o)
			json_result(node, d, result_of(ret),
				    last_errno ? last_errno :
				    ret == EX_NOTHING ? EALREADY : 0,
				    last_msg, o);
	}
	if (!ret && restore) {
		if (o)
			r = json_object_new_object();
		ret = fix_pages(node, PF_RESTORE, r);
		if (r) {
			jstr(r, "result", result_of(ret));
			jadd(o, "restore", r);
		}
	}
	if (o)
		jprint(o);
	return ret;
}

/*
 * cdmctl unspill: pages on the node that no policy put there go back to
 * system RAM.
 */
static int cmd_unspill(const char *arg)
{
	struct json_object *o = NULL;
	struct dev *d;
	int node, ret;

	ret = resolve(arg, &node, &d);
	if (ret)
		return ret;
	if (!node_online_bytes(node)) {
		err("node %d has no memory online", node);
		return EX_NOTHING;
	}
	if (json)
		o = json_object_new_object();
	ret = fix_pages(node, PF_UNSPILL, o);
	if (o) {
		jnum(o, "node", node);
		jstr(o, "device", d ? d->bdf : NULL);
		jstr(o, "result", result_of(ret));
		jprint(o);
	}
	return ret;
}

/* ---------------------------------------------------------------- users */

struct node_user {
	int pid;
	char comm[64];
	char cgroup[256];
	uint64_t bytes;
};

/*
 * Bytes process @pid has resident on @node, from numa_maps: the sum over
 * its mappings, so a page several processes map counts for each of them.
 * -1 if the process is gone or not ours to read (errno says which).
 */
static int64_t pid_node_bytes(int pid, int node)
{
	char rel[64], path[PATH_MAX], line[8192];
	uint64_t bytes = 0;
	FILE *f;

	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long cnt = 0, kps = 4, v;
		char *save = NULL;

		for (char *t = strtok_r(line, " \n", &save); t;
		     t = strtok_r(NULL, " \n", &save)) {
			int nd;

			if (sscanf(t, "N%d=%llu", &nd, &v) == 2 && nd == node)
				cnt = v;
			else if (sscanf(t, "kernelpagesize_kB=%llu", &v) == 1)
				kps = v;
		}
		bytes += cnt * kps * 1024;
	}
	fclose(f);
	return (int64_t)bytes;
}

static int cmp_user(const void *a, const void *b)
{
	const struct node_user *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->pid - y->pid;
}

/* cdmctl users: the processes with memory on a CDM node, largest first. */
static int cmd_users(const char *arg)
{
	struct node_user *u = NULL;
	size_t n = 0, cap = 0;
	unsigned long unreadable = 0;
	char path[PATH_MAX], a[32];
	uint64_t total = 0;
	struct dirent *de;
	struct dev *d;
	int node, ret;
	DIR *dir;

	ret = resolve(arg, &node, &d);
	if (ret)
		return ret;
	if (cdm_sysfs_path(path, sizeof(path), "/proc") ||
	    !(dir = opendir(path))) {
		err("users: /proc: %s", strerror(errno));
		return EX_FAIL;
	}
	while ((de = readdir(dir))) {
		char rel[64], cg[300];
		int64_t b;
		int pid;

		if (!is_number(de->d_name))
			continue;
		pid = atoi(de->d_name);
		b = pid_node_bytes(pid, node);
		if (b < 0) {
			if (errno == EACCES || errno == EPERM)
				unreadable++;
			continue;
		}
		if (!b)
			continue;
		if (n == cap) {
			struct node_user *nu;

			cap = cap ? 2 * cap : 32;
			nu = realloc(u, cap * sizeof(*u));
			if (!nu) {
				err("out of memory");
				free(u);
				closedir(dir);
				return EX_FAIL;
			}
			u = nu;
		}
		memset(&u[n], 0, sizeof(u[n]));
		u[n].pid = pid;
		u[n].bytes = (uint64_t)b;
		snprintf(rel, sizeof(rel), "/proc/%d/comm", pid);
		if (cdm_sysfs_read(u[n].comm, sizeof(u[n].comm), "%s", rel) < 0)
			snprintf(u[n].comm, sizeof(u[n].comm), "?");
		/* cgroup v2: one line "0::/path" */
		snprintf(rel, sizeof(rel), "/proc/%d/cgroup", pid);
		if (cdm_sysfs_read(cg, sizeof(cg), "%s", rel) >= 0 &&
		    !strncmp(cg, "0::", 3))
			snprintf(u[n].cgroup, sizeof(u[n].cgroup), "%.*s",
				 (int)strcspn(cg + 3, "\n"), cg + 3);
		total += u[n].bytes;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(u, n, sizeof(*u), cmp_user);

	if (json) {
		struct json_object *o = json_object_new_object();
		struct json_object *a = json_object_new_array();

		jnum(o, "node", node);
		jsize(o, "total_bytes", total);
		ju64(o, "unreadable_processes", unreadable);
		for (size_t i = 0; i < n; i++) {
			struct json_object *p = json_object_new_object();

			jnum(p, "pid", u[i].pid);
			jstr(p, "command", u[i].comm);
			jstr(p, "cgroup", u[i].cgroup);
			jsize(p, "bytes", u[i].bytes);
			json_object_array_add(a, p);
		}
		jadd(o, "processes", a);
		jprint(o);
	} else {
		printf("%-8s %-16s %10s  %s\n", "PID", "COMMAND", "SIZE",
		       "CGROUP");
		for (size_t i = 0; i < n; i++)
			printf("%-8d %-16s %10s  %s\n", u[i].pid, u[i].comm,
			       human(u[i].bytes, a, sizeof(a)),
			       u[i].cgroup[0] ? u[i].cgroup : "-");
		if (!n)
			printf("(no process has memory on node %d)\n", node);
	}
	if (unreadable)
		fprintf(stderr, "cdmctl: %lu processes of other users were not looked at (needs root)\n",
			unreadable);
	free(u);
	return EX_OK;
}

/* ------------------------------------------------------------------ run */

static int cmd_run(int node, int preferred, char **argv)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct bitmask *mask;
	int r = numacdm_node_is_cdm(node);

	if (r < 0) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	if (!r) {
		struct bitmask *cdm = numacdm_nodes();
		char list[256] = "";
		size_t off = 0;

		for (unsigned int i = 0; cdm && i < cdm->size; i++)
			if (numa_bitmask_isbitset(cdm, i) && off < sizeof(list))
				off += (size_t)snprintf(list + off,
							sizeof(list) - off,
							"%s%u", off ? "," : "",
							i);
		if (cdm)
			numa_bitmask_free(cdm);
		err("node %d is not a coherent device memory node (CDM nodes: %s); "
		    "use numactl for system-RAM nodes", node,
		    list[0] ? list : "none");
		return EX_NODEV;
	}
	if (numacdm_node_info(node, &in) || !in.present) {
		err("node %d has no memory online (evacuated?); bring it back with 'cdmctl online %d'",
		    node, node);
		return EX_NODEV;
	}
	mask = numa_bitmask_alloc((unsigned int)node + 1);
	if (!mask) {
		err("out of memory");
		return EX_FAIL;
	}
	numa_bitmask_setbit(mask, (unsigned int)node);
	if (set_mempolicy(preferred ? MPOL_PREFERRED : MPOL_BIND, mask->maskp,
			  mask->size + 1)) {
		err("set_mempolicy(%s, node %d): %s",
		    preferred ? "MPOL_PREFERRED" : "MPOL_BIND", node,
		    strerror(errno));
		numa_bitmask_free(mask);
		return errno == EINVAL ? EX_NODEV : EX_FAIL;
	}
	numa_bitmask_free(mask);
	execvp(argv[0], argv);
	err("%s: %s", argv[0], strerror(errno));
	return errno == ENOENT ? EX_NOTFOUND : EX_NOEXEC;
}

/* ---------------------------------------------------------------- where */

static int cmd_where(const char *pidarg)
{
	static uint64_t bytes[MAX_NODES];
	struct bitmask *cdm;
	char path[PATH_MAX], comm[64] = "", line[8192];
	long psz = sysconf(_SC_PAGESIZE);
	struct json_object *jo = NULL, *ja = NULL;
	uint64_t total = 0;
	FILE *f;
	int pid;

	if (!strcmp(pidarg, "self"))
		pid = (int)getpid();
	else if (is_number(pidarg) && strlen(pidarg) < 10)
		pid = atoi(pidarg);
	else {
		err("where: '%s' is not a process id", pidarg);
		return EX_USAGE;
	}
	snprintf(line, sizeof(line), "/proc/%d/comm", pid);
	if (cdm_sysfs_read(comm, sizeof(comm), "%s", line) < 0) {
		err("process %d: %s", pid, strerror(errno));
		return errno == ENOENT ? EX_NODEV : errno_exit(errno);
	}
	snprintf(line, sizeof(line), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", line) ||
	    !(f = fopen(path, "re"))) {
		err("process %d: %s: %s", pid, line, strerror(errno));
		return errno == ENOENT ? EX_NODEV : errno_exit(errno);
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t kps = (uint64_t)psz / 1024, cnt[64];
		int nodes[64], n = 0;
		char *save = NULL;

		for (char *t = strtok_r(line, " \n", &save); t;
		     t = strtok_r(NULL, " \n", &save)) {
			unsigned long long v;
			int nd;

			if (sscanf(t, "N%d=%llu", &nd, &v) == 2 && n < 64 &&
			    nd >= 0 && nd < MAX_NODES) {
				nodes[n] = nd;
				cnt[n++] = v;
			} else if (sscanf(t, "kernelpagesize_kB=%llu", &v) == 1) {
				kps = v;
			}
		}
		for (int i = 0; i < n; i++) {
			bytes[nodes[i]] += cnt[i] * kps * 1024;
			total += cnt[i] * kps * 1024;
		}
	}
	fclose(f);
	cdm = numacdm_nodes();
	if (!cdm) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	if (json) {
		jo = json_object_new_object();
		ja = json_object_new_array();
		jnum(jo, "pid", pid);
		jstr(jo, "comm", comm);
		jsize(jo, "total_bytes", total);
		jadd(jo, "nodes", ja);
	} else {
		printf("pid %d (%s)\n%-5s %-7s %12s %10s %6s\n", pid, comm,
		       "NODE", "KIND", "PAGES", "SIZE", "SHARE");
	}
	for (unsigned int i = 0; i < MAX_NODES; i++) {
		int is_cdm = i < cdm->size && numa_bitmask_isbitset(cdm, i);
		char a[32];

		if (!bytes[i])
			continue;
		if (json) {
			struct json_object *e = json_object_new_object();

			jnum(e, "node", i);
			jbool(e, "cdm", is_cdm);
			jsize(e, "bytes", bytes[i]);
			ju64(e, "pages", bytes[i] / (uint64_t)psz);
			json_object_array_add(ja, e);
		} else {
			printf("%-5u %-7s %12" PRIu64 " %10s %5.1f%%\n", i,
			       is_cdm ? "cdm" : "sysram",
			       bytes[i] / (uint64_t)psz,
			       human(bytes[i], a, sizeof(a)),
			       100.0 * (double)bytes[i] / (double)total);
		}
	}
	if (json) {
		jprint(jo);
	} else if (!total) {
		printf("(no resident pages)\n");
	}
	numa_bitmask_free(cdm);
	return EX_OK;
}

/* ----------------------------------------------------------------- main */

struct command {
	const char *name;
	int (*fn)(const struct command *c, int argc, char **argv);
	const char *summary;	/* one line, for "cdmctl help" */
	const char *usage;	/* "cdmctl help NAME", "cdmctl NAME --help" */
};

/*
 * Every option of every command, to tell "no such option" from "not an
 * option of this command".
 */
static const struct {
	const char *name;
	int letter;
	const char *commands;
} known_opts[] = {
	{ "json", 'j', "list, status, evacuate, online, where, users, unspill" },
	{ "human", 'u', "list, status, evacuate, online, where, users, unspill" },
	{ "quiet", 'q', "evacuate, online, unspill (or before the command)" },
	{ "timeout", 't', "evacuate" },
	{ "dry-run", 0, "evacuate" },
	{ "restore", 'r', "online" },
	{ "node", 'n', "run" },
	{ "preferred", 'p', "run" },
	{ "version", 'V', "cdmctl itself, before the command" },
};

static const char main_usage[] =
	"usage: cdmctl [-j|--json] [-u|--human] [-q|--quiet] COMMAND [ARGS]\n"
	"       cdmctl help [COMMAND] | cdmctl COMMAND --help | cdmctl -V|--version\n"
	"commands:\n";

static void cmd_usage(const struct command *c, FILE *f)
{
	fprintf(f, "usage: %s", c->usage);
}

/* An option getopt_long() did not take; prints why.  Returns EX_USAGE. */
static int bad_option(const struct command *c, int opt, char **argv)
{
	const char *arg = argv[optind - 1];
	char name[64];

	/*
	 * A long option: optopt 0 (unknown), or set (missing or unwanted
	 * value).  A short one in a cluster ("-xj") leaves optind on it, so
	 * argv[optind - 1] may be an earlier long option.
	 */
	if (!strncmp(arg, "--", 2) &&
	    (!optopt || opt == ':' || strchr(arg, '=')))
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
	else
		snprintf(name, sizeof(name), "-%c", optopt);
	if (opt == '?' && optopt && strchr(arg, '=') && !strncmp(arg, "--", 2)) {
		err("%s: option '%s' takes no value", c->fn ? c->name : "cdmctl",
		    name);
		return EX_USAGE;
	}
	if (opt == ':') {
		err("%s: option '%s' needs a value", c->fn ? c->name : "cdmctl",
		    name);
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(known_opts) / sizeof(known_opts[0]); i++) {
		int match = name[1] == '-' ?
			    !strncmp(name + 2, known_opts[i].name, strlen(name + 2)) &&
			    name[2] :
			    name[1] == known_opts[i].letter && !name[2];

		if (match && !c->fn) {
			err("option '%s' goes after the command (it is an option of: %s)",
			    name, known_opts[i].commands);
			return EX_USAGE;
		}
		if (match) {
			err("%s: option '%s' does not apply to '%s' (it is an option of: %s)",
			    c->name, name, c->name, known_opts[i].commands);
			return EX_USAGE;
		}
	}
	if (!c->fn)
		err("unknown option '%s' (see 'cdmctl --help')", name);
	else
		err("%s: unknown option '%s' (see 'cdmctl %s --help')", c->name,
		    name, c->name);
	return EX_USAGE;
}

/*
 * The options every command that prints data shares.  Returns -1 if @opt
 * is not one of them, else 0 to go on, or the exit status + 1000 to stop.
 */
#define OPT_DONE(r)	((r) + 1000)
static int common_opt(const struct command *c, int opt)
{
	switch (opt) {
	case 'j':
		json = 1;
		return 0;
	case 'u':
		human_sizes = 1;
		return 0;
	case 'q':
		quiet = 1;
		return 0;
	case 'h':
		cmd_usage(c, stdout);
		return OPT_DONE(EX_OK);
	default:
		return -1;
	}
}

#define COMMON_LONG \
	{ "json", no_argument, NULL, 'j' }, \
	{ "human", no_argument, NULL, 'u' }, \
	{ "help", no_argument, NULL, 'h' }
#define QUIET_LONG { "quiet", no_argument, NULL, 'q' }

/* --timeout's value: 0 to EVAC_MAX_MS. */
static int parse_ms(const char *opt, const char *s, long *v)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || end == s || !isdigit((unsigned char)s[0])) {
		err("%s: '%s' is not a number of milliseconds", opt, s);
		return EX_USAGE;
	}
	if (n > EVAC_MAX_MS) {
		err("%s: at most %u ms (0: no timeout)", opt, EVAC_MAX_MS);
		return EX_USAGE;
	}
	*v = (long)n;
	return EX_OK;
}

/*
 * The usual option loop: @extra handles a command's own options (returns
 * -1 for "not mine", like common_opt()).  Returns -1 to go on, else the
 * exit status.
 */
static int parse_opts(const struct command *c, int argc, char **argv,
		      const char *shortopts, const struct option *longopts,
		      int (*extra)(const struct command *, int, const char *))
{
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		r = common_opt(c, opt);
		if (r < 0 && extra)
			r = extra(c, opt, optarg);
		if (r < 0)
			return bad_option(c, opt, argv);
		if (r)
			return r >= 1000 ? r - 1000 : r;
	}
	return -1;
}

/*
 * parse_opts(), then the one positional argument, argv[optind]: -1 with
 * *@arg set to go on, else the exit status.
 */
static int parse_one_arg(const struct command *c, int argc, char **argv,
			 const char *shortopts, const struct option *longopts,
			 int (*extra)(const struct command *, int, const char *),
			 const char **arg)
{
	int r = parse_opts(c, argc, argv, shortopts, longopts, extra);

	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		err("%s needs exactly one argument (see 'cdmctl %s --help')",
		    c->name, c->name);
		return EX_USAGE;
	}
	*arg = argv[optind];
	return -1;
}

static int list_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, { 0 } };
	int r = parse_opts(c, argc, argv, ":juh", lo, NULL);

	if (r >= 0)
		return r;
	if (optind < argc) {
		err("%s takes no arguments", c->name);
		return EX_USAGE;
	}
	return cmd_list();
}

static int data_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, { 0 } };
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juh", lo, NULL, &arg);

	if (r >= 0)
		return r;
	if (!strcmp(c->name, "status"))
		return cmd_status(arg);
	if (!strcmp(c->name, "where"))
		return cmd_where(arg);
	return cmd_users(arg);
}

static long evac_timeout;
static int evac_dry_run, online_restore;

static int evacuate_opt(const struct command *c, int opt, const char *val)
{
	(void)c;
	switch (opt) {
	case 't':
		return parse_ms("--timeout", val, &evac_timeout);
	case 'D':
		evac_dry_run = 1;
		return 0;
	case 'r':
		online_restore = 1;
		return 0;
	}
	return -1;
}

static int evacuate_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONG,
		QUIET_LONG,
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ 0 }
	};
	const char *arg;
	int r;

	evac_timeout = -1;
	r = parse_one_arg(c, argc, argv, ":juqht:", lo, evacuate_opt, &arg);
	if (r >= 0)
		return r;
	if (evac_dry_run)
		return evacuate_dry_run(arg);
	return cmd_evacuate(arg, evac_timeout);
}

static int online_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONG,
		QUIET_LONG,
		{ "restore", no_argument, NULL, 'r' },
		{ 0 }
	};
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juqhr", lo, evacuate_opt, &arg);

	return r >= 0 ? r : cmd_online(arg, online_restore);
}

static int unspill_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, QUIET_LONG, { 0 } };
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juqh", lo, NULL, &arg);

	return r >= 0 ? r : cmd_unspill(arg);
}

/*
 * run --node: one node, as a number or a node list with a single node
 * ("1", "1-1"); "all" is every CDM node.  No command takes several nodes,
 * so a list with more is refused.  numacdm_parse_nodelist() rather than
 * numa_parse_nodestring(): the latter accepts only nodes with memory on
 * the running system, which an evacuated CDM node (or one of a
 * CDM_SYSFS_ROOT tree) is not; cmd_run() says what is wrong with the node.
 */
static int parse_node(const char *s, int *node)
{
	struct bitmask *m = strcmp(s, "all") ? numacdm_parse_nodelist(s) :
						numacdm_nodes();
	int n = 0;

	if (!m) {
		err("run: --node: '%s' is not a node number or node list", s);
		return EX_USAGE;
	}
	for (unsigned int i = 0; i < m->size; i++)
		if (numa_bitmask_isbitset(m, i)) {
			if (!n)
				*node = (int)i;
			n++;
		}
	numa_bitmask_free(m);
	if (n != 1) {
		err("run: --node '%s' is %d nodes: run binds to one node (use numactl --membind for several)",
		    s, n);
		return EX_USAGE;
	}
	return EX_OK;
}

static int run_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "preferred", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int opt, node = -1, preferred = 0, r;

	if (json || human_sizes) {
		err("run: --json and --human do not apply: run prints nothing of its own");
		return EX_USAGE;
	}
	optind = 0;
	opterr = 0;
	/* '+': options end at the first argument; CMD follows "--" */
	while ((opt = getopt_long(argc, argv, "+:n:ph", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			r = parse_node(optarg, &node);
			if (r)
				return r;
			break;
		case 'p':
			preferred = 1;
			break;
		case 'h':
			cmd_usage(c, stdout);
			return EX_OK;
		default:
			return bad_option(c, opt, argv);
		}
	}
	if (node < 0) {
		err("run needs --node N");
		return EX_USAGE;
	}
	if (optind >= argc || strcmp(argv[optind - 1], "--")) {
		err("usage: cdmctl run --node N [--preferred] -- CMD [ARGS...]");
		return EX_USAGE;
	}
	return cmd_run(node, preferred, argv + optind);
}

static int version_main(const struct command *c, int argc, char **argv)
{
	int r = parse_opts(c, argc, argv, ":h",
			   (const struct option[]){ { "help", no_argument, NULL, 'h' },
						    { 0 } }, NULL);

	if (r >= 0)
		return r;
	if (optind < argc) {
		err("%s takes no arguments", c->name);
		return EX_USAGE;
	}
	printf("cdmctl " VERSION "\n");
	return EX_OK;
}

static int help_main(const struct command *c, int argc, char **argv);

#define DATA_OPTS \
	"  -j, --json      JSON output\n" \
	"  -u, --human     sizes in JSON as strings (\"256.00 MiB\")\n" \
	"  -h, --help      this help\n"

static const struct command commands[] = {
	{ "list", list_main,
	  "every CDM node: device, size, use, state, distances",
	  "cdmctl list [-j] [-u]\n"
	  "Every CDM node: device, size, use, state, distances to system RAM.\n"
	  DATA_OPTS },
	{ "status", data_main, "details of one CDM node and its device",
	  "cdmctl status <dev|node> [-j] [-u]\n"
	  "Details of one CDM node and its device, with the device's stats.\n"
	  DATA_OPTS },
	{ "evacuate", evacuate_main,
	  "migrate everything off the node, remove its memory",
	  "cdmctl evacuate <dev|node> [-t MS] [--dry-run] [-q] [-j] [-u]\n"
	  "Migrate every page off the node and remove (firmware memory: offline)\n"
	  "its memory.  Progress on stderr: a bar on a terminal, else a line per 10 %.\n"
	  "  -t, --timeout MS  give up after MS ms (0 to 3600000) and put the memory\n"
	  "                    back; 0 = no timeout (the capi_sim driver has none:\n"
	  "                    its maximum, 3600000, is used).  Default: 10 s + 3 x the\n"
	  "                    time the node's used memory takes at the rate of the\n"
	  "                    device's last evacuation (8 MiB/s if none was\n"
	  "                    measured), at most 3600000 ms; --dry-run shows it.\n"
	  "      --dry-run     what would move, whether RAM has room, how long, the\n"
	  "                    default timeout; changes nothing\n"
	  "  -q, --quiet       no progress\n"
	  DATA_OPTS },
	{ "online", online_main, "add the device memory back",
	  "cdmctl online <dev|node> [-r] [-q] [-j] [-u]\n"
	  "Add the node's memory back (firmware memory: online its blocks).\n"
	  "  -r, --restore   also move back the pages whose policy names the node\n"
	  "                  (a node online already is then not an error)\n"
	  "  -q, --quiet     no progress\n"
	  DATA_OPTS },
	{ "run", run_main, "run a command with its memory on a CDM node",
	  "cdmctl run -n NODE [-p] -- CMD [ARGS...]\n"
	  "Run CMD with its memory bound to (or preferring) one CDM node.\n"
	  "  -n, --node NODE   a node number, or a list naming one node (\"all\":\n"
	  "                    every CDM node, if there is one)\n"
	  "  -p, --preferred   MPOL_PREFERRED instead of MPOL_BIND\n"
	  "  -h, --help        this help\n" },
	{ "where", data_main, "per-node memory residency of a process",
	  "cdmctl where <pid|self> [-j] [-u]\n"
	  "Per-node memory residency of a process.\n"
	  DATA_OPTS },
	{ "users", data_main, "processes with memory on the node, largest first",
	  "cdmctl users <dev|node> [-j] [-u]\n"
	  "Processes with memory on the node, largest first.\n"
	  DATA_OPTS },
	{ "unspill", unspill_main,
	  "move pages no policy put on the node back to system RAM",
	  "cdmctl unspill <dev|node> [-q] [-j] [-u]\n"
	  "Move the pages on the node whose policy does not name it (emergency\n"
	  "fallback) back to system RAM.\n"
	  "  -q, --quiet     no progress\n"
	  DATA_OPTS },
	{ "help", help_main, "this list, or a command's options",
	  "cdmctl help [COMMAND]\n" },
	{ "version", version_main, "cdmctl's version",
	  "cdmctl version\n" },
	{ NULL, NULL, NULL, NULL }
};

static void usage(FILE *f)
{
	fputs(main_usage, f);
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fputs("<dev> is a PCI address (0000:00:03.0) or a device name (capi_sim0).\n"
	      "-j/--json: machine-readable output (every command but run, help, version);\n"
	      "-u/--human: sizes in JSON as strings (\"256.00 MiB\"); -q/--quiet: no progress.\n"
	      "See cdmctl(8).\n", f);
}

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static int help_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	const struct command *t;
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (opt != 'h')
			return bad_option(c, opt, argv);
		cmd_usage(c, stdout);
		return EX_OK;
	}
	if (optind == argc) {
		usage(stdout);
		return EX_OK;
	}
	if (argc - optind > 1) {
		err("help takes at most one command");
		return EX_USAGE;
	}
	t = find_command(argv[optind]);
	if (!t) {
		err("help: unknown command '%s'", argv[optind]);
		return EX_USAGE;
	}
	cmd_usage(t, stdout);
	return EX_OK;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "human", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	static const struct command top = { "cdmctl", NULL, "", "" };
	const struct command *c;
	int opt;

	opterr = 0;
	/* '+': global options end at the command */
	while ((opt = getopt_long(argc, argv, "+:juqhV", lo, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = 1;
			break;
		case 'u':
			human_sizes = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("cdmctl " VERSION "\n");
			return EX_OK;
		default:
			return bad_option(&top, opt, argv);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	c = find_command(argv[optind]);
	if (!c) {
		err("unknown command '%s'", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	return c->fn(c, argc - optind, argv + optind);
}
