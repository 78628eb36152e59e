// SPDX-License-Identifier: GPL-2.0
/*
 * boottime_test - CDM memory that firmware describes at boot (issue 7):
 * node 1 of a guest booted with `scripts/vm-run --boot-node MIB`, named a
 * CDM node by cdm_nodes=1 (SRAT memory) or by cdm_soft_reserved (EFI
 * specific-purpose memory, hot-added by dax_kmem).  Its memory must be
 * ZONE_MOVABLE only with nothing from early boot on it, isolated, reachable
 * by explicit placement, and evacuable with nodeX/cdm/evacuate (no driver
 * owns it), all bytes intact, then online again.
 *
 * isolation_test and placement_test run in the same guest as well
 * (tests.list phase "boot").
 */
#define _GNU_SOURCE
#include <dirent.h>
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

#define NODE 1
#define LEN (64 * MiB)
#define NPAGES ((long)(LEN / PAGE_SZ))
#define EVAC_MS 60000
#define TMPFS_DIR "/tmp/cdm_boot_tmpfs"
#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/* ---- what vm-run booted: /etc/cdm/topology ---- */

static int topology_val(const char *key, char *val, size_t len)
{
	char buf[512], *p, *e;
	size_t kl = strlen(key);

	if (read_str("/etc/cdm/topology", buf, sizeof(buf)) < 0)
		return -ENOENT;
	for (p = buf; p && *p; p = e ? e + 1 : NULL) {
		e = strchr(p, '\n');
		if (e)
			*e = 0;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			snprintf(val, len, "%s", p + kl + 1);
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- /proc/zoneinfo ---- */

struct zone_counts {
	char name[16];
	long spanned, present, managed;
};

/* the zones of @nid; returns how many, or -errno */
static int node_zones(int nid, struct zone_counts *z, int max)
{
	FILE *f = fopen("/proc/zoneinfo", "re");
	char line[256], name[16];
	int n = 0, cur = -1, node;
	long v;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone %15s", &node, name) == 2) {
			cur = -1;
			if (node == nid && n < max) {
				cur = n++;
				memset(&z[cur], 0, sizeof(z[cur]));
				snprintf(z[cur].name, sizeof(z[cur].name), "%s",
					 name);
			}
			continue;
		}
		if (cur < 0)
			continue;
		if (sscanf(line, " spanned %ld", &v) == 1)
			z[cur].spanned = v;
		else if (sscanf(line, " present %ld", &v) == 1)
			z[cur].present = v;
		else if (sscanf(line, " managed %ld", &v) == 1)
			z[cur].managed = v;
	}
	fclose(f);
	return n;
}

/* ---- memory blocks of a node (node_blocks(): the library) ---- */

/* online every offline block of @nid with @how; blocks onlined or -errno */
static int online_node_blocks(int nid, const char *how)
{
	int ids[512], n = node_blocks(nid, ids, 512), done = 0, r;
	char st[32], path[128];

	for (int i = 0; i < n; i++) {
		if (block_state(ids[i], st, sizeof(st)) || strcmp(st, "offline"))
			continue;
		snprintf(path, sizeof(path), MEMSYS "/memory%d/state", ids[i]);
		r = write_str(path, how);
		if (r)
			return r;
		done++;
	}
	return n < 0 ? n : done;
}

/* 0 or -errno of the write to nodeN/cdm/evacuate */
static int evacuate_node(int nid, unsigned int ms)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", ms);
	return write_strf(v, NODE_SYS "/node%d/cdm/evacuate", nid);
}

static long node_total_kb(int nid)
{
	return node_meminfo_kb(nid, "MemTotal");
}

FIXTURE(boot) {
	char how[32];		/* cdm_nodes, soft_reserved or ram */
	long mib;		/* boot memory of node 1 */
	long total_kb;		/* node 1 MemTotal with every block online */
	char thp_saved[64];
	bool tmpfs;
};

static void boot_prepare(struct __test_metadata *_metadata,
			 FIXTURE_DATA(boot) *self)
{
	char v[64];

	self->thp_saved[0] = 0;
	self->tmpfs = false;
	self->mib = 0;
	if (!topology_val("boot_node_mib", v, sizeof(v)))
		self->mib = atol(v);
	if (self->mib <= 0)
		SKIP(return, "no boot-time memory node (vm-run --boot-node)");
	ASSERT_EQ(0, topology_val("boot_node_as", self->how, sizeof(self->how)));
	/* a previous test may have left the node evacuated: bring it back */
	ASSERT_LE(0, online_node_blocks(NODE, "online_movable"));
	ASSERT_EQ(0, wait_node_usable(NODE, 10000))
		TH_LOG("node %d has no usable memory", NODE);
	self->total_kb = node_total_kb(NODE);
}

FIXTURE_SETUP(boot)
{
	boot_prepare(_metadata, self);
}

static void boot_cleanup(FIXTURE_DATA(boot) *self)
{
	if (self->tmpfs) {
		umount2(TMPFS_DIR, MNT_DETACH);
		rmdir(TMPFS_DIR);
	}
	if (self->thp_saved[0])
		write_str(THP_ENABLED, self->thp_saved);
	online_node_blocks(NODE, "online_movable");
}

FIXTURE_TEARDOWN_PARENT(boot)
{
	boot_cleanup(self);
}

