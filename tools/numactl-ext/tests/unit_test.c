// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests for libnumacdm and cdmctl against a fake sysfs tree.
 *
 *   unit_test <path to cdmctl> <build dir (O=)> <source dir>
 *
 * Builds fake trees under $O/tests/, points CDM_SYSFS_ROOT at them, calls the
 * library directly and runs cdmctl's commands, checking exit codes, text and
 * --json output (parsed with json-c).  The last line is
 * "N passed, M failed".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <numaif.h>
#include <json-c/json.h>

#include "numacdm.h"

static int passed, failed;
static const char *cdmctl;
static char tree[4096], tree0[4096], notree[4096], treefw[4096];

#define CHECK(cond, ...) check(!!(cond), #cond, __LINE__, __VA_ARGS__)

static void check(int ok, const char *expr, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void check(int ok, const char *expr, int line, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok)
		printf("  [line %d: %s]", line, expr);
	putchar('\n');
	if (ok)
		passed++;
	else
		failed++;
}

/* snprintf that fails the run on truncation (paths must fit). */
static void xfmt(char *buf, size_t len, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static void xfmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "path too long\n");
		exit(2);
	}
}

/* ------------------------------------------------------------ fake tree */

static void mkdirs(const char *path)
{
	char tmp[4096];

	xfmt(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	mkdir(tmp, 0755);
}

static void put(const char *root, const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void put(const char *root, const char *rel, const char *fmt, ...)
{
	char path[4096], dir[4096];
	va_list ap;
	FILE *f;

	xfmt(path, sizeof(path), "%s%s", root, rel);
	xfmt(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void unlink_tree_file(const char *root, const char *rel)
{
	char path[8192];

	xfmt(path, sizeof(path), "%s%s", root, rel);
	unlink(path);
}

static int get(const char *root, const char *rel, char *buf, size_t len)
{
	char path[4096];
	FILE *f;
	size_t n;

	xfmt(path, sizeof(path), "%s%s", root, rel);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return (int)n;
}

#define ND "/sys/devices/system/node"
#define CS "/sys/bus/pci/drivers/capi_sim"

static void meminfo(const char *root, int node, unsigned long total_kb,
		    unsigned long free_kb)
{
	char rel[256];

	xfmt(rel, sizeof(rel), ND "/node%d/meminfo", node);
	put(root, rel,
	    "Node %d MemTotal:       %lu kB\nNode %d MemFree:        %lu kB\n"
	    "Node %d MemUsed:        %lu kB\nNode %d Active:          0 kB\n",
	    node, total_kb, node, free_kb, node, total_kb - free_kb, node);
}

static void cdm_dir(const char *root, int node, const char *owner,
		    const char *state, int migrated, int remaining)
{
	char rel[256];

	xfmt(rel, sizeof(rel), ND "/node%d/cdm/owner", node);
	put(root, rel, "%s\n", owner);
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/emergency_fallback", node);
	put(root, rel, "0\n");
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/evacuation_state", node);
	put(root, rel, "%s\n", state);
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/pages_migrated", node);
	put(root, rel, "%d\n", migrated);
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/pages_remaining", node);
	put(root, rel, "%d\n", remaining);
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/evacuation_error", node);
	put(root, rel, "0\n");
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/evacuation_ms", node);
	put(root, rel, "0\n");
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/evacuate", node);
	put(root, rel, "%s", "");
	xfmt(rel, sizeof(rel), ND "/node%d/cdm/online", node);
	put(root, rel, "%s", "");
}

static void capi_dev(const char *root, const char *bdf, int node,
		     unsigned long long size, const char *state, int misc)
{
	char rel[256];

	xfmt(rel, sizeof(rel), CS "/%s/node", bdf);
	put(root, rel, "%d\n", node);
	xfmt(rel, sizeof(rel), CS "/%s/size", bdf);
	put(root, rel, "%llu\n", size);
	xfmt(rel, sizeof(rel), CS "/%s/state", bdf);
	put(root, rel, "%s\n", state);
	xfmt(rel, sizeof(rel), CS "/%s/stats", bdf);
	put(root, rel,
	    "resident_pages 77\nevacuations 2\nevacuations_failed 1\n"
	    "last_evacuated_pages 4242\nlast_evacuation_us 1500000\n");
	xfmt(rel, sizeof(rel), CS "/%s/evacuate", bdf);
	put(root, rel, "%s", "");
	xfmt(rel, sizeof(rel), CS "/%s/online", bdf);
	put(root, rel, "%s", "");
	xfmt(rel, sizeof(rel), CS "/%s/misc/capi_sim%d/dev", bdf, misc);
	put(root, rel, "10:%d\n", 120 + misc);
}

/*
 * Main tree: node 0 = system RAM; CDM nodes 1 (capi_sim0, 0000:00:03.0,
 * online), 2 (capi_sim1, 0000:00:04.0, evacuated: node2/cdm/ only), 3
 * (owned by a device of another driver).
 */
static void make_tree(const char *root)
{
	char path[4096];

	put(root, ND "/possible", "0-3\n");
	put(root, ND "/online", "0-1,3\n");
	put(root, ND "/has_memory", "0-1,3\n");
	put(root, ND "/has_cpu", "0\n");
	put(root, ND "/has_coherent_device", "1-3\n");
	meminfo(root, 0, 1048576, 524288);
	put(root, ND "/node0/distance", "10 40 50\n");
	meminfo(root, 1, 524288, 520192);
	put(root, ND "/node1/distance", "40 10 80\n");
	cdm_dir(root, 1, "0000:00:03.0", "idle", 0, 0);
	/* node 1's memory blocks: two online, one offline; no block's name */
	put(root, ND "/node1/memory32/state", "online\n");
	put(root, ND "/node1/memory33/state", "online\n");
	put(root, ND "/node1/memory34/state", "offline\n");
	put(root, ND "/node1/memory_side_cache/x", "%s", "");
	/* evacuated: memory-less, its directory kept while the driver owns it */
	cdm_dir(root, 2, "0000:00:04.0", "idle", 0, 0);
	meminfo(root, 3, 131072, 131072);
	put(root, ND "/node3/distance", "50 80 10\n");
	cdm_dir(root, 3, "0000:00:05.0", "failed", 10, 3);
	capi_dev(root, "0000:00:03.0", 1, 536870912ULL, "online", 0);
	capi_dev(root, "0000:00:04.0", 2, 268435456ULL, "offline", 1);
	put(root, CS "/bind", "%s", "");
	/* capi_sim1 also reachable through /sys/class/misc. */
	xfmt(path, sizeof(path), "%s/sys/class/misc/capi_sim1", root);
	mkdirs(path);
	xfmt(path, sizeof(path), "%s/sys/class/misc/capi_sim1/device",
		 root);
	if (symlink("../../../bus/pci/drivers/capi_sim/0000:00:04.0", path) &&
	    errno != EEXIST) {
		perror("symlink");
		exit(2);
	}
	put(root, "/proc/1234/comm", "worker\n");
	put(root, "/proc/1234/numa_maps",
	    "55d0c0a00000 default file=/usr/bin/worker mapped=3 N0=3 kernelpagesize_kB=4\n"
	    "7f0000000000 bind:1 anon=256 dirty=256 N1=256 kernelpagesize_kB=4\n"
	    "7f1000000000 default anon=10 dirty=10 N0=7 N1=3 kernelpagesize_kB=4\n"
	    "7f2000000000 bind:1 anon=1 dirty=1 N1=1 kernelpagesize_kB=2048\n"
	    "7ffc00000000 default stack anon=2 dirty=2 N0=2 kernelpagesize_kB=4\n");
	put(root, "/proc/1234/cgroup", "0::/\n");
	/* A process name that is not UTF-8 and holds a quote. */
	put(root, "/proc/1235/comm", "bad\xff\"q\n");
	put(root, "/proc/1235/numa_maps",
	    "7f0000000000 bind:1 anon=512 dirty=512 N1=512 kernelpagesize_kB=4\n");
	put(root, "/proc/1235/cgroup", "0::/jobs/gpu\n");
	put(root, "/proc/meminfo",
	    "MemTotal:        1048576 kB\nMemFree:          524288 kB\n"
	    "MemAvailable:     600000 kB\n");
}

/* Tree where the host's own node 0 poses as a CDM node (real mbind works). */
static void make_tree0(const char *root)
{
	put(root, ND "/online", "0\n");
	put(root, ND "/has_memory", "0\n");
	put(root, ND "/has_coherent_device", "0\n");
	meminfo(root, 0, 1048576, 524288);
	put(root, ND "/node0/distance", "10\n");
	cdm_dir(root, 0, "0000:00:03.0", "idle", 0, 0);
	put(root, "/proc/1/comm", "init\n");
	put(root, "/proc/1/numa_maps", "%s", "");
}

/* Node 1: CDM memory firmware described, no driver (owner "none"). */
static void make_treefw(const char *root)
{
	put(root, ND "/online", "0-1\n");
	put(root, ND "/has_memory", "0-1\n");
	put(root, ND "/has_coherent_device", "1\n");
	meminfo(root, 0, 1048576, 524288);
	put(root, ND "/node0/distance", "10 40\n");
	meminfo(root, 1, 262144, 258048);
	put(root, ND "/node1/distance", "40 10\n");
	cdm_dir(root, 1, "none", "idle", 7, 0);
	put(root, ND "/node1/cdm/evacuate", "%s", "");
	put(root, "/proc/meminfo", "MemTotal: 1048576 kB\nMemAvailable: 600000 kB\n");
}

/* A kernel without CDM support: no has_coherent_device. */
static void make_notree(const char *root)
{
	put(root, ND "/online", "0-1\n");
	put(root, ND "/has_memory", "0-1\n");
	meminfo(root, 0, 1048576, 524288);
}

/* ----------------------------------------------------------------- json */

/* JSON text must be UTF-8 (RFC 8259): glibc's decoder says if it is. */
static int utf8_valid(const char *s)
{
	return mbstowcs(NULL, s, 0) != (size_t)-1;
}

static struct json_object *parsed;	/* the last output, parsed */

/*
 * Parse the whole of @s with json-c (strict, UTF-8 validated): one value
 * and nothing but white space after it.  Keeps the result in `parsed`.
 */
static int json_valid(const char *s)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	size_t len = strlen(s), off;

	if (parsed)
		json_object_put(parsed);
	parsed = NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
			       JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)len);
	off = json_tokener_get_parse_end(tok);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		printf("# json-c: %s at offset %zu in:\n%s\n",
		       json_tokener_error_desc(json_tokener_get_error(tok)),
		       off, s);
		json_tokener_free(tok);
		json_object_put(o);
		return 0;
	}
	json_tokener_free(tok);
	while (off < len && strchr(" \t\r\n", s[off]))
		off++;
	if (off != len || !utf8_valid(s)) {
		printf("# trailing bytes or bad UTF-8 in:\n%s\n", s);
		json_object_put(o);
		return 0;
	}
	json_object_put(o);
	parsed = json_tokener_parse(s);	/* the plain parser agrees */
	return parsed != NULL;
}

