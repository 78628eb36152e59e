// SPDX-License-Identifier: GPL-2.0
/*
 * Guest test of the patched numactl (numactl-patches/) next to Debian's
 * stock numactl, with CDM nodes present (phase "main").
 *
 * The patched binary is $NUMACTL_CDM, else numactl-cdm or ../numactl/bin/numactl
 * next to this test, else /usr/bin/numactl-cdm; the stock one /usr/bin/numactl.
 * The policy a numactl sets up is observed through get_mempolicy(2) in a
 * child (this binary re-executed by numactl) and page placement through
 * move_pages(2).  This binary is linked with the patched libnuma, so its
 * --alloc-interleaved child shows what numa_alloc_interleaved() does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <numa.h>
#include <numaif.h>

#include "cdm_sysfs.h"
#include "kselftest_harness.h"

#define STOCK		"/usr/bin/numactl"
/* The pages child() touches: 4 MiB. */
#define CHILD_PAGES	1024L

static char patched[PATH_MAX], self_exe[PATH_MAX];

/* Run argv; stdout into out, stderr into err; exit status. */
static int run(char *out, size_t olen, char *err, size_t elen, ...)
{
	char *argv[16];
	va_list ap;
	int n = 0, st, ofd, efd;
	ssize_t r;
	pid_t pid;

	va_start(ap, elen);
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	ofd = memfd_create("out", 0);
	efd = memfd_create("err", 0);
	if (ofd < 0 || efd < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (!pid) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], argv);
		_exit(99);
	}
	waitpid(pid, &st, 0);
	r = pread(ofd, out, olen - 1, 0);
	out[r > 0 ? r : 0] = '\0';
	r = pread(efd, err, elen - 1, 0);
	err[r > 0 ? r : 0] = '\0';
	close(ofd);
	close(efd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The node of each of the @n pages at @p, by move_pages(2); 0 or -1. */
static int page_nodes(char *p, size_t n, int *status)
{
	void **pages = calloc(n, sizeof(void *));
	int r = -1;

	if (pages) {
		for (size_t i = 0; i < n; i++)
			pages[i] = p + i * 4096;
		r = move_pages(0, n, pages, NULL, status, 0) ? -1 : 0;
		free(pages);
	}
	return r;
}

/*
 * Child: print "mode M mask X" for the task policy, then, if @node >= 0,
 * touch 4 MiB of base pages (an interleave then alternates page by page)
 * and print how many pages are on @node ("on_node N of M") and on each
 * node ("node_pages N:C ... other C", other: on no node 0-63).
 */
static int child(int node)
{
	unsigned long mask[16] = { 0 };
	size_t sz = 4UL << 20, n = sz / 4096, on = 0, per[64] = { 0 }, other = 0;
	int mode = -1;
	char *p;

	if (get_mempolicy(&mode, mask, 16 * 64, NULL, 0))
		return 10;
	printf("mode %d mask %lx\n", mode, mask[0]);
	if (node < 0)
		return 0;
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return 11;
	madvise(p, sz, MADV_NOHUGEPAGE);
	memset(p, 1, sz);
	{
		int *status = calloc(n, sizeof(int));

		if (!status)
			return 12;
		if (page_nodes(p, n, status))
			return 13;
		for (size_t i = 0; i < n; i++) {
			on += status[i] == node;
			if (status[i] >= 0 && status[i] < 64)
				per[status[i]]++;
			else
				other++;
		}
	}
	printf("on_node %zu of %zu\n", on, n);
	printf("node_pages");
	for (int i = 0; i < 64; i++)
		if (per[i])
			printf(" %d:%zu", i, per[i]);
	printf(" other %zu\n", other);
	return 0;
}

static unsigned long cdm_mask(void);

/*
 * Child: numa_alloc_interleaved() of 4 MiB, touched; print the range's
 * policy ("mode M mask X") and "on_cdm N of M", its pages on CDM nodes.
 */
static int child_alloc_interleaved(void)
{
	size_t sz = 4UL << 20, n = sz / 4096, on = 0;
	unsigned long mask[16] = { 0 }, cdm = cdm_mask();
	int *status = calloc(n, sizeof(int));
	int mode = -1;
	char *p;

	p = numa_alloc_interleaved(sz);
	if (!p || !status)
		return 11;
	memset(p, 1, sz);
	if (get_mempolicy(&mode, mask, 16 * 64, p, MPOL_F_ADDR))
		return 10;
	if (page_nodes(p, n, status))
		return 13;
	for (size_t i = 0; i < n; i++)
		on += status[i] >= 0 && status[i] < 64 && (cdm >> status[i] & 1);
	printf("mode %d mask %lx\non_cdm %zu of %zu\n", mode, mask[0], on, n);
	return 0;
}

static int parse_child(const char *out, int *mode, unsigned long *mask)
{
	return sscanf(out, "mode %d mask %lx", mode, mask) == 2 ? 0 : -1;
}

/*
 * The child's "node_pages" line: the pages on each node 0-63 in c[], and
 * returns the pages it counted (those on no node too), or -1.
 */
static long parse_pages(const char *out, long *c)
{
	const char *l = strstr(out, "\nnode_pages");
	long total = 0, v;
	char *end;

	memset(c, 0, 64 * sizeof(*c));
	if (!l)
		return -1;
	for (l += strlen("\nnode_pages"); *l == ' ';) {
		int nd;

		l++;
		if (!strncmp(l, "other ", 6))
			return total + strtol(l + 6, NULL, 10);
		nd = (int)strtol(l, &end, 10);
		if (end == l || *end != ':' || nd < 0 || nd >= 64)
			return -1;
		v = strtol(end + 1, &end, 10);
		c[nd] = v;
		total += v;
		l = end;
	}
	return -1;
}

/* Pages of c[] on the nodes of @mask. */
static long pages_in(const long *c, unsigned long mask)
{
	long on = 0;

	for (int i = 0; i < 64; i++)
		if (mask & (1UL << i))
			on += c[i];
	return on;
}

/*
 * The pages of c[] (@total of them) are interleaved over the nodes of
 * @mask: every page on one of them, each with at least 90% of its share
 * (an interleave by page offset gives each the same, give or take one).
 */
static void check_interleaved(struct __test_metadata *_metadata,
			      const char *what, const long *c, long total,
			      unsigned long mask)
{
	int k = __builtin_popcountl(mask);

	ASSERT_LT(0, k);
	EXPECT_EQ(total, pages_in(c, mask))
		TH_LOG("%s: %ld of %ld pages outside the nodes %lx", what,
		       total - pages_in(c, mask), total, mask);
	for (int i = 0; i < 64; i++) {
		if (!(mask & (1UL << i)))
			continue;
		EXPECT_LE(total / k * 9 / 10, c[i])
			TH_LOG("%s: %ld of %ld pages on node %d, one of %d",
			       what, c[i], total, i, k);
	}
}

static unsigned long cdm_mask(void)
{
	return node_state_mask("has_coherent_device");
}

#define NEED(cond, why)							\
	do {								\
		if (!(cond))						\
			SKIP(return, why);				\
	} while (0)

#define NEED_ALL()							\
	do {								\
		NEED(cdm_mask() & node_state_mask("has_memory"),		\
		     "no CDM node with memory online");			\
		NEED(!access(STOCK, X_OK), "no stock numactl");		\
		NEED(!access(patched, X_OK), "no patched numactl");	\
	} while (0)

static int first_cdm(void)
{
	unsigned long m = cdm_mask() & node_state_mask("has_memory");

	for (int i = 0; i < 64; i++)
		if (m & (1UL << i))
			return i;
	return -1;
}

TEST(hardware_marks_cdm_nodes)
{
	static char out[16384], so[16384], err[4096];
	unsigned long cdm;
	int lines_p = 0, lines_s = 0;

	NEED_ALL();
	cdm = cdm_mask() & node_state_mask("has_memory");
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), patched,
			 "--hardware", NULL));
	ASSERT_EQ(0, run(so, sizeof(so), err, sizeof(err), STOCK, "--hardware",
			 NULL));
	for (int i = 0; i < 64; i++) {
		char want[128], path[128], owner[64];

		if (!(cdm & (1UL << i)))
			continue;
		snprintf(path, sizeof(path), NODE_SYS "/node%d/cdm/owner", i);
		ASSERT_LT(0, read_str(path, owner, sizeof(owner)));
		snprintf(want, sizeof(want),
			 "node %d type: coherent device memory (owner %s)\n", i,
			 owner);
		EXPECT_NE(NULL, strstr(out, want)) TH_LOG("no '%s' in\n%s", want, out);
	}
	EXPECT_EQ(NULL, strstr(out, "node 0 type:"));
	EXPECT_EQ(NULL, strstr(so, " type: "));
	/* Everything else is unchanged: same "size" lines as stock. */
	for (char *p = out; (p = strstr(p, " size: ")); p++)
		lines_p++;
	for (char *p = so; (p = strstr(p, " size: ")); p++)
		lines_s++;
	EXPECT_EQ(lines_s, lines_p);
	EXPECT_NE(NULL, strstr(out, "node distances:"));
}