/* firmware's node: CDM, CPU-less, owned by no driver, the size booted */
TEST_F(boot, node_is_cdm)
{
	char buf[64];

	ASSERT_TRUE(node_is_cdm(NODE))
		TH_LOG("node %d not in has_coherent_device (booted as %s)",
		       NODE, self->how);
	ASSERT_LE(0, read_strf(buf, sizeof(buf), NODE_SYS "/node%d/cpulist",
			       NODE));
	ASSERT_EQ(0, buf[strspn(buf, "\n")])
		TH_LOG("node %d has CPUs: %s", NODE, buf);
	ASSERT_LE(0, read_strf(buf, sizeof(buf), NODE_SYS "/node%d/cdm/owner",
			       NODE));
	ASSERT_STREQ("none", buf);
	TH_LOG("node %d: %ld kB of %ld MiB booted (%s)", NODE, self->total_kb,
	       self->mib, self->how);
	ASSERT_LE(self->total_kb, self->mib * 1024);
	if (strcmp(self->how, "soft_reserved")) {
		/* QEMU's firmware keeps a few pages of the range for itself */
		ASSERT_GE(self->total_kb, self->mib * 1024 * 98 / 100);
	} else {
		/*
		 * dax_kmem adds whole memory blocks of the range: the last,
		 * partial one (the firmware's pages) is left out.
		 */
		ASSERT_LE(0, read_str("/sys/bus/dax/devices/dax0.0/size", buf,
				      sizeof(buf)));
		TH_LOG("dax0.0 size %lld bytes", atoll(buf));
		ASSERT_GE(self->total_kb, atoll(buf) / 1024 - 128 * 1024);
		ASSERT_GE(self->total_kb, (self->mib - 128) * 1024);
	}
}

/*
 * Every page of the node is in ZONE_MOVABLE and managed by the page
 * allocator: a page that memblock handed out at boot (struct pages, page
 * tables, node data, percpu areas) would be present but not managed.
 */
TEST_F(boot, all_movable_nothing_from_early_boot)
{
	struct zone_counts z[8];
	int n = node_zones(NODE, z, 8);
	long movable = 0;

	ASSERT_LT(0, n);
	for (int i = 0; i < n; i++) {
		TH_LOG("node %d zone %-8s spanned %ld present %ld managed %ld",
		       NODE, z[i].name, z[i].spanned, z[i].present,
		       z[i].managed);
		if (!strcmp(z[i].name, "Movable")) {
			movable = z[i].present;
			EXPECT_EQ(z[i].present, z[i].managed);
		} else {
			EXPECT_EQ(0, z[i].present);
		}
	}
	ASSERT_EQ(self->total_kb / 4, movable);
}

/* every block of the node is online in ZONE_MOVABLE and nowhere else */
TEST_F(boot, blocks_movable_only)
{
	int ids[512], n = node_blocks(NODE, ids, 512);
	char st[32], zones[64];

	ASSERT_LT(0, n);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(0, block_state(ids[i], st, sizeof(st)));
		ASSERT_STREQ("online", st);
		ASSERT_LE(0, read_strf(zones, sizeof(zones),
				       MEMSYS "/memory%d/valid_zones", ids[i]));
		ASSERT_STREQ("Movable", zones)
			TH_LOG("memory%d valid_zones %s", ids[i], zones);
	}
}

/* unbound anonymous memory and tmpfs page cache never land on the node */
TEST_F_TIMEOUT(boot, unbound_memory_stays_off, 300)
{
	long used0 = node_used_kb(NODE), free0 = node_meminfo_kb(0, "MemFree");
	/*
	 * Earlier tests in this guest place shmem on the node on purpose;
	 * what they leave (freed later, after RCU) is not this test's.
	 */
	long shmem0 = node_meminfo_kb(NODE, "Shmem");
	long file0 = node_meminfo_kb(NODE, "FilePages");
	struct fill_opts o = { .chunk = 16 * MiB, .mode = -1 };
	struct fill_result r;
	char path[64];
	int fd;

	ASSERT_LT(0, free0);
	/* anonymous: most of node 0's free memory */
	o.max_bytes = (size_t)free0 * KiB * 7 / 10;
	ASSERT_EQ(0, fill_run(&o, &r, 240));
	TH_LOG("anonymous: %ld pages, %ld on CDM nodes, node 0 free down to %ld kB",
	       r.pages, r.on_cdm, r.min_node0_free_kb);
	ASSERT_LT(0, r.pages);
	ASSERT_EQ(0, r.on_cdm);
	/* tmpfs: a file of a quarter of node 0's free memory */
	mkdir(TMPFS_DIR, 0700);
	ASSERT_EQ(0, mount("tmpfs", TMPFS_DIR, "tmpfs", 0, "size=90%"));
	self->tmpfs = true;
	snprintf(path, sizeof(path), TMPFS_DIR "/f");
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	{
		size_t len = (size_t)free0 * KiB / 4;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, 0);

		ASSERT_EQ(0, ftruncate(fd, len));
		ASSERT_NE(MAP_FAILED, p);
		touch_pages(p, len);
		ASSERT_EQ(0, pages_on_cdm(p, len));
		munmap(p, len);
	}
	close(fd);
	TH_LOG("node %d Shmem %ld -> %ld kB, FilePages %ld -> %ld kB", NODE,
	       shmem0, node_meminfo_kb(NODE, "Shmem"), file0,
	       node_meminfo_kb(NODE, "FilePages"));
	ASSERT_LE(node_meminfo_kb(NODE, "Shmem"), shmem0);
	ASSERT_LE(node_meminfo_kb(NODE, "FilePages"), file0);
	/* a few kB of per-cpu lists may move; megabytes may not */
	ASSERT_LT(node_used_kb(NODE) - used0, 1024)
		TH_LOG("node %d used %ld kB before, %ld kB after", NODE, used0,
		       node_used_kb(NODE));
}