/*
 * The value at @path in `parsed`: keys and array indexes separated by
 * '.', e.g. "cdm_nodes.0.device"; NULL if there is none.  A key that
 * holds null gives NULL too: use jnull() for those.
 */
static struct json_object *jat(const char *path)
{
	struct json_object *o = parsed;
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); o && k;
	     k = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array)) {
			o = json_object_array_get_idx(o, (size_t)atoi(k));
		} else if (!json_object_object_get_ex(o, k, &o)) {
			return NULL;
		}
	}
	return o;
}

/*
 * @path holds exactly the JSON value @want (consumed): the same type, and
 * the same text as json-c writes both, so escaping cannot differ.
 */
static int jeq(const char *path, struct json_object *want)
{
	struct json_object *o = jat(path);
	const char *w = json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN);
	const char *got = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) :
			      "(none)";
	int ok = o && json_object_get_type(o) == json_object_get_type(want) &&
		 !strcmp(got, w);

	if (!ok)
		printf("# %s: got %s, want %s\n", path, got, w);
	json_object_put(want);
	return ok;
}

static int jint(const char *path, int64_t want)
{
	return jeq(path, json_object_new_int64(want));
}

static int jstreq(const char *path, const char *want)
{
	return jeq(path, json_object_new_string(want));
}

static int jbool(const char *path, int want)
{
	return jeq(path, json_object_new_boolean(want));
}

/* @path is there and holds null. */
static int jnull(const char *path)
{
	char buf[256], *dot;
	struct json_object *parent, *o = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	dot = strrchr(buf, '.');
	if (dot) {
		*dot = '\0';
		parent = jat(buf);
	} else {
		parent = parsed;
	}
	if (parent && json_object_object_get_ex(parent, dot ? dot + 1 : buf, &o) &&
	    !o)
		return 1;
	printf("# %s: not null\n", path);
	return 0;
}

static int jlen(const char *path, size_t want)
{
	struct json_object *o = jat(path);

	if (o && json_object_is_type(o, json_type_array) &&
	    json_object_array_length(o) == want)
		return 1;
	printf("# %s: not an array of %zu\n", path, want);
	return 0;
}

/* --------------------------------------------------------------- runner */

static char out[65536], errbuf[16384];

/*
 * Start cdmctl with @argv and CDM_SYSFS_ROOT=@root, its standard output and
 * error going to the files "<tree>.out" and "<tree>.err".
 */
static pid_t spawn(const char *root, char *const argv[])
{
	char opath[4096], epath[4096];
	pid_t pid;

	xfmt(opath, sizeof(opath), "%s.out", tree);
	xfmt(epath, sizeof(epath), "%s.err", tree);
	fflush(stdout);
	pid = fork();
	if (!pid) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(o, 1);
		dup2(e, 2);
		setenv("CDM_SYSFS_ROOT", root, 1);
		execv(cdmctl, argv);
		_exit(99);
	}
	return pid;
}

/* Read what the last spawn() wrote into out[] and errbuf[]. */
static void collect(void)
{
	char path[4096];

	xfmt(path, sizeof(path), "%s.out", tree);
	get("", path, out, sizeof(out));
	xfmt(path, sizeof(path), "%s.err", tree);
	get("", path, errbuf, sizeof(errbuf));
}

/* Run cdmctl with CDM_SYSFS_ROOT=root; returns the exit status. */
static int run(const char *root, ...)
{
	char *argv[32];
	va_list ap;
	int n = 0, st;

	argv[n++] = (char *)cdmctl;
	va_start(ap, root);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	waitpid(spawn(root, argv), &st, 0);
	collect();
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ----------------------------------------------------------- lib tests */

static int mask_is(struct bitmask *m, const char *want)
{
	char got[256] = "";
	size_t off = 0;

	if (!m)
		return 0;
	for (unsigned int i = 0; i < m->size; i++)
		if (numa_bitmask_isbitset(m, i))
			off += (size_t)snprintf(got + off, sizeof(got) - off,
						"%s%u", off ? "," : "", i);
	numa_bitmask_free(m);
	if (strcmp(got, want))
		printf("# mask: got '%s', want '%s'\n", got, want);
	return !strcmp(got, want);
}

static void test_lib(void)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct bitmask *m;
	int r;

	setenv("CDM_SYSFS_ROOT", tree, 1);
	CHECK(numacdm_available() == 1, "numacdm_available() 1 with CDM support");
	CHECK(!strcmp(numacdm_sysfs_root(), tree), "sysfs root from CDM_SYSFS_ROOT");
	CHECK(mask_is(numacdm_nodes(), "1,2,3"), "numacdm_nodes() = 1-3");
	CHECK(mask_is(numacdm_sysram_nodes(), "0"), "numacdm_sysram_nodes() = 0");
	CHECK(numacdm_node_is_cdm(0) == 0, "node 0 is not CDM");
	CHECK(numacdm_node_is_cdm(1) == 1, "node 1 is CDM");
	CHECK(numacdm_node_is_cdm(2) == 1, "node 2 (no memory) is CDM");
	CHECK(numacdm_node_is_cdm(900) == 0, "node 900 is not CDM");
	errno = 0;
	CHECK(numacdm_node_is_cdm(-1) == -1 && errno == EINVAL, "node -1: EINVAL");

	CHECK(numacdm_node_of_device("0000:00:03.0") == 1, "BDF -> node 1");
	CHECK(numacdm_node_of_device("00:03.0") == 1, "short BDF -> node 1");
	CHECK(numacdm_node_of_device("capi_sim0") == 1,
	      "capi_sim0 (driver dir misc/) -> node 1");
	CHECK(numacdm_node_of_device("capi_sim1") == 2,
	      "capi_sim1 (/sys/class/misc) -> node 2");
	CHECK(numacdm_node_of_device("/dev/capi_sim1") == 2,
	      "/dev/capi_sim1 -> node 2");
	CHECK(numacdm_node_of_device("0000:00:05.0") == 3,
	      "other driver's device -> node 3 via cdm/owner");
	errno = 0;
	CHECK(numacdm_node_of_device("capi_sim9") == -1 && errno == ENODEV,
	      "unknown device: ENODEV");
	errno = 0;
	CHECK(numacdm_node_of_device("0000:00:09.0") == -1 && errno == ENODEV,
	      "unknown BDF: ENODEV");
	errno = 0;
	CHECK(numacdm_node_of_device("../../x") == -1 && errno == ENODEV,
	      "path traversal rejected: ENODEV");
	errno = 0;
	CHECK(numacdm_node_of_device(NULL) == -1 && errno == EINVAL, "NULL: EINVAL");
	errno = 0;
	CHECK(numacdm_node_of_device("") == -1 && errno == EINVAL, "\"\": EINVAL");

	r = numacdm_node_info(1, &in);
	CHECK(r == 0 && in.present && !strcmp(in.owner, "0000:00:03.0") &&
	      in.evac_state == NUMACDM_EVAC_IDLE && in.emergency_fallback == 0 &&
	      in.mem_total == 524288ULL * 1024 && in.mem_free == 520192ULL * 1024 &&
	      in.mem_used == 4096ULL * 1024,
	      "node_info(1): owner, state, meminfo");
	r = numacdm_node_info(3, &in);
	CHECK(r == 0 && in.evac_state == NUMACDM_EVAC_FAILED &&
	      in.pages_migrated == 10 && in.pages_remaining == 3,
	      "node_info(3): failed evacuation counters");
	r = numacdm_node_info(2, &in);
	CHECK(r == 0 && !in.present && !strcmp(in.owner, "0000:00:04.0") &&
	      in.evac_state == NUMACDM_EVAC_IDLE && !in.mem_total,
	      "node_info(2): evacuated node of a driver: not present, owner kept");
	errno = 0;
	CHECK(numacdm_node_info(0, &in) == -1 && errno == EINVAL,
	      "node_info(0): EINVAL (not CDM)");
	CHECK(in.size == sizeof(in), "node_info: size says every field was filled");
	{
		/* A caller built against the first version: only that much. */
		union {
			struct numacdm_node_info in;
			unsigned char b[sizeof(struct numacdm_node_info) + 8];
		} u;

		memset(&u, 0xa5, sizeof(u));
		u.in.size = NUMACDM_NODE_INFO_SIZE_1;
		CHECK(numacdm_node_info(1, &u.in) == 0 &&
		      u.in.size == NUMACDM_NODE_INFO_SIZE_1 &&
		      u.in.mem_used == 4096ULL * 1024 &&
		      u.b[NUMACDM_NODE_INFO_SIZE_1] == 0xa5,
		      "node_info: a version-1 size is filled, nothing past it");
		/* A caller from a later version: this library fills its part. */
		memset(&u, 0xa5, sizeof(u));
		u.in.size = sizeof(u);
		CHECK(numacdm_node_info(1, &u.in) == 0 &&
		      u.in.size == sizeof(struct numacdm_node_info) &&
		      u.b[sizeof(struct numacdm_node_info)] == 0xa5,
		      "node_info: a larger size gets this version's fields and size");
		u.in.size = NUMACDM_NODE_INFO_SIZE_1 - 1;
		errno = 0;
		CHECK(numacdm_node_info(1, &u.in) == -1 && errno == EINVAL,
		      "node_info: a size below version 1: EINVAL");
	}
	CHECK(!strcmp(numacdm_evac_state_name(NUMACDM_EVAC_RUNNING), "running"),
	      "evac state name");

	errno = 0;
	CHECK(!numacdm_alloc(4096, 0) && errno == EINVAL,
	      "numacdm_alloc on system-RAM node: EINVAL");
	errno = 0;
	CHECK(!numacdm_alloc(0, 1) && errno == EINVAL, "numacdm_alloc size 0: EINVAL");
	errno = 0;
	CHECK(!numacdm_alloc(4096, -3) && errno == EINVAL,
	      "numacdm_alloc node -3: EINVAL");
	errno = 0;
	CHECK(numacdm_free(NULL, 4096) == -1 && errno == EINVAL,
	      "numacdm_free(NULL): EINVAL");

	m = numacdm_parse_nodelist("0,2-4\n");
	CHECK(mask_is(m, "0,2,3,4"), "parse \"0,2-4\"");
	CHECK(mask_is(numacdm_parse_nodelist(""), ""), "parse \"\" = empty");
	errno = 0;
	CHECK(!numacdm_parse_nodelist("1-") && errno == EINVAL, "parse \"1-\": EINVAL");
	CHECK(!numacdm_parse_nodelist("3-1"), "parse \"3-1\": EINVAL");
	CHECK(!numacdm_parse_nodelist("x"), "parse \"x\": EINVAL");
	CHECK(!numacdm_parse_nodelist("1,,2"), "parse \"1,,2\": EINVAL");

	setenv("CDM_SYSFS_ROOT", notree, 1);
	CHECK(numacdm_available() == 0, "no CDM support: numacdm_available() 0");
	CHECK(mask_is(numacdm_nodes(), ""), "no CDM support: empty mask, not error");
	CHECK(mask_is(numacdm_sysram_nodes(), "0,1"), "no CDM support: sysram = has_memory");
	CHECK(numacdm_node_is_cdm(1) == 0, "no CDM support: node 1 not CDM");

	/* The host's node 0 posing as CDM: a real mbind. */
	setenv("CDM_SYSFS_ROOT", tree0, 1);
	{
		size_t sz = 16 * 4096;
		char *p = numacdm_alloc(sz, 0);
		int mode = -1, node = -1;
		unsigned long nm[16] = { 0 };

		CHECK(p != NULL, "numacdm_alloc(64K, 0) on host node 0 (errno %d)",
		      p ? 0 : errno);
		if (p) {
			memset(p, 0x5a, sz);
			get_mempolicy(&mode, nm, 16 * 64, p, MPOL_F_ADDR);
			CHECK(mode == MPOL_BIND && (nm[0] & 1),
			      "the range has MPOL_BIND to node 0 (mode %d)", mode);
			get_mempolicy(&node, NULL, 0, p, MPOL_F_ADDR | MPOL_F_NODE);
			CHECK(node == 0, "touched page is on node 0");
			CHECK(numacdm_free(p, sz) == 0, "numacdm_free");
		}
	}
	unsetenv("CDM_SYSFS_ROOT");
}