/*
 * --interleave=all / --membind=all: system RAM only with the patch, in the
 * policy and where the child's pages land.
 */
static void check_all(struct __test_metadata *_metadata, const char *opt,
		      int want_mode)
{
	static char out[4096], err[4096];
	unsigned long mask, cdm = cdm_mask(), ram;
	char arg[64], nodearg[16];
	long c[64], total;
	int mode;

	ram = node_state_mask("has_memory") & ~cdm;
	snprintf(arg, sizeof(arg), "--%s=all", opt);
	snprintf(nodearg, sizeof(nodearg), "%d", first_cdm());
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), patched, arg,
			 self_exe, "--child", nodearg, NULL)) TH_LOG("%s", err);
	ASSERT_EQ(0, parse_child(out, &mode, &mask)) TH_LOG("%s", out);
	EXPECT_EQ(want_mode, mode);
	EXPECT_EQ(ram, mask) TH_LOG("patched %s: mask %lx, RAM nodes %lx", arg,
				    mask, ram);
	EXPECT_EQ(0UL, mask & cdm);
	total = parse_pages(out, c);
	ASSERT_EQ(CHILD_PAGES, total) TH_LOG("%s", out);
	EXPECT_EQ(0, pages_in(c, cdm)) TH_LOG("patched %s: %s", arg, out);
	EXPECT_EQ(total, pages_in(c, ram)) TH_LOG("patched %s: %s", arg, out);
	if (want_mode == MPOL_INTERLEAVE)
		check_interleaved(_metadata, "patched --interleave=all", c,
				  total, ram);

	/*
	 * Stock numactl puts the device nodes in, and interleaves ordinary
	 * data over device memory: what the patch fixes.
	 */
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), STOCK, arg,
			 self_exe, "--child", nodearg, NULL)) TH_LOG("%s", err);
	ASSERT_EQ(0, parse_child(out, &mode, &mask));
	EXPECT_EQ(want_mode, mode);
	EXPECT_EQ(ram | (cdm & node_state_mask("has_memory")), mask)
		TH_LOG("stock %s: mask %lx", arg, mask);
	total = parse_pages(out, c);
	ASSERT_EQ(CHILD_PAGES, total) TH_LOG("%s", out);
	if (want_mode == MPOL_INTERLEAVE) {
		check_interleaved(_metadata, "stock --interleave=all", c, total,
				  mask);
		EXPECT_LT(0, pages_in(c, cdm)) TH_LOG("stock %s: %s", arg, out);
	}
}

