// SPDX-License-Identifier: GPL-2.0
/*
 * evacuation_test - a CDM node can be emptied at any time (issue 3, part D):
 * every byte survives, pinned pages fail the evacuation cleanly, tasks whose
 * policy named the node keep running, and the node can be re-added.
 * Evacuation is driven through the capi_sim driver (sysfs and ioctl).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cdm_lib.h"

#define LEN (16 * MiB)
#define NPAGES ((long)(LEN / PAGE_SZ))
#define TMPFS_DIR "/tmp/cdm_evac_tmpfs"
#define EVAC_MS 60000

FIXTURE(evac) {
	struct capi_dev dev[CDM_MAX_DEVS];
	int ndev;
	struct capi_dev *d;	/* device under test: the smallest */
	int node;
	int fd;
	long mem_total_kb;
	char thp_saved[64];
	bool tmpfs;
};

static void evac_prepare(struct __test_metadata *_metadata,
			 FIXTURE_DATA(evac) *self)
{
	int online = capi_restore_all();

	self->fd = -1;
	self->tmpfs = false;
	self->thp_saved[0] = 0;
	self->ndev = capi_devs(self->dev, CDM_MAX_DEVS);
	ASSERT_GE(self->ndev, 1) TH_LOG("no device bound to capi_sim");
	ASSERT_EQ(self->ndev, online);
	self->d = &self->dev[self->ndev - 1];
	self->node = self->d->node;
	ASSERT_TRUE(node_has_memory(self->node));
	ASSERT_TRUE(node_is_cdm(self->node));
	self->mem_total_kb = node_meminfo_kb(self->node, "MemTotal");
	self->fd = capi_open_node(self->node);
	ASSERT_LE(0, self->fd) TH_LOG("no /dev/capi_sim* for node %d",
				      self->node);
}

static void evac_cleanup(FIXTURE_DATA(evac) *self)
{
	if (path_exists(TEST_DBG "/pin"))
		write_str(TEST_DBG "/pin", "unpin");
	if (self->fd >= 0)
		close(self->fd);
	if (self->tmpfs) {
		umount2(TMPFS_DIR, MNT_DETACH);
		rmdir(TMPFS_DIR);
	}
	if (self->thp_saved[0])
		write_str("/sys/kernel/mm/transparent_hugepage/enabled",
			  self->thp_saved);
	/* hugetlb_*_reserved_by_bound_task: no pool or overcommit left */
	if (path_exists(HUGEPAGES_2M)) {
		write_strf("0", NODE_HPAGE_POOL, self->node);
		write_str(HUGEPAGES_2M "/nr_hugepages", "0");
		write_str(HUGEPAGES_2M "/nr_overcommit_hugepages", "0");
	}
	capi_restore_all();
}

FIXTURE_SETUP(evac)
{
	evac_prepare(_metadata, self);
}

FIXTURE_TEARDOWN_PARENT(evac)
{
	evac_cleanup(self);
}

/* Cases run once through each interface: sysfs and the ioctl. */
FIXTURE(evac_via) {
	FIXTURE_DATA(evac) e;
};

FIXTURE_VARIANT(evac_via) {
	bool sysfs;
	uint64_t seed;
};

FIXTURE_VARIANT_ADD(evac_via, sysfs) {
	.sysfs = true,
	.seed = 11,
};

FIXTURE_VARIANT_ADD(evac_via, ioctl) {
	.sysfs = false,
	.seed = 12,
};

FIXTURE_SETUP(evac_via)
{
	evac_prepare(_metadata, &self->e);
}

FIXTURE_TEARDOWN_PARENT(evac_via)
{
	evac_cleanup(&self->e);
}

/* evacuate self->d through sysfs or the ioctl; 0 or -errno */
static int evacuate(FIXTURE_DATA(evac) *self, bool sysfs, unsigned int ms,
		    unsigned long long *migrated, unsigned long long *unmoved)
{
	char val[32];
	int r;

	if (!sysfs)
		return capi_evac_ioctl(self->fd, ms, migrated, unmoved);
	snprintf(val, sizeof(val), "%u", ms);
	r = capi_write(self->d, "evacuate", val);
	if (migrated)
		*migrated = capi_stat(self->d, "last_evacuated_pages");
	if (unmoved)
		*unmoved = 0;
	return r;
}

/* node memory-less after a successful evacuation, then online again */
static void check_gone_and_online(struct __test_metadata *_metadata,
				  FIXTURE_DATA(evac) *self)
{
	long t;

	ASSERT_EQ(0, wait_node_memory(self->node, false, 10000));
	t = node_meminfo_kb(self->node, "MemTotal");
	ASSERT_LE(t, 0) TH_LOG("node %d MemTotal %ld kB after evacuation",
			       self->node, t);
	ASSERT_EQ(0, capi_refresh(self->d));
	ASSERT_STREQ("offline", self->d->state);
	ASSERT_EQ(0, capi_online_ioctl(self->fd));
	ASSERT_EQ(0, wait_node_usable(self->node, 10000));
	ASSERT_EQ(0, capi_wait_state(self->d, "online", 10000));
	ASSERT_EQ(self->mem_total_kb, node_meminfo_kb(self->node, "MemTotal"));
}

static char *bound_region(struct __test_metadata *_metadata, int node,
			  size_t len, bool shared)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mbind_nodes(p, len, MPOL_BIND, &node, 1, 0)) {
		TH_LOG("mbind: %s", strerror(errno));
		return NULL;
	}
	return p;
}

static void evac_region(struct __test_metadata *_metadata,
			FIXTURE_DATA(evac) *self, char *p, size_t len,
			uint64_t seed, bool sysfs)
{
	long npages = len / PAGE_SZ;
	unsigned long long mig = 0, unm = 0;
	uint64_t sum;
	long before = vmstat_val("cdm_pages_evacuated");
	int r;

	fill_pattern(p, len, seed);
	sum = checksum(p, len);
	ASSERT_EQ(npages, pages_on_node(p, len, self->node));
	r = evacuate(self, sysfs, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s (unmoved %llu)", strerror(-r), unm);
	TH_LOG("evacuated via %s: driver reports %llu pages migrated; vmstat cdm_pages_evacuated +%ld",
	       sysfs ? "sysfs" : "ioctl", mig,
	       vmstat_val("cdm_pages_evacuated") - before);
	/* the driver reports the kernel's exact count, not its own */
	ASSERT_LE(0, before) TH_LOG("no cdm_pages_evacuated in /proc/vmstat");
	ASSERT_GE(vmstat_val("cdm_pages_evacuated") - before, npages);
	ASSERT_EQ(vmstat_val("cdm_pages_evacuated") - before, (long long)mig);
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(npages, pages_off_node(p, len, self->node));
	ASSERT_EQ((size_t)-1, check_pattern(p, len, seed));
	ASSERT_EQ(sum, checksum(p, len));
	check_gone_and_online(_metadata, self);
	/* and the data is still right after the node came back */
	ASSERT_EQ(sum, checksum(p, len));
	/* the re-added node shows the result of its last evacuation */
	ASSERT_EQ((long long)mig, node_cdm_long(self->node, "pages_migrated"));
	ASSERT_EQ(0, node_cdm_long(self->node, "evacuation_error"));
	ASSERT_LE(0, node_cdm_long(self->node, "evacuation_ms"));
}

TEST_F_TIMEOUT(evac_via, anonymous, 180)
{
	char *p = bound_region(_metadata, self->e.node, LEN, false);

	ASSERT_NE(NULL, p);
	evac_region(_metadata, &self->e, p, LEN, variant->seed, variant->sysfs);
}

TEST_F_TIMEOUT(evac, shmem, 180)
{
	char *p = bound_region(_metadata, self->node, LEN, true);

	ASSERT_NE(NULL, p);
	evac_region(_metadata, self, p, LEN, 13, false);
}

TEST_F_TIMEOUT(evac, tmpfs_file_mmap, 180)
{
	char *p;
	int fd;

	mkdir(TMPFS_DIR, 0700);
	ASSERT_EQ(0, mount("tmpfs", TMPFS_DIR, "tmpfs", 0, "size=64m"));
	self->tmpfs = true;
	fd = open(TMPFS_DIR "/data", O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, LEN));
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* shared policy on the tmpfs file: page cache placed on the node */
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, &self->node, 1, 0));
	evac_region(_metadata, self, p, LEN, 14, false);
	/* the file itself, read through read(2), is intact too */
	{
		char *q = malloc(LEN);

		ASSERT_NE(NULL, q);
		ASSERT_EQ(LEN, pread(fd, q, LEN, 0));
		ASSERT_EQ((size_t)-1, check_pattern(q, LEN, 14));
		free(q);
	}
	munmap(p, LEN);
	close(fd);
}

