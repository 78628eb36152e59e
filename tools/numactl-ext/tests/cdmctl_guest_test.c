// SPDX-License-Identifier: GPL-2.0
/*
 * Guest test of libnumacdm and cdmctl against the real kernel and the
 * capi_sim driver (phase "main": the module is loaded, both devices online).
 *
 * Every assertion is on measured state: node lists from sysfs, the device's
 * own view through its ioctl, page placement from move_pages(2), data
 * checksums, and cdmctl's exit codes and --json output (parsed with
 * json-c).  cdmctl is found in
 * $CDMCTL, next to this binary (or in ../bin/), or as /usr/bin/cdmctl.
 *
 * The evacuate/online test leaves every device online, as it found it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <numa.h>
#include <numaif.h>
#include <json-c/json.h>

#include "numacdm.h"
#include "capi_sim_uapi.h"
#include "cdm_sysfs.h"
#include "kselftest_harness.h"

#define CAPI_DRV	"/sys/bus/pci/drivers/capi_sim"
#define MAXN		64
#define MAXD		8
#define PG		4096UL

struct gdev {
	char bdf[64];
	char misc[64];
	int node;
	unsigned long long size;
};

static char cdmctl_path[PATH_MAX];
/* The standard error of the last cdmctl run. */
static char cdmctl_err[8192];

/* ------------------------------------------------------------- helpers */

/* Member @k of object @o, NULL if none (or null). */
static struct json_object *jget(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

/* The integer member @k of @o, -1 if there is none. */
static long long jint(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);

	return v && json_object_is_type(v, json_type_int) ?
	       (long long)json_object_get_int64(v) : -1;
}

static const char *jstrv(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);

	return v && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : "";
}

/* 1/0 for a boolean member @k of @o, -1 if there is none. */
static int jbool(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);

	return v && json_object_is_type(v, json_type_boolean) ?
	       json_object_get_boolean(v) : -1;
}

/*
 * The top-level member @k of the JSON text @out, as JSON text, is @want
 * ("true", "\"idle\"").
 */
static int json_is(const char *out, const char *k, const char *want)
{
	struct json_object *j = json_tokener_parse(out);
	struct json_object *v = jget(j, k);
	int r = v && !strcmp(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
			     want);

	json_object_put(j);
	return r;
}

/* The object of array @a whose integer member @k is @val, NULL if none. */
static struct json_object *jfind(struct json_object *a, const char *k,
				 long long val)
{
	size_t n = a && json_object_is_type(a, json_type_array) ?
		   json_object_array_length(a) : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (jint(e, k) == val)
			return e;
	}
	return NULL;
}

static unsigned long long mask_bits(struct bitmask *m)
{
	unsigned long long r = 0;

	for (unsigned int i = 0; m && i < m->size && i < 64; i++)
		if (numa_bitmask_isbitset(m, i))
			r |= 1ULL << i;
	if (m)
		numa_bitmask_free(m);
	return r;
}

static int scan_devs(struct gdev *d, int max)
{
	char path[PATH_MAX], buf[64];
	struct dirent *de;
	DIR *dir = opendir(CAPI_DRV);
	int n = 0;

	while (dir && (de = readdir(dir)) && n < max) {
		DIR *m;
		struct dirent *me;

		if (!strchr(de->d_name, ':') || strlen(de->d_name) >= 64)
			continue;
		memset(&d[n], 0, sizeof(d[n]));
		memcpy(d[n].bdf, de->d_name, strlen(de->d_name) + 1);
		snprintf(path, sizeof(path), CAPI_DRV "/%s/node", d[n].bdf);
		if (read_str(path, buf, sizeof(buf)) < 0)
			continue;
		d[n].node = atoi(buf);
		snprintf(path, sizeof(path), CAPI_DRV "/%s/size", d[n].bdf);
		if (read_str(path, buf, sizeof(buf)) >= 0)
			d[n].size = strtoull(buf, NULL, 10);
		snprintf(path, sizeof(path), CAPI_DRV "/%s/misc", d[n].bdf);
		m = opendir(path);
		while (m && (me = readdir(m)))
			if (me->d_name[0] != '.' && strlen(me->d_name) < 64) {
				memcpy(d[n].misc, me->d_name,
				       strlen(me->d_name) + 1);
				break;
			}
		if (m)
			closedir(m);
		n++;
	}
	if (dir)
		closedir(dir);
	return n;
}

static void dev_state(const struct gdev *d, char *buf, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), CAPI_DRV "/%s/state", d->bdf);
	if (read_str(path, buf, len) < 0)
		snprintf(buf, len, "?");
}

/*
 * Run cdmctl with args (NULL-terminated), as user @uid unless it is -1;
 * stdout into out; returns the exit status.
 */