TEST(interleave_all_is_sysram)
{
	NEED_ALL();
	check_all(_metadata, "interleave", MPOL_INTERLEAVE);
}

TEST(membind_all_is_sysram)
{
	NEED_ALL();
	check_all(_metadata, "membind", MPOL_BIND);
}

/*
 * "!N", every node but N: system RAM only with the patch, as "all", in the
 * policy and where the pages land; an explicit list still names a CDM node
 * and interleaves over it.
 */
TEST(interleave_inverted_is_sysram)
{
	static char out[4096], err[4096];
	unsigned long mask, cdm = cdm_mask() & node_state_mask("has_memory");
	unsigned long ram = node_state_mask("has_memory") & ~cdm;
	char arg[64], nodearg[16];
	long c[64], total;
	int mode, node;

	NEED_ALL();
	node = first_cdm();
	snprintf(nodearg, sizeof(nodearg), "%d", node);
	snprintf(arg, sizeof(arg), "--interleave=!%d", node);
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), patched, arg,
			 self_exe, "--child", nodearg, NULL)) TH_LOG("%s", err);
	ASSERT_EQ(0, parse_child(out, &mode, &mask)) TH_LOG("%s", out);
	EXPECT_EQ(MPOL_INTERLEAVE, mode);
	EXPECT_EQ(ram, mask) TH_LOG("patched %s: mask %lx, RAM nodes %lx",
				    arg, mask, ram);
	total = parse_pages(out, c);
	ASSERT_EQ(CHILD_PAGES, total) TH_LOG("%s", out);
	EXPECT_EQ(0, pages_in(c, cdm_mask())) TH_LOG("patched %s: %s", arg, out);
	check_interleaved(_metadata, "patched --interleave=!N", c, total, ram);

	/*
	 * Stock numactl: the other CDM nodes are in, and get their share of
	 * the pages; what the patch fixes.
	 */
	if (cdm & ~(1UL << node)) {
		ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), STOCK, arg,
				 self_exe, "--child", nodearg, NULL)) TH_LOG("%s", err);
		ASSERT_EQ(0, parse_child(out, &mode, &mask));
		EXPECT_NE(0UL, mask & cdm) TH_LOG("stock %s: mask %lx", arg, mask);
		total = parse_pages(out, c);
		ASSERT_EQ(CHILD_PAGES, total) TH_LOG("%s", out);
		check_interleaved(_metadata, "stock --interleave=!N", c, total,
				  mask);
	}

	/*
	 * Explicit: a RAM node and the device node, both used, each with
	 * half of the pages.
	 */
	snprintf(arg, sizeof(arg), "--interleave=%d,%d", __builtin_ctzl(ram),
		 node);
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), patched, arg,
			 self_exe, "--child", nodearg, NULL)) TH_LOG("%s", err);
	ASSERT_EQ(0, parse_child(out, &mode, &mask));
	EXPECT_EQ(MPOL_INTERLEAVE, mode);
	EXPECT_EQ((1UL << __builtin_ctzl(ram)) | (1UL << node), mask);
	total = parse_pages(out, c);
	ASSERT_EQ(CHILD_PAGES, total) TH_LOG("%s", out);
	check_interleaved(_metadata, arg, c, total,
			  (1UL << __builtin_ctzl(ram)) | (1UL << node));

	/* Every RAM node inverted away leaves only device memory: an error. */
	if (__builtin_popcountl(ram) == 1) {
		snprintf(arg, sizeof(arg), "--interleave=!%d",
			 __builtin_ctzl(ram));
		EXPECT_NE(0, run(out, sizeof(out), err, sizeof(err), patched,
				 arg, self_exe, "--child", "-1", NULL));
		EXPECT_NE(NULL, strstr(err, "no system RAM node is left"))
			TH_LOG("%s", err);
	}
}