/*
 * @len of anonymous memory, 2 MiB aligned, MADV_HUGEPAGE and bound to the
 * device node, with THP set to "madvise" (the fixture restores it).
 */
static char *thp_bound_region(struct __test_metadata *_metadata,
			      FIXTURE_DATA(evac) *self, size_t len)
{
	const char *thp = "/sys/kernel/mm/transparent_hugepage/enabled";
	char *p;

	ASSERT_LT(0, read_choice(thp, self->thp_saved, sizeof(self->thp_saved)));
	ASSERT_EQ(0, write_str(thp, "madvise"));
	p = map_anon_aligned(len, HPAGE_SZ);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, madvise(p, len, MADV_HUGEPAGE));
	ASSERT_EQ(0, mbind_nodes(p, len, MPOL_BIND, &self->node, 1, 0));
	return p;
}

TEST_F_TIMEOUT(evac, thp, 180)
{
	const char *thp = "/sys/kernel/mm/transparent_hugepage/enabled";
	size_t len = 32 * MiB;
	long npages = len / PAGE_SZ, huge_before, huge_after;
	unsigned long long mig = 0, unm = 0;
	uint64_t sum;
	char *p;
	int r;

	if (!path_exists(thp))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	p = thp_bound_region(_metadata, self, len);
	fill_pattern(p, len, 15);
	sum = checksum(p, len);
	ASSERT_EQ(npages, pages_on_node(p, len, self->node));
	huge_before = smaps_anon_huge_kb(p);
	r = evacuate(self, false, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	huge_after = smaps_anon_huge_kb(p);
	TH_LOG("THP: %ld of %ld MiB huge before, %ld MiB huge after evacuation (%llu pages migrated)",
	       huge_before / 1024, (long)(len / MiB), huge_after / 1024, mig);
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(sum, checksum(p, len));
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 15));
	ASSERT_GT(huge_before, 0) TH_LOG("no THP on the CDM node to begin with");
	check_gone_and_online(_metadata, self);
}

static long vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char l[256];
	long v = -1;

	while (f && fgets(l, sizeof(l), f))
		if (!strncmp(l, "VmLck:", 6))
			v = strtol(l + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

TEST_F_TIMEOUT(evac, mlocked, 180)
{
	char *p = bound_region(_metadata, self->node, LEN, false);
	long lck;

	ASSERT_NE(NULL, p);
	fill_pattern(p, LEN, 16);
	ASSERT_EQ(0, mlock(p, LEN));
	lck = vmlck_kb();
	ASSERT_GE(lck, (long)(LEN / KiB));
	evac_region(_metadata, self, p, LEN, 16, false);
	ASSERT_EQ(lck, vmlck_kb());
	munlock(p, LEN);
}

TEST_F_TIMEOUT(evac, fork_cow_shared, 180)
{
	char *p = bound_region(_metadata, self->node, LEN, false);
	int to_c[2], to_p[2], st;
	unsigned long long mig = 0;
	long res[3] = { -1, -1, -1 };
	char b = 0;
	pid_t c;
	int r;

	ASSERT_NE(NULL, p);
	fill_pattern(p, LEN, 17);
	ASSERT_EQ(0, pipe(to_c));
	ASSERT_EQ(0, pipe(to_p));
	c = fork_kid();
	ASSERT_LE(0, c);
	if (!c) {
		if (read(to_c[0], &b, 1) != 1)
			_exit(1);
		res[0] = check_pattern(p, LEN, 17) == (size_t)-1;
		res[1] = pages_on_cdm(p, LEN);
		/* break COW in the child: the parent must not see it */
		fill_pattern(p, LEN, 170);
		res[2] = check_pattern(p, LEN, 170) == (size_t)-1;
		if (write(to_p[1], res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, self->node));
	r = evacuate(self, false, EVAC_MS, &mig, NULL);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_EQ(1, write(to_c[1], &b, 1));
	ASSERT_EQ(sizeof(res), read(to_p[0], res, sizeof(res)));
	waitpid(c, &st, 0);
	TH_LOG("child: data %ld, pages on CDM %ld, COW write %ld; %llu migrated",
	       res[0], res[1], res[2], mig);
	ASSERT_EQ(0, st);
	ASSERT_EQ(1, res[0]);
	ASSERT_EQ(0, res[1]);
	ASSERT_EQ(1, res[2]);
	ASSERT_EQ((size_t)-1, check_pattern(p, LEN, 17));
	ASSERT_EQ(0, pages_on_cdm(p, LEN));
	check_gone_and_online(_metadata, self);
}

/* ---- concurrent writers ---- */

static void *writer_thread(void *arg)
{
	writer_loop(arg);
	return NULL;
}

TEST_F_TIMEOUT(evac, concurrent_writers, 240)
{
	struct writer *tw, *cw;
	char *tp = bound_region(_metadata, self->node, LEN, false);
	char *cp = bound_region(_metadata, self->node, LEN, true);
	unsigned long long mig = 0;
	long passes;
	pthread_t t;
	pid_t c;
	int st, r;

	ASSERT_NE(NULL, tp);
	ASSERT_NE(NULL, cp);
	cw = mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, cw);
	tw = calloc(1, sizeof(*tw));
	ASSERT_NE(NULL, tw);
	*tw = (struct writer){ .buf = (uint64_t *)tp, .words = LEN / 8 };
	*cw = (struct writer){ .buf = (uint64_t *)cp, .words = LEN / 8 };
	c = fork_kid();
	ASSERT_LE(0, c);
	if (!c) {	/* a second writer: another process, shmem */
		writer_loop(cw);
		_exit(0);
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, tw));
	/* wait until both wrote everything at least once */
	for (int i = 0; i < 6000 && (tw->passes < 1 || cw->passes < 1); i++)
		usleep(10000);
	ASSERT_GE(tw->passes, 1);
	ASSERT_GE(cw->passes, 1);
	/* map the child's shmem pages here too, so move_pages sees them */
	for (size_t i = 0; i < LEN; i += PAGE_SZ)
		(void)((volatile char *)cp)[i];
	ASSERT_EQ(NPAGES, pages_on_node(tp, LEN, self->node));
	ASSERT_EQ(NPAGES, pages_on_node(cp, LEN, self->node));
	passes = tw->passes + cw->passes;
	r = evacuate(self, false, EVAC_MS, &mig, NULL);
	/* keep writing a little after evacuation, on RAM now */
	{
		long p0 = tw->passes + cw->passes;

		for (int i = 0; i < 6000 && tw->passes + cw->passes < p0 + 2; i++)
			usleep(10000);
	}
	tw->stop = 1;
	cw->stop = 1;
	pthread_join(t, NULL);
	waitpid(c, &st, 0);
	TH_LOG("evacuate %d, %llu migrated; writer passes during: %ld; thread errors %ld (first word %ld), process errors %ld (first word %ld)",
	       r, mig, tw->passes + cw->passes - passes, tw->errors,
	       tw->first_bad, cw->errors, cw->first_bad);
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, st);
	ASSERT_EQ(0, tw->errors);
	ASSERT_EQ(0, cw->errors);
	ASSERT_EQ(0, pages_on_cdm(tp, LEN));
	ASSERT_EQ(0, pages_on_cdm(cp, LEN));
	check_gone_and_online(_metadata, self);
}

/* ---- pinned pages ---- */

/*
 * Evacuate in a child with an alarm: a kernel that ignores the timeout must
 * not hang the suite (the alarm is a fatal signal: -EINTR, rolled back).
 */