static int vcdmctl(int uid, char *out, size_t len, va_list ap)
{
	static char ebuf[8192];
	char *argv[16];
	int n = 0, st, fd, efd;
	pid_t pid;
	ssize_t r;

	argv[n++] = cdmctl_path;
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	argv[n] = NULL;
	fd = memfd_create("cdmctl-out", 0);
	efd = memfd_create("cdmctl-err", 0);
	if (fd < 0 || efd < 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (!pid) {
		dup2(fd, 1);
		dup2(efd, 2);
		if (uid >= 0 && (setgid((gid_t)uid) || setuid((uid_t)uid)))
			_exit(98);
		execv(cdmctl_path, argv);
		_exit(99);
	}
	waitpid(pid, &st, 0);
	r = pread(fd, out, len - 1, 0);
	out[r > 0 ? r : 0] = '\0';
	close(fd);
	/* cdmctl's messages as TAP diagnostics. */
	r = pread(efd, ebuf, sizeof(ebuf) - 1, 0);
	ebuf[r > 0 ? r : 0] = '\0';
	close(efd);
	memcpy(cdmctl_err, ebuf, sizeof(cdmctl_err));
	for (char *save = NULL, *l = strtok_r(ebuf, "\r\n", &save); l;
	     l = strtok_r(NULL, "\r\n", &save))
		printf("#   [stderr] %s\n", l);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cdmctl(char *out, size_t len, ...)
{
	va_list ap;
	int r;

	va_start(ap, len);
	r = vcdmctl(-1, out, len, ap);
	va_end(ap);
	return r;
}

static int cdmctl_as(int uid, char *out, size_t len, ...)
{
	va_list ap;
	int r;

	va_start(ap, len);
	r = vcdmctl(uid, out, len, ap);
	va_end(ap);
	return r;
}

/*
 * Nodes of @n pages at @p in process @pid (0: this one), by move_pages(2);
 * returns the number of pages on a node of @mask (nodes 0-63), -1 on
 * error.  *@other: the node (or negative status) of a page outside @mask,
 * -1 if none.
 */
static long pid_pages_in(pid_t pid, void *p, long n, unsigned long long mask,
			 int *other)
{
	void **pages = calloc((size_t)n, sizeof(void *));
	int *status = calloc((size_t)n, sizeof(int));
	long on = 0;

	*other = -1;
	if (!pages || !status) {
		free(pages);
		free(status);
		return -1;
	}
	for (long i = 0; i < n; i++)
		pages[i] = (char *)p + i * PG;
	if (move_pages(pid, (unsigned long)n, pages, NULL, status, 0)) {
		on = -1;
		goto out;
	}
	for (long i = 0; i < n; i++) {
		if (status[i] >= 0 && status[i] < 64 && (mask >> status[i] & 1))
			on++;
		else
			*other = status[i];
	}
out:
	free(pages);
	free(status);
	return on;
}

/* Nodes of @n pages at @p; returns the number of pages on @node. */
static long pages_on(void *p, long n, int node, int *other)
{
	return pid_pages_in(0, p, n, node >= 0 && node < 64 ? 1ULL << node : 0,
			    other);
}

static uint64_t checksum(const unsigned char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int cdm_available(struct gdev *d, int *nd)
{
	char buf[64];

	if (read_str(NODE_SYS "/has_coherent_device", buf, sizeof(buf)) < 0)
		return 0;
	*nd = scan_devs(d, MAXD);
	return *nd > 0;
}

/* A device whose memory is online (preferring the smallest). */
static struct gdev *online_dev(struct gdev *d, int nd)
{
	struct gdev *best = NULL;
	char st[32];

	for (int i = 0; i < nd; i++) {
		dev_state(&d[i], st, sizeof(st));
		if (strcmp(st, "online"))
			continue;
		if (!best || d[i].size < best->size)
			best = &d[i];
	}
	return best;
}

/*
 * @sz bytes filled with @fill on the node of the smallest online device,
 * which goes to *@dv (NULL when no device is online: the caller skips).
 */
static char *fill_on_online_dev(struct gdev *d, int nd, struct gdev **dv,
				size_t sz, int fill)
{
	char *p;

	*dv = online_dev(d, nd);
	if (!*dv)
		return NULL;
	p = numacdm_alloc(sz, (*dv)->node);
	if (p)
		memset(p, fill, sz);
	return p;
}

#define NEED_CDM(d, nd)							\
	do {								\
		if (!cdm_available(d, &nd))				\
			SKIP(return, "no CDM support or no capi_sim device"); \
	} while (0)

/* ---------------------------------------------------------- lib tests */

TEST(lib_node_sets)
{
	struct gdev d[MAXD];
	int nd;
	unsigned long long cdm, ram, mem, cpu, hcd;

	NEED_CDM(d, nd);
	cdm = mask_bits(numacdm_nodes());
	ram = mask_bits(numacdm_sysram_nodes());
	mem = node_state_mask("has_memory");
	cpu = node_state_mask("has_cpu");
	hcd = node_state_mask("has_coherent_device");
	ASSERT_EQ(cdm, hcd);
	ASSERT_NE(0ULL, cdm);
	EXPECT_EQ(0ULL, cdm & cpu) TH_LOG("a CDM node has CPUs");
	EXPECT_EQ(0ULL, cdm & ram);
	EXPECT_EQ(mem & ~cdm, ram);
	EXPECT_NE(0ULL, ram & 1ULL) TH_LOG("node 0 must be system RAM");
	for (int i = 0; i < nd; i++) {
		EXPECT_TRUE(cdm & (1ULL << d[i].node))
			TH_LOG("%s: node %d not CDM", d[i].bdf, d[i].node);
		EXPECT_EQ(1, numacdm_node_is_cdm(d[i].node));
	}
	EXPECT_EQ(0, numacdm_node_is_cdm(0));
}

TEST(lib_node_of_device_matches_ioctl)
{
	struct gdev d[MAXD];
	int nd;

	NEED_CDM(d, nd);
	for (int i = 0; i < nd; i++) {
		struct capi_sim_info info = { 0 };
		char dev[96], shortbdf[64];
		int fd;

		EXPECT_EQ(d[i].node, numacdm_node_of_device(d[i].bdf));
		snprintf(shortbdf, sizeof(shortbdf), "%s", d[i].bdf + 5);
		EXPECT_EQ(d[i].node, numacdm_node_of_device(shortbdf));
		ASSERT_NE('\0', d[i].misc[0]) TH_LOG("%s: no misc device", d[i].bdf);
		EXPECT_EQ(d[i].node, numacdm_node_of_device(d[i].misc));
		snprintf(dev, sizeof(dev), "/dev/%s", d[i].misc);
		EXPECT_EQ(d[i].node, numacdm_node_of_device(dev));
		fd = open(dev, O_RDWR);
		ASSERT_LE(0, fd) TH_LOG("open %s: %m", dev);
		ASSERT_EQ(0, ioctl(fd, CAPI_SIM_IOC_INFO, &info));
		close(fd);
		EXPECT_EQ(info.node, d[i].node);
		EXPECT_EQ(info.size, d[i].size);
	}
	errno = 0;
	EXPECT_EQ(-1, numacdm_node_of_device("0000:ff:1f.7"));
	EXPECT_EQ(ENODEV, errno);
}

TEST(lib_alloc_cdm_places_pages)
{
	struct gdev d[MAXD], *dv;
	size_t sz = 8UL << 20;
	long n = (long)(sz / PG), on;
	int nd, other;
	char *p;

	NEED_CDM(d, nd);
	p = fill_on_online_dev(d, nd, &dv, sz, 0xa5);
	if (!dv)
		SKIP(return, "no device online");
	ASSERT_NE(NULL, p) TH_LOG("numacdm_alloc: %m");
	on = pages_on(p, n, dv->node, &other);
	EXPECT_EQ(n, on) TH_LOG("a page is on node %d", other);
	EXPECT_EQ(0, numacdm_free(p, sz));

	errno = 0;
	EXPECT_EQ(NULL, numacdm_alloc(PG, 0));
	EXPECT_EQ(EINVAL, errno);
}

/* ------------------------------------------------------- cdmctl tests */

TEST(cdmctl_list_json)
{
	struct gdev d[MAXD];
	static char out[65536];
	struct json_object *j, *s;
	int nd;

	NEED_CDM(d, nd);
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "list", "--json", NULL));
	ASSERT_EQ('{', out[0]);
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	s = jget(j, "sysram_nodes");
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, json_object_get_int(json_object_array_get_idx(s, 0)));
	for (int i = 0; i < nd; i++) {
		struct json_object *e = jfind(jget(j, "cdm_nodes"),
					      "target_node", d[i].node);

		EXPECT_NE(NULL, e) TH_LOG("no node %d in %s", d[i].node, out);
		EXPECT_STREQ(d[i].bdf, jstrv(e, "device"));
		EXPECT_STREQ(d[i].misc, jstrv(e, "chardev"));
		EXPECT_EQ((long long)d[i].size, jint(e, "size"));
	}
	json_object_put(j);
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "list", NULL));
	EXPECT_NE(NULL, strstr(out, d[0].bdf));
}