/* explicit placement reaches it: mbind and move_pages */
TEST_F(boot, placement_bind_and_move)
{
	int node = NODE;
	char *p = map_anon(LEN), *q = map_anon(LEN);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, &node, 1, 0));
	touch_pages(p, LEN);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, NODE));
	touch_pages(q, LEN);
	ASSERT_EQ(0, pages_on_cdm(q, LEN));
	ASSERT_EQ(NPAGES, move_all(q, LEN, NODE));
	ASSERT_EQ(NPAGES, pages_on_node(q, LEN, NODE));
}

static char *bound_region(int node, size_t len, bool shared)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mbind_nodes(p, len, MPOL_BIND, &node, 1, 0)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/*
 * Evacuate through nodeN/cdm/evacuate and check what the kernel reports:
 * the node has no memory online, the counters moved, and every page of
 * [p, p+len) is on system RAM with its data.  Then online it again.
 */
static void evacuate_and_check(struct __test_metadata *_metadata,
			       FIXTURE_DATA(boot) *self, char *p, size_t len,
			       uint64_t sum)
{
	long npages = len / PAGE_SZ;
	long ev0 = vmstat_val("cdm_pages_evacuated");
	long n0 = vmstat_val("cdm_evacuations");
	char buf[64];
	long migrated;
	int r;

	ASSERT_EQ(npages, pages_on_node(p, len, NODE));
	r = evacuate_node(NODE, EVAC_MS);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_FALSE(node_has_memory(NODE));
	ASSERT_LE(node_total_kb(NODE), 0);
	ASSERT_EQ(n0 + 1, vmstat_val("cdm_evacuations"));
	ASSERT_GE(vmstat_val("cdm_pages_evacuated") - ev0, npages);
	ASSERT_LE(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/evacuation_state", NODE));
	ASSERT_STREQ("idle", buf);
	ASSERT_EQ(0, node_cdm_long(NODE, "evacuation_error"));
	ASSERT_LE(0, node_cdm_long(NODE, "evacuation_ms"));
	ASSERT_LE(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/pages_migrated", NODE));
	migrated = atol(buf);
	TH_LOG("evacuated: %ld pages migrated, vmstat cdm_pages_evacuated +%ld",
	       migrated, vmstat_val("cdm_pages_evacuated") - ev0);
	ASSERT_GE(migrated, npages);
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_EQ(npages, pages_off_node(p, len, NODE));
	ASSERT_EQ(sum, checksum(p, len));

	/* boot memory stays offline until onlined; kernel zones refused */
	{
		int ids[512], n = node_blocks(NODE, ids, 512), kfd = kmsg_open();
		char path[128], st[32], line[96];

		ASSERT_LT(0, n);
		ASSERT_LE(0, kfd);
		ASSERT_EQ(0, block_state(ids[0], st, sizeof(st)));
		ASSERT_STREQ("offline", st);
		ASSERT_LT(0, read_strf(st, sizeof(st),
				       MEMSYS "/memory%d/valid_zones", ids[0]));
		ASSERT_STREQ("Movable", st);
		snprintf(path, sizeof(path), MEMSYS "/memory%d/state", ids[0]);
		ASSERT_EQ(-EINVAL, write_str(path, "online_kernel"));
		/* the line the admin guide quotes */
		snprintf(line, sizeof(line),
			 "cdm: node %d: coherent device memory can only be onlined to ZONE_MOVABLE",
			 NODE);
		ASSERT_EQ(0, kmsg_wait_for(kfd, line, 10000));
		close(kfd);
		ASSERT_EQ(0, block_state(ids[0], st, sizeof(st)));
		ASSERT_STREQ("offline", st);
	}
	ASSERT_EQ(-EALREADY, evacuate_node(NODE, EVAC_MS));
	/*
	 * A plain "online" of one block picks ZONE_MOVABLE (checked below);
	 * the one contract for every CDM node brings back the rest.
	 */
	{
		int ids[512], n = node_blocks(NODE, ids, 512);
		char path[128];

		ASSERT_LT(1, n);
		snprintf(path, sizeof(path), MEMSYS "/memory%d/state", ids[0]);
		ASSERT_EQ(0, write_str(path, "online"));
	}
	ASSERT_EQ(0, write_strf("1", NODE_SYS "/node%d/cdm/online", NODE));
	ASSERT_EQ(0, wait_node_usable(NODE, 10000));
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
	ASSERT_EQ(-EALREADY, write_strf("1", NODE_SYS "/node%d/cdm/online",
					NODE));
	ASSERT_EQ(-EINVAL, write_strf("2", NODE_SYS "/node%d/cdm/online",
				       NODE));
	/* a plain "online" picks ZONE_MOVABLE on a CDM node */
	{
		int ids[512], n = node_blocks(NODE, ids, 512);
		char z[32];

		for (int i = 0; i < n; i++) {
			ASSERT_LT(0, read_strf(z, sizeof(z),
					       MEMSYS "/memory%d/valid_zones",
					       ids[i]));
			ASSERT_STREQ("Movable", z);
		}
	}
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
	ASSERT_EQ(sum, checksum(p, len));
}

/* a bound private or shared region with a pattern survives evacuation */
static void evacuate_region(struct __test_metadata *_metadata,
			    FIXTURE_DATA(boot) *self, bool shared,
			    uint64_t seed)
{
	char *p = bound_region(NODE, LEN, shared);

	ASSERT_NE(NULL, p);
	fill_pattern(p, LEN, seed);
	evacuate_and_check(_metadata, self, p, LEN, checksum(p, LEN));
	ASSERT_EQ((size_t)-1, check_pattern(p, LEN, seed));
}

/* A private and a shared bound region, each evacuated the same way. */
FIXTURE(boot_region) {
	FIXTURE_DATA(boot) b;
};

FIXTURE_VARIANT(boot_region) {
	bool shared;
	uint64_t seed;
};

FIXTURE_VARIANT_ADD(boot_region, anonymous) {
	.shared = false,
	.seed = 71,
};

FIXTURE_VARIANT_ADD(boot_region, shmem) {
	.shared = true,
	.seed = 72,
};

FIXTURE_SETUP(boot_region)
{
	boot_prepare(_metadata, &self->b);
}

FIXTURE_TEARDOWN_PARENT(boot_region)
{
	boot_cleanup(&self->b);
}

TEST_F_TIMEOUT(boot_region, evacuate, 180)
{
	evacuate_region(_metadata, &self->b, variant->shared, variant->seed);
}

TEST_F_TIMEOUT(boot, evacuate_thp, 180)
{
	char *p;
	long huge;

	if (!path_exists(THP_ENABLED))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	ASSERT_LT(0, read_choice(THP_ENABLED, self->thp_saved,
				 sizeof(self->thp_saved)));
	ASSERT_EQ(0, write_str(THP_ENABLED, "madvise"));
	p = map_anon_aligned(LEN, HPAGE_SZ);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, madvise(p, LEN, MADV_HUGEPAGE));
	ASSERT_EQ(0, mbind_nodes(p, LEN, MPOL_BIND, (int[]){ NODE }, 1, 0));
	fill_pattern(p, LEN, 73);
	huge = smaps_anon_huge_kb(p);
	ASSERT_GT(huge, 0) TH_LOG("no THP on node %d to begin with", NODE);
	evacuate_and_check(_metadata, self, p, LEN, checksum(p, LEN));
	TH_LOG("THP: %ld MiB huge before, %ld MiB after evacuation",
	       huge / 1024, smaps_anon_huge_kb(p) / 1024);
}

static void *writer_thread(void *arg)
{
	writer_loop(arg);
	return NULL;
}

/* a task writing all the time loses nothing and sees only a pause */
TEST_F_TIMEOUT(boot, evacuate_while_writing, 240)
{
	char *p = bound_region(NODE, LEN, false);
	struct writer *w = calloc(1, sizeof(*w));
	pthread_t t;
	long passes;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, w);
	*w = (struct writer){ .buf = (uint64_t *)p, .words = LEN / 8 };
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, w));
	for (int i = 0; i < 6000 && w->passes < 1; i++)
		usleep(10000);
	ASSERT_GE(w->passes, 1);
	ASSERT_EQ(NPAGES, pages_on_node(p, LEN, NODE));
	passes = w->passes;
	ASSERT_EQ(0, evacuate_node(NODE, EVAC_MS));
	for (int i = 0; i < 6000 && w->passes < passes + 2; i++)
		usleep(10000);
	w->stop = 1;
	pthread_join(t, NULL);
	TH_LOG("writer: %ld passes, %ld during and after evacuation, %ld errors",
	       w->passes, w->passes - passes, w->errors);
	ASSERT_EQ(0, w->errors);
	ASSERT_GE(w->passes, passes + 2);
	ASSERT_EQ(0, pages_on_cdm(p, LEN));
}