/* --------------------------------------------------------- cdmctl tests */

static int has(const char *s)
{
	if (strstr(out, s))
		return 1;
	printf("# missing '%s' in output:\n%s# stderr: %s\n", s, out, errbuf);
	return 0;
}

static int has_err(const char *s)
{
	if (strstr(errbuf, s))
		return 1;
	printf("# missing '%s' in stderr: %s\n", s, errbuf);
	return 0;
}

/*
 * -j, -u and -q before the command are taken by the commands that take
 * them after it, and refused by the others as after it.
 */
static void test_global_opts(void)
{
	char msg[sizeof(errbuf)];
	int r;

	r = run(tree, "list", "-q", NULL);
	memcpy(msg, errbuf, sizeof(msg));
	CHECK(r == 2 && has_err("cdmctl: list: option '-q' does not apply to 'list' (it is an option of: evacuate, online, unspill)\n"),
	      "list -q: exit 2, -q belongs to evacuate, online, unspill");
	r = run(tree, "-q", "list", NULL);
	CHECK(r == 2 && !out[0] && !strcmp(errbuf, msg),
	      "-q list: refused with the message of list -q, exit 2");
	r = run(tree, "--quiet", "status", "1", NULL);
	CHECK(r == 2 && !out[0] &&
	      has_err("status: option '--quiet' does not apply to 'status'"),
	      "--quiet status 1: exit 2");
	r = run(tree, "-q", "run", "--node", "1", "--", "true", NULL);
	CHECK(r == 2 && has_err("run: option '-q' does not apply to 'run'"),
	      "-q run: exit 2");
	r = run(tree, "-jq", "where", "1234", NULL);
	CHECK(r == 2 && !out[0] && has_err("where: option '-q' does not apply"),
	      "-jq where: -q refused, exit 2");
	r = run(tree, "-u", "version", NULL);
	CHECK(r == 2 && has_err("version: option '-u' does not apply"),
	      "-u version: exit 2");
	r = run(tree, "-j", "help", NULL);
	CHECK(r == 2 && has_err("help: option '-j' does not apply"),
	      "-j help: exit 2");
	r = run(tree, "-q", "evacuate", "3", "--timeout", "5000", NULL);
	CHECK(r == 0 && has("evacuated") && !errbuf[0], "-q evacuate: taken");
	r = run(tree, "-qj", "online", "capi_sim1", NULL);
	CHECK(r == 0 && json_valid(out) && jstreq("result", "ok"),
	      "-qj online: taken");
	r = run(tree, "--quiet", "-u", "unspill", "1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jstreq("result", "ok"),
	      "--quiet -u unspill: taken");
}