TEST(cdmctl_status)
{
	struct gdev d[MAXD];
	static char out[65536];
	struct json_object *j;
	char node[16];
	int nd, ncdm;

	NEED_CDM(d, nd);
	snprintf(node, sizeof(node), "%d", d[0].node);
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", node, "--json", NULL));
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	EXPECT_STREQ(d[0].bdf, jstrv(j, "device")) TH_LOG("%s", out);
	EXPECT_LE(0, jint(jget(j, "stats"), "resident_pages")) TH_LOG("%s", out);
	json_object_put(j);
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", d[0].misc, NULL));
	EXPECT_NE(NULL, strstr(out, d[0].bdf));
	EXPECT_EQ(3, cdmctl(out, sizeof(out), "status", "0", NULL));
	EXPECT_EQ(3, cdmctl(out, sizeof(out), "status", "capi_sim99", NULL));

	/* "all": one object per CDM node, an array when there are several */
	ncdm = __builtin_popcountll(mask_bits(numacdm_nodes()));
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", "all", "--json", NULL))
		TH_LOG("%s", out);
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	if (ncdm > 1) {
		EXPECT_TRUE(json_object_is_type(j, json_type_array))
			TH_LOG("%s", out);
		EXPECT_EQ(ncdm, (int)json_object_array_length(j));
		EXPECT_NE(NULL, jfind(j, "target_node", d[0].node))
			TH_LOG("%s", out);
	} else {
		EXPECT_EQ(d[0].node, jint(j, "target_node")) TH_LOG("%s", out);
	}
	json_object_put(j);
}

/* Child side of cdmctl_run: checks its policy and where its memory goes. */
/*
 * The command cdmctl run starts: its policy must be @mode over the nodes
 * in @list ("1" or "1,2"), and 4 MiB it touches must be on those nodes.
 */
static int run_child(const char *list, int mode)
{
	unsigned long mask[4] = { 0 }, want = 0;
	size_t sz = 4UL << 20;
	int got = -1, other;
	char *p, *end;

	for (const char *s = list; *s; s = *end ? end + 1 : end) {
		long n = strtol(s, &end, 10);

		if (end == s || n < 0 || n >= 64)
			return 9;
		want |= 1UL << n;
	}
	if (get_mempolicy(&got, mask, 256, NULL, 0))
		return 10;
	if (got != mode)
		return 11;
	if (mask[0] != want || mask[1] || mask[2] || mask[3])
		return 12;
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return 13;
	memset(p, 1, sz);
	if (pid_pages_in(0, p, (long)(sz / PG), want, &other) !=
	    (long)(sz / PG))
		return 14;
	return 0;
}

TEST(cdmctl_run)
{
	struct gdev d[MAXD], *dv;
	char out[4096], node[16], self[PATH_MAX];
	ssize_t n;
	int nd;

	NEED_CDM(d, nd);
	dv = online_dev(d, nd);
	if (!dv)
		SKIP(return, "no device online");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ASSERT_LT(0, n);
	self[n] = '\0';
	snprintf(node, sizeof(node), "%d", dv->node);
	EXPECT_EQ(0, cdmctl(out, sizeof(out), "run", "--node", node, "--", self,
			    "--child", node, "bind", NULL));
	EXPECT_EQ(0, cdmctl(out, sizeof(out), "run", "--node", node,
			    "--preferred", "--", self, "--child", node,
			    "preferred", NULL));

	/* The exit status of the command is passed through. */
	EXPECT_EQ(7, cdmctl(out, sizeof(out), "run", "--node", node, "--",
			    "/bin/sh", "-c", "exit 7", NULL));
	/* A system-RAM node is refused with exit code 3. */
	EXPECT_EQ(3, cdmctl(out, sizeof(out), "run", "--node", "0", "--",
			    "/bin/true", NULL));
	EXPECT_EQ(127, cdmctl(out, sizeof(out), "run", "--node", node, "--",
			      "/nonexistent", NULL));
}

/* A node list: MPOL_BIND or MPOL_PREFERRED_MANY over all of it. */
TEST(cdmctl_run_node_list)
{
	struct gdev d[MAXD];
	char out[4096], list[64] = "", all[64] = "", self[PATH_MAX];
	char cdm[256], mem[256], arg[32];
	struct bitmask *cdmm, *memm;
	int nd, n = 0, lo = -1;
	size_t off = 0;
	ssize_t len;

	NEED_CDM(d, nd);
	for (int node = 0; node < 64; node++)
		for (int i = 0; i < nd; i++) {
			char st[32];

			dev_state(&d[i], st, sizeof(st));
			if (d[i].node != node || strcmp(st, "online"))
				continue;
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%s%d", n ? "," : "", node);
			if (lo < 0)
				lo = node;
			n++;
		}
	if (n < 2)
		SKIP(return, "fewer than two devices online");
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ASSERT_LT(0, len);
	self[len] = '\0';
	EXPECT_EQ(0, cdmctl(out, sizeof(out), "run", "--node", list, "--",
			    self, "--child", list, "bind", NULL));
	EXPECT_EQ(0, cdmctl(out, sizeof(out), "run", "-n", list, "-p", "--",
			    self, "--child", list, "preferred_many", NULL));
	/* "all": every CDM node with memory online (sysfs, not devices). */
	ASSERT_LT(0, read_str(NODE_SYS "/has_coherent_device", cdm,
			      sizeof(cdm)));
	ASSERT_LT(0, read_str(NODE_SYS "/has_memory", mem, sizeof(mem)));
	cdmm = numacdm_parse_nodelist(cdm);
	memm = numacdm_parse_nodelist(mem);
	ASSERT_TRUE(cdmm && memm);
	off = 0;
	for (unsigned int i = 0; i < cdmm->size && i < memm->size; i++)
		if (numa_bitmask_isbitset(cdmm, i) &&
		    numa_bitmask_isbitset(memm, i))
			off += (size_t)snprintf(all + off, sizeof(all) - off,
						"%s%u", off ? "," : "", i);
	numa_bitmask_free(cdmm);
	numa_bitmask_free(memm);
	EXPECT_EQ(0, cdmctl(out, sizeof(out), "run", "--node", "all", "--",
			    self, "--child", all, "bind", NULL));
	/* A system-RAM node in the list is refused before anything runs. */
	snprintf(arg, sizeof(arg), "0,%d", lo);
	EXPECT_EQ(3, cdmctl(out, sizeof(out), "run", "--node", arg, "--",
			    "/bin/true", NULL));
}

TEST(cdmctl_where)
{
	struct gdev d[MAXD], *dv;
	static char out[16384];
	struct json_object *j, *e;
	char pid[16];
	size_t sz = 6UL << 20;
	int nd;
	char *p;

	NEED_CDM(d, nd);
	p = fill_on_online_dev(d, nd, &dv, sz, 3);
	if (!dv)
		SKIP(return, "no device online");
	ASSERT_NE(NULL, p);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "where", pid, "--json", NULL));
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	e = jfind(jget(j, "nodes"), "node", dv->node);
	ASSERT_NE(NULL, e) TH_LOG("%s", out);
	EXPECT_EQ(1, jbool(e, "cdm"));
	EXPECT_LE((long long)sz, jint(e, "bytes"));
	e = jfind(jget(j, "nodes"), "node", 0);
	EXPECT_NE(NULL, e) TH_LOG("%s", out);
	EXPECT_EQ(0, jbool(e, "cdm"));
	json_object_put(j);
	numacdm_free(p, sz);
}