/* a pinned page makes the evacuation fail cleanly: all memory online */
TEST_F_TIMEOUT(boot, evacuate_pinned_fails_cleanly, 180)
{
	size_t len = 4 * MiB;
	char *p = bound_region(NODE, len, false);
	long failed0 = vmstat_val("cdm_evacuations_failed");
	char buf[64];
	uint64_t sum;
	int r;

	r = test_kmod_ready();
	if (r)
		SKIP(return, "cdm_test_kmod: %s", strerror(-r));
	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 74);
	sum = checksum(p, len);
	ASSERT_EQ((long)(len / PAGE_SZ), pages_on_node(p, len, NODE));
	ASSERT_EQ(4, test_kmod_pin(p + len / 2, 4, false, NULL));
	r = evacuate_node(NODE, 3000);
	TH_LOG("pinned: evacuate -> %d (%s) after %ld ms", r, strerror(-r),
	       node_cdm_long(NODE, "evacuation_ms"));
	ASSERT_EQ(-EBUSY, r);
	ASSERT_LE(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/evacuation_state", NODE));
	ASSERT_STREQ("failed", buf);
	/* the result stays readable: the error and the deadline it hit */
	ASSERT_EQ(-EBUSY, node_cdm_long(NODE, "evacuation_error"));
	ASSERT_LE(3000, node_cdm_long(NODE, "evacuation_ms"));
	ASSERT_LE(1, node_cdm_long(NODE, "pages_remaining"));
	ASSERT_TRUE(node_has_memory(NODE));
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
	ASSERT_EQ(4, pages_on_node(p + len / 2, 4 * PAGE_SZ, NODE));
	ASSERT_EQ(sum, checksum(p, len));
	ASSERT_EQ(failed0 + 1, vmstat_val("cdm_evacuations_failed"));
	ASSERT_EQ(0, write_str(TEST_DBG "/pin", "unpin"));
	/* the rest went to RAM before the failure: bring it all back */
	ASSERT_EQ((long)(len / PAGE_SZ), move_all(p, len, NODE));
	evacuate_and_check(_metadata, self, p, len, sum);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/*
 * The admin guide: every evacuation has a deadline, 0 asks for the
 * default (10 s), and a signal ends the wait earlier with -EINTR; both end
 * with the same rollback.  With 4 pages pinned the evacuation can never
 * finish.  First timeout 0: -EBUSY, and evacuation_ms says the default
 * deadline was the one applied (not less than 10 s, well under the next
 * one a careless kernel might pick).  Then 60 s and a non-fatal signal
 * as soon as it runs: -EINTR, long before its deadline.  Every block is
 * online again and every byte in place.
 */
TEST_F_TIMEOUT(boot, evacuate_default_deadline_and_signal, 180)
{
	size_t len = 4 * MiB;
	char *p = bound_region(NODE, len, false);
	int pfd[2], err = 0, r;
	char buf[64];
	uint64_t sum, t0;
	long ms;
	pid_t c;

	r = test_kmod_ready();
	if (r)
		SKIP(return, "cdm_test_kmod: %s", strerror(-r));
	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 75);
	sum = checksum(p, len);
	ASSERT_EQ(4, test_kmod_pin(p + len / 2, 4, false, NULL));

	r = evacuate_node(NODE, 0);
	ms = node_cdm_long(NODE, "evacuation_ms");
	TH_LOG("timeout 0: evacuate -> %d (%s) after %ld ms", r, strerror(-r),
	       ms);
	ASSERT_EQ(-EBUSY, r);
	ASSERT_EQ(-EBUSY, node_cdm_long(NODE, "evacuation_error"));
	ASSERT_LE(10000, ms);
	ASSERT_GT(60000, ms);
	ASSERT_TRUE(node_has_memory(NODE));

	ASSERT_EQ(0, pipe(pfd));
	c = fork_kid();
	ASSERT_LE(0, c);
	if (!c) {
		struct sigaction sa = { .sa_handler = on_sigusr1 };

		sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART */
		r = evacuate_node(NODE, 60000);
		if (write(pfd[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	t0 = now_ms();
	do {
		usleep(100000);
		ASSERT_LE(0, read_strf(buf, sizeof(buf),
				       NODE_SYS "/node%d/cdm/evacuation_state",
				       NODE));
	} while (strcmp(buf, "running") && now_ms() - t0 < 30000);
	ASSERT_STREQ("running", buf);
	ASSERT_EQ(0, kill(c, SIGUSR1));
	ASSERT_EQ((ssize_t)sizeof(err), read(pfd[0], &err, sizeof(err)));
	close(pfd[0]);
	ASSERT_EQ(0, wait_child(c, &r, 60));
	ms = node_cdm_long(NODE, "evacuation_ms");
	TH_LOG("timeout 60000, SIGUSR1 -> %d (%s) after %ld ms", err,
	       strerror(-err), ms);
	ASSERT_EQ(-EINTR, err);
	ASSERT_EQ(-EINTR, node_cdm_long(NODE, "evacuation_error"));
	ASSERT_GT(60000, ms);
	ASSERT_LE(0, read_strf(buf, sizeof(buf),
			       NODE_SYS "/node%d/cdm/evacuation_state", NODE));
	ASSERT_STREQ("failed", buf);
	ASSERT_LE(1, node_cdm_long(NODE, "pages_remaining"));
	ASSERT_TRUE(node_has_memory(NODE));
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
	ASSERT_EQ(4, pages_on_node(p + len / 2, 4 * PAGE_SZ, NODE));
	ASSERT_EQ(sum, checksum(p, len));
	ASSERT_EQ(0, write_str(TEST_DBG "/pin", "unpin"));
	ASSERT_EQ((long)(len / PAGE_SZ), move_all(p, len, NODE));
	evacuate_and_check(_metadata, self, p, len, sum);
}

/* bad input is refused before anything happens */
TEST_F(boot, evacuate_bad_input)
{
	ASSERT_EQ(-EINVAL, write_strf("soon", NODE_SYS "/node%d/cdm/evacuate",
				      NODE));
	ASSERT_EQ(-EINVAL, write_strf("-1", NODE_SYS "/node%d/cdm/evacuate",
				      NODE));
	/* every evacuation has a deadline, one hour at most */
	ASSERT_EQ(-EINVAL, write_strf("3600001",
				      NODE_SYS "/node%d/cdm/evacuate", NODE));
	ASSERT_TRUE(node_has_memory(NODE));
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
}

/* the operator's tool: cdmctl evacuates and re-onlines a firmware node */
TEST_F_TIMEOUT(boot, cdmctl_evacuate_and_online, 180)
{
	char *p = bound_region(NODE, LEN, false);
	char out[4096];
	uint64_t sum;
	int rc;

	if (!path_exists("/usr/bin/cdmctl"))
		SKIP(return, "no /usr/bin/cdmctl");
	ASSERT_NE(NULL, p);
	fill_pattern(p, LEN, 75);
	sum = checksum(p, LEN);
	rc = run_cmd((char *[]){ "/usr/bin/cdmctl", "evacuate", "1",
				 "--timeout", "60000", NULL },
		     out, sizeof(out), 120);
	TH_LOG("cdmctl evacuate 1 -> %d: %s", rc, out);
	ASSERT_EQ(0, rc);
	ASSERT_NE(NULL, strstr(out, "node 1 (firmware) evacuated"));
	ASSERT_FALSE(node_has_memory(NODE));
	ASSERT_EQ(0, pages_on_cdm(p, LEN));
	ASSERT_EQ(sum, checksum(p, LEN));
	/* nothing left to evacuate: exit 6 */
	rc = run_cmd((char *[]){ "/usr/bin/cdmctl", "evacuate", "1", NULL },
		     out, sizeof(out), 60);
	ASSERT_EQ(6, rc);
	rc = run_cmd((char *[]){ "/usr/bin/cdmctl", "online", "1", NULL },
		     out, sizeof(out), 60);
	TH_LOG("cdmctl online 1 -> %d: %s", rc, out);
	ASSERT_EQ(0, rc);
	ASSERT_EQ(0, wait_node_usable(NODE, 10000));
	ASSERT_EQ(self->total_kb, node_total_kb(NODE));
	/* already online: exit 6 */
	rc = run_cmd((char *[]){ "/usr/bin/cdmctl", "online", "1", NULL },
		     out, sizeof(out), 60);
	ASSERT_EQ(6, rc);
	ASSERT_EQ(sum, checksum(p, LEN));
	/* --restore: the pages bound to the node that left it go back */
	ASSERT_EQ(0, pages_on_node(p, LEN, NODE));
	rc = run_cmd((char *[]){ "/usr/bin/cdmctl", "online", "--restore", "1",
				 NULL }, out, sizeof(out), 120);
	TH_LOG("cdmctl online --restore 1 -> %d: %s", rc, out);
	ASSERT_EQ(0, rc);
	ASSERT_EQ((long)(LEN / PAGE_SZ), pages_on_node(p, LEN, NODE));
	ASSERT_EQ(sum, checksum(p, LEN));
}

/* "cdm: soft reserved [mem A-B] is coherent device memory of node N" */
struct soft_reserved_log {
	int node;		/* of the last such line, -1 none */
	unsigned long long start, end;
};

static void scan_soft_reserved(const char *msg, void *arg)
{
	struct soft_reserved_log *l = arg;
	unsigned long long a, b;
	int nid, n = 0;

	sscanf(msg, "cdm: soft reserved [mem %llx-%llx] is coherent device memory of node %d%n",
	       &a, &b, &nid, &n);
	if (!n)
		return;
	l->node = nid;
	l->start = a;
	l->end = b;
}

/* EFI specific-purpose memory: dax_kmem added it, on the firmware's node */
TEST_F(boot, soft_reserved_through_dax_kmem)
{
	struct soft_reserved_log l = { .node = -1 };
	char buf[128];
	int r;

	if (strcmp(self->how, "soft_reserved"))
		SKIP(return, "node %d booted as %s", NODE, self->how);
	ASSERT_LE(0, read_str("/sys/bus/dax/devices/dax0.0/target_node", buf,
			      sizeof(buf)));
	ASSERT_EQ(NODE, atoi(buf));
	ASSERT_TRUE(path_exists("/sys/bus/dax/drivers/kmem/dax0.0"))
		TH_LOG("dax0.0 is not bound to kmem");
	/* the line the admin guide quotes, for the range booted */
	r = kmsg_boot_log(scan_soft_reserved, &l);
	if (r == -ENODATA)
		SKIP(return, "the kernel log no longer holds the boot's first lines");
	ASSERT_EQ(0, r);
	ASSERT_EQ(NODE, l.node)
		TH_LOG("no \"cdm: soft reserved [mem ...] is coherent device memory of node %d\"",
		       NODE);
	TH_LOG("logged: soft reserved [mem %#llx-%#llx], node %d", l.start,
	       l.end, l.node);
	/* the range booted, less any pages QEMU's firmware kept */
	ASSERT_LE(l.end - l.start + 1, (unsigned long long)self->mib << 20);
	ASSERT_GE(l.end - l.start + 1, (unsigned long long)(self->mib - 128) << 20);
}

/* ---- 1 GiB hugetlb pages asked for at boot (guest boot1g) ---- */

#define GIG_KB 1048576L

/* the nr_hugepages knob of the 1 GiB pool of @nid, -1 all nodes */
static const char *gigantic_knob(int nid, char *path, size_t size)
{
	if (nid < 0)
		snprintf(path, size,
			 "/sys/kernel/mm/hugepages/hugepages-%ldkB/nr_hugepages",
			 GIG_KB);
	else
		snprintf(path, size,
			 NODE_SYS "/node%d/hugepages/hugepages-%ldkB/nr_hugepages",
			 nid, GIG_KB);
	return path;
}

static long gigantic_nr(int nid)	/* 1 GiB pool of @nid, -1 all nodes */
{
	char path[160];
	long v;

	return read_long(gigantic_knob(nid, path, sizeof(path)), &v) ? -1 : v;
}

struct gigantic_log {
	bool failed;		/* hugetlb reported the node's request short */
	char line[160];
};

static void scan_gigantic(const char *msg, void *arg)
{
	struct gigantic_log *l = arg;
	char want[64];

	snprintf(want, sizeof(want), "size 1.00 GiB failed node%d.", NODE);
	if (!strncmp(msg, "HugeTLB: allocating ", 20) && strstr(msg, want)) {
		l->failed = true;
		snprintf(l->line, sizeof(l->line), "%s", msg);
	}
}

/*
 * hugepagesz=1G hugepages=0:1,1:1 (vm-run --ram 6144: node 0 has free
 * aligned GiBs at boot).  Node 0 gets its page; the boot CDM node gets
 * none, and no GiB of RAM is taken in its stead: the pool holds exactly
 * node 0's page.  The node's memory stays free and evacuable.
 */
TEST_F(boot, gigantic_boot_request_for_cdm_node_takes_no_ram)
{
	struct gigantic_log l = { .failed = false };
	char cmdline[1024];
	int r;

	ASSERT_LE(0, read_str("/proc/cmdline", cmdline, sizeof(cmdline)));
	if (!strstr(cmdline, "hugepagesz=1G") ||
	    !strstr(cmdline, "hugepages=0:1,1:1"))
		SKIP(return, "booted without hugepagesz=1G hugepages=0:1,1:1");
	TH_LOG("1 GiB pages: node 0 %ld, node %d %ld, all %ld",
	       gigantic_nr(0), NODE, gigantic_nr(NODE), gigantic_nr(-1));
	ASSERT_EQ(0, gigantic_nr(NODE));
	/* RAM had room for a GiB: the page asked for node 0 is there */
	ASSERT_EQ(1, gigantic_nr(0));
	/* and only that one: nothing taken from RAM for node 1's request */
	ASSERT_EQ(1, gigantic_nr(-1));
	ASSERT_GE(node_meminfo_kb(NODE, "MemFree"), self->total_kb - 32 * 1024);
	/* the shortfall is reported at boot, as the admin guide says */
	r = kmsg_boot_log(scan_gigantic, &l);
	if (r != -ENODATA) {
		ASSERT_EQ(0, r);
		ASSERT_TRUE(l.failed)
			TH_LOG("no \"HugeTLB: allocating 1 of page size 1.00 GiB failed node%d\"",
			       NODE);
		TH_LOG("logged: %s", l.line);
	}
	r = evacuate_node(NODE, EVAC_MS);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_FALSE(node_has_memory(NODE));
}

/* ---- hugetlb_cma= with a boot CDM node (guest cma) ---- */

struct cma_log {
	long mib[2];		/* "hugetlb_cma: reserved N MiB on node K" */
	bool other;		/* such a line for another node */
};

static void scan_hugetlb_cma(const char *msg, void *arg)
{
	struct cma_log *l = arg;
	long mib;
	int nid;

	if (sscanf(msg, "hugetlb_cma: reserved %ld MiB on node %d", &mib,
		   &nid) != 2)
		return;
	if (nid == 0 || nid == NODE)
		l->mib[nid == NODE] += mib;
	else
		l->other = true;
}

/*
 * hugetlb_cma=2G (vm-run --ram 6144 --boot-node 1024): the size is spread
 * over the RAM nodes only, so all of it is reserved on node 0; stock 6.12
 * divides it over both online nodes, the CDM node's half fails and only
 * 1 GiB is reserved.  No CMA area lands on the CDM node (it could never
 * be evacuated), 1 GiB pages come from node 0's area and never from the
 * CDM node, and the node evacuates.
 */
TEST_F(boot, hugetlb_cma_size_reserved_in_ram)
{
	struct cma_log l = { .other = false };
	char cmdline[1024], path[160];
	long cma_kb;
	int r;

	ASSERT_LE(0, read_str("/proc/cmdline", cmdline, sizeof(cmdline)));
	if (!strstr(cmdline, "hugetlb_cma=2G"))
		SKIP(return, "booted without hugetlb_cma=2G");
	cma_kb = meminfo_kb("CmaTotal");
	TH_LOG("CmaTotal %ld kB", cma_kb);
	ASSERT_EQ(2 * GIG_KB, cma_kb);
	r = kmsg_boot_log(scan_hugetlb_cma, &l);
	if (r != -ENODATA) {
		ASSERT_EQ(0, r);
		TH_LOG("hugetlb_cma reserved: node 0 %ld MiB, node %d %ld MiB",
		       l.mib[0], NODE, l.mib[1]);
		ASSERT_EQ(2048, l.mib[0]);
		ASSERT_EQ(0, l.mib[1]);
		ASSERT_FALSE(l.other);
	}
	/* 1 GiB pages: the global pool fills from node 0's area */
	gigantic_knob(-1, path, sizeof(path));
	ASSERT_EQ(0, write_str(path, "2"));
	TH_LOG("global 1 GiB pool of 2: node 0 %ld, node %d %ld",
	       gigantic_nr(0), NODE, gigantic_nr(NODE));
	EXPECT_EQ(2, gigantic_nr(0));
	EXPECT_EQ(0, gigantic_nr(NODE));
	ASSERT_EQ(0, write_str(path, "0"));
	/* asked for on the CDM node by name: no area there, no page */
	gigantic_knob(NODE, path, sizeof(path));
	write_str(path, "1");
	EXPECT_EQ(0, gigantic_nr(NODE));
	write_str(path, "0");
	ASSERT_EQ(0, gigantic_nr(-1));
	ASSERT_GE(node_meminfo_kb(NODE, "MemFree"), self->total_kb - 32 * 1024);
	r = evacuate_node(NODE, EVAC_MS);
	ASSERT_EQ(0, r) TH_LOG("evacuate: %s", strerror(-r));
	ASSERT_FALSE(node_has_memory(NODE));
}


/*
 * A child on @cpu with policy @mode (-1: none, the task's implicit one)
 * faults in 16 MiB and reports where its pages are: counts[0] RAM (node
 * 0), counts[1] node NODE, counts[2] elsewhere or not present.
 */
static int fault_on_cpu(int cpu, int mode, long counts[3])
{
	int pfd[2], node = NODE, status;
	long c[3] = { -1, -1, -1 };
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		long per[CDM_MAX_NODES] = { 0 }, errs = 0;
		size_t len = 16 * MiB;
		cpu_set_t set;
		char *buf;

		close(pfd[0]);
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) ||
		    sched_getcpu() != cpu)
			_exit(2);
		if (mode >= 0 && set_policy_nodes(mode, &node,
						  mode == MPOL_LOCAL ? 0 : 1))
			_exit(3);
		buf = map_anon(len);
		if (!buf)
			_exit(4);
		touch_pages(buf, len);
		if (page_nodes(buf, len, per, &errs) < 0)
			_exit(5);
		c[0] = per[0];
		c[1] = per[NODE];
		c[2] = (long)(len / PAGE_SZ) - per[0] - per[NODE];
		if (write(pfd[1], c, sizeof(c)) != sizeof(c))
			_exit(6);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], c, sizeof(c)) != sizeof(c))
		c[0] = -1;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -ECHILD;
	if (WEXITSTATUS(status))
		return -WEXITSTATUS(status);
	memcpy(counts, c, sizeof(c));
	return 0;
}