static void test_cdmctl(void)
{
	char buf[256];
	int r;

	r = run(tree, "list", NULL);
	CHECK(r == 0 && has("NODE") && has("0000:00:03.0") && has("capi_sim0") &&
	      has("512.0 MiB") && has("0:40") && has("0000:00:04.0") &&
	      has("offline") && has("0000:00:05.0") && has("0:50"),
	      "list: table with devices, sizes, distances");
	r = run(tree, "list", "--json", NULL);
	CHECK(r == 0 && json_valid(out), "list --json: valid JSON");
	CHECK(jlen("sysram_nodes", 1) && jint("sysram_nodes.0", 0) &&
	      jint("cdm_nodes.0.target_node", 1) &&
	      jstreq("cdm_nodes.0.device", "0000:00:03.0") &&
	      jstreq("cdm_nodes.0.chardev", "capi_sim0") &&
	      jint("cdm_nodes.0.size", 536870912) &&
	      jint("cdm_nodes.0.distance.0", 40) &&
	      jint("cdm_nodes.1.target_node", 2) &&
	      jstreq("cdm_nodes.1.device", "0000:00:04.0") &&
	      jstreq("cdm_nodes.1.chardev", "capi_sim1") &&
	      jbool("cdm_nodes.1.memory_online", 0) &&
	      jint("cdm_nodes.2.target_node", 3) &&
	      jstreq("cdm_nodes.2.device", "0000:00:05.0") &&
	      jnull("cdm_nodes.2.chardev") &&
	      jstreq("cdm_nodes.2.evacuation_state", "failed") &&
	      jint("cdm_nodes.0.used_bytes", 4194304) &&
	      jint("cdm_nodes.0.online_memblocks", 2) &&
	      jint("cdm_nodes.0.total_memblocks", 3) &&
	      jint("cdm_nodes.1.online_memblocks", 0) &&
	      jint("cdm_nodes.1.total_memblocks", 0),
	      "list --json: fields (daxctl's chardev, size, target_node, online_memblocks, total_memblocks)");
	CHECK(has("\n  \"cdm_nodes\": [\n"), "list --json: pretty-printed, 2 spaces");
	{
		/* node 2's owner file a directory: read() fails with EISDIR */
		char f[8192], saved[8300];

		xfmt(f, sizeof(f), "%s%s", tree, ND "/node2/cdm/owner");
		xfmt(saved, sizeof(saved), "%s.saved", f);
		if (rename(f, saved) || mkdir(f, 0755)) {
			perror(f);
			exit(2);
		}
		r = run(tree, "list", NULL);
		CHECK(r == 1 && has_err("node 2: Is a directory") &&
		      has("0000:00:03.0") && has("0000:00:05.0") &&
		      !strstr(out, "0000:00:04.0"),
		      "list with node 2 unreadable: the others listed, node 2 on stderr, exit 1");
		r = run(tree, "list", "--json", NULL);
		CHECK(r == 1 && json_valid(out) && jlen("cdm_nodes", 2) &&
		      jint("cdm_nodes.1.target_node", 3),
		      "list --json with node 2 unreadable: two nodes, exit 1");
		if (rmdir(f) || rename(saved, f)) {
			perror(f);
			exit(2);
		}
	}
	r = run(tree, "--json", "list", NULL);
	CHECK(r == 0 && json_valid(out), "--json before the command");
	r = run(tree, "-j", "list", "-u", NULL);
	CHECK(r == 0 && json_valid(out) &&
	      jstreq("cdm_nodes.0.size", "512.00 MiB (536.87 MB)") &&
	      jstreq("cdm_nodes.0.free_bytes", "508.00 MiB (532.68 MB)") &&
	      jint("cdm_nodes.0.used_bytes", 4194304) &&
	      jint("cdm_nodes.0.pages_migrated", 0),
	      "-j list -u: sizes as daxctl -u (bytes below 5000 KiB), counts as numbers");
	r = run(tree, "--human", "list", "--json", NULL);
	CHECK(r == 0 && json_valid(out) &&
	      jstreq("cdm_nodes.1.size", "256.00 MiB (268.44 MB)"),
	      "--human before the command, --json after");
	r = run(notree, "list", NULL);
	CHECK(r == 3 && !out[0] &&
	      has_err("this kernel has no coherent device memory support"),
	      "list on a kernel without CDM support: exit 3, says so");
	r = run(notree, "list", "--json", NULL);
	CHECK(r == 3 && json_valid(out) && jbool("cdm_supported", 0) &&
	      jlen("cdm_nodes", 0) && jlen("sysram_nodes", 2) &&
	      jint("sysram_nodes.1", 1),
	      "list --json without CDM support: exit 3, cdm_supported false");
	put(notree, ND "/has_coherent_device", "\n");
	r = run(notree, "list", NULL);
	CHECK(r == 0 && has("no coherent device memory nodes") && !errbuf[0],
	      "list with CDM support but no CDM node: exit 0, empty list");
	r = run(notree, "list", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jbool("cdm_supported", 1) &&
	      jlen("cdm_nodes", 0), "list --json with support, no node");
	unlink_tree_file(notree, ND "/has_coherent_device");

	r = run(tree, "status", "1", NULL);
	CHECK(r == 0 && has("node:               1") &&
	      has("0000:00:03.0 (/dev/capi_sim0)") && has("state:              online") &&
	      has("resident_pages 77") && has("node0=40"),
	      "status 1: text");
	r = run(tree, "status", "capi_sim0", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 1) &&
	      jint("stats.resident_pages", 77) && jint("stats.evacuations", 2) &&
	      jint("stats.last_evacuation_us", 1500000),
	      "status capi_sim0 --json: valid, with stats");
	r = run(tree, "status", "0000:00:04.0", NULL);
	CHECK(r == 0 && has("memory online:      no") && has("offline"),
	      "status of an evacuated device");
	r = run(tree, "status", "00:04.0", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 2) &&
	      jbool("memory_online", 0), "status short BDF --json");
	r = run(tree, "status", "3", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jstreq("device", "0000:00:05.0") &&
	      json_object_object_length(jat("stats")) == 0,
	      "status of a non-capi_sim CDM node");
	r = run(tree, "status", "0", NULL);
	CHECK(r == 3 && has_err("not a coherent device memory node"),
	      "status 0: exit 3, not CDM");
	r = run(tree, "status", "nosuchdev", NULL);
	CHECK(r == 3 && has_err("no such CDM device"), "status unknown: exit 3");
	r = run(tree, "status", NULL);
	CHECK(r == 2, "status without argument: exit 2");

	r = run(tree, "where", "1234", NULL);
	CHECK(r == 0 && has("worker") && has("sysram") && has("cdm"),
	      "where: text");
	r = run(tree, "where", "1234", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("pid", 1234) &&
	      jstreq("command", "worker") &&
	      jint("nodes.0.node", 0) && jbool("nodes.0.cdm", 0) &&
	      jint("nodes.0.bytes", 49152) && jint("nodes.0.pages", 12) &&
	      jint("nodes.1.node", 1) && jbool("nodes.1.cdm", 1) &&
	      jint("nodes.1.bytes", 3158016) && jint("nodes.1.pages", 771) &&
	      jint("total_bytes", 3207168),
	      "where --json: per-node bytes incl. a 2 MiB huge page");
	r = run(tree, "where", "99999", NULL);
	CHECK(r == 3, "where: no such process: exit 3");
	r = run(tree, "where", "abc", NULL);
	CHECK(r == 2, "where abc: exit 2");
	r = run(tree0, "where", "1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("nodes", 0),
	      "where --json with no resident pages");

	r = run(tree, "where", "1235", "--json", NULL);
	CHECK(r == 0 && json_valid(out) &&
	      jstreq("command", "bad\xef\xbf\xbd\"q") && has("\"bad\xef\xbf\xbd\\\"q\""),
	      "where --json: a name that is not UTF-8 comes out valid (U+FFFD), quote escaped");

	r = run(tree, "users", "1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 1) &&
	      jlen("processes", 2) && jint("processes.0.pid", 1234) &&
	      jstreq("processes.0.command", "worker") &&
	      jstreq("processes.0.cgroup", "/") &&
	      jint("processes.0.bytes", 3158016) &&
	      jint("processes.1.pid", 1235) &&
	      jstreq("processes.1.command", "bad\xef\xbf\xbd\"q") &&
	      jstreq("processes.1.cgroup", "/jobs/gpu") &&
	      jint("processes.1.bytes", 2097152) &&
	      jint("total_bytes", 5255168) && has("\"/jobs/gpu\""),
	      "users --json: processes on node 1, largest first, with cgroup and bytes");
	r = run(tree, "users", "capi_sim0", NULL);
	CHECK(r == 0 && has("worker") && has("/jobs/gpu") && has("3.0 MiB"),
	      "users by device name: text");
	r = run(tree, "users", "2", NULL);
	CHECK(r == 0 && has("no process has memory on node 2"),
	      "users of an evacuated node: none");
	r = run(tree, "users", "0", NULL);
	CHECK(r == 3, "users of a system-RAM node: exit 3");

	/* node 1's last evacuation (the fake tree's files do not change) */
	put(tree, ND "/node1/cdm/pages_migrated", "4242\n");
	put(tree, ND "/node1/cdm/evacuation_ms", "1500\n");
	r = run(tree, "evacuate", "1", "--dry-run", "--json", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && json_valid(out) && !buf[0] &&
	      jint("in_use_bytes", 4194304) &&
	      jint("ram_available_bytes", 614400000) && jbool("fits", 1) &&
	      has("\"estimated_seconds\": 0.36") &&
	      jint("default_timeout_ms", 11086) && jbool("rate_measured", 1),
	      "evacuate --dry-run --json: in use, room, estimate and default timeout from the last rate; nothing written");
	r = run(tree, "evacuate", "capi_sim0", "--dry-run", NULL);
	CHECK(r == 0 && has("4.0 MiB in use") && has("fits") &&
	      has("estimated time: 0.4 s") && has("default timeout: 11086 ms"),
	      "evacuate --dry-run: text");
	put(tree, "/proc/meminfo", "MemTotal: 1048576 kB\nMemAvailable: 1000 kB\n");
	r = run(tree, "evacuate", "1", "--dry-run", NULL);
	CHECK(r == 1 && has("does NOT fit"), "evacuate --dry-run without room: exit 1");
	put(tree, "/proc/meminfo", "MemTotal: 1048576 kB\nMemAvailable: 600000 kB\n");
	r = run(tree, "evacuate", "3", "--dry-run", NULL);
	CHECK(r == 0 && has("0000:00:05.0"),
	      "evacuate --dry-run of another driver's node: the same contract");
	r = run(tree, "status", "1", "--dry-run", NULL);
	CHECK(r == 2 && has_err("does not apply"), "--dry-run with status: exit 2");

	r = run(tree, "evacuate", "capi_sim1", NULL);
	CHECK(r == 6 && has_err("already evacuated"), "evacuate offline device: exit 6");
	r = run(tree, "online", "0000:00:03.0", NULL);
	CHECK(r == 6 && has_err("already online"), "online an online device: exit 6");
	r = run(tree, "evacuate", "3", "--timeout", "5000", NULL);
	get(tree, ND "/node3/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "5000\n") &&
	      has("node 3 (0000:00:05.0) evacuated"),
	      "evacuate a node of another driver: through node3/cdm/evacuate");
	r = run(tree, "evacuate", "1", "--timeout", "abc", NULL);
	CHECK(r == 2 && has_err("not a number"), "--timeout abc: exit 2");
	r = run(tree, "evacuate", "1", "--timeout", "99999999", NULL);
	CHECK(r == 2 && has_err("at most 3600000"), "--timeout too large: exit 2");
	r = run(tree, "evacuate", "capi_sim0", "--timeout", "5000", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "5000\n") &&
	      has("4242 pages migrated in 1.50 s (16.6 MiB)"),
	      "evacuate --timeout 5000 writes \"5000\" and reports the result");
	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	r = run(tree, "evacuate", "capi_sim0", "--timeout=5000", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "5000\n"), "evacuate --timeout=5000");
	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	r = run(tree, "evacuate", "-t", "5000", "1", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "5000\n"), "evacuate -t 5000 before the argument");
	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	r = run(tree, "evacuate", "1", "-t5000", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "5000\n"), "evacuate -t5000");
	r = run(tree, "evacuate", "1", "--timeout", NULL);
	CHECK(r == 2 && has_err("option '--timeout' needs a value"),
	      "--timeout without a value: exit 2");
	r = run(tree, "evacuate", "1", "--dry-run=5", NULL);
	CHECK(r == 2 && has_err("option '--dry-run' takes no value"),
	      "evacuate --dry-run=5: takes no value, exit 2");
	r = run(tree, "list", "-xj", NULL);
	CHECK(r == 2 && has_err("unknown option '-x'"), "list -xj: unknown option '-x'");
	r = run(tree, "evacuate", "1", "--bogus", NULL);
	CHECK(r == 2 && has_err("unknown option '--bogus'"),
	      "evacuate --bogus: unknown option, exit 2");
	r = run(tree, "evacuate", "1", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "11086\n"),
	      "evacuate default timeout: 10 s + 3 x 4 MiB at the last rate = 11086 ms (got %.*s)",
	      (int)strcspn(buf, "\n"), buf);
	r = run(tree, "evacuate", "1", "--timeout", "0", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "0\n"),
	      "evacuate --timeout 0 on capi_sim: 0, the kernel's default, as for a node");
	r = run(tree, "evacuate", "1", "--timeout", "0", "--json", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "0\n") && json_valid(out) &&
	      jint("timeout_ms", 10000),
	      "evacuate --timeout 0 --json: writes 0, reports the kernel's 10000 ms");
	r = run(tree, "evacuate", "1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 1) &&
	      jstreq("device", "0000:00:03.0") && jstreq("chardev", "capi_sim0") &&
	      jstreq("result", "ok") && jint("pages_migrated", 4242) &&
	      jint("bytes", 4242 * 4096) && jint("timeout_ms", 11086) &&
	      has("\"seconds\": 1.50") && !jat("errno"),
	      "evacuate --json: result object");
	/* the rate when none was measured (the last evacuation failed): 8 MiB/s */
	put(tree, ND "/node1/cdm/evacuation_error", "-16\n");
	r = run(tree, "evacuate", "1", "--dry-run", "-j", NULL);
	CHECK(r == 0 && json_valid(out) && jint("default_timeout_ms", 11500) &&
	      jbool("rate_measured", 0) && jnull("estimated_seconds"),
	      "default timeout without a measured rate: 10 s + 3 x 4 MiB at 8 MiB/s");
	meminfo(tree, 1, 4UL << 30, 0);	/* 4 TiB used */
	r = run(tree, "evacuate", "1", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "3600000\n"),
	      "default timeout capped at 3600000 ms");
	meminfo(tree, 1, 524288, 520192);
	put(tree, ND "/node1/cdm/evacuation_error", "0\n");
	/* a failed write: a result object with errno and message */
	unlink_tree_file(tree, ND "/node1/cdm/evacuate");
	xfmt(buf, sizeof(buf), "%s" ND "/node1/cdm/evacuate", tree);
	mkdir(buf, 0755);
	r = run(tree, "evacuate", "1", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jstreq("result", "error") &&
	      jint("errno", EISDIR) && jat("message") &&
	      has_err("Is a directory"),
	      "evacuate --json, failing: result error, errno, message; exit 1");
	rmdir(buf);
	put(tree, ND "/node1/cdm/evacuate", "%s", "");

	r = run(tree, "online", "capi_sim1", NULL);
	get(tree, ND "/node2/cdm/online", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "1\n") && has("node 2 (0000:00:04.0) online"),
	      "online writes \"1\"");
	r = run(tree, "online", "capi_sim1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 2) &&
	      jstreq("chardev", "capi_sim1") && jstreq("result", "ok") &&
	      jint("bytes", 0) && jint("online_memblocks", 0) &&
	      jint("total_memblocks", 0) && !jat("memory_blocks"),
	      "online --json: result object, daxctl's memblock counts");
	r = run(tree, "-j", "online", "capi_sim0", NULL);
	CHECK(r == 6 && json_valid(out) && jstreq("result", "nothing") &&
	      jint("errno", EALREADY) && jat("message") &&
	      jint("online_memblocks", 2) && jint("total_memblocks", 3),
	      "online --json of an online device: result nothing, exit 6");
	r = run(tree, "online", "capi_sim0", "--restore", "-j", NULL);
	CHECK(r == 0 && json_valid(out) && jstreq("result", "nothing") &&
	      jstreq("restore.result", "ok") && jint("restore.pages_moved", 0),
	      "online --restore --json: a restore object");
	r = run(tree, "online", "-r", "capi_sim0", NULL);
	CHECK(r == 0 && has("node 1: restored 0 pages"), "online -r: text");
	r = run(tree, "unspill", "1", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jint("target_node", 1) &&
	      jstreq("result", "ok") && jint("pages_moved", 0) &&
	      jint("bytes", 0) && !jat("message"), "unspill --json: result object");
	r = run(tree, "unspill", "1", NULL);
	CHECK(r == 0 && has("node 1: returned to system RAM 0 pages"),
	      "unspill: text");

	r = run(tree, "run", "--node", "0", "--", "true", NULL);
	CHECK(r == 3 && has_err("node 0 is not a coherent device memory node (CDM nodes: 1,2,3)"),
	      "run on a system-RAM node: exit 3 with a clear message");
	r = run(tree, "run", "--node", "2", "--", "true", NULL);
	CHECK(r == 3 && has_err("no memory online"),
	      "run on an evacuated node: exit 3");
	r = run(tree, "run", "--node", "1", "true", NULL);
	CHECK(r == 2, "run without --: exit 2");
	r = run(tree, "run", "--", "true", NULL);
	CHECK(r == 2, "run without --node: exit 2");
	r = run(tree, "run", "--node", "1-2", "--", "true", NULL);
	CHECK(r == 3 && has_err("node 2 has no memory online"),
	      "run --node 1-2, node 2 evacuated: exit 3, names node 2");
	r = run(tree, "run", "--node", "1,0", "--", "true", NULL);
	CHECK(r == 3 && has_err("node 0 is not a coherent device memory node"),
	      "run --node 1,0: a system-RAM node in the list, exit 3");
	/* The host has no nodes 1 and 3: the kernel refuses the policy. */
	r = run(tree, "run", "--node", "all", "--", "true", NULL);
	CHECK(r == 3 && has_err("set_mempolicy(MPOL_BIND, nodes 1,3)"),
	      "run --node all: the CDM nodes with memory online (1,3, not 2)");
	r = run(notree, "run", "--node", "all", "--", "true", NULL);
	CHECK(r == 3 && has_err("no coherent device memory support"),
	      "run --node all without CDM support: exit 3, says so");
	put(notree, ND "/has_coherent_device", "\n");
	r = run(notree, "run", "--node", "all", "--", "true", NULL);
	CHECK(r == 3 && has_err("no CDM node has memory online"),
	      "run --node all with support, no CDM node: exit 3");
	unlink_tree_file(notree, ND "/has_coherent_device");
	r = run(tree, "run", "--node", "all", "-p", "--", "true", NULL);
	CHECK(r == 3 && has_err("set_mempolicy(MPOL_PREFERRED_MANY, nodes 1,3)"),
	      "run --node all -p: several nodes, MPOL_PREFERRED_MANY");
	r = run(tree, "run", "--node", "x", "--", "true", NULL);
	CHECK(r == 2 && has_err("not a node number"), "run --node x: exit 2");
	r = run(tree, "-j", "run", "--node", "1", "--", "true", NULL);
	CHECK(r == 2 && has_err("run: option '-j' does not apply to 'run'"),
	      "-j run: exit 2");
	r = run(tree0, "run", "--node", "0", "--", "sh", "-c", "exit 7", NULL);
	CHECK(r == 7, "run --node 0 (host node as CDM): command's exit status");
	r = run(tree0, "run", "--node=0", "--preferred", "--", "true", NULL);
	CHECK(r == 0, "run --node=0 --preferred");
	r = run(tree0, "run", "-n", "0", "-p", "--", "true", NULL);
	CHECK(r == 0, "run -n 0 -p");
	r = run(tree0, "run", "--node", "all", "--", "sh", "-c", "exit 5", NULL);
	CHECK(r == 5, "run --node all with one CDM node");
	r = run(tree0, "run", "--node", "0", "--", "/nonexistent/cmd", NULL);
	CHECK(r == 127, "run missing command: exit 127");
	r = run(tree0, "run", "--node", "0", "--", "sh", "-c", "exit 9", "--json", NULL);
	CHECK(r == 9, "run: options after -- belong to the command");

	r = run(tree, "frobnicate", NULL);
	CHECK(r == 2 && has_err("unknown command 'frobnicate'"), "unknown command: exit 2");
	r = run(tree, NULL);
	CHECK(r == 2, "no command: exit 2");
	r = run(tree, "list", "extra", NULL);
	CHECK(r == 2, "list with an argument: exit 2");
	r = run(tree, "--bogus", "list", NULL);
	CHECK(r == 2 && has_err("unknown option '--bogus'"), "unknown option: exit 2");
	r = run(tree, "--timeout", "5", "evacuate", "1", NULL);
	CHECK(r == 2 && has_err("goes after the command"),
	      "a command's option before the command: exit 2");
	r = run(tree, "list", "--restore", NULL);
	CHECK(r == 2 && has_err("'--restore' does not apply to 'list'") &&
	      has_err("online"), "list --restore: does not apply, exit 2");
	r = run(tree, "where", "1", "-t", "5", NULL);
	CHECK(r == 2 && has_err("'-t' does not apply to 'where'"),
	      "where -t 5: does not apply, exit 2");
	r = run(tree, "status", "1", "--quiet", NULL);
	CHECK(r == 2 && has_err("does not apply"), "status --quiet: exit 2");
	test_global_opts();
	r = run(tree, "--help", NULL);
	CHECK(r == 0 && has("usage: cdmctl") && has("evacuate"), "--help");
	r = run(tree, "help", NULL);
	CHECK(r == 0 && has("usage: cdmctl") && has("unspill"), "help");
	r = run(tree, "help", "evacuate", NULL);
	CHECK(r == 0 && has("usage: cdmctl evacuate") && has("--timeout") &&
	      has("10 s + 3 x"), "help evacuate: options and the timeout rule");
	r = run(tree, "help", "frob", NULL);
	CHECK(r == 2, "help frob: exit 2");
	{
		static const char *const cmds[] = {
			"list", "status", "evacuate", "online", "run", "where",
			"users", "unspill", "help", "version",
		};

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			char want[64];

			xfmt(want, sizeof(want), "usage: cdmctl %s", cmds[i]);
			r = run(tree, cmds[i], "-h", NULL);
			CHECK(r == 0 && has(want), "%s -h", cmds[i]);
			r = run(tree, cmds[i], "--help", NULL);
			CHECK(r == 0 && has(want), "%s --help", cmds[i]);
		}
	}
	r = run(tree, "-V", NULL);
	CHECK(r == 0 && !strcmp(out, "cdmctl " CDM_TOOLS_VERSION "\n"), "-V");
	r = run(tree, "-v", NULL);
	CHECK(r == 0 && !strcmp(out, "cdmctl " CDM_TOOLS_VERSION "\n"), "-v (daxctl's)");
	r = run(tree, "--version", NULL);
	CHECK(r == 0 && !strcmp(out, "cdmctl " CDM_TOOLS_VERSION "\n"), "--version");
	r = run(tree, "version", NULL);
	CHECK(r == 0 && !strcmp(out, "cdmctl " CDM_TOOLS_VERSION "\n"), "version");
}