/*
 * cdmctl users finds this process and its bytes on the node; evacuate
 * --dry-run counts them as in use, says RAM can take them, and moves
 * nothing.
 */
TEST(cdmctl_users_and_dry_run)
{
	struct gdev d[MAXD], *dv;
	static char out[65536];
	struct json_object *j, *e;
	char node[16];
	size_t sz = 6UL << 20;
	long long bytes;
	int nd, other;
	char *p;

	NEED_CDM(d, nd);
	p = fill_on_online_dev(d, nd, &dv, sz, 9);
	if (!dv)
		SKIP(return, "no device online");
	snprintf(node, sizeof(node), "%d", dv->node);
	ASSERT_NE(NULL, p);

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "users", node, "--json", NULL));
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	e = jfind(jget(j, "processes"), "pid", getpid());
	ASSERT_NE(NULL, e) TH_LOG("%s", out);
	bytes = jint(e, "bytes");
	EXPECT_LE((long long)sz, bytes) TH_LOG("%s", out);
	EXPECT_GE((long long)(sz + (2UL << 20)), bytes) TH_LOG("%s", out);
	json_object_put(j);

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "evacuate", node, "--dry-run",
			    "--json", NULL)) TH_LOG("%s", out);
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	EXPECT_LE((long long)sz, jint(j, "in_use_bytes")) TH_LOG("%s", out);
	EXPECT_EQ(1, jbool(j, "fits")) TH_LOG("%s", out);
	EXPECT_LT(10000, jint(j, "default_timeout_ms")) TH_LOG("%s", out);
	json_object_put(j);
	EXPECT_EQ((long)(sz / PG), pages_on(p, (long)(sz / PG), dv->node,
					    &other));
	EXPECT_NE(0ULL, node_state_mask("has_memory") & (1ULL << dv->node));
	numacdm_free(p, sz);
}

/*
 * Child of cdmctl_users_unprivileged: becomes uid and gid 65534, dumpable
 * again (changing uid cleared it, and without it no other process, even of
 * the same user, may read its numa_maps), touches @len bytes bound to
 * @node, writes how many of its pages are there on @w, and exits at EOF
 * on @r.
 */
static int nobody_child(int node, size_t len, int r, int w)
{
	unsigned long mask = 1UL << node;
	long on;
	int other;
	char c, *p;

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 10;
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		return 11;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 12;
	if (mbind(p, len, MPOL_BIND, &mask, 64, 0))
		return 13;
	memset(p, 0x3c, len);
	on = pages_on(p, (long)(len / PG), node, &other);
	if (write(w, &on, sizeof(on)) != sizeof(on))
		return 14;
	while (read(r, &c, 1) == 1)
		;
	return 0;
}

/*
 * "cdmctl users" needs no root (Documentation/user-guide.rst): as uid
 * 65534 it lists, with the same bytes, command and cgroup as root's run,
 * the processes of uid 65534 (here a child holding 4 MiB on the node);
 * the processes it may not read (this one, root's, with 6 MiB there) are
 * left out, counted in unreadable_processes and named on standard error,
 * and total_bytes sums what it lists.
 */
TEST(cdmctl_users_unprivileged)
{
	struct gdev d[MAXD], *dv;
	static char out[65536], out2[65536];
	struct json_object *jr, *jn, *procs, *e, *er;
	size_t sz = 6UL << 20, csz = 4UL << 20;
	long long mine, theirs, listed = 0;
	int nd, to[2], from[2], st, other;
	char node[16], line[32], *p;
	long on = -1;
	pid_t child;

	NEED_CDM(d, nd);
	dv = online_dev(d, nd);
	if (!dv)
		SKIP(return, "no device online");
	ASSERT_GT(63, dv->node);
	snprintf(node, sizeof(node), "%d", dv->node);
	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	/* Before this process has memory on the node, which it would share. */
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		close(to[1]);
		close(from[0]);
		_exit(nobody_child(dv->node, csz, to[0], from[1]));
	}
	close(to[0]);
	close(from[1]);
	ASSERT_EQ(sizeof(on), read(from[0], &on, sizeof(on)))
		TH_LOG("the uid 65534 child died before touching its memory");
	ASSERT_EQ((long)(csz / PG), on);
	p = numacdm_alloc(sz, dv->node);
	ASSERT_NE(NULL, p);
	memset(p, 9, sz);
	ASSERT_EQ((long)(sz / PG), pages_on(p, (long)(sz / PG), dv->node,
					    &other));

	/* root: both processes, nothing unreadable */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "users", node, "--json", NULL));
	jr = json_tokener_parse(out);
	ASSERT_NE(NULL, jr) TH_LOG("not JSON: %s", out);
	EXPECT_EQ(0, jint(jr, "unreadable_processes")) TH_LOG("%s", out);
	mine = jint(jfind(jget(jr, "processes"), "pid", getpid()), "bytes");
	er = jfind(jget(jr, "processes"), "pid", child);
	ASSERT_NE(NULL, er) TH_LOG("%s", out);
	theirs = jint(er, "bytes");
	EXPECT_LE((long long)sz, mine) TH_LOG("%s", out);
	EXPECT_GE((long long)(sz + (2UL << 20)), mine) TH_LOG("%s", out);
	EXPECT_LE((long long)csz, theirs) TH_LOG("%s", out);
	EXPECT_GE((long long)(csz + (2UL << 20)), theirs) TH_LOG("%s", out);

	/* uid 65534: exit 0; the child as root saw it; not this process */
	ASSERT_EQ(0, cdmctl_as(65534, out2, sizeof(out2), "users", node,
			       "--json", NULL)) TH_LOG("%s", out2);
	EXPECT_NE(NULL, strstr(cdmctl_err,
			       "processes of other users were not looked at"))
		TH_LOG("stderr: %s", cdmctl_err);
	jn = json_tokener_parse(out2);
	ASSERT_NE(NULL, jn) TH_LOG("not JSON: %s", out2);
	procs = jget(jn, "processes");
	e = jfind(procs, "pid", child);
	ASSERT_NE(NULL, e) TH_LOG("uid 65534 does not see its own process: %s",
				  out2);
	EXPECT_EQ(theirs, jint(e, "bytes")) TH_LOG("%s", out2);
	EXPECT_STREQ(jstrv(er, "command"), jstrv(e, "command"));
	EXPECT_STREQ(jstrv(er, "cgroup"), jstrv(e, "cgroup"));
	EXPECT_EQ(NULL, jfind(procs, "pid", getpid())) TH_LOG("%s", out2);
	EXPECT_LE(1, jint(jn, "unreadable_processes")) TH_LOG("%s", out2);
	/* whatever it lists, root listed with the same bytes */
	for (size_t i = 0; procs && i < json_object_array_length(procs); i++) {
		struct json_object *x = json_object_array_get_idx(procs, i);
		long long pid = jint(x, "pid");

		listed += jint(x, "bytes");
		EXPECT_EQ(jint(jfind(jget(jr, "processes"), "pid", pid), "bytes"),
			  jint(x, "bytes")) TH_LOG("pid %lld: %s", pid, out2);
	}
	EXPECT_EQ(listed, jint(jn, "total_bytes")) TH_LOG("%s", out2);
	json_object_put(jn);
	json_object_put(jr);

	/* and as text */
	ASSERT_EQ(0, cdmctl_as(65534, out2, sizeof(out2), "users", node, NULL));
	snprintf(line, sizeof(line), "\n%-8d ", child);
	EXPECT_NE(NULL, strstr(out2, line)) TH_LOG("%s", out2);
	snprintf(line, sizeof(line), "\n%-8d ", getpid());
	EXPECT_EQ(NULL, strstr(out2, line)) TH_LOG("%s", out2);

	close(to[1]);
	ASSERT_EQ(child, waitpid(child, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st))
		TH_LOG("child status 0x%x", st);
	close(from[0]);
	numacdm_free(p, sz);
}

