// SPDX-License-Identifier: GPL-2.0
/*
 * cdmctl - inspect and control coherent device memory (CDM) nodes.
 *
 *   cdmctl list [--json]
 *   cdmctl status <dev|node> [--json]
 *   cdmctl evacuate <dev|node> [--timeout MS] [--dry-run [--json]]
 *   cdmctl online <dev|node> [--restore]
 *   cdmctl run --node N [--preferred] -- CMD [ARGS...]
 *   cdmctl where <pid> [--json]
 *   cdmctl users <dev|node> [--json]
 *   cdmctl unspill <dev|node>
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

#include "numacdm.h"
#include "sysfs.h"

#define VERSION		"1.0"
#define NODE_DIR	"/sys/devices/system/node"
#define CAPI_SIM_DIR	"/sys/bus/pci/drivers/capi_sim"
#define MAX_NODES	1024
#define MAX_DEVS	64
#define EVAC_MAX_MS	3600000u

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

static int json;

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;

	fputs("cdmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

static int jfirst[32];
static int jdepth;

static void jsep(void)
{
	if (jdepth && !jfirst[jdepth])
		putchar(',');
	jfirst[jdepth] = 0;
}

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
 * paths) and may hold any bytes: what is not valid UTF-8 becomes U+FFFD,
 * so the output always parses.
 */