/* numa_alloc_interleaved() of the patched libnuma: system RAM only. */
TEST(alloc_interleaved_is_sysram)
{
	static char out[4096], err[4096];
	unsigned long mask, ram;
	size_t on, n;
	int mode;

	NEED_ALL();
	ram = node_state_mask("has_memory") & ~cdm_mask();
	ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err), self_exe,
			 "--alloc-interleaved", NULL)) TH_LOG("%s", err);
	ASSERT_EQ(0, parse_child(out, &mode, &mask)) TH_LOG("%s", out);
	EXPECT_EQ(MPOL_INTERLEAVE, mode);
	EXPECT_EQ(ram, mask) TH_LOG("mask %lx, RAM nodes %lx", mask, ram);
	ASSERT_NE(NULL, strstr(out, "on_cdm "));
	ASSERT_EQ(2, sscanf(strstr(out, "on_cdm "), "on_cdm %zu of %zu", &on,
			    &n));
	EXPECT_EQ(0UL, on) TH_LOG("%zu of %zu pages on CDM nodes", on, n);
}

TEST(cpunodebind_cdm_message)
{
	static char out[4096], err[4096];
	char node[48];
	int r;

	NEED_ALL();
	snprintf(node, sizeof(node), "--cpunodebind=%d", first_cdm());
	r = run(out, sizeof(out), err, sizeof(err), patched, node, "/bin/true",
		NULL);
	EXPECT_EQ(1, r);
	EXPECT_NE(NULL, strstr(err, "coherent device memory nodes have no CPUs"))
		TH_LOG("%s", err);
	EXPECT_EQ(NULL, strstr(err, "Invalid argument")) TH_LOG("%s", err);
	/* Stock: fails with the unhelpful message. */
	r = run(out, sizeof(out), err, sizeof(err), STOCK, node, "/bin/true",
		NULL);
	EXPECT_NE(0, r);
	EXPECT_NE(NULL, strstr(err, "Invalid argument")) TH_LOG("%s", err);
	/* A mask with CPUs is unaffected. */
	snprintf(node, sizeof(node), "--cpunodebind=0,%d", first_cdm());
	EXPECT_EQ(0, run(out, sizeof(out), err, sizeof(err), patched, node,
			 "/bin/true", NULL)) TH_LOG("%s", err);
}