/*
 * A firmware node (owner "none"): evacuated through nodeN/cdm/evacuate,
 * where 0 means the kernel's default, as everywhere.
 */
static void test_firmware_node(void)
{
	char buf[256];
	int r;

	r = run(treefw, "evacuate", "1", "--timeout", "0", NULL);
	get(treefw, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "0\n") && has("node 1 (firmware) evacuated"),
	      "firmware node: --timeout 0 writes 0 (the default) to nodeN/cdm/evacuate");
	r = run(treefw, "evacuate", "1", NULL);
	get(treefw, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	CHECK(r == 0 && !strcmp(buf, "11500\n"),
	      "firmware node: default 10 s + 3 x 4 MiB at 8 MiB/s = 11500 ms (got %.*s)",
	      (int)strcspn(buf, "\n"), buf);
	r = run(treefw, "evacuate", "1", "-j", "-u", NULL);
	CHECK(r == 0 && json_valid(out) && jnull("device") &&
	      jstreq("result", "ok") && jint("pages_migrated", 7) &&
	      jint("bytes", 28672),
	      "firmware node: evacuate -j -u (below 5000 KiB: bytes, as daxctl)");
}

/*
 * Every command that takes a device or node takes a list of them: node
 * ids, ranges, devices and "all", acted on in order, each once; with
 * --json an array of the per-target objects when there are several.
 */