static void jstring(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	putchar('"');
	while (*s) {
		int n = utf8_seq_len(s);

		if (!n) {
			fputs("\\ufffd", stdout);
			s++;
		} else if (*s == '"' || *s == '\\') {
			printf("\\%c", *s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			printf("\\u%04x", *s++);
		} else {
			fwrite(s, 1, (size_t)n, stdout);
			s += n;
		}
	}
	putchar('"');
}

static void jkey(const char *k)
{
	jsep();
	if (k) {
		jstring(k);
		putchar(':');
	}
}

static void jopen(const char *k, char c)
{
	jkey(k);
	putchar(c);
	jfirst[++jdepth] = 1;
}

static void jclose(char c)
{
	putchar(c);
	jdepth--;
}

static void jstr(const char *k, const char *v)
{
	jkey(k);
	jstring(v);
}

static void jnum(const char *k, int64_t v)
{
	jkey(k);
	printf("%" PRId64, v);
}

static void ju64(const char *k, uint64_t v)
{
	jkey(k);
	printf("%" PRIu64, v);
}

static void jbool(const char *k, int v)
{
	jkey(k);
	fputs(v ? "true" : "false", stdout);
}

static void jnull(const char *k)
{
	jkey(k);
	fputs("null", stdout);
}

static void jend(void)
{
	putchar('\n');
}

/* Close an object whose last member is a list, and end the output. */
static void jend_list_object(void)
{
	jclose(']');
	jclose('}');
	jend();
}

/* ------------------------------------------------------------ list/status */

static const char *node_state(const struct numacdm_node_info *in,
			      const struct dev *d)
{
	if (d)
		return d->state;
	return in->present ? "online" : "offline";
}

static void json_node(const struct numacdm_node_info *in,
		      const struct dev *d, struct bitmask *sysram, int stats)
{
	int dist[MAX_NODES];

	jopen(NULL, '{');
	jnum("node", in->node);
	if (d) {
		jstr("device", d->bdf);
		if (d->misc[0])
			jstr("misc", d->misc);
		else
			jnull("misc");
	} else if (in->present && strcmp(in->owner, "none")) {
		jstr("device", in->owner);
		jnull("misc");
	} else {
		jnull("device");
		jnull("misc");
	}
	jstr("owner", in->owner);
	jstr("state", node_state(in, d));
	jbool("memory_online", in->present);
	ju64("size_bytes", d && d->size ? d->size : in->mem_total);
	ju64("total_bytes", in->mem_total);
	ju64("used_bytes", in->mem_used);
	ju64("free_bytes", in->mem_free);
	jstr("evacuation_state", numacdm_evac_state_name(in->evac_state));
	ju64("pages_migrated", in->pages_migrated);
	ju64("pages_remaining", in->pages_remaining);
	if (in->emergency_fallback < 0)
		jnull("emergency_fallback");
	else
		jbool("emergency_fallback", in->emergency_fallback);
	read_distances(in->node, dist);
	jopen("distance", '{');
	for (unsigned int i = 0; i < sysram->size && i < MAX_NODES; i++) {
		char k[16];

		if (!numa_bitmask_isbitset(sysram, i) || dist[i] < 0)
			continue;
		snprintf(k, sizeof(k), "%u", i);
		jnum(k, dist[i]);
	}
	jclose('}');
	if (stats) {
		char buf[2048];

		jopen("stats", '{');
		if (d && cdm_sysfs_read(buf, sizeof(buf),
					CAPI_SIM_DIR "/%s/stats", d->bdf) >= 0) {
			char *save = NULL;

			for (char *l = strtok_r(buf, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save)) {
				char key[64];
				unsigned long long v;

				if (sscanf(l, "%63s %llu", key, &v) == 2)
					ju64(key, v);
			}
		}
		jclose('}');
	}
	jclose('}');
}

static void json_nodelist(const char *k, struct bitmask *m)
{
	jopen(k, '[');
	for (unsigned int i = 0; i < m->size; i++)
		if (numa_bitmask_isbitset(m, i))
			jnum(NULL, i);
	jclose(']');
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
		jopen(NULL, '{');
		jbool("cdm_supported", supported);
		json_nodelist("sysram_nodes", sysram);
		jopen("cdm_nodes", '[');
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
			json_node(&in, d, sysram, 0);
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
		jend_list_object();
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
		json_node(&in, d, sysram, 1);
		jend();
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
	else
		snprintf(buf, len, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void progress(int node, double t0, int tty, int final)
{
	uint64_t done = 0, left = 0, total;
	double el = now_s() - t0, rate, pct;
	char eta[16];

	if (cdm_sysfs_read_u64(&done, NODE_DIR "/node%d/cdm/pages_migrated",
			       node) ||
	    cdm_sysfs_read_u64(&left, NODE_DIR "/node%d/cdm/pages_remaining",
			       node))
		return;	/* node already gone: the evacuation is over */
	total = done + left;
	rate = el > 0 ? (double)done / el : 0;
	pct = total ? 100.0 * (double)done / (double)total : (final ? 100 : 0);
	fmt_eta(rate > 0 ? (double)left / rate : -1, eta, sizeof(eta));
	if (tty) {
		int w = 30, fill = (int)(pct * w / 100);

		fprintf(stderr, "\r[%.*s%*s] %5.1f%% %" PRIu64 "/%" PRIu64
			" pages %.0f pages/s ETA %s ",
			fill, "##############################", w - fill, "",
			pct, done, total, rate, eta);
	} else {
		fprintf(stderr, "evacuate: node %d: %" PRIu64 "/%" PRIu64
			" pages (%.1f%%), %.0f pages/s, ETA %s\n", node, done,
			total, pct, rate, eta);
	}
}

/* Pages and microseconds of the device's last evacuation (0 if unknown). */
static void last_evacuation(const struct dev *d, uint64_t *pages, uint64_t *us)
{
	char buf[1024], *p;

	*pages = 0;
	*us = 0;
	if (cdm_sysfs_read(buf, sizeof(buf), CAPI_SIM_DIR "/%s/stats",
			   d->bdf) < 0)
		return;
	p = strstr(buf, "last_evacuated_pages ");
	if (p)
		*pages = strtoull(p + 21, NULL, 10);
	p = strstr(buf, "last_evacuation_us ");
	if (p)
		*us = strtoull(p + 19, NULL, 10);
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
 * RAM can take it, and how long it would take at the rate of the device's
 * last evacuation.  Reads only; exit 1 when RAM cannot take it (what the
 * evacuation itself would return), 0 otherwise.
 */
static int evacuate_dry_run(const char *arg)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	uint64_t avail = 0, pages = 0, us = 0;
	double est = -1;
	char a[32], b[32];
	struct dev *d;
	int node, ret, fits;

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
	if (d)
		last_evacuation(d, &pages, &us);
	if (pages && us)
		est = (double)in.mem_used / (double)(pages * 4096) *
		      (double)us / 1e6;
	if (json) {
		jopen(NULL, '{');
		jnum("node", node);
		jstr("owner", in.owner);
		ju64("in_use_bytes", in.mem_used);
		ju64("ram_available_bytes", avail);
		jbool("fits", fits);
		if (est >= 0) {
			jkey("estimated_seconds");
			printf("%.2f", est);
		} else {
			jnull("estimated_seconds");
		}
		jclose('}');
		jend();
	} else {
		printf("node %d (%s): %s in use would move to system RAM\n",
		       node, d ? d->bdf : in.owner,
		       human(in.mem_used, a, sizeof(a)));
		printf("system RAM available: %s: %s\n",
		       human(avail, b, sizeof(b)),
		       fits ? "fits" : "does NOT fit");
		if (est >= 0)
			printf("estimated time: %.1f s (at the rate of the last evacuation, %.1f MiB/s)\n",
			       est, (double)(pages * 4096) / 1048576.0 /
			       ((double)us / 1e6));
		else
			printf("estimated time: unknown (no earlier evacuation of this device)\n");
	}
	return fits ? EX_OK : EX_FAIL;
}

static int cmd_evacuate(const char *arg, unsigned int timeout)
{
	struct evac_job job = { .done = 0 };
	const char *who = "firmware";	/* the owner, for messages */
	struct dev *d;
	pthread_t th;
	int node, ret, tty = isatty(STDERR_FILENO);
	double t0, last = 0;
	uint64_t v = 0, us = 0;

	ret = resolve_evac_target(arg, &node, &d);
	if (ret)
		return ret;
	if (d) {
		who = d->bdf;
		if (!strcmp(d->state, "offline")) {
			err("%s: node %d is already evacuated (device offline)",
			    who, node);
			return EX_NOTHING;
		}
		snprintf(job.rel, sizeof(job.rel), CAPI_SIM_DIR "/%s/evacuate",
			 d->bdf);
		snprintf(job.val, sizeof(job.val), "%u\n", timeout ? timeout : 1);
	} else {
		if (!node_online_bytes(node)) {
			err("%s: node %d has no memory online (already evacuated?)",
			    who, node);
			return EX_NOTHING;
		}
		snprintf(job.rel, sizeof(job.rel), NODE_DIR "/node%d/cdm/evacuate",
			 node);
		/* the capi_sim driver's default, for one meaning everywhere */
		snprintf(job.val, sizeof(job.val), "%u\n",
			 timeout > 1 ? timeout : 10000);
	}
	t0 = now_s();
	if (pthread_create(&th, NULL, evac_thread, &job)) {
		err("cannot start the evacuation thread");
		return EX_FAIL;
	}
	while (!atomic_load(&job.done)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		double t = now_s();

		if (tty || t - last >= 1.0) {
			if (t - t0 >= 0.2)	/* quick ones print nothing */
				progress(node, t0, tty, 0);
			last = t;
		}
		nanosleep(&ts, NULL);
	}
	pthread_join(th, NULL);
	if (tty && now_s() - t0 >= 0.2)
		fputc('\n', stderr);

	switch (job.err) {
	case 0:
		if (!d) {
			cdm_sysfs_read_u64(&v, NODE_DIR
					   "/node%d/cdm/pages_migrated", node);
		} else {
			last_evacuation(d, &v, &us);
		}
		printf("node %d (%s) evacuated: %" PRIu64
		       " pages migrated in %.2f s\n", node, who, v,
		       us ? (double)us / 1e6 : now_s() - t0);
		if (!d)
			printf("its memory blocks are offline; bring them back with 'cdmctl online %d'\n",
			       node);
		return EX_OK;
	case EBUSY:
		cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/pages_remaining",
				   node);
		err("%s: evacuation of node %d timed out: %" PRIu64
		    " pages could not be migrated; the memory is back online",
		    who, node, v);
		return EX_EVAC;
	case EINTR:
		err("%s: evacuation of node %d interrupted; the memory is back online",
		    who, node);
		return EX_EVAC;
	case EALREADY:
		err("%s: node %d has no memory to evacuate", who, node);
		return EX_NOTHING;
	case EINVAL:
		err("%s: the request was rejected (timeout %u ms)", who,
		    timeout);
		return EX_USAGE;
	default:
		err("%s: evacuate: %s%s", who, strerror(job.err),
		    job.err == EACCES || job.err == EPERM ?
		    " (needs root)" : "");
		return errno_exit(job.err);
	}
}

/*
 * Memory firmware described at boot is offlined, not removed, by an
 * evacuation: online its blocks again (ZONE_MOVABLE: the kernel picks it
 * for a CDM node).
 */
static int online_firmware_node(int node)
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
	if (failed)
		return errno_exit(e);
	if (!n) {
		err("node %d is already online", node);
		return EX_NOTHING;
	}
	printf("node %d (firmware) online: %d memory blocks, %s\n", node, n,
	       human(node_online_bytes(node), a, sizeof(a)));
	return EX_OK;
}

/* Bring @node's memory back; EX_NOTHING if it is online already. */
static int online_node(int node, struct dev *d)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	char rel[PATH_MAX], a[32];

	if (!d)
		return online_firmware_node(node);
	if (!strcmp(d->state, "online")) {
		err("%s: node %d is already online", d->bdf, node);
		return EX_NOTHING;
	}
	snprintf(rel, sizeof(rel), CAPI_SIM_DIR "/%s/online", d->bdf);
	if (cdm_sysfs_write("1\n", "%s", rel)) {
		int e = errno;

		if (e == EALREADY) {
			err("%s: node %d is already online", d->bdf, node);
			return EX_NOTHING;
		}
		err("%s: online: %s%s", d->bdf, strerror(e),
		    e == EACCES || e == EPERM ? " (needs root)" : "");
		return errno_exit(e);
	}
	if (!numacdm_node_info(node, &in) && in.present)
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
	int shown;		/* a progress frame was printed */
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

/* End of the VMA that starts at @start in /proc/PID/maps, 0 if none. */
static unsigned long vma_end(FILE *maps, unsigned long start)
{
	char line[512];
	unsigned long a, b;

	rewind(maps);
	while (fgets(line, sizeof(line), maps))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a == start)
			return b;
	return 0;
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
	FILE *nm, *maps;

	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(nm = fopen(path, "re"))) {
		if (errno == EACCES || errno == EPERM)
			f->denied_procs++;
		return;		/* gone, or not ours to read */
	}
	snprintf(rel, sizeof(rel), "/proc/%d/maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(maps = fopen(path, "re"))) {
		fclose(nm);
		return;
	}
	while (fgets(line, sizeof(line), nm)) {
		struct fix_vma v = { .pid = pid, .pagesize = 4096 };
		char *pol = strchr(line, ' ');

		if (!pol || sscanf(line, "%lx", &v.start) != 1 ||
		    !fix_candidate(f, pol + 1, &v))
			continue;
		v.end = vma_end(maps, v.start);
		if (!v.end || fixer_add(f, &v))
			numa_bitmask_free(v.policy);
	}
	fclose(maps);
	fclose(nm);
}