static int evacuate_bounded(FIXTURE_DATA(evac) *self, bool sysfs,
			    unsigned int ms, unsigned long long *mig,
			    unsigned long long *unm, int limit_s)
{
	unsigned long long res[3] = { 0 };
	int pfd[2], st;
	pid_t c;

	if (pipe(pfd))
		return -errno;
	c = fork_kid();
	if (!c) {
		alarm(limit_s);
		res[0] = (unsigned long long)(long long)evacuate(self, sysfs, ms,
								 &res[1], &res[2]);
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], res, sizeof(res)) != sizeof(res))
		res[0] = (unsigned long long)-ETIMEDOUT;
	close(pfd[0]);
	waitpid(c, &st, 0);
	*mig = res[1];
	*unm = res[2];
	return (int)(long long)res[0];
}

static void pin_case(struct __test_metadata *_metadata,
		     FIXTURE_DATA(evac) *self, bool sysfs)
{
	size_t len = 4 * MiB;
	char *p = bound_region(_metadata, self->node, len, false);
	char buf[64];
	unsigned long long mig = 0, unm = 0;
	long failed0 = vmstat_val("cdm_evacuations_failed");
	long stat_failed0 = capi_stat(self->d, "evacuations_failed");
	uint64_t sum;
	int r;

	r = test_kmod_ready();
	ASSERT_EQ(0, r) TH_LOG("cdm_test_kmod: %s", strerror(-r));
	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 18);
	sum = checksum(p, len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, self->node));
	/* no evacuation without a deadline: more than an hour is refused */
	ASSERT_EQ(-EINVAL, evacuate(self, sysfs, 3600001, NULL, NULL));
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, self->node));
	/* pin 4 pages in the middle */
	ASSERT_EQ(4, test_kmod_pin(p + len / 2, 4, false, NULL));

	/* 0: the default deadline, CDM_EVACUATE_DEFAULT_MS, as everywhere */
	r = evacuate_bounded(self, sysfs, 0, &mig, &unm, 60);
	TH_LOG("pinned: evacuate via %s, timeout 0 -> %d (%s) after %ld ms, migrated %llu, unmoved %llu",
	       sysfs ? "sysfs" : "ioctl", r, strerror(-r),
	       node_cdm_long(self->node, "evacuation_ms"), mig, unm);
	ASSERT_EQ(-EBUSY, r);
	ASSERT_EQ(-EBUSY, node_cdm_long(self->node, "evacuation_error"));
	ASSERT_LE(10000, node_cdm_long(self->node, "evacuation_ms"));
	ASSERT_GT(60000, node_cdm_long(self->node, "evacuation_ms"));
	if (!sysfs) {
		ASSERT_GE(unm, 1ULL);
		ASSERT_LE(unm, 4ULL << 9);	/* the pinned pages, at most THP-sized */
	}
	/* consistent: node back online, data intact, pinned pages stayed */
	ASSERT_TRUE(node_has_memory(self->node));
	ASSERT_EQ(0, capi_refresh(self->d));
	TH_LOG("device state after the failed evacuation: %s", self->d->state);
	ASSERT_TRUE(!strcmp(self->d->state, "online") ||
		    !strcmp(self->d->state, "failed"));
	ASSERT_EQ(4, pages_on_node(p + len / 2, 4 * PAGE_SZ, self->node));
	ASSERT_EQ(sum, checksum(p, len));
	/* the admin guide: the core's record of the failed evacuation */
	ASSERT_LT(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/evacuation_state",
			       self->node));
	ASSERT_STREQ("failed", buf);
	ASSERT_LT(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/pages_remaining",
			       self->node));
	TH_LOG("pages_remaining after the failure: %s", buf);
	ASSERT_LE(1, atol(buf));
	ASSERT_GE(4L << 9, atol(buf));
	if (!sysfs) {
		ASSERT_EQ((long)unm, atol(buf));
	}
	if (failed0 >= 0) {
		ASSERT_EQ(failed0 + 1, vmstat_val("cdm_evacuations_failed"));
	}
	ASSERT_EQ(stat_failed0 + 1, capi_stat(self->d, "evacuations_failed"));

	ASSERT_EQ(0, write_str(TEST_DBG "/pin", "unpin"));
	r = evacuate(self, sysfs, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, r) TH_LOG("after unpin: %s", strerror(-r));
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(sum, checksum(p, len));
	check_gone_and_online(_metadata, self);
}

TEST_F_TIMEOUT(evac_via, pinned_page, 180)
{
	pin_case(_metadata, &self->e, variant->sysfs);
}

/* ---- tasks whose policy named the node ---- */

struct pol_res {
	long before_on_node;
	long after_pages;
	long after_on_cdm;
	long after_nodes[4];
	long data_ok;
};

static pid_t policy_child(int mode, int node, int *to_c, int *to_p)
{
	pid_t c;

	if (pipe(to_c) || pipe(to_p))
		return -1;
	c = fork_kid();
	if (c)
		return c;
	{
		struct pol_res r = { 0 };
		long cnt[CDM_MAX_NODES], e;
		char *a = map_anon(4 * MiB), *b;
		char x = 0;

		if (set_policy_nodes(mode, &node, 1))
			_exit(1);
		fill_pattern(a, 4 * MiB, 19);
		r.before_on_node = pages_on_node(a, 4 * MiB, node);
		if (write(to_p[1], &x, 1) != 1 || read(to_c[0], &x, 1) != 1)
			_exit(2);
		/* the node is gone: keep running, allocate more */
		b = map_anon(16 * MiB);
		if (!b)
			_exit(3);
		touch_pages(b, 16 * MiB);
		r.after_pages = page_nodes(b, 16 * MiB, cnt, &e);
		for (int i = 0; i < 4; i++)
			r.after_nodes[i] = cnt[i];
		r.after_on_cdm = pages_on_cdm(b, 16 * MiB);
		r.data_ok = check_pattern(a, 4 * MiB, 19) == (size_t)-1;
		if (write(to_p[1], &r, sizeof(r)) != sizeof(r))
			_exit(4);
		_exit(0);
	}
}

TEST_F_TIMEOUT(evac, policy_tasks_survive_and_use_ram, 300)
{
	static const int modes[] = { MPOL_BIND, MPOL_PREFERRED,
				     MPOL_PREFERRED_MANY };
	static const char *const names[] = { "BIND", "PREFERRED",
					     "PREFERRED_MANY" };

	/* every device: which node the stock rebind picks depends on the id */
	for (int d = 0; d < self->ndev; d++) {
		struct capi_dev *dev = &self->dev[d];
		int fd = capi_open_node(dev->node);
		int to_c[3][2], to_p[3][2], st;
		pid_t c[3];
		char x = 0;
		int r;

		ASSERT_LE(0, fd);
		for (int m = 0; m < 3; m++) {
			c[m] = policy_child(modes[m], dev->node, to_c[m], to_p[m]);
			ASSERT_LT(0, c[m]);
			ASSERT_EQ(1, read(to_p[m][0], &x, 1));
		}
		r = capi_evac_ioctl(fd, EVAC_MS, NULL, NULL);
		ASSERT_EQ(0, r) TH_LOG("evacuate node %d: %s", dev->node,
				       strerror(-r));
		ASSERT_EQ(0, wait_node_memory(dev->node, false, 10000));
		for (int m = 0; m < 3; m++) {
			struct pol_res res;

			ASSERT_EQ(1, write(to_c[m][1], &x, 1));
			ASSERT_EQ(sizeof(res), read(to_p[m][0], &res, sizeof(res)));
			waitpid(c[m], &st, 0);
			TH_LOG("node %d %s task: before %ld/1024 on node; after: %ld pages, node0 %ld node1 %ld node2 %ld, on CDM %ld; data %s; exit 0x%x",
			       dev->node, names[m], res.before_on_node,
			       res.after_pages, res.after_nodes[0],
			       res.after_nodes[1], res.after_nodes[2],
			       res.after_on_cdm, res.data_ok ? "ok" : "BAD", st);
			EXPECT_EQ(0, st);
			EXPECT_EQ(1024, res.before_on_node);
			EXPECT_EQ(4096, res.after_pages);
			EXPECT_EQ(0, res.after_on_cdm);
			EXPECT_EQ(1, res.data_ok);
		}
		ASSERT_EQ(0, capi_online_ioctl(fd));
		ASSERT_EQ(0, wait_node_usable(dev->node, 10000));
		close(fd);
	}
}