static void test_targets(void)
{
	char buf[256], b3[256];
	int r;

	r = run(tree, "status", "1-2,3", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 3) &&
	      jint("0.target_node", 1) && jint("1.target_node", 2) &&
	      jint("2.target_node", 3) && jbool("1.memory_online", 0) &&
	      jint("0.stats.resident_pages", 77),
	      "status 1-2,3 --json: an array of three node objects, in order");
	r = run(tree, "status", "3,1", "-j", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 2) &&
	      jint("0.target_node", 3) && jint("1.target_node", 1),
	      "status 3,1: in the order given");
	r = run(tree, "status", "all", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 3) &&
	      jint("0.target_node", 1) && jint("2.target_node", 3),
	      "status all: every CDM node");
	r = run(tree, "status", "capi_sim1,1", "-j", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 2) &&
	      jint("0.target_node", 2) && jstreq("0.chardev", "capi_sim1") &&
	      jint("1.target_node", 1),
	      "status capi_sim1,1: devices and nodes mixed");
	r = run(tree, "status", "1,capi_sim0,0000:00:03.0", "-j", NULL);
	CHECK(r == 0 && json_valid(out) &&
	      json_object_is_type(parsed, json_type_object) &&
	      jint("target_node", 1),
	      "status of one node named three ways: once, one object");
	r = run(tree, "status", "1-2", NULL);
	CHECK(r == 0 && has("node:               1\n") &&
	      has("\n\nnode:               2\n"),
	      "status 1-2: text, a blank line between the nodes");
	r = run(tree, "status", "1-2,4", "--json", NULL);
	CHECK(r == 3 && !out[0] &&
	      has_err("node 4 is not a coherent device memory node"),
	      "status 1-2,4: node 4 is no CDM node: exit 3, nothing done");
	r = run(tree, "status", "1,nosuch", "--json", NULL);
	CHECK(r == 3 && !out[0] && has_err("nosuch: no such CDM device"),
	      "status 1,nosuch: exit 3 before any output");
	r = run(tree, "status", "1,,2", NULL);
	CHECK(r == 2 && has_err("an empty element"), "status 1,,2: exit 2");
	r = run(tree, "status", "1,", NULL);
	CHECK(r == 2 && has_err("an empty element"), "status 1,: exit 2");
	r = run(tree, "status", "3-1", NULL);
	CHECK(r == 2 && has_err("'3-1' is not a node range"), "status 3-1: exit 2");
	r = run(tree, "status", "0-1", NULL);
	CHECK(r == 3 && !out[0] && has_err("node 0 is not a coherent device memory node"),
	      "status 0-1: node 0 is system RAM, exit 3");
	put(notree, ND "/has_coherent_device", "\n");
	r = run(notree, "status", "all", "--json", NULL);
	CHECK(r == 3 && !out[0] && has_err("there is no coherent device memory node"),
	      "status all without CDM nodes: exit 3");
	unlink_tree_file(notree, ND "/has_coherent_device");

	r = run(tree, "users", "all", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 3) &&
	      jint("0.target_node", 1) && jlen("0.processes", 2) &&
	      jint("1.target_node", 2) && jlen("1.processes", 0) &&
	      jint("2.target_node", 3),
	      "users all --json: an array, one object per node");
	r = run(tree, "users", "1-2", NULL);
	CHECK(r == 0 && has("node 1:\nPID") && has("\n\nnode 2:\nPID") &&
	      has("no process has memory on node 2"),
	      "users 1-2: a table per node under a heading");

	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	put(tree, ND "/node3/cdm/evacuate", "%s", "");
	r = run(tree, "evacuate", "1,3", "--timeout=5000", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	get(tree, ND "/node3/cdm/evacuate", b3, sizeof(b3));
	CHECK(r == 0 && !strcmp(buf, "5000\n") && !strcmp(b3, "5000\n") &&
	      has("node 1 (0000:00:03.0) evacuated") &&
	      has("node 3 (0000:00:05.0) evacuated"),
	      "evacuate 1,3 --timeout=5000: both, one after another");
	r = run(tree, "evacuate", "--timeout", "4000", "1-3", "--json", "-q", NULL);
	get(tree, ND "/node1/cdm/evacuate", buf, sizeof(buf));
	get(tree, ND "/node3/cdm/evacuate", b3, sizeof(b3));
	CHECK(r == 6 && json_valid(out) && jlen("", 3) &&
	      !strcmp(buf, "4000\n") && !strcmp(b3, "4000\n") &&
	      jstreq("0.result", "ok") && jint("0.timeout_ms", 4000) &&
	      jstreq("1.result", "nothing") && jint("1.errno", EALREADY) &&
	      jstreq("2.result", "ok") && jint("2.target_node", 3),
	      "evacuate --timeout 4000 1-3 --json: an array; node 2 had nothing to move, exit 6");
	/* a real failure goes before "nothing to do", wherever it is */
	unlink_tree_file(tree, ND "/node1/cdm/evacuate");
	xfmt(buf, sizeof(buf), "%s" ND "/node1/cdm/evacuate", tree);
	mkdir(buf, 0755);
	r = run(tree, "evacuate", "2,1", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jstreq("0.result", "nothing") &&
	      jstreq("1.result", "error") && jint("1.errno", EISDIR),
	      "evacuate 2,1: nothing, then an error: exit 1");
	r = run(tree, "evacuate", "1,2", NULL);
	CHECK(r == 1 && has_err("Is a directory") && has_err("already evacuated"),
	      "evacuate 1,2: an error, then nothing: exit 1");
	rmdir(buf);
	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	r = run(tree, "evacuate", "--dry-run", "1,3", "--json", NULL);
	CHECK(r == 0 && json_valid(out) && jlen("", 2) &&
	      jint("0.ram_available_bytes", 614400000) &&
	      jint("1.ram_available_bytes", 614400000 - 4194304),
	      "evacuate --dry-run 1,3: node 3 gets the RAM node 1 leaves");

	r = run(tree, "online", "all", "--json", NULL);
	CHECK(r == 6 && json_valid(out) && jlen("", 3) &&
	      jstreq("0.result", "nothing") && jstreq("1.result", "ok") &&
	      jstreq("2.result", "ok"),
	      "online all --json: node 1 online already, exit 6");
	r = run(tree, "online", "2-3", NULL);
	CHECK(r == 0 && has("node 2 (0000:00:04.0) online") &&
	      has("node 3 (0000:00:05.0) online"), "online 2-3: text");
	r = run(tree, "unspill", "all", "-j", NULL);
	CHECK(r == 6 && json_valid(out) && jlen("", 3) &&
	      jstreq("0.result", "ok") && jstreq("1.result", "nothing") &&
	      jint("1.errno", EALREADY) && jstreq("2.result", "ok"),
	      "unspill all -j: node 2 has no memory, exit 6");
}

/*
 * Every outcome of a command on a target prints a JSON object with
 * --json: "nothing to do" and failures too.
 */