static void fixer_progress(const struct page_fixer *f, double t0, int tty)
{
	const char *what = f->how == PF_RESTORE ? "restore" : "unspill";
	double el = now_s() - t0, rate = el > 0 ? f->bytes_moved / el : 0;
	double pct = f->bytes_total ? 100.0 * f->bytes_moved / f->bytes_total : 100;
	char a[32], b[32], eta[16];

	fmt_eta(rate > 0 ? (f->bytes_total - f->bytes_moved) / rate : -1, eta,
		sizeof(eta));
	human(f->bytes_moved, a, sizeof(a));
	human(f->bytes_total, b, sizeof(b));
	if (tty)
		fprintf(stderr, "\r%s: node %d: %s of %s (%5.1f%%), %.1f MiB/s, ETA %s ",
			what, f->node, a, b, pct, rate / 1048576, eta);
	else
		fprintf(stderr, "%s: node %d: %s of %s (%.1f%%), %.1f MiB/s, ETA %s\n",
			what, f->node, a, b, pct, rate / 1048576, eta);
}

#define FIX_BATCH	512

/* Move the misplaced pages of one VMA to its target node. */
static void fix_vma(struct page_fixer *f, const struct fix_vma *v, double t0,
		    int tty, double *last)
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
		if (tty || now_s() - *last >= 1.0) {
			if (now_s() - t0 >= 0.2) {
				fixer_progress(f, t0, tty);
				f->shown = 1;
			}
			*last = now_s();
		}
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
static int fix_pages(int node, enum page_fix how)
{
	struct page_fixer f = { .how = how, .node = node };
	const char *done = how == PF_RESTORE ? "restored" : "returned to system RAM";
	char path[PATH_MAX], a[32];
	int tty = isatty(STDERR_FILENO), ret = EX_OK;
	double t0 = now_s(), last = 0;
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

	for (size_t i = 0; i < f.nr; i++) {
		fix_vma(&f, &f.v[i], t0, tty, &last);
		numa_bitmask_free(f.v[i].policy);
	}
	free(f.v);
	numa_bitmask_free(f.cdm);
	if (f.shown) {
		fixer_progress(&f, t0, tty);	/* the last frame */
		if (tty)
			fputc('\n', stderr);
	}

	printf("node %d: %s %" PRIu64 " pages (%s) in %.2f s\n", node, done,
	       (uint64_t)f.moved, human(f.bytes_moved, a, sizeof(a)),
	       now_s() - t0);
	if (f.shared)
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

/*
 * cdmctl online [--restore]: with --restore, a node already online is not
 * an error; its pages come back either way.
 */
static int cmd_online(const char *arg, int restore)
{
	struct dev *d;
	int node, ret;

	ret = resolve_evac_target(arg, &node, &d);
	if (ret)
		return ret;
	if (restore && node_online_bytes(node))
		return fix_pages(node, PF_RESTORE);
	ret = online_node(node, d);
	if (ret || !restore)
		return ret;
	return fix_pages(node, PF_RESTORE);
}

/*
 * cdmctl unspill: pages on the node that no policy put there go back to
 * system RAM.
 */
static int cmd_unspill(const char *arg)
{
	struct dev *d;
	int node, ret;

	ret = resolve(arg, &node, &d);
	if (ret)
		return ret;
	if (!node_online_bytes(node)) {
		err("node %d has no memory online", node);
		return EX_NOTHING;
	}
	return fix_pages(node, PF_UNSPILL);
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
		jopen(NULL, '{');
		jnum("node", node);
		ju64("total_bytes", total);
		ju64("unreadable_processes", unreadable);
		jopen("processes", '[');
		for (size_t i = 0; i < n; i++) {
			jopen(NULL, '{');
			jnum("pid", u[i].pid);
			jstr("command", u[i].comm);
			jstr("cgroup", u[i].cgroup);
			ju64("bytes", u[i].bytes);
			jclose('}');
		}
		jend_list_object();
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
		jopen(NULL, '{');
		jnum("pid", pid);
		jstr("comm", comm);
		ju64("total_bytes", total);
		jopen("nodes", '[');
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
			jopen(NULL, '{');
			jnum("node", i);
			jbool("cdm", is_cdm);
			ju64("bytes", bytes[i]);
			ju64("pages", bytes[i] / (uint64_t)psz);
			jclose('}');
		} else {
			printf("%-5u %-7s %12" PRIu64 " %10s %5.1f%%\n", i,
			       is_cdm ? "cdm" : "sysram",
			       bytes[i] / (uint64_t)psz,
			       human(bytes[i], a, sizeof(a)),
			       100.0 * (double)bytes[i] / (double)total);
		}
	}
	if (json) {
		jend_list_object();
	} else if (!total) {
		printf("(no resident pages)\n");
	}
	numa_bitmask_free(cdm);
	return EX_OK;
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fputs("usage: cdmctl [--json] COMMAND [ARGS]\n"
	      "  list                          every CDM node: device, size, use, state, distances\n"
	      "  status <dev|node>             details of one CDM node and its device\n"
	      "  evacuate <dev|node> [--timeout MS] [--dry-run]\n"
	      "                                migrate everything off the node, remove its memory;\n"
	      "                                --dry-run: what would move, whether RAM has room, how long\n"
	      "  online <dev|node> [--restore] add the device memory back; --restore also moves\n"
	      "                                back the pages whose policy names the node\n"
	      "  run --node N [--preferred] -- CMD [ARGS...]\n"
	      "                                run CMD with its memory bound to (or preferring) node N\n"
	      "  where <pid|self>              per-node memory residency of a process\n"
	      "  users <dev|node>              processes with memory on the node, largest first\n"
	      "  unspill <dev|node>            move pages no policy put on the node (emergency\n"
	      "                                fallback) back to system RAM\n"
	      "<dev> is a PCI address (0000:00:03.0) or a device name (capi_sim0).\n"
	      "--json (list, status, where, users, evacuate --dry-run): machine-readable output.\n"
	      "See cdmctl(8).\n",
	      f);
}