/*
 * "cdmctl evacuate --dry-run" needs no root either: every file it reads
 * is world-readable, so as uid 65534 it answers what root's run answers,
 * member for member; the memory in use, which may move between the two
 * runs by a per-CPU delta, by at most 1 MiB, and both runs count this
 * process's 6 MiB and agree with the node's MemUsed.
 */
TEST(cdmctl_dry_run_unprivileged)
{
	struct gdev d[MAXD], *dv;
	static char out[16384], out2[16384];
	static const char *const moving[] = {
		"in_use_bytes", "ram_available_bytes", "estimated_seconds",
		"default_timeout_ms",
	};
	struct json_object *jr, *jn, *w;
	size_t sz = 6UL << 20;
	long long used_r, used_n, used_kb;
	char node[16];
	int nd;
	char *p;

	NEED_CDM(d, nd);
	p = fill_on_online_dev(d, nd, &dv, sz, 9);
	if (!dv)
		SKIP(return, "no device online");
	snprintf(node, sizeof(node), "%d", dv->node);
	ASSERT_NE(NULL, p);

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "evacuate", node, "--dry-run",
			    "--json", NULL)) TH_LOG("%s", out);
	ASSERT_EQ(0, cdmctl_as(65534, out2, sizeof(out2), "evacuate", node,
			       "--dry-run", "--json", NULL)) TH_LOG("%s", out2);
	used_kb = node_used_kb(dv->node);
	jr = json_tokener_parse(out);
	jn = json_tokener_parse(out2);
	ASSERT_NE(NULL, jr) TH_LOG("not JSON: %s", out);
	ASSERT_NE(NULL, jn) TH_LOG("not JSON: %s", out2);
	TH_LOG("root: %s", out);
	TH_LOG("uid 65534: %s", out2);
	EXPECT_EQ(json_object_object_length(jr), json_object_object_length(jn));
	json_object_object_foreach(jr, k, v) {
		int is_moving = 0;

		EXPECT_TRUE(json_object_object_get_ex(jn, k, &w))
			TH_LOG("no \"%s\" as uid 65534", k);
		for (size_t i = 0; i < sizeof(moving) / sizeof(moving[0]); i++)
			is_moving |= !strcmp(k, moving[i]);
		if (is_moving)
			continue;
		EXPECT_STREQ(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
			     json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN))
			TH_LOG("\"%s\" differs", k);
	}
	used_r = jint(jr, "in_use_bytes");
	used_n = jint(jn, "in_use_bytes");
	EXPECT_LE((long long)sz, used_r);
	EXPECT_LE((long long)sz, used_n);
	EXPECT_GE(1LL << 20, llabs(used_r - used_n));
	EXPECT_GE(1LL << 20, llabs(used_kb * 1024 - used_n))
		TH_LOG("node %d MemUsed %lld kB", dv->node, used_kb);
	/* What follows from the memory in use is the same when it is. */
	if (used_r == used_n) {
		EXPECT_EQ(jint(jr, "default_timeout_ms"),
			  jint(jn, "default_timeout_ms"));
		EXPECT_STREQ(json_object_to_json_string(jget(jr, "estimated_seconds")),
			     json_object_to_json_string(jget(jn, "estimated_seconds")));
	}
	EXPECT_LT(0, jint(jn, "ram_available_bytes"));
	EXPECT_GE(64LL << 20, llabs(jint(jr, "ram_available_bytes") -
				    jint(jn, "ram_available_bytes")));
	json_object_put(jn);
	json_object_put(jr);

	/* and as text */
	ASSERT_EQ(0, cdmctl_as(65534, out2, sizeof(out2), "evacuate", node,
			       "--dry-run", NULL));
	EXPECT_NE(NULL, strstr(out2, "would move to system RAM")) TH_LOG("%s", out2);
	EXPECT_NE(NULL, strstr(out2, ": fits")) TH_LOG("%s", out2);
	numacdm_free(p, sz);
}

FIXTURE(evac)
{
	struct gdev d[MAXD];
	struct gdev *dv;
	int nd;
	pid_t child;		/* a test's child holding memory, or 0 */
};

FIXTURE_SETUP(evac)
{
	self->dv = NULL;
	self->child = 0;
	if (!cdm_available(self->d, &self->nd))
		SKIP(return, "no CDM support or no capi_sim device");
	self->dv = online_dev(self->d, self->nd);
	if (!self->dv)
		SKIP(return, "no device online");
}

FIXTURE_TEARDOWN(evac)
{
	char st[32], path[PATH_MAX];

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (!self->dv)
		return;
	/* Leave the device online, as we found it. */
	dev_state(self->dv, st, sizeof(st));
	if (strcmp(st, "online")) {
		snprintf(path, sizeof(path), CAPI_DRV "/%s/online",
			 self->dv->bdf);
		write_str(path, "1");
	}
}