static void test_json_outcomes(void)
{
	char path[8192], hidden[8192];
	int r;

	r = run(tree, "evacuate", "capi_sim1", "--json", NULL);
	CHECK(r == 6 && json_valid(out) && jint("target_node", 2) &&
	      jstreq("result", "nothing") && jint("errno", EALREADY) &&
	      jat("message") && jint("pages_remaining", 0) && jat("timeout_ms") &&
	      has_err("already evacuated"),
	      "evacuate --json of an evacuated device: result nothing, exit 6");
	r = run(tree, "evacuate", "2", "--dry-run", "--json", NULL);
	CHECK(r == 6 && json_valid(out) && jstreq("result", "nothing") &&
	      jint("errno", EALREADY) && jat("message"),
	      "evacuate --dry-run --json of an evacuated node: result nothing");
	r = run(tree, "unspill", "capi_sim1", "--json", NULL);
	CHECK(r == 6 && json_valid(out) && jint("target_node", 2) &&
	      jstreq("result", "nothing") && jint("errno", EALREADY) &&
	      jat("message") && jint("pages_moved", 0),
	      "unspill --json of an evacuated node: result nothing, exit 6");

	/* node 3's nodeN/cdm/owner unreadable: status cannot read the node */
	unlink_tree_file(tree, ND "/node3/cdm/owner");
	xfmt(path, sizeof(path), "%s" ND "/node3/cdm/owner", tree);
	mkdir(path, 0755);
	r = run(tree, "status", "1,3", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jint("0.target_node", 1) &&
	      jint("1.target_node", 3) && jstreq("1.result", "error") &&
	      jint("1.errno", EISDIR) && jat("1.message"),
	      "status 1,3 --json, node 3 unreadable: its object says so, exit 1");
	rmdir(path);
	put(tree, ND "/node3/cdm/owner", "0000:00:05.0\n");

	/* the firmware tree without its /proc */
	xfmt(path, sizeof(path), "%s/proc", treefw);
	xfmt(hidden, sizeof(hidden), "%s/proc.hidden", treefw);
	if (rename(path, hidden)) {
		perror(path);
		exit(2);
	}
	r = run(treefw, "users", "1", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jint("target_node", 1) &&
	      jstreq("result", "error") && jint("errno", ENOENT) &&
	      jat("message"),
	      "users --json without /proc: result error, exit 1");
	r = run(treefw, "unspill", "1", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jstreq("result", "error") &&
	      jint("errno", ENOENT) && jat("message") && jint("pages_moved", 0),
	      "unspill --json without /proc: result error, exit 1");
	r = run(treefw, "online", "1", "--restore", "--json", NULL);
	CHECK(r == 1 && json_valid(out) && jstreq("result", "nothing") &&
	      jstreq("restore.result", "error") && jat("restore.message"),
	      "online --restore --json without /proc: the restore says error, exit 1");
	if (rename(hidden, path)) {
		perror(hidden);
		exit(2);
	}
	/* a firmware node with no memory online */
	put(treefw, ND "/has_memory", "0\n");
	r = run(treefw, "evacuate", "1", "--json", NULL);
	CHECK(r == 6 && json_valid(out) && jstreq("result", "nothing") &&
	      jnull("device") && jat("message"),
	      "evacuate --json of an evacuated firmware node: result nothing");
	r = run(treefw, "unspill", "1", "-j", NULL);
	CHECK(r == 6 && json_valid(out) && jstreq("result", "nothing"),
	      "unspill -j of an evacuated firmware node: result nothing");
	put(treefw, ND "/has_memory", "0-1\n");
}

/*
 * -u sizes as daxctl prints them: bytes below 5000 KiB; above, binary
 * units (MiB below 2 GiB, GiB below 2 TiB, TiB) with the decimal size.
 */
static void test_human_sizes(void)
{
	static const struct {
		const char *bytes, *want;	/* NULL: the number */
	} sizes[] = {
		{ "4096", NULL },
		{ "5119999", NULL },
		{ "5120000", "4.88 MiB (5.12 MB)" },
		{ "5242879", "5.00 MiB (5.24 MB)" },
		{ "268435456", "256.00 MiB (268.44 MB)" },
		{ "2147483647", "2048.00 MiB (2147.48 MB)" },
		{ "2147483648", "2.00 GiB (2.15 GB)" },
		{ "2199023255551", "2048.00 GiB (2199.02 GB)" },
		{ "2199023255552", "2.00 TiB (2.20 TB)" },
		/* no overflow at the top */
		{ "18446744073709551615", "16777216.00 TiB (18446744.07 TB)" },
	};
	int r;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		put(tree, CS "/0000:00:03.0/size", "%s\n", sizes[i].bytes);
		r = run(tree, "status", "1", "-j", "-u", NULL);
		CHECK(r == 0 && json_valid(out) &&
		      (sizes[i].want ? jstreq("size", sizes[i].want) :
		       jint("size", strtoll(sizes[i].bytes, NULL, 10))),
		      "-u: %s bytes as %s", sizes[i].bytes,
		      sizes[i].want ? sizes[i].want : "the number");
	}
	put(tree, CS "/0000:00:03.0/size", "536870912\n");
}

/*
 * Progress of an evacuation that takes a while: the evacuate file is a
 * FIFO, so cdmctl's write blocks until the test reads it, while the test
 * moves pages_migrated on.  Without a terminal: a line per 10 % step, in
 * bytes, ending with 100 %; with --quiet: nothing.
 */
/*
 * Wait until cdmctl's standard error file holds @s: the fake counters move
 * on only once cdmctl has shown the step before, whatever the machine's
 * load (20 s cap, for a cdmctl that never prints it).  0 when it does.
 */
static int wait_err(const char *epath, const char *s)
{
	for (int i = 0; i < 2000; i++) {
		if (get("", epath, errbuf, sizeof(errbuf)) >= 0 &&
		    strstr(errbuf, s))
			return 0;
		usleep(10000);
	}
	printf("# cdmctl never printed \"%s\"\n", s);
	return -1;
}

static void test_progress(int quiet)
{
	char fifo[4096], epath[4096], tmp[256];
	static const int steps[][2] = { { 250, 750 }, { 500, 500 }, { 967, 33 } };
	static const char * const steps_seen[] = { "(25.0%)", "(50.0%)", "(96.7%)" };
	int st, n = 0;
	pid_t pid;
	char *p;

	xfmt(fifo, sizeof(fifo), "%s" ND "/node1/cdm/evacuate", tree);
	xfmt(epath, sizeof(epath), "%s.err", tree);
	/* before the FIFO: cdm_dir() writes an empty evacuate file */
	cdm_dir(tree, 1, "0000:00:03.0", "running", 0, 1000);
	unlink(fifo);
	if (mkfifo(fifo, 0644)) {
		perror("mkfifo");
		exit(2);
	}
	{
		char *argv[] = { (char *)cdmctl, "evacuate", "1", "--timeout",
				 "60000", quiet ? "-q" : NULL, NULL };

		pid = spawn(tree, argv);
	}
	/* Each step once cdmctl showed the last (-q: it shows none). */
	if (!quiet)
		wait_err(epath, "(0.0%)");
	for (size_t i = 0; i < 3; i++) {
		xfmt(tmp, sizeof(tmp), "%d\n", steps[i][0]);
		put(tree, ND "/node1/cdm/pages_migrated", "%s", tmp);
		xfmt(tmp, sizeof(tmp), "%d\n", steps[i][1]);
		put(tree, ND "/node1/cdm/pages_remaining", "%s", tmp);
		if (!quiet)
			wait_err(epath, steps_seen[i]);
	}
	{
		/* never block: cdmctl may have exited without opening it */
		int fd = open(fifo, O_RDONLY | O_NONBLOCK), i;
		char b[64];

		for (i = 0; i < 1000 && !waitpid(pid, &st, WNOHANG); i++) {
			while (fd >= 0 && read(fd, b, sizeof(b)) > 0)
				;
			usleep(10000);
		}
		if (i == 1000) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		if (fd >= 0)
			close(fd);
	}
	collect();
	for (p = errbuf; (p = strstr(p, "evacuate: node 1: ")); p++)
		n++;
	if (quiet) {
		CHECK(WIFEXITED(st) && !WEXITSTATUS(st) && !errbuf[0] &&
		      has("evacuated"), "evacuate -q: no progress");
	} else {
		CHECK(WIFEXITED(st) && !WEXITSTATUS(st) && n >= 4 && n <= 11 &&
		      has_err("0 B of 3.9 MiB (0.0%)") &&
		      has_err("1000.0 KiB of 3.9 MiB (25.0%)") &&
		      has_err("3.8 MiB of 3.9 MiB (96.7%)") &&
		      has_err("(100.0%)") && has_err("MiB/s, ETA "),
		      "evacuate without a terminal: %d lines, one per 10%% step, in bytes, to 100%%",
		      n);
	}
	unlink(fifo);
	put(tree, ND "/node1/cdm/evacuate", "%s", "");
	cdm_dir(tree, 1, "0000:00:03.0", "idle", 0, 0);
}

/*
 * Build examples/cdm_alloc.c against the shared library through pkg-config,
 * as the user guide shows, and run it with the host's node 0 posing as CDM.
 */
static void test_pkgconfig(const char *o, const char *srcdir)
{
	char cmd[16384], exe[4096];
	int r;

	if (system("command -v pkg-config >/dev/null")) {
		printf("ok - # SKIP pkg-config not installed (apt-get install pkg-config)\n");
		passed++;
		return;
	}
	xfmt(exe, sizeof(exe), "%s/tests/cdm_alloc", o);
	xfmt(cmd, sizeof(cmd),
	     "cc -std=c11 -Wall -Wextra -Werror -o %s %s/examples/cdm_alloc.c "
	     "$(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config "
	     "--define-variable=libdir=%s/lib --define-variable=includedir=%s/include "
	     "--cflags --libs numacdm)",
	     exe, srcdir, o, o, o);
	r = system(cmd);
	CHECK(r == 0, "pkg-config: build examples/cdm_alloc.c against libnumacdm.so");
	xfmt(cmd, sizeof(cmd),
	     "LD_LIBRARY_PATH=%s/lib ldd %s | grep -q 'libnumacdm.so.1 => %s/lib'",
	     o, exe, o);
	r = system(cmd);
	CHECK(r == 0, "the example links libnumacdm.so.1");
	xfmt(cmd, sizeof(cmd),
	     "CDM_SYSFS_ROOT=%s LD_LIBRARY_PATH=%s/lib %s 0000:00:03.0 4 | "
	     "grep -q '^4 MiB on node 0 (first page on node 0)$'", tree0, o, exe);
	r = system(cmd);
	CHECK(r == 0, "the example puts its buffer on the device's node");
	xfmt(cmd, sizeof(cmd),
	     "CDM_SYSFS_ROOT=%s LD_LIBRARY_PATH=%s/lib %s capi_sim7 2>/dev/null",
	     tree, o, exe);
	r = system(cmd);
	CHECK(r != 0, "the example fails for an unknown device");
}