/* The explicit way still works in both: memory on the device node. */
TEST(membind_cdm_places_pages)
{
	static char out[4096], err[4096];
	char bind[32], nodearg[16];
	const char *bins[2] = { STOCK, patched };
	unsigned long mask;
	size_t on, n;
	int mode, node;

	NEED_ALL();
	node = first_cdm();
	snprintf(bind, sizeof(bind), "--membind=%d", node);
	snprintf(nodearg, sizeof(nodearg), "%d", node);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, run(out, sizeof(out), err, sizeof(err),
				 (char *)bins[i], "--cpunodebind=0", bind,
				 self_exe, "--child", nodearg, NULL))
			TH_LOG("%s: %s", bins[i], err);
		ASSERT_EQ(0, parse_child(out, &mode, &mask));
		EXPECT_EQ(MPOL_BIND, mode);
		EXPECT_EQ(1UL << node, mask);
		ASSERT_NE(NULL, strstr(out, "on_node "));
		ASSERT_EQ(2, sscanf(strstr(out, "on_node "), "on_node %zu of %zu",
				    &on, &n));
		EXPECT_EQ(n, on) TH_LOG("%s: %zu of %zu pages on node %d",
					bins[i], on, n, node);
	}
}

static void find_patched(void)
{
	const char *env = getenv("NUMACTL_CDM");
	char dir[PATH_MAX], *slash;

	if (env && *env) {
		snprintf(patched, sizeof(patched), "%s", env);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", self_exe);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		snprintf(patched, sizeof(patched), "%.4000s/numactl-cdm", dir);
		if (!access(patched, X_OK))
			return;
		snprintf(patched, sizeof(patched), "%.4000s/../numactl/bin/numactl",
			 dir);
		if (!access(patched, X_OK))
			return;
	}
	snprintf(patched, sizeof(patched), "/usr/bin/numactl-cdm");
}

int main(int argc, char **argv)
{
	ssize_t n;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "--alloc-interleaved"))
		return child_alloc_interleaved();
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n < 0)
		return 1;
	self_exe[n] = '\0';
	find_patched();
	return test_harness_run(argc, argv);
}