/* ---- bystanders: evacuating one device changes no other task's policy ---- */

struct bystander {
	long mode;
	unsigned long nodes;	/* get_mempolicy() */
	long pages, on[4];	/* a new 4 MiB buffer, by node */
	long data_ok;
};

/* child: report its policy and where a new 4 MiB buffer lands */
static int bystander_report(int rfd, int wfd, char *old, size_t oldlen,
			    uint64_t seed)
{
	struct bystander b = { 0 };
	long cnt[CDM_MAX_NODES], e;
	int mode;
	char x;

	if (read(rfd, &x, 1) != 1)
		return 1;
	if (x == 'q')
		return 0;
	if (get_mempolicy(&mode, &b.nodes, sizeof(b.nodes) * 8, NULL, 0))
		return 2;
	b.mode = mode;
	{
		char *p = map_anon(4 * MiB);

		if (!p)
			return 3;
		touch_pages(p, 4 * MiB);
		b.pages = page_nodes(p, 4 * MiB, cnt, &e);
		for (int i = 0; i < 4; i++)
			b.on[i] = cnt[i];
		munmap(p, 4 * MiB);
	}
	b.data_ok = check_pattern(old, oldlen, seed) == (size_t)-1;
	if (write(wfd, &b, sizeof(b)) != sizeof(b))
		return 4;
	return -1;	/* another round */
}

#ifndef MPOL_F_RELATIVE_NODES
#define MPOL_F_RELATIVE_NODES	(1 << 14)
#endif

/* @relative: bind with MPOL_F_RELATIVE_NODES to the positions in @nodes */
static pid_t bystander_start(const int *nodes, int n, bool relative,
			     int *to_c, int *to_p)
{
	pid_t c;

	if (pipe(to_c) || pipe(to_p))
		return -1;
	c = fork_kid();
	if (c)
		return c;
	{
		char *old = map_anon(4 * MiB);
		int r;

		unsigned long mask = 0;

		for (int k = 0; k < n; k++)
			mask |= 1UL << nodes[k];
		if (!old || set_mempolicy(MPOL_BIND |
					  (relative ? MPOL_F_RELATIVE_NODES : 0),
					  &mask, sizeof(mask) * 8))
			_exit(1);
		fill_pattern(old, 4 * MiB, 23);
		while ((r = bystander_report(to_c[0], to_p[1], old, 4 * MiB,
					     23)) < 0)
			;
		_exit(r);
	}
}

static void bystander_ask(struct __test_metadata *_metadata, int *to_c,
			  int *to_p, struct bystander *b)
{
	char x = 'r';

	ASSERT_EQ(1, write(to_c[1], &x, 1));
	ASSERT_EQ(sizeof(*b), read(to_p[0], b, sizeof(*b)));
}

/*
 * Device A is evacuated and re-added.  A task bound to device B keeps
 * get_mempolicy() == {B} and all its new pages on B, before, during A's
 * absence and after; a task bound to {A,B} keeps {A,B} and its new pages
 * go to B while A is gone; a task bound to RAM keeps its RAM node.  (The
 * cpuset hotplug rebind used to remap them by position: {B} became {0}.)
 * A task bound relative to B's position keeps its mask and its pages on
 * B.  While A is away (its node is missing from mems_allowed), a fifth
 * task sets the same relative policy and gets B too, and a sixth binds
 * relative to A's position: RAM while A is away, A once it is back.
 * Positions count A in its place throughout, as when every node is there.
 */
TEST_F_TIMEOUT(evac, bystander_policies_unchanged, 300)
{
	struct capi_dev *a, *bdev;
	int na, nb, ram = -1, ram_last = 0, to_c[6][2], to_p[6][2], st;
	int sets[6][2], nsets[6] = { 1, 2, 1, 1, 1, 1 };
	static const char *const what[6] = { "{B}", "{A,B}", "{RAM}",
					     "{B} relative",
					     "{B} relative, set while A away",
					     "{A} relative, set while A away" };
	pid_t c[6] = { 0 };

	if (self->ndev < 2)
		SKIP(return, "needs two capi_sim devices");
	/* A: the lower node id, so that B's position in mems_allowed moves */
	a = self->dev[0].node < self->dev[1].node ? &self->dev[0] : &self->dev[1];
	bdev = a == &self->dev[0] ? &self->dev[1] : &self->dev[0];
	na = a->node;
	nb = bdev->node;
	/*
	 * ram: the first RAM node, the nearest to A in these guests, where
	 * A's pages go while it is away.  ram_last: the RAM node bound to,
	 * the last one: where it is numbered after A, a rebind by position
	 * would move that bind to another node.
	 */
	for (int n = 0; n < 64; n++)
		if (node_has_memory(n) && !node_is_cdm(n)) {
			if (ram < 0)
				ram = n;
			ram_last = n;
		}
	ASSERT_LE(0, ram);
	TH_LOG("A = node %d, B = node %d, RAM nodes %d..%d", na, nb, ram,
	       ram_last);
	sets[0][0] = nb;
	sets[1][0] = na;
	sets[1][1] = nb;
	sets[2][0] = ram_last;
	/* B's position among the allowed nodes */
	sets[3][0] = 0;
	for (int n = 0; n < nb; n++)
		sets[3][0] += mems_allowed_has(n);
	sets[4][0] = sets[3][0];
	/* A's position */
	sets[5][0] = 0;
	for (int n = 0; n < na; n++)
		sets[5][0] += mems_allowed_has(n);
	for (int i = 0; i < 4; i++) {
		c[i] = bystander_start(sets[i], nsets[i], i == 3, to_c[i],
				       to_p[i]);
		ASSERT_LT(0, c[i]);
	}
	for (int round = 0; round < 3; round++) {
		static const char *const when[3] = { "before", "A evacuated",
						     "A re-added" };
		if (round == 1) {
			int fd = capi_open_node(na);
			int r;

			ASSERT_LE(0, fd);
			r = capi_evac_ioctl(fd, EVAC_MS, NULL, NULL);
			close(fd);
			ASSERT_EQ(0, r) TH_LOG("evacuate node %d: %s", na,
					       strerror(-r));
			ASSERT_EQ(0, wait_node_memory(na, false, 10000));
			for (int i = 4; i < 6; i++) {
				c[i] = bystander_start(sets[i], nsets[i], true,
						       to_c[i], to_p[i]);
				ASSERT_LT(0, c[i]);
			}
		} else if (round == 2) {
			int fd = capi_open_node(na);

			ASSERT_LE(0, fd);
			ASSERT_EQ(0, capi_online_ioctl(fd));
			close(fd);
			ASSERT_EQ(0, wait_node_usable(na, 10000));
		}
		for (int i = 0; i < 6; i++) {
			unsigned long want = 0;
			struct bystander b;
			int expect_node;

			if (!c[i])
				continue;
			for (int k = 0; k < nsets[i]; k++)
				want |= 1UL << sets[i][k];
			bystander_ask(_metadata, to_c[i], to_p[i], &b);
			/* {A,B}: B while A is gone; the nearest otherwise */
			expect_node = i == 2 ? ram_last : nb;
			/* A's position: RAM while A is away */
			if (i == 5)
				expect_node = round == 1 ? ram : na;
			TH_LOG("%s, task bound to %s: get_mempolicy mode %ld nodes %#lx (want %#lx); new 4 MiB: node0 %ld node1 %ld node2 %ld node3 %ld; old data %s",
			       when[round], what[i], b.mode, b.nodes, want,
			       b.on[0], b.on[1], b.on[2], b.on[3],
			       b.data_ok ? "ok" : "BAD");
			/* relative: get_mempolicy() returns the mask as given */
			EXPECT_EQ(MPOL_BIND | (i >= 3 ? MPOL_F_RELATIVE_NODES : 0),
				  b.mode);
			EXPECT_EQ(want, b.nodes);
			EXPECT_EQ(1, b.data_ok);
			if (i == 1 && round != 1) {
				/* both nodes there: every page on A or B */
				EXPECT_EQ(1024, b.on[na] + b.on[nb]);
			} else {
				EXPECT_EQ(1024, b.on[expect_node]);
			}
		}
	}
	for (int i = 0; i < 6; i++) {
		char x = 'q';

		ASSERT_EQ(1, write(to_c[i][1], &x, 1));
		waitpid(c[i], &st, 0);
		EXPECT_EQ(0, st);
	}
}