TEST_F_TIMEOUT(evac, evacuate_online_roundtrip, 600)
{
	static char out[16384];
	size_t sz = 16UL << 20;
	long n = (long)(sz / PG), on;
	char node[16], st[32];
	unsigned char *p;
	uint64_t sum;
	int other, node_id = self->dv->node;
	unsigned long long ram = mask_bits(numacdm_sysram_nodes());

	snprintf(node, sizeof(node), "%d", node_id);
	p = numacdm_alloc(sz, node_id);
	ASSERT_NE(NULL, p);
	for (size_t i = 0; i < sz; i++)
		p[i] = (unsigned char)(i * 131 + i / 4096);
	sum = checksum(p, sz);
	ASSERT_EQ(n, pages_on(p, n, node_id, &other));

	/* Not root: exit 4, nothing happens. */
	EXPECT_EQ(4, cdmctl_as(65534, out, sizeof(out), "evacuate",
			       self->dv->bdf, NULL));
	dev_state(self->dv, st, sizeof(st));
	EXPECT_STREQ("online", st);

	/*
	 * A 2 ms timeout cannot move 16 MiB (about 1 s under TCG): exit 5,
	 * the memory stays online, the data is intact.
	 */
	EXPECT_EQ(5, cdmctl(out, sizeof(out), "evacuate", node, "--timeout",
			    "2", "--json", NULL));
	EXPECT_TRUE(json_is(out, "result", "\"timeout\"")) TH_LOG("%s", out);
	EXPECT_TRUE(json_is(out, "errno", "16")) TH_LOG("%s", out);
	EXPECT_NE(0ULL, node_state_mask("has_memory") & (1ULL << node_id));
	EXPECT_EQ(sum, checksum(p, sz));
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", node, "--json", NULL));
	EXPECT_TRUE(json_is(out, "memory_online", "true")) TH_LOG("%s", out);
	EXPECT_TRUE(json_is(out, "evacuation_state", "\"failed\""))
		TH_LOG("%s", out);

	/* By device name; exit 0; node memory gone; data moved intact. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "evacuate", self->dv->misc,
			    "--timeout", "120000", NULL));
	EXPECT_NE(NULL, strstr(out, "evacuated")) TH_LOG("%s", out);
	dev_state(self->dv, st, sizeof(st));
	EXPECT_STREQ("offline", st);
	EXPECT_EQ(0ULL, node_state_mask("has_memory") & (1ULL << node_id));
	on = pages_on(p, n, node_id, &other);
	EXPECT_EQ(0, on);
	EXPECT_TRUE(other >= 0 && (ram & (1ULL << other)))
		TH_LOG("pages went to node %d", other);
	EXPECT_EQ(sum, checksum(p, sz));
	numacdm_free(p, sz);

	/* Status of an evacuated node; evacuating again: exit 6. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", node, "--json", NULL));
	EXPECT_TRUE(json_is(out, "memory_online", "false")) TH_LOG("%s", out);
	EXPECT_EQ(6, cdmctl(out, sizeof(out), "evacuate", node, NULL));
	/* cdmctl run on a node without memory: exit 3. */
	EXPECT_EQ(3, cdmctl(out, sizeof(out), "run", "--node", node, "--",
			    "/bin/true", NULL));

	/* Not root: exit 4. */
	EXPECT_EQ(4, cdmctl_as(65534, out, sizeof(out), "online",
			       self->dv->bdf, NULL));

	/* Back online by PCI address; again: exit 6. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "online", self->dv->bdf, NULL));
	dev_state(self->dv, st, sizeof(st));
	EXPECT_STREQ("online", st);
	EXPECT_NE(0ULL, node_state_mask("has_memory") & (1ULL << node_id));
	EXPECT_EQ(6, cdmctl(out, sizeof(out), "online", self->dv->bdf, NULL));
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "status", node, "--json", NULL));
	EXPECT_TRUE(json_is(out, "memory_online", "true"));
	EXPECT_TRUE(json_is(out, "evacuation_state", "\"idle\""));

	/* The node is usable again. */
	p = numacdm_alloc(sz, node_id);
	ASSERT_NE(NULL, p);
	memset(p, 7, sz);
	EXPECT_EQ(n, pages_on(p, n, node_id, &other));
	numacdm_free(p, sz);
}

/*
 * An evacuation sends a bound mapping's pages to system RAM and leaves its
 * policy alone; "online --restore" moves back exactly the pages whose
 * policy names the node: not those of an unbound mapping, nor those of a
 * mapping bound to a RAM node.
 */
static void restore_case(struct __test_metadata *_metadata,
			 FIXTURE_DATA(evac) *self)
{
	static char out[16384];
	size_t sz = 8UL << 20;
	long n = (long)(sz / PG), free_on0;
	unsigned long node0 = 1;
	unsigned char *p, *q, *b;
	char node[16];
	uint64_t sum;
	int other, nid = self->dv->node;

	snprintf(node, sizeof(node), "%d", nid);
	p = numacdm_alloc(sz, nid);
	ASSERT_NE(NULL, p);
	for (size_t i = 0; i < sz; i++)
		p[i] = (unsigned char)(i * 37 + i / 4096);
	sum = checksum(p, sz);
	ASSERT_EQ(n, pages_on(p, n, nid, &other));
	q = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	b = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_NE(MAP_FAILED, b);
	ASSERT_EQ(0, mbind(b, sz, MPOL_BIND, &node0, 64, 0));
	memset(q, 5, sz);
	memset(b, 6, sz);
	ASSERT_EQ(n, pages_on(b, n, 0, &other));
	EXPECT_EQ(0, pages_on(q, n, nid, &other));
	free_on0 = pages_on(q, n, 0, &other);

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "evacuate", node, "--timeout",
			    "120000", NULL)) TH_LOG("%s", out);
	ASSERT_EQ(0, pages_on(p, n, nid, &other));

	/* Onlining alone moves nothing back. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "online", node, NULL))
		TH_LOG("%s", out);
	EXPECT_EQ(0, pages_on(p, n, nid, &other));

	/* Not root: our pages stay in RAM, exit 4. */
	EXPECT_EQ(4, cdmctl_as(65534, out, sizeof(out), "online", "--restore",
			       node, NULL)) TH_LOG("%s", out);
	EXPECT_EQ(0, pages_on(p, n, nid, &other));

	/* --restore on the node, online already: every page of p is back. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "online", "--restore", node,
			    NULL)) TH_LOG("%s", out);
	EXPECT_EQ(n, pages_on(p, n, nid, &other)) TH_LOG("%s", out);
	EXPECT_EQ(sum, checksum(p, sz));
	EXPECT_NE(NULL, strstr(out, "restored ")) TH_LOG("%s", out);
	/* The unbound and the RAM-bound mappings did not move. */
	EXPECT_EQ(n, pages_on(b, n, 0, &other));
	EXPECT_EQ(0, pages_on(q, n, nid, &other));
	EXPECT_EQ(free_on0, pages_on(q, n, 0, &other));

	/* Nothing is left to restore. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "online", "--restore", node,
			    NULL)) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "restored 0 pages")) TH_LOG("%s", out);
	/* --restore belongs to online only. */
	EXPECT_EQ(2, cdmctl(out, sizeof(out), "status", "--restore", node,
			    NULL));
	munmap(q, sz);
	munmap(b, sz);
	numacdm_free(p, sz);
}

TEST_F_TIMEOUT(evac, online_restore_moves_bound_pages_back, 600)
{
	restore_case(_metadata, self);
}

#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/*
 * The same with THP "always" (Debian's default): move_pages() reports
 * -EBUSY for the second page of a THP it has just queued, and the THP
 * then moves whole; --restore must not count that page as stuck (it
 * said "4 pages could not move" for 8 MiB).
 */
TEST_F_TIMEOUT(evac, online_restore_moves_bound_thp_back, 600)
{
	char was[128], *open_, *close_;

	if (read_str(THP_ENABLED, was, sizeof(was)) < 0)
		SKIP(return, "no transparent huge pages");
	open_ = strchr(was, '[');
	close_ = open_ ? strchr(open_, ']') : NULL;
	ASSERT_TRUE(open_ && close_);
	*close_ = '\0';
	ASSERT_EQ(0, write_str(THP_ENABLED, "always"));
	restore_case(_metadata, self);
	EXPECT_EQ(0, write_str(THP_ENABLED, open_ + 1));
}

/* What evac_child() writes: a pattern that differs from page to page. */
static void evac_pattern(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 53 + i / PG);
}