/*
 * libnumacdm.so exports exactly the NUMACDM_1.0 symbols of numacdm.h, each
 * versioned (objdump -T); the internal file access stays hidden.
 */
static void test_symbol_versions(const char *o)
{
	static const char * const api[] = {
		"numacdm_alloc", "numacdm_available", "numacdm_evac_state_name",
		"numacdm_free", "numacdm_node_info", "numacdm_node_is_cdm",
		"numacdm_node_of_device", "numacdm_nodes",
		"numacdm_parse_nodelist", "numacdm_sysfs_root",
		"numacdm_sysram_nodes",
	};
	char cmd[8192], line[512];
	int found = 0, other = 0;
	FILE *f;

	xfmt(cmd, sizeof(cmd), "objdump -T %s/lib/libnumacdm.so.1 2>/dev/null", o);
	f = popen(cmd, "r");
	if (!f) {
		CHECK(0, "objdump -T libnumacdm.so.1");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char ver[64], name[128];
		size_t i;

		/* "0000... g    DF .text  0000...  NUMACDM_1.0 numacdm_nodes" */
		if (!strstr(line, " g ") || !strstr(line, ".text") ||
		    sscanf(strrchr(line, '\t') ? strrchr(line, '\t') + 1 : line,
			   "%*s %63s %127s", ver, name) != 2)
			continue;
		for (i = 0; i < sizeof(api) / sizeof(api[0]); i++)
			if (!strcmp(name, api[i]))
				break;
		if (i < sizeof(api) / sizeof(api[0]) && !strcmp(ver, "NUMACDM_1.0"))
			found++;
		else
			other++;
	}
	CHECK(pclose(f) == 0, "objdump -T libnumacdm.so.1 runs");
	CHECK(found == (int)(sizeof(api) / sizeof(api[0])) && !other,
	      "libnumacdm.so.1 exports the %zu functions at NUMACDM_1.0 and nothing else (%d found, %d other)",
	      sizeof(api) / sizeof(api[0]), found, other);
}

/*
 * bash completion: commands, a command's own options (from its --help) and
 * the nodes and devices of `cdmctl list`, against the fake tree.
 */
static void test_completion(const char *srcdir)
{
	static const struct {
		const char *words, *want;
	} cases[] = {
		{ "cdmctl ev", "evacuate" },
		{ "cdmctl evacuate --d", "--dry-run" },
		{ "cdmctl online capi_sim0 --r", "--restore" },
		{ "cdmctl evacuate cap", "capi_sim0 capi_sim1" },
		/* readline breaks words at ':': only the rest is completed */
		{ "cdmctl status 0000:00:0", "03.0 04.0 05.0" },
		{ "cdmctl run --node ", "1 2 3 all" },
		{ "cdmctl help u", "users unspill" },
		{ "cdmctl list --t", "" },	/* --timeout is evacuate's */
		{ "cdmctl status a", "all" },
		/* a node list: the element after the last comma */
		{ "cdmctl users 2,ca", "2,capi_sim0 2,capi_sim1" },
		{ "cdmctl online 1,0000:00:0", "03.0 04.0 05.0" },
	};
	char cmd[16384], dir[4096], *slash;
	FILE *f;

	if (system("command -v bash >/dev/null")) {
		printf("ok - # SKIP bash not installed\n");
		passed++;
		return;
	}
	xfmt(dir, sizeof(dir), "%s", cdmctl);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[1024] = "";

		/* the words end in a space: complete an empty word */
		xfmt(cmd, sizeof(cmd),
		     "PATH='%s':$PATH CDM_SYSFS_ROOT='%s' bash -c '"
		     "source \"$0\"; COMP_LINE=$1 COMP_POINT=${#1}; "
		     "read -ra COMP_WORDS <<< \"${1//:/ : }\"; "
		     "[ \"${1: -1}\" = \" \" ] && COMP_WORDS+=(\"\"); "
		     "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cdmctl; "
		     "echo \"${COMPREPLY[*]}\"' '%s/cdmctl-completion.bash' '%s'",
		     dir, tree, srcdir, cases[i].words);
		f = popen(cmd, "r");
		if (f) {
			if (!fgets(got, sizeof(got), f))
				got[0] = '\0';
			got[strcspn(got, "\n")] = '\0';
			pclose(f);
		}
		CHECK(!strcmp(got, cases[i].want),
		      "completion of \"%s\": \"%s\" (got \"%s\")",
		      cases[i].words, cases[i].want, got);
	}
}

/*
 * make install with neither a kernel tree nor the guest tests, after a
 * build at the default PREFIX: the installed numacdm.pc names the install's
 * PREFIX, LIBDIR and INCDIR, not the build's.
 */
static void test_install(const char *o, const char *srcdir)
{
	char cmd[16384], dest[4096];
	int r;

	xfmt(dest, sizeof(dest), "%s/tests/destdir", o);
	xfmt(cmd, sizeof(cmd),
	     "make -s -C '%s' O='%s' KDIR=/nonexistent >/dev/null 2>&1 && "
	     "grep -qx 'prefix=/usr/local' '%s/lib/pkgconfig/numacdm.pc'",
	     srcdir, o, o);
	r = system(cmd);
	CHECK(r == 0, "make without a kernel tree: numacdm.pc for PREFIX=/usr/local");
	xfmt(cmd, sizeof(cmd),
	     "rm -rf '%s' && make -s -C '%s' O='%s' KDIR=/nonexistent "
	     "DESTDIR='%s' PREFIX=/usr install >/dev/null 2>&1", dest, srcdir,
	     o, dest);
	r = system(cmd);
	CHECK(r == 0, "make install DESTDIR=... PREFIX=/usr without a kernel tree");
	xfmt(cmd, sizeof(cmd),
	     "f='%s/usr/lib/pkgconfig/numacdm.pc' && grep -qx 'prefix=/usr' \"$f\" && "
	     "grep -qx 'libdir=/usr/lib' \"$f\" && "
	     "grep -qx 'includedir=/usr/include' \"$f\"", dest);
	r = system(cmd);
	CHECK(r == 0, "the installed numacdm.pc says prefix=/usr, libdir=/usr/lib, "
	      "includedir=/usr/include");
	xfmt(cmd, sizeof(cmd),
	     "d='%s/lib64' && rm -rf \"$d\" && make -s -C '%s' O='%s' KDIR=/nonexistent "
	     "DESTDIR=\"$d\" PREFIX=/opt/cdm LIBDIR=/opt/cdm/lib64 INCDIR=/opt/cdm/inc "
	     "install >/dev/null 2>&1 && f=\"$d/opt/cdm/lib64/pkgconfig/numacdm.pc\" && "
	     "grep -qx 'prefix=/opt/cdm' \"$f\" && grep -qx 'libdir=/opt/cdm/lib64' \"$f\" && "
	     "grep -qx 'includedir=/opt/cdm/inc' \"$f\" && test -f \"$d/opt/cdm/inc/numacdm.h\"",
	     dest, srcdir, o);
	r = system(cmd);
	CHECK(r == 0, "install PREFIX=/opt/cdm LIBDIR=... INCDIR=...: the .pc names them");
	xfmt(cmd, sizeof(cmd),
	     "cd '%s/usr' && test -x bin/cdmctl && test -f lib/libnumacdm.so." CDM_TOOLS_VERSION " && "
	     "test -L lib/libnumacdm.so.1 && test -f lib/libnumacdm.a && "
	     "test -f include/numacdm.h && test -f lib/pkgconfig/numacdm.pc && "
	     "test -f share/man/man3/numacdm.3 && test -f share/man/man8/cdmctl.8 && "
	     "test -f share/bash-completion/completions/cdmctl",
	     dest);
	r = system(cmd);
	CHECK(r == 0, "install puts cdmctl, the libraries, header, .pc, both man pages and the completion");
}

int main(int argc, char **argv)
{
	char *o;

	if (argc != 4) {
		fprintf(stderr, "usage: %s CDMCTL BUILD_DIR SRC_DIR\n", argv[0]);
		return 2;
	}
	cdmctl = argv[1];
	o = argv[2];
	if (!setlocale(LC_CTYPE, "C.UTF-8")) {
		fprintf(stderr, "unit_test: no C.UTF-8 locale\n");
		return 2;
	}
	xfmt(tree, sizeof(tree), "%s/tests/fake", o);
	xfmt(tree0, sizeof(tree0), "%s/tests/fake0", o);
	xfmt(notree, sizeof(notree), "%s/tests/fakenone", o);
	xfmt(treefw, sizeof(treefw), "%s/tests/fakefw", o);
	{
		char cmd[16384];

		xfmt(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s' '%s'", tree, tree0,
			 notree, treefw);
		if (system(cmd))
			return 2;
	}
	make_tree(tree);
	make_tree0(tree0);
	make_notree(notree);
	make_treefw(treefw);

	test_lib();
	test_cdmctl();
	test_firmware_node();
	test_targets();
	test_json_outcomes();
	test_human_sizes();
	test_progress(0);
	test_progress(1);
	test_pkgconfig(o, argv[3]);
	test_completion(argv[3]);
	test_symbol_versions(o);
	test_install(o, argv[3]);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