/*
 * A task bound only to device A keeps allocating (64 MiB, 4 MiB at a time)
 * while A is being evacuated: it is not OOM-killed, its data is intact,
 * and what it allocated is in system RAM.  The child counts the chunks it
 * allocated while the node's evacuation_state read "running", so the test
 * shows the overlap happened rather than hoping for it.
 */
TEST_F_TIMEOUT(evac, bound_task_allocates_during_evacuation, 300)
{
	int node = self->node, pfd[2], st;
	size_t fill = 64 * MiB;
	char *p = bound_region(_metadata, node, fill, false);
	struct { long chunks, during, on_cdm, data_ok; } res = { 0 };
	volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char state_path[160];
	pid_t c;
	int r;

	ASSERT_NE(NULL, p);
	ASSERT_NE(MAP_FAILED, (void *)stop);
	*stop = 0;
	/* data on the node so that its evacuation takes a while */
	fill_pattern(p, fill, 31);
	ASSERT_EQ((long)(fill / PAGE_SZ), pages_on_node(p, fill, node));
	snprintf(state_path, sizeof(state_path),
		 NODE_SYS "/node%d/cdm/evacuation_state", node);
	ASSERT_EQ(0, pipe(pfd));
	c = fork_kid();
	if (!c) {
		char *chunk[16] = { 0 };
		char state[32];
		int nb = node;

		if (set_policy_nodes(MPOL_BIND, &nb, 1))
			_exit(1);
		while (!*stop || res.chunks < 16) {
			int k = res.chunks % 16;

			if (chunk[k])
				munmap(chunk[k], 4 * MiB);
			chunk[k] = map_anon(4 * MiB);
			if (!chunk[k])
				_exit(2);
			fill_pattern(chunk[k], 4 * MiB, 100 + k);
			if (read_str(state_path, state, sizeof(state)) > 0 &&
			    !strncmp(state, "running", 7))
				res.during++;
			res.chunks++;
		}
		res.data_ok = 1;
		for (int k = 0; k < 16; k++) {
			if (check_pattern(chunk[k], 4 * MiB, 100 + k) !=
			    (size_t)-1)
				res.data_ok = 0;
			res.on_cdm += pages_on_cdm(chunk[k], 4 * MiB);
		}
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
			_exit(3);
		_exit(0);
	}
	r = evacuate(self, false, EVAC_MS, NULL, NULL);
	*stop = 1;
	ASSERT_EQ(sizeof(res), read(pfd[0], &res, sizeof(res)));
	waitpid(c, &st, 0);
	TH_LOG("evacuate: %d; bound child: %ld chunks of 4 MiB, %ld during the evacuation, %ld pages of the last 64 MiB on CDM, data %s, exit %#x",
	       r, res.chunks, res.during, res.on_cdm,
	       res.data_ok ? "ok" : "BAD", st);
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, st);
	ASSERT_LE(1, res.during);
	ASSERT_EQ(1, res.data_ok);
	ASSERT_EQ(0, res.on_cdm);
	ASSERT_EQ((size_t)-1, check_pattern(p, fill, 31));
	ASSERT_EQ(0, pages_on_cdm(p, fill));
	check_gone_and_online(_metadata, self);
}

TEST_F_TIMEOUT(evac, readd_repeatedly, 300)
{
	const int cycles = 5;
	long ev0 = vmstat_val("cdm_evacuations");
	long pg0 = vmstat_val("cdm_pages_evacuated");
	long st0 = capi_stat(self->d, "evacuations");
	size_t len = 8 * MiB;

	for (int i = 0; i < cycles; i++) {
		char *p = bound_region(_metadata, self->node, len, false);

		ASSERT_NE(NULL, p);
		evac_region(_metadata, self, p, len, 100 + i, i & 1);
		munmap(p, len);
	}
	TH_LOG("vmstat cdm_evacuations +%ld, cdm_pages_evacuated +%ld; stats evacuations +%ld",
	       vmstat_val("cdm_evacuations") - ev0,
	       vmstat_val("cdm_pages_evacuated") - pg0,
	       capi_stat(self->d, "evacuations") - st0);
	ASSERT_LE(0, ev0) TH_LOG("no cdm_evacuations in /proc/vmstat");
	ASSERT_EQ(ev0 + cycles, vmstat_val("cdm_evacuations"));
	ASSERT_GE(vmstat_val("cdm_pages_evacuated"),
		  pg0 + cycles * (long)(len / PAGE_SZ));
	ASSERT_EQ(st0 + cycles, capi_stat(self->d, "evacuations"));
}

#define TRACEFS "/sys/kernel/tracing"

/*
 * Trace @event (a path under events/: "cdm/enable" for all of them) from
 * an empty buffer.  1: tracing; 0: no tracefs events in this kernel;
 * -1: no such event.
 */
static int trace_begin(const char *event)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/events", TRACEFS);
	if (!path_exists(path))
		mount("tracefs", TRACEFS, "tracefs", 0, NULL);
	if (!path_exists(path))
		return 0;
	snprintf(path, sizeof(path), "%s/events/%s", TRACEFS, event);
	if (!path_exists(path))
		return -1;
	write_strf("0", "%s/tracing_on", TRACEFS);
	/* opening the trace with O_TRUNC empties the buffer; a write does not */
	fd = open(TRACEFS "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	if (write_str(path, "1"))
		return -1;
	write_strf("1", "%s/tracing_on", TRACEFS);
	return 1;
}