/*
 * Phase "cdmcpu" (vm-run --boot-node-cpus 1): the last CPU is on node 1,
 * which cdm_nodes= names anyway, a configuration error the kernel warns
 * about.  A task on that CPU without a policy of its own gets the kernel's
 * implicit per-node policy, "prefer the local node", and the local node is
 * the device: that names no node, so its pages go to RAM, and so do those
 * of MPOL_LOCAL, which names none either.  Before, both opened the device
 * to every task that ran there.  A policy naming the node still places
 * pages there (MPOL_PREFERRED), and a task on node 0's CPU is unaffected.
 */
TEST_F(boot, cpu_on_cdm_node_default_policy_gets_ram)
{
	long c[3], refused;
	char buf[64];
	int cpu, r;

	ASSERT_LE(0, read_strf(buf, sizeof(buf), NODE_SYS "/node%d/cpulist",
			       NODE));
	if (sscanf(buf, "%d", &cpu) != 1)
		SKIP(return, "node %d has no CPU (vm-run --boot-node-cpus)", NODE);
	ASSERT_TRUE(node_is_cdm(NODE));
	TH_LOG("CPU %d is on CDM node %d", cpu, NODE);

	refused = vmstat_val("cdm_alloc_refused");
	r = fault_on_cpu(cpu, -1, c);
	ASSERT_EQ(0, r) TH_LOG("child: %d", r);
	TH_LOG("no policy, on CPU %d: node 0 %ld, node %d %ld, other %ld pages",
	       cpu, c[0], NODE, c[1], c[2]);
	EXPECT_EQ(0, c[1]);
	EXPECT_EQ(0, c[2]);
	/* each was a request for the local (CDM) node, turned to RAM */
	EXPECT_LT(refused, vmstat_val("cdm_alloc_refused"));

	r = fault_on_cpu(cpu, MPOL_LOCAL, c);
	ASSERT_EQ(0, r) TH_LOG("child: %d", r);
	TH_LOG("MPOL_LOCAL, on CPU %d: node 0 %ld, node %d %ld, other %ld",
	       cpu, c[0], NODE, c[1], c[2]);
	EXPECT_EQ(0, c[1]);
	EXPECT_EQ(0, c[2]);

	r = fault_on_cpu(cpu, MPOL_PREFERRED, c);
	ASSERT_EQ(0, r) TH_LOG("child: %d", r);
	TH_LOG("MPOL_PREFERRED node %d, on CPU %d: node 0 %ld, node %d %ld",
	       NODE, cpu, c[0], NODE, c[1]);
	EXPECT_EQ((long)(16 * MiB / PAGE_SZ), c[1]);

	r = fault_on_cpu(0, -1, c);
	ASSERT_EQ(0, r) TH_LOG("child: %d", r);
	EXPECT_EQ(0, c[1]);
	EXPECT_EQ(0, c[2]);
}

TEST_HARNESS_MAIN