/*
 * Child of evacuate_json_matches_kernel_counts: binds @p (@len bytes of an
 * untouched mapping it inherited) to @node, fills it with evac_pattern()
 * and writes its checksum on @w, then again for each byte read on @r.
 * Exits 0 at EOF on @r: the test is done with it, or gone.
 */
static int evac_child(unsigned char *p, size_t len, int node, int r, int w)
{
	unsigned long mask = 1UL << node;
	uint64_t sum;
	char c;

	if (mbind(p, len, MPOL_BIND, &mask, 64, 0))
		return 10;
	evac_pattern(p, len);
	do {
		sum = checksum(p, len);
		if (write(w, &sum, sizeof(sum)) != sizeof(sum))
			return 11;
	} while (read(r, &c, 1) == 1);
	return 0;
}

/*
 * "cdmctl evacuate --json" against the kernel's own counts.  Another
 * process (a child) has 16 MiB bound to the node.  The pages the JSON says
 * migrated are those nodeN/cdm/pages_migrated and /proc/vmstat's
 * cdm_pages_evacuated count for this evacuation, at least the child's
 * pages and at most what the node had in use; its bytes are those pages;
 * its seconds are nodeN/cdm/evacuation_ms.  The child's data is intact
 * and in system RAM, and the node comes back whole.
 */
TEST_F_TIMEOUT(evac, evacuate_json_matches_kernel_counts, 600)
{
	static char out[16384];
	size_t sz = 16UL << 20;
	long n = (long)(sz / PG), total_kb, used_kb, ev0, evs0, fail0, mig, ms;
	unsigned long long ram = mask_bits(numacdm_sysram_nodes());
	int to[2], from[2], other, st, nid = self->dv->node;
	struct json_object *j, *v;
	long long pages, bytes, secs_ms;
	unsigned char *p, *ref;
	char node[16], state[32];
	uint64_t want, sum;

	ASSERT_GT(63, nid);
	ASSERT_NE(0ULL, ram);
	snprintf(node, sizeof(node), "%d", nid);
	ref = malloc(sz);
	ASSERT_NE(NULL, ref);
	evac_pattern(ref, sz);
	want = checksum(ref, sz);
	free(ref);
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(to[1]);
		close(from[0]);
		_exit(evac_child(p, sz, nid, to[0], from[1]));
	}
	close(to[0]);
	close(from[1]);
	ASSERT_EQ(sizeof(sum), read(from[0], &sum, sizeof(sum)))
		TH_LOG("the child died before filling its memory");
	ASSERT_EQ(want, sum);
	ASSERT_EQ(n, pid_pages_in(self->child, p, n, 1ULL << nid, &other))
		TH_LOG("a page of the child is on node %d", other);

	total_kb = node_meminfo_kb(nid, "MemTotal");
	used_kb = node_used_kb(nid);
	ASSERT_LE((long)(sz / 1024), used_kb);
	ev0 = vmstat_val("cdm_pages_evacuated");
	evs0 = vmstat_val("cdm_evacuations");
	fail0 = vmstat_val("cdm_evacuations_failed");
	ASSERT_LE(0, ev0) TH_LOG("no cdm_pages_evacuated in /proc/vmstat");
	ASSERT_LE(0, evs0) TH_LOG("no cdm_evacuations in /proc/vmstat");
	ASSERT_LE(0, fail0) TH_LOG("no cdm_evacuations_failed in /proc/vmstat");

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "evacuate", "--json", node,
			    "--timeout", "120000", NULL)) TH_LOG("%s", out);
	mig = vmstat_val("cdm_pages_evacuated") - ev0;
	j = json_tokener_parse(out);
	ASSERT_NE(NULL, j) TH_LOG("not JSON: %s", out);
	EXPECT_STREQ("ok", jstrv(j, "result")) TH_LOG("%s", out);
	EXPECT_EQ(NULL, jget(j, "errno")) TH_LOG("%s", out);
	EXPECT_STREQ(self->dv->bdf, jstrv(j, "device")) TH_LOG("%s", out);
	pages = jint(j, "pages_migrated");
	bytes = jint(j, "bytes");
	v = jget(j, "seconds");
	secs_ms = v && json_object_is_type(v, json_type_double) ?
		  (long long)(json_object_get_double(v) * 1000 + 0.5) : -1;
	json_object_put(j);
	ms = node_cdm_long(nid, "evacuation_ms");
	TH_LOG("node %d: %ld kB in use; JSON %lld pages, %lld bytes, %lld ms; vmstat cdm_pages_evacuated +%ld; evacuation_ms %ld",
	       nid, used_kb, pages, bytes, secs_ms, mig, ms);

	/* The JSON's counts are the kernel's. */
	EXPECT_EQ(mig, pages) TH_LOG("%s", out);
	EXPECT_EQ(pages, node_cdm_long(nid, "pages_migrated"));
	EXPECT_EQ(pages * (long long)PG, bytes) TH_LOG("%s", out);
	/* "seconds" has two decimals */
	EXPECT_LE(0, ms);
	EXPECT_LE(0, secs_ms) TH_LOG("%s", out);
	EXPECT_GE(6, llabs(secs_ms - ms)) TH_LOG("%s", out);
	EXPECT_EQ(0, node_cdm_long(nid, "pages_remaining"));
	EXPECT_EQ(0, node_cdm_long(nid, "evacuation_error"));
	ASSERT_LT(0, read_strf(state, sizeof(state),
			       NODE_SYS "/node%d/cdm/evacuation_state", nid));
	EXPECT_STREQ("idle", state);
	EXPECT_EQ(evs0 + 1, vmstat_val("cdm_evacuations"));
	EXPECT_EQ(fail0, vmstat_val("cdm_evacuations_failed"));
	/*
	 * And the data placed: the child's pages at least, the node's pages
	 * in use at most (MemUsed, whose per-CPU deltas may be unfolded:
	 * 1 MiB of slack).
	 */
	EXPECT_LE(n, pages);
	EXPECT_GE(used_kb / 4 + 256, pages)
		TH_LOG("%lld pages migrated, node %d had %ld kB in use", pages,
		       nid, used_kb);
	/* The node's memory is gone. */
	EXPECT_EQ(0ULL, node_state_mask("has_memory") & (1ULL << nid));
	EXPECT_GE(0, node_meminfo_kb(nid, "MemTotal"));

	/* The child's data: every page in system RAM, intact. */
	EXPECT_EQ(n, pid_pages_in(self->child, p, n, ram, &other))
		TH_LOG("a page of the child is on node %d", other);
	ASSERT_EQ(1, write(to[1], "c", 1));
	ASSERT_EQ(sizeof(sum), read(from[0], &sum, sizeof(sum)))
		TH_LOG("the child died after the evacuation");
	EXPECT_EQ(want, sum);

	/* Back online, whole. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "online", self->dv->bdf, NULL))
		TH_LOG("%s", out);
	dev_state(self->dv, state, sizeof(state));
	EXPECT_STREQ("online", state);
	EXPECT_NE(0ULL, node_state_mask("has_memory") & (1ULL << nid));
	EXPECT_EQ(total_kb, node_meminfo_kb(nid, "MemTotal"));

	close(to[1]);
	ASSERT_EQ(self->child, waitpid(self->child, &st, 0));
	self->child = 0;
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st))
		TH_LOG("child status 0x%x", st);
	close(from[0]);
	munmap(p, sz);
}

/*
 * Emergency fallback, then unspill: a child fills system RAM with the
 * device node's emergency_fallback on until pages spill onto the node,
 * frees its RAM-only chunks (RAM has room again) and keeps the rest;
 * "cdmctl unspill" moves the spilled pages, whose policy never named the
 * node, back to system RAM, and the child finds its data intact there.
 */