/* Stop tracing @event; the trace as a string to free(), or NULL. */
static char *trace_end(const char *event)
{
	const size_t size = 1 << 20;
	char *buf = calloc(1, size);
	size_t len = 0;
	ssize_t n = 0;
	int fd;

	write_strf("0", "%s/events/%s", TRACEFS, event);
	fd = buf ? open(TRACEFS "/trace", O_RDONLY) : -1;
	/* the trace comes a page per read() */
	while (fd >= 0 && len < size - 1 &&
	       (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	if (fd >= 0)
		close(fd);
	if (!len) {
		free(buf);
		return NULL;
	}
	return buf;
}

TEST_F_TIMEOUT(evac, trace_events, 180)
{
	char *p = bound_region(_metadata, self->node, 4 * MiB, false);
	char *buf;
	int r;

	ASSERT_NE(NULL, p);
	r = trace_begin("cdm/enable");
	if (!r)
		SKIP(return, "no tracefs events (CONFIG_EVENT_TRACING off)");
	ASSERT_EQ(1, r) TH_LOG("no cdm trace events");
	fill_pattern(p, 4 * MiB, 20);
	r = capi_evac_ioctl(self->fd, EVAC_MS, NULL, NULL);
	buf = trace_end("cdm/enable");
	ASSERT_EQ(0, r);
	ASSERT_NE(NULL, buf);
	TH_LOG("trace has start %d progress %d end %d",
	       !!strstr(buf, "cdm_evacuate_start"),
	       !!strstr(buf, "cdm_evacuate_progress"),
	       !!strstr(buf, "cdm_evacuate_end"));
	ASSERT_NE(NULL, strstr(buf, "cdm_evacuate_start"));
	ASSERT_NE(NULL, strstr(buf, "cdm_evacuate_end"));
	ASSERT_EQ((size_t)-1, check_pattern(p, 4 * MiB, 20));
	free(buf);
	check_gone_and_online(_metadata, self);
}

/* CDM_OFFLINE_BATCH_PAGES */
#define OFFLINE_BATCH 64

/*
 * The passes of an evacuation, from cdm_evacuate_progress (traced once per
 * offlining pass that migrated something): how many, the pages they moved
 * in all, the largest, how many moved exactly one THP's pages (@large),
 * and how many moved more than OFFLINE_BATCH pages and not exactly @large.
 */
struct evac_passes {
	int n;
	unsigned long pages, max, n_large, n_over;
};

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Each event carries the evacuation's running total.  The trace merges the
 * CPUs' buffers by their local clocks, which need not agree, so the events
 * are put in order by that total, not by time.
 */
static int evacuate_traced(struct __test_metadata *_metadata,
			   FIXTURE_DATA(evac) *self, unsigned long large,
			   struct evac_passes *ps)
{
	const char *event = "cdm/cdm_evacuate_progress/enable";
	unsigned long migrated, step, *totals;
	size_t n = 0, cap = 1 << 16, i;
	char *buf, *line;
	int r, nid;

	memset(ps, 0, sizeof(*ps));
	r = trace_begin(event);
	if (r != 1)
		return r ? -ENOENT : -EOPNOTSUPP;
	r = capi_evac_ioctl(self->fd, EVAC_MS, NULL, NULL);
	buf = trace_end(event);
	if (r)
		return r;
	totals = calloc(cap, sizeof(*totals));
	if (!buf || !totals) {
		free(buf);
		free(totals);
		return -ENODATA;
	}
	for (line = strtok(buf, "\n"); line && n < cap;
	     line = strtok(NULL, "\n")) {
		char *ev = strstr(line, "cdm_evacuate_progress: ");

		if (ev && sscanf(ev, "cdm_evacuate_progress: nid=%d migrated=%lu",
				 &nid, &migrated) == 2 && nid == self->node)
			totals[n++] = migrated;
	}
	free(buf);
	qsort(totals, n, sizeof(*totals), cmp_ulong);
	for (i = 0; i < n; i++) {
		step = totals[i] - ps->pages;
		ps->pages = totals[i];
		ps->max = step > ps->max ? step : ps->max;
		ps->n_large += step == large;
		ps->n_over += step > OFFLINE_BATCH && step != large;
		ps->n++;
	}
	free(totals);
	TH_LOG("%d passes moved %lu pages, the largest %lu; %lu of %lu pages, %lu of more than %d other than that",
	       ps->n, ps->pages, ps->max, ps->n_large, large, ps->n_over,
	       OFFLINE_BATCH);
	return 0;
}

/*
 * Offlining looks at an evacuation's deadline and at signals only between
 * passes over a memory block, and a pass used to migrate everything it
 * found (a whole 128 MiB block): a 10 s timeout returned after 42 s under
 * make stress.  A task touching a page of a pass waits until the pass's
 * batch has been copied, up to 512 folios.  On a CDM node a pass now ends
 * after 64 page frames: no pass moves more than 64 pages (or one THP, if
 * THPs are on by default), and 64 MiB takes at least 256 passes.
 */
TEST_F_TIMEOUT(evac, offline_passes_see_the_deadline, 300)
{
	const size_t len = 64 * MiB;
	char *p = bound_region(_metadata, self->node, len, false);
	struct evac_passes ps;
	int r;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 21);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, self->node));
	r = evacuate_traced(_metadata, self, HPAGE_SZ / PAGE_SZ, &ps);
	if (r == -EOPNOTSUPP)
		SKIP(return, "no tracefs events (CONFIG_EVENT_TRACING off)");
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_GE(ps.pages, len / PAGE_SZ);
	ASSERT_EQ(0, ps.n_over);
	ASSERT_GE((unsigned long)ps.n +
		  ps.n_large * (HPAGE_SZ / PAGE_SZ / OFFLINE_BATCH),
		  len / PAGE_SZ / OFFLINE_BATCH);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 21));
	check_gone_and_online(_metadata, self);
}

/*
 * Small pages and THPs side by side on the node (each 1 MiB of small
 * pages is faulted just before a THP): a THP is a pass of its own, so no
 * small page waits for a THP's copy.  Every pass moves either at most 64
 * small pages or exactly one THP's 512, and there are at least as many
 * 512-page passes as THPs were on the node.
 */
TEST_F_TIMEOUT(evac, large_folio_is_a_pass_of_its_own, 300)
{
	const char *thp = "/sys/kernel/mm/transparent_hugepage/enabled";
	const size_t huge_len = 16 * MiB, small_len = 8 * MiB;
	const unsigned long hpage_pages = HPAGE_SZ / PAGE_SZ;
	long huge_before, huge_after;
	struct evac_passes ps;
	char *h, *s;
	size_t i;
	int r;

	if (!path_exists(thp))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	h = thp_bound_region(_metadata, self, huge_len);
	s = bound_region(_metadata, self->node, small_len, false);
	ASSERT_NE(NULL, s);
	for (i = 0; i < huge_len / HPAGE_SZ; i++) {
		size_t chunk = small_len / (huge_len / HPAGE_SZ);

		fill_pattern(s + i * chunk, chunk, 40 + i);
		fill_pattern(h + i * HPAGE_SZ, HPAGE_SZ, 60 + i);
	}
	ASSERT_EQ((long)(small_len / PAGE_SZ), pages_on_node(s, small_len, self->node));
	ASSERT_EQ((long)(huge_len / PAGE_SZ), pages_on_node(h, huge_len, self->node));
	huge_before = smaps_anon_huge_kb(h);
	ASSERT_GT(huge_before, 0) TH_LOG("no THP on the CDM node to begin with");
	r = evacuate_traced(_metadata, self, hpage_pages, &ps);
	if (r == -EOPNOTSUPP)
		SKIP(return, "no tracefs events (CONFIG_EVENT_TRACING off)");
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	huge_after = smaps_anon_huge_kb(h);
	TH_LOG("THP: %ld MiB huge before, %ld MiB after", huge_before / 1024,
	       huge_after / 1024);
	/* every pass: a THP alone, or small pages only */
	ASSERT_EQ(0, ps.n_over);
	ASSERT_GE(ps.n_large, (unsigned long)huge_before / (HPAGE_SZ / 1024));
	ASSERT_GE(ps.pages, (huge_len + small_len) / PAGE_SZ);
	ASSERT_EQ(0, pages_on_cdm(h, huge_len));
	ASSERT_EQ(0, pages_on_cdm(s, small_len));
	for (i = 0; i < huge_len / HPAGE_SZ; i++) {
		size_t chunk = small_len / (huge_len / HPAGE_SZ);

		ASSERT_EQ((size_t)-1, check_pattern(s + i * chunk, chunk, 40 + i));
		ASSERT_EQ((size_t)-1, check_pattern(h + i * HPAGE_SZ, HPAGE_SZ, 60 + i));
	}
	check_gone_and_online(_metadata, self);
}

/*
 * The copy workers (nodeN/cdm/copy_workers) migrate the node's pages
 * before its blocks are offlined, the evacuating task one of them: each
 * copies a 4 MiB stripe of its own, then claims the next one left until
 * none is.  144 MiB of THPs span 36 such stripes or more.  Serially (1)
 * the evacuating task moves every page; in parallel (2) a kernel worker
 * moves some of them: the progress events of the trace say which task
 * migrated each pass.  By default (0) only CPUs idle when the evacuation
 * starts get a worker: with the evacuating task on CPU 0 and a task
 * spinning on CPU 1, the task moves every page.  Either way the data is
 * intact and no THP is split.
 */
FIXTURE(evac_copy) {
	FIXTURE_DATA(evac) e;
};

FIXTURE_VARIANT(evac_copy) {
	const char *workers;
	bool busy_cpu1;		/* a task spins on CPU 1 meanwhile */
};

FIXTURE_VARIANT_ADD(evac_copy, serial) {
	.workers = "1",
};

FIXTURE_VARIANT_ADD(evac_copy, parallel) {
	.workers = "2",
};

FIXTURE_VARIANT_ADD(evac_copy, default_no_idle_cpu) {
	.workers = "0",
	.busy_cpu1 = true,
};