int main(int argc, char **argv)
{
	char *args[8];
	const char *cmd = NULL;
	unsigned long timeout = 0;
	int nargs = 0, node = -1, preferred = 0, restore = 0, dry_run = 0, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--json") || !strcmp(a, "-j")) {
			json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return EX_OK;
		} else if (!strcmp(a, "--version")) {
			printf("cdmctl " VERSION "\n");
			return EX_OK;
		} else if (!strcmp(a, "--preferred")) {
			preferred = 1;
		} else if (!strcmp(a, "--restore")) {
			restore = 1;
		} else if (!strcmp(a, "--dry-run")) {
			dry_run = 1;
		} else if (!strcmp(a, "--node") || !strcmp(a, "-n") ||
			   !strcmp(a, "--timeout") || !strcmp(a, "-t")) {
			char *end;
			unsigned long v;

			if (i + 1 >= argc) {
				err("%s needs a value", a);
				return EX_USAGE;
			}
			errno = 0;
			v = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] ||
			    !isdigit((unsigned char)argv[i][0]) || v > INT_MAX) {
				err("%s: '%s' is not a number", a, argv[i]);
				return EX_USAGE;
			}
			if (a[2] == 'n' || a[1] == 'n')
				node = (int)v;
			else
				timeout = v;
		} else if (a[0] == '-' && a[1]) {
			err("unknown option '%s'", a);
			usage(stderr);
			return EX_USAGE;
		} else if (!cmd) {
			cmd = a;
		} else if (nargs < 8) {
			args[nargs++] = argv[i];
		} else {
			err("too many arguments");
			return EX_USAGE;
		}
	}
	if (!cmd) {
		usage(stderr);
		return EX_USAGE;
	}
	if (restore && strcmp(cmd, "online")) {
		err("--restore is only used with 'online'");
		return EX_USAGE;
	}
	if (dry_run && strcmp(cmd, "evacuate")) {
		err("--dry-run is only used with 'evacuate'");
		return EX_USAGE;
	}
	if (strcmp(cmd, "run") && i < argc) {
		err("'--' is only used with 'run'");
		return EX_USAGE;
	}

	if (!strcmp(cmd, "list")) {
		if (nargs)
			goto extra;
		return cmd_list();
	}
	if (!strcmp(cmd, "status") || !strcmp(cmd, "evacuate") ||
	    !strcmp(cmd, "online") || !strcmp(cmd, "where") ||
	    !strcmp(cmd, "users") || !strcmp(cmd, "unspill")) {
		if (nargs != 1) {
			err("%s needs exactly one argument", cmd);
			return EX_USAGE;
		}
		if (!strcmp(cmd, "status"))
			return cmd_status(args[0]);
		if (!strcmp(cmd, "where"))
			return cmd_where(args[0]);
		if (!strcmp(cmd, "users"))
			return cmd_users(args[0]);
		if (!strcmp(cmd, "unspill") && !json)
			return cmd_unspill(args[0]);
		if (dry_run)
			return evacuate_dry_run(args[0]);
		if (json) {
			err("--json is for list, status, where, users and evacuate --dry-run");
			return EX_USAGE;
		}
		if (!strcmp(cmd, "online"))
			return cmd_online(args[0], restore);
		if (timeout > EVAC_MAX_MS) {
			err("--timeout: at most %u ms", EVAC_MAX_MS);
			return EX_USAGE;
		}
		return cmd_evacuate(args[0], (unsigned int)timeout);
	}
	if (!strcmp(cmd, "run")) {
		if (node < 0) {
			err("run needs --node N");
			return EX_USAGE;
		}
		if (nargs || i >= argc) {
			err("usage: cdmctl run --node N [--preferred] -- CMD [ARGS...]");
			return EX_USAGE;
		}
		return cmd_run(node, preferred, argv + i);
	}
	err("unknown command '%s'", cmd);
	usage(stderr);
	return EX_USAGE;
extra:
	err("%s takes no arguments", cmd);
	return EX_USAGE;
}