FIXTURE(spill)
{
	struct gdev d[MAXD];
	struct gdev *dv;
	int nd;
	char knob[128];
	pid_t child;
};

FIXTURE_SETUP(spill)
{
	self->dv = NULL;
	self->child = 0;
	if (!cdm_available(self->d, &self->nd))
		SKIP(return, "no CDM support or no capi_sim device");
	self->dv = online_dev(self->d, self->nd);
	if (!self->dv)
		SKIP(return, "no device online");
	snprintf(self->knob, sizeof(self->knob),
		 NODE_SYS "/node%d/cdm/emergency_fallback", self->dv->node);
}

FIXTURE_TEARDOWN(spill)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->dv)
		write_str(self->knob, "0");
}

#define SPILL_CHUNK	(8UL << 20)
#define SPILL_MAX	512

/*
 * Child of unspill_returns_spilled_pages: fill, report the pages on
 * @node through @w, wait for a byte on @r, then check every kept page is
 * off @node with its pattern.  Exit 0 when so.
 */
static int spill_child(int node, long max_chunks, int r, int w)
{
	static char *chunk[SPILL_MAX];
	static long on_node[SPILL_MAX];
	long n = 0, spilled = 0;
	size_t len = (size_t)max_chunks * SPILL_CHUNK;
	char go, *base;
	int other;

	write_str("/proc/self/oom_score_adj", "1000");
	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return 10;
	madvise(base, len, MADV_NOHUGEPAGE);
	/*
	 * Page tables first, one page each 2 MiB, while RAM has room: once
	 * RAM is full only movable data pages are asked for, and those may
	 * spill; a page table never can.
	 */
	for (size_t off = 0; off < len; off += 2UL << 20)
		base[off] = 1;
	while (n < max_chunks && spilled < (long)(24UL << 20) / (long)PG) {
		chunk[n] = base + (size_t)n * SPILL_CHUNK;
		for (size_t i = 0; i < SPILL_CHUNK; i += PG)
			memset(chunk[n] + i, (int)(n + i / PG), PG);
		on_node[n] = pages_on(chunk[n], (long)(SPILL_CHUNK / PG), node,
				      &other);
		spilled += on_node[n];
		n++;
	}
	if (!spilled)
		return 11;
	/*
	 * RAM has room again: drop the chunks that stayed in RAM.  Not with
	 * munmap(): splitting the mapping allocates a VMA while RAM is still
	 * at its min watermark, and the OOM killer took this child for it.
	 */
	for (long i = 0; i < n; i++)
		if (!on_node[i]) {
			madvise(chunk[i], SPILL_CHUNK, MADV_DONTNEED);
			chunk[i] = NULL;
		}
	if (write(w, &spilled, sizeof(spilled)) != sizeof(spilled))
		return 12;
	if (read(r, &go, 1) != 1)
		return 13;
	for (long i = 0; i < n; i++) {
		if (!chunk[i])
			continue;
		if (pages_on(chunk[i], (long)(SPILL_CHUNK / PG), node, &other))
			return 14;
		for (size_t j = 0; j < SPILL_CHUNK; j += PG)
			if (chunk[i][j] != (char)(i + j / PG) ||
			    chunk[i][j + PG - 1] != (char)(i + j / PG))
				return 15;
	}
	return 0;
}

TEST_F_TIMEOUT(spill, unspill_returns_spilled_pages, 600)
{
	static char out[16384];
	long ram_kb = node_meminfo_kb(0, "MemTotal"), spilled = 0;
	int to_child[2], from_child[2], st, node = self->dv->node;
	char nodearg[16], *s;
	long max_chunks;

	ASSERT_LT(0, ram_kb);
	max_chunks = (ram_kb * 1024L) / (long)SPILL_CHUNK + 16;
	ASSERT_GE(SPILL_MAX, max_chunks);
	snprintf(nodearg, sizeof(nodearg), "%d", node);
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(from_child));
	ASSERT_EQ(0, write_str(self->knob, "1"));

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(to_child[1]);
		close(from_child[0]);
		_exit(spill_child(node, max_chunks, to_child[0],
				  from_child[1]));
	}
	close(to_child[0]);
	close(from_child[1]);
	ASSERT_EQ(sizeof(spilled), read(from_child[0], &spilled,
					sizeof(spilled)))
		TH_LOG("the filling child died before spilling");
	ASSERT_LT(0, spilled);
	/* No new spills from here on; RAM has room for what spilled. */
	ASSERT_EQ(0, write_str(self->knob, "0"));

	ASSERT_EQ(0, cdmctl(out, sizeof(out), "unspill", nodearg, NULL))
		TH_LOG("%s", out);
	s = strstr(out, "returned to system RAM ");
	ASSERT_NE(NULL, s) TH_LOG("%s", out);
	EXPECT_LE(spilled, strtol(s + 23, NULL, 10)) TH_LOG("%s", out);
	TH_LOG("%ld pages spilled onto node %d; %s", spilled, node, out);

	ASSERT_EQ(1, write(to_child[1], "g", 1));
	ASSERT_EQ(self->child, waitpid(self->child, &st, 0));
	self->child = 0;
	ASSERT_TRUE(WIFEXITED(st)) TH_LOG("child status 0x%x", st);
	EXPECT_EQ(0, WEXITSTATUS(st));
	/* Nothing left to return. */
	ASSERT_EQ(0, cdmctl(out, sizeof(out), "unspill", nodearg, NULL));
	close(to_child[1]);
	close(from_child[0]);
}

static void find_cdmctl(const char *argv0)
{
	const char *env = getenv("CDMCTL");
	char self[PATH_MAX], *slash;
	ssize_t n;

	(void)argv0;
	if (env && *env) {
		snprintf(cdmctl_path, sizeof(cdmctl_path), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(cdmctl_path, sizeof(cdmctl_path), "%.4000s/cdmctl", self);
			if (!access(cdmctl_path, X_OK))
				return;
			snprintf(cdmctl_path, sizeof(cdmctl_path), "%.4000s/../bin/cdmctl", self);
			if (!access(cdmctl_path, X_OK))
				return;
		}
	}
	snprintf(cdmctl_path, sizeof(cdmctl_path), "/usr/bin/cdmctl");
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child"))
		return run_child(argv[2], !strcmp(argv[3], "bind") ? MPOL_BIND :
				 !strcmp(argv[3], "preferred") ? MPOL_PREFERRED :
				 MPOL_PREFERRED_MANY);
	find_cdmctl(argv[0]);
	return test_harness_run(argc, argv);
}