/* Pin the caller to CPU 0 and a child spinning to CPU 1; its pid. */
static pid_t spin_on_cpu1(struct __test_metadata *_metadata)
{
	cpu_set_t set;
	int fds[2];
	char c;
	pid_t pid;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		CPU_ZERO(&set);
		CPU_SET(1, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			;
	}
	close(fds[1]);
	ASSERT_EQ(1, read(fds[0], &c, 1)) TH_LOG("the spinner did not start");
	close(fds[0]);
	return pid;
}

FIXTURE_SETUP(evac_copy)
{
	evac_prepare(_metadata, &self->e);
}

FIXTURE_TEARDOWN_PARENT(evac_copy)
{
	write_strf("0", NODE_SYS "/node%d/cdm/copy_workers", self->e.node);
	evac_cleanup(&self->e);
}

TEST_F_TIMEOUT(evac_copy, thp_data_intact, 300)
{
	const char *event = "cdm/cdm_evacuate_progress/enable";
	const size_t len = 144 * MiB;
	long huge_before, huge_after, by_worker = 0, by_task = 0;
	char *p, *buf, *line;
	pid_t spinner = 0;
	uint64_t sum;
	int r;

	if (!path_exists("/sys/kernel/mm/transparent_hugepage/enabled"))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	if (self->e.mem_total_kb < (long)(len / KiB))
		SKIP(return, "node %d has less than 144 MiB", self->e.node);
	ASSERT_EQ(0, write_strf(variant->workers,
				NODE_SYS "/node%d/cdm/copy_workers",
				self->e.node));
	ASSERT_EQ(atol(variant->workers),
		  node_cdm_long(self->e.node, "copy_workers"));
	p = thp_bound_region(_metadata, &self->e, len);
	fill_pattern(p, len, 70);
	sum = checksum(p, len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, self->e.node));
	huge_before = smaps_anon_huge_kb(p);
	ASSERT_GT(huge_before, 0) TH_LOG("no THP on the CDM node to begin with");

	if (variant->busy_cpu1 && sysconf(_SC_NPROCESSORS_ONLN) != 2)
		SKIP(return, "needs exactly 2 CPUs");
	r = trace_begin(event);
	if (r != 1)
		SKIP(return, "no tracefs events (CONFIG_EVENT_TRACING off)");
	if (variant->busy_cpu1)
		spinner = spin_on_cpu1(_metadata);
	r = capi_evac_ioctl(self->e.fd, EVAC_MS, NULL, NULL);
	if (spinner) {
		kill(spinner, SIGKILL);
		waitpid(spinner, NULL, 0);
	}
	buf = trace_end(event);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_NE(NULL, buf);
	/* "<comm>-<pid> [cpu] ... cdm_evacuate_progress: nid=..." */
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strstr(line, "cdm_evacuate_progress: "))
			continue;
		while (*line == ' ')
			line++;
		if (!strncmp(line, "kworker/", 8))
			by_worker++;
		else
			by_task++;
	}
	free(buf);
	huge_after = smaps_anon_huge_kb(p);
	TH_LOG("copy_workers %s: %ld passes by the evacuating task, %ld by kernel workers; THP %ld MiB before, %ld MiB after",
	       variant->workers, by_task, by_worker, huge_before / 1024,
	       huge_after / 1024);
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(sum, checksum(p, len));
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 70));
	ASSERT_EQ(huge_before, huge_after);
	ASSERT_LT(0, by_task);
	if (atol(variant->workers) > 1) {
		ASSERT_LT(0, by_worker);
	} else {
		ASSERT_EQ(0, by_worker);
	}
	check_gone_and_online(_metadata, &self->e);
}

int main(int argc, char **argv)
{
	set_oom_adj(-1000);
	return test_harness_run(argc, argv);
}

/*
 * Evacuation when system RAM cannot take the node's pages (issue 13,
 * point 5): it fails up front with -ENOMEM, nothing moves, nobody is
 * killed, the node keeps its memory and the data; once RAM has room the
 * same evacuation succeeds.
 */
TEST_F_TIMEOUT(evac, ram_short_fails_up_front, 300)
{
	size_t dev = (size_t)node_meminfo_kb(self->node, "MemFree") * KiB * 6 / 10;
	long ram_free, oom0, npages;
	unsigned long long mig = 0, unm = 0;
	size_t hog_len;
	uint64_t t0, ms;
	int pfd[2], st, r;
	char *p, c;
	pid_t hog;

	dev &= ~(2 * MiB - 1);
	npages = dev / PAGE_SZ;
	p = bound_region(_metadata, self->node, dev, false);
	ASSERT_NE(NULL, p);
	fill_pattern(p, dev, 91);
	ASSERT_EQ(npages, pages_on_node(p, dev, self->node));

	/*
	 * A RAM hog leaves about half of what the node holds.  MemAvailable,
	 * not MemFree: free pages below the watermarks and in per-cpu lists
	 * are no room for a hog either, and a hog sized by MemFree was
	 * OOM-killed in one run.
	 */
	write_str("/proc/sys/vm/drop_caches", "3");
	ram_free = meminfo_kb("MemAvailable");
	ASSERT_GT(ram_free * KiB, (long)(dev / 2 + 64 * MiB));
	hog_len = ram_free * KiB - dev / 2;
	ASSERT_EQ(0, pipe(pfd));
	hog = fork_kid();
	if (!hog) {
		char *h;

		set_oom_adj(1000);
		h = map_anon(hog_len);
		if (h)
			memset(h, 0x33, hog_len);
		c = h ? 'y' : 'n';
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	ASSERT_EQ('y', c);
	oom0 = vmstat_val("oom_kill");

	t0 = now_ms();
	r = evacuate(self, false, EVAC_MS, &mig, &unm);
	ms = now_ms() - t0;
	TH_LOG("node %d holds %zu MiB, node 0 MemFree %ld kB after the hog: evacuate -> %s in %llu ms, %llu pages migrated, %llu left; oom_kill +%ld",
	       self->node, dev / MiB, node_meminfo_kb(0, "MemFree"),
	       r ? strerror(-r) : "ok", (unsigned long long)ms, mig, unm,
	       vmstat_val("oom_kill") - oom0);
	ASSERT_EQ(-ENOMEM, r);
	ASSERT_LT(ms, EVAC_MS / 2) TH_LOG("not up front: it ran into the deadline");
	ASSERT_EQ(oom0, vmstat_val("oom_kill"));
	ASSERT_EQ(0, waitpid(hog, &st, WNOHANG)) TH_LOG("the hog died");
	ASSERT_TRUE(node_has_memory(self->node));
	ASSERT_EQ(npages, pages_on_node(p, dev, self->node));
	ASSERT_EQ((size_t)-1, check_pattern(p, dev, 91));
	ASSERT_GE((long long)unm, npages);

	/* room again: the same evacuation goes through */
	kill(hog, SIGKILL);
	ASSERT_EQ(0, wait_child(hog, &st, 60));
	close(pfd[0]);
	r = evacuate(self, false, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, r) TH_LOG("evacuate with room: %s", strerror(-r));
	ASSERT_EQ(0, pages_on_cdm(p, dev));
	ASSERT_EQ((size_t)-1, check_pattern(p, dev, 91));
	check_gone_and_online(_metadata, self);
}

/*
 * A long-term pin (FOLL_LONGTERM: RDMA, VFIO, io_uring fixed buffers) on
 * device pages migrates them to system RAM before pinning, as for any
 * ZONE_MOVABLE page (issue 13, point 4).  That is what keeps the node
 * evacuable: the pin holds RAM pages, and the evacuation succeeds while
 * it is held.
 */
TEST_F_TIMEOUT(evac, longterm_pin_moves_pages_to_ram, 180)
{
	size_t len = 4 * MiB;
	char *p = bound_region(_metadata, self->node, len, false);
	unsigned long long mig = 0, unm = 0;
	int r, pinned, pin_node = -1;
	uint64_t sum;

	r = test_kmod_ready();
	ASSERT_EQ(0, r) TH_LOG("cdm_test_kmod: %s", strerror(-r));
	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 27);
	sum = checksum(p, len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, self->node));
	pinned = test_kmod_pin(p + len / 2, 16, true, &pin_node);
	TH_LOG("long-term pin of 16 pages bound to node %d: %d pinned, first on node %d; the range: %ld on node %d, %ld in RAM",
	       self->node, pinned, pin_node,
	       pages_on_node(p + len / 2, 16 * PAGE_SZ, self->node), self->node,
	       pages_off_node(p + len / 2, 16 * PAGE_SZ, self->node));
	ASSERT_EQ(16, pinned);
	ASSERT_FALSE(node_is_cdm(pin_node));
	ASSERT_EQ(0, pages_on_cdm(p + len / 2, 16 * PAGE_SZ));
	ASSERT_EQ(sum, checksum(p, len));

	/* the pin holds RAM pages: the node evacuates while it is held */
	r = evacuate(self, false, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s, %llu left", strerror(-r), unm);
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(sum, checksum(p, len));
	ASSERT_EQ(0, write_str(TEST_DBG "/pin", "unpin"));
	check_gone_and_online(_metadata, self);
}

/* nodeN's 2 MiB pool attribute @attr, or -1 */
static long node_hugepages(int node, const char *attr)
{
	char path[160];
	long v;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/%s",
		 node, attr);
	return read_long(path, &v) ? -1 : v;
}

/*
 * A hugetlb pool on the node, part of it reserved by a task bound there
 * that has not touched those pages yet: the pool must not block the
 * evacuation (issue 12: "a free pool on a CDM node never blocks its
 * evacuation"), the page in use moves with its data, and the reserved
 * page is still there for the task afterwards (no SIGBUS at first touch),
 * in RAM.  With @surplus the node's pool is then shrunk to nothing, which
 * turns both pages still needed into surplus pages: they must stay
 * surplus where they go, so that both are freed once the task exits.
 */
enum hp_pool { HP_POOL, HP_POOL_SHRUNK, HP_OVERCOMMIT };

static void hugetlb_reserved_evacuation(struct __test_metadata *_metadata,
					FIXTURE_DATA(evac) *self,
					enum hp_pool how)
{
	bool surplus = how != HP_POOL;
	long resv0, free_node, unused = -1, got;
	unsigned long long mig = 0, unm = 0;
	int to_c[2], to_p[2], st, r;
	char path[160], c = 0;
	pid_t kid;

	if (!path_exists(HUGEPAGES_2M "/resv_hugepages"))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	ASSERT_EQ(0, read_long(HUGEPAGES_2M "/resv_hugepages", &resv0));
	snprintf(path, sizeof(path), NODE_HPAGE_POOL, self->node);
	if (how == HP_OVERCOMMIT) {
		/* no pool: the task's reservation allocates 2 surplus pages */
		ASSERT_EQ(0, write_str(HUGEPAGES_2M "/nr_overcommit_hugepages",
				       "2"));
	} else {
		ASSERT_EQ(0, write_str(path, "4"));
		ASSERT_EQ(4, node_hugepages(self->node, "nr_hugepages"));
	}
	ASSERT_EQ(0, pipe(to_c));
	ASSERT_EQ(0, pipe(to_p));
	kid = fork_kid();
	ASSERT_LE(0, kid);
	if (!kid) {
		size_t len = 2 * HPAGE_SZ;
		char *p;

		if (set_policy_nodes(MPOL_BIND, &self->node, 1))
			_exit(10);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED)
			_exit(11);
		/* the first page in use, the second only reserved */
		fill_pattern(p, HPAGE_SZ, 31);
		if (pages_on_node(p, HPAGE_SZ, self->node) !=
		    (long)(HPAGE_SZ / PAGE_SZ))
			_exit(12);
		if (write(to_p[1], &c, 1) != 1 || read(to_c[0], &c, 1) != 1)
			_exit(13);
		/* after the evacuation: data kept, the reservation honoured */
		if (check_pattern(p, HPAGE_SZ, 31) != (size_t)-1)
			_exit(14);
		fill_pattern(p + HPAGE_SZ, HPAGE_SZ, 32);
		if (check_pattern(p + HPAGE_SZ, HPAGE_SZ, 32) != (size_t)-1)
			_exit(15);
		if (pages_on_cdm(p, len))
			_exit(16);
		_exit(0);
	}
	ASSERT_EQ(1, read(to_p[0], &c, 1));
	free_node = node_hugepages(self->node, "free_hugepages");
	ASSERT_EQ(0, read_long(HUGEPAGES_2M "/resv_hugepages", &got));
	TH_LOG("node %d pool: %ld pages, %ld surplus, %ld free; reserved system-wide %ld (before the task %ld)",
	       self->node, node_hugepages(self->node, "nr_hugepages"),
	       node_hugepages(self->node, "surplus_hugepages"), free_node,
	       got, resv0);
	ASSERT_EQ(how == HP_OVERCOMMIT ? 1 : 3, free_node);
	ASSERT_EQ(resv0 + 1, got);
	if (how == HP_OVERCOMMIT) {
		ASSERT_EQ(2, node_hugepages(self->node, "surplus_hugepages"));
	}
	if (how == HP_POOL_SHRUNK) {
		/* the page in use and the reserved one cannot go: surplus */
		ASSERT_EQ(0, write_str(path, "0"));
		TH_LOG("node %d pool shrunk to 0: %ld pages, %ld surplus, %ld free",
		       self->node, node_hugepages(self->node, "nr_hugepages"),
		       node_hugepages(self->node, "surplus_hugepages"),
		       node_hugepages(self->node, "free_hugepages"));
		ASSERT_EQ(2, node_hugepages(self->node, "nr_hugepages"));
		ASSERT_EQ(2, node_hugepages(self->node, "surplus_hugepages"));
		ASSERT_EQ(1, node_hugepages(self->node, "free_hugepages"));
	}

	r = evacuate(self, false, EVAC_MS, &mig, &unm);
	ASSERT_EQ(0, read_long(HUGEPAGES_2M "/resv_hugepages", &got));
	read_long(HUGEPAGES_2M "/free_hugepages", &unused);
	TH_LOG("evacuate: %d (%llu pages migrated, %llu left); reserved %ld, free system-wide %ld, node 0 surplus %ld",
	       r, mig, unm, got, unused, node_hugepages(0, "surplus_hugepages"));
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s, %llu left", strerror(-r), unm);
	/* the reservation kept, its page replaced in RAM (node 0 here) */
	ASSERT_EQ(resv0 + 1, got);
	ASSERT_GE(unused, got);
	ASSERT_EQ(unused, node_hugepages(0, "free_hugepages"));
	if (surplus) {
		ASSERT_EQ(2, node_hugepages(0, "surplus_hugepages"));
	}
	ASSERT_EQ(1, write(to_c[1], &c, 1));
	ASSERT_EQ(0, wait_child(kid, &st, 60));
	TH_LOG("task after the evacuation: %s %d",
	       WIFEXITED(st) ? "exit" : "signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (surplus) {
		/* surplus pages are freed, not kept, once nobody needs them */
		ASSERT_EQ(0, read_long(HUGEPAGES_2M "/nr_hugepages", &got));
		ASSERT_EQ(0, got);
		ASSERT_EQ(0, read_long(HUGEPAGES_2M "/surplus_hugepages", &got));
		ASSERT_EQ(0, got);
	}
	ASSERT_EQ(0, write_str(HUGEPAGES_2M "/nr_hugepages", "0"));
	check_gone_and_online(_metadata, self);
}

TEST_F_TIMEOUT(evac, hugetlb_pool_reserved_by_bound_task, 180)
{
	hugetlb_reserved_evacuation(_metadata, self, HP_POOL);
}

TEST_F_TIMEOUT(evac, hugetlb_surplus_reserved_by_bound_task, 180)
{
	hugetlb_reserved_evacuation(_metadata, self, HP_POOL_SHRUNK);
}

/* The same with overcommit and no pool (the surplus pages of mm_cdm/0026) */
TEST_F_TIMEOUT(evac, hugetlb_overcommit_reserved_by_bound_task, 180)
{
	hugetlb_reserved_evacuation(_metadata, self, HP_OVERCOMMIT);
}
