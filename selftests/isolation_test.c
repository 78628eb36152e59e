// SPDX-License-Identifier: GPL-2.0
/*
 * isolation_test - no implicit allocation ever lands on a CDM node
 * (issue 3, part B). Each case pushes hard (usually until system RAM runs
 * out, in a forked child the OOM killer may take) and asserts that no page
 * landed on a CDM node: move_pages(2) status of the pushed pages, and the
 * CDM nodes' MemFree sampled every 5 ms while it ran.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cdm_lib.h"

#define TMPFS_DIR "/tmp/cdm_iso_tmpfs"
#define RAMFS_DIR "/tmp/cdm_iso_ramfs"
#define EXT2_DIR "/tmp/cdm_iso_ext2"
#define HUGETLBFS_DIR "/tmp/cdm_iso_hugetlbfs"
#define RAMDISK "/dev/ram0"
#define THP "/sys/kernel/mm/transparent_hugepage"
#define KSM "/sys/kernel/mm/ksm"
/* MemFree of an untouched node moves only by per-cpu vmstat drift */
#define DRIFT_KB 2048

struct saved {
	char path[160];
	char val[96];
};

FIXTURE(iso) {
	int cdm[CDM_MAX_NODES];
	int ncdm;
	int ram[CDM_MAX_NODES];
	int nram;
	long ram_total_kb;
	struct saved saved[24];
	int nsaved;
	int offlined_block;
	bool tmpfs, ramfs, ext2;
};

/* remember a knob's value for the teardown (first save wins) */
static int save_knob(FIXTURE_DATA(iso) *self, const char *path)
{
	struct saved *s;
	char *b, *e;

	if (self->nsaved >= 24 || !path_exists(path))
		return -ENOENT;
	s = &self->saved[self->nsaved];
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (read_str(path, s->val, sizeof(s->val)) < 0)
		return -EIO;
	/* "always [madvise] never" -> "madvise" */
	b = strchr(s->val, '[');
	if (b && (e = strchr(b, ']'))) {
		*e = 0;
		memmove(s->val, b + 1, strlen(b + 1) + 1);
	}
	self->nsaved++;
	return 0;
}

static int set_knob(FIXTURE_DATA(iso) *self, const char *path,
		    const char *val)
{
	int r = save_knob(self, path);

	if (r)
		return r;
	return write_str(path, val);
}

static void iso_prepare(struct __test_metadata *_metadata,
			FIXTURE_DATA(iso) *self)
{
	self->ncdm = cdm_mem_nodes(self->cdm, CDM_MAX_NODES);
	self->nram = ram_nodes(self->ram, CDM_MAX_NODES);
	self->nsaved = 0;
	self->offlined_block = -1;
	self->tmpfs = self->ramfs = self->ext2 = false;
	ASSERT_GE(self->ncdm, 1)
		TH_LOG("no populated CDM node (is capi_sim loaded?)");
	ASSERT_GE(self->nram, 1);
	/*
	 * No watermark boost: after fragmentation events (many on a KASAN
	 * kernel) it raises node 0's min watermark by tens of MiB, so the
	 * OOM killer runs with that much still free, and a fill's measure of
	 * "RAM ran out" would depend on the boot's history.
	 */
	set_knob(self, "/proc/sys/vm/watermark_boost_factor", "0");
	self->ram_total_kb = 0;
	for (int i = 0; i < self->nram; i++)
		self->ram_total_kb += node_meminfo_kb(self->ram[i], "MemTotal");
}

FIXTURE_SETUP(iso)
{
	iso_prepare(_metadata, self);
}

static void iso_cleanup(FIXTURE_DATA(iso) *self)
{
	char p[128];

	if (self->offlined_block >= 0) {
		snprintf(p, sizeof(p), MEMSYS "/memory%d/state",
			 self->offlined_block);
		write_str(p, "online_movable");
	}
	/* KSM: unmerge before merge_across_nodes can change back */
	if (path_exists(KSM "/run"))
		write_str(KSM "/run", "2");
	for (int i = self->nsaved - 1; i >= 0; i--)
		write_str(self->saved[i].path, self->saved[i].val);
	if (self->tmpfs) {
		umount2(TMPFS_DIR, MNT_DETACH);
		rmdir(TMPFS_DIR);
	}
	if (self->ramfs) {
		umount2(RAMFS_DIR, MNT_DETACH);
		rmdir(RAMFS_DIR);
	}
	if (self->ext2) {
		uint64_t range[2] = { 0, 0 };
		int fd;

		umount2(EXT2_DIR, 0);
		rmdir(EXT2_DIR);
		/* brd keeps written pages until discarded: give node 0 its RAM back */
		fd = open(RAMDISK, O_RDWR);
		if (fd >= 0) {
			if (ioctl(fd, BLKGETSIZE64, &range[1]) == 0)
				ioctl(fd, BLKDISCARD, range);
			close(fd);
		}
	}
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
}

FIXTURE_TEARDOWN_PARENT(iso)
{
	iso_cleanup(self);
}

/*
 * Run a fill child with the CDM nodes watched; assert it ran RAM out and
 * left the CDM nodes alone.
 */
static void fill_and_check(struct __test_metadata *_metadata,
			   FIXTURE_DATA(iso) *self, struct fill_opts *o,
			   const char *what)
{
	struct fill_result r;
	struct cdm_watch w;
	struct oom_quiet q;
	char first[256];
	int reports;

	if (!o->max_bytes)
		o->max_bytes = (size_t)self->ram_total_kb * KiB + 256 * MiB;
	if (!o->chunk)
		o->chunk = 8 * MiB;
	oom_quiet_begin(&q);
	watch_start(&w);
	ASSERT_EQ(0, fill_run(o, &r, 400));
	watch_stop(&w);
	reports = oom_quiet_end(&q, first, sizeof(first));
	TH_LOG("%s: %ld MiB placed (node0 %ld pages), node0 MemFree min %ld kB, child %s (err %d); pages on CDM %ld; CDM MemFree max drop %ld kB",
	       what, r.pages * 4 / 1024, r.nodes[0], w.min_node0_free,
	       r.oom_killed ? "OOM-killed" : "exited", r.err, r.on_cdm,
	       watch_max_drop(&w));
	ASSERT_EQ(0, reports) TH_LOG("kernel report: %s", first);
	if (o->stop_at_low) {
		TH_LOG("stopped at node %d's low watermarks: %s", self->ram[0],
		       r.stopped_low ? "yes" : "NO");
		ASSERT_FALSE(r.oom_killed);
		ASSERT_EQ(0, r.err);
		ASSERT_TRUE(r.stopped_low);
	} else {
		/* RAM ran out: OOM kill or allocation failure, not success */
		ASSERT_TRUE(r.oom_killed || r.err)
			TH_LOG("child got the whole %zu MiB: more than system RAM",
			       o->max_bytes / MiB);
		ASSERT_LT(w.min_node0_free, self->ram_total_kb / 10);
	}
	ASSERT_EQ(0, r.on_cdm);
	ASSERT_LE(watch_max_drop(&w), DRIFT_KB);
}

/*
 * An unbound or RAM-bound task fills system RAM, by each policy that must
 * keep its pages off the device nodes.
 */
FIXTURE(iso_fill) {
	FIXTURE_DATA(iso) i;
};

FIXTURE_VARIANT(iso_fill) {
	const char *what;
	int mode;		/* -1: no policy */
	bool thp;
	int ram_nodes;		/* policy over the first N RAM nodes (up to 4) */
};

FIXTURE_VARIANT_ADD(iso_fill, anon) {
	.what = "anon",
	.mode = -1,
};

FIXTURE_VARIANT_ADD(iso_fill, thp_anon) {
	.what = "THP anon",
	.mode = -1,
	.thp = true,
};

FIXTURE_VARIANT_ADD(iso_fill, interleave_ram_nodes) {
	.what = "MPOL_INTERLEAVE over RAM nodes",
	.mode = MPOL_INTERLEAVE,
	.ram_nodes = 4,
};

FIXTURE_VARIANT_ADD(iso_fill, preferred_ram_node) {
	.what = "MPOL_PREFERRED RAM node",
	.mode = MPOL_PREFERRED,
	.ram_nodes = 1,
};

FIXTURE_SETUP(iso_fill)
{
	iso_prepare(_metadata, &self->i);
}

FIXTURE_TEARDOWN_PARENT(iso_fill)
{
	iso_cleanup(&self->i);
}

TEST_F_TIMEOUT(iso_fill, system_ram, 420)
{
	struct fill_opts o = { .mode = variant->mode, .thp = variant->thp };

	o.nnodes = self->i.nram < variant->ram_nodes ? self->i.nram :
						       variant->ram_nodes;
	memcpy(o.nodes, self->i.ram, sizeof(int) * o.nnodes);
	if (variant->thp) {
		if (!path_exists(THP "/enabled"))
			SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
		ASSERT_EQ(0, set_knob(&self->i, THP "/enabled", "always"));
		ASSERT_EQ(0, set_knob(&self->i, THP "/defrag", "madvise"));
	}
	fill_and_check(_metadata, &self->i, &o, variant->what);
}

/*
 * The admin guide: "numactl --membind=0,1: node 0 first, node 1 when 0 is
 * low".  A bind to a RAM node and a CDM node fills RAM first (the first
 * page on the device comes only once node 0 is near its low watermark),
 * then goes on on the device instead of failing: more than all of system
 * RAM is placed without an OOM kill or an allocation error.
 * (placement_test bind_ram_and_cdm_ram_first: with RAM not low, every page
 * stays in RAM.)
 */
TEST_F_TIMEOUT(iso, bind_ram_and_cdm_spills_when_ram_low, 420)
{
	struct fill_opts o = { .mode = MPOL_BIND, .nnodes = 2, .chunk = 2 * MiB };
	long low_kb, high_kb, ram_kb, cdm_kb, chunk_kb = o.chunk / KiB;
	struct fill_result r;
	struct oom_quiet q;
	char first[256];

	o.nodes[0] = self->ram[0];
	o.nodes[1] = self->cdm[0];
	ASSERT_LT(self->cdm[0], 4);
	ASSERT_EQ(0, self->ram[0]);	/* the fill reports node 0's MemFree */
	ram_kb = node_meminfo_kb(self->ram[0], "MemTotal");
	o.max_bytes = (size_t)ram_kb * KiB + 64 * MiB;
	ASSERT_LT(o.max_bytes / KiB - ram_kb,
		  node_meminfo_kb(self->cdm[0], "MemFree"));
	oom_quiet_begin(&q);
	ASSERT_EQ(0, fill_run(&o, &r, 400));
	low_kb = node_watermark_kb(self->ram[0], "low");
	high_kb = node_watermark_kb(self->ram[0], "high");
	cdm_kb = r.nodes[self->cdm[0]] * 4;
	TH_LOG("MPOL_BIND {%d,%d}, %zu MiB: node %d %ld MiB, node %d %ld MiB; first device page in chunk %ld (of %ld kB) with node %d MemFree %ld kB after it, %ld kB before it (watermarks: low %ld kB, high %ld kB); child %s (err %d)",
	       self->ram[0], self->cdm[0], o.max_bytes / MiB,
	       self->ram[0], r.nodes[self->ram[0]] * 4 / 1024,
	       self->cdm[0], cdm_kb / 1024, r.first_cdm_chunk, chunk_kb,
	       self->ram[0], r.node0_free_at_first_cdm,
	       r.node0_free_before_first_cdm, low_kb, high_kb,
	       r.oom_killed ? "OOM-killed" : "exited", r.err);
	ASSERT_EQ(0, oom_quiet_end(&q, first, sizeof(first)))
		TH_LOG("kernel report: %s", first);
	ASSERT_FALSE(r.oom_killed);
	ASSERT_EQ(0, r.err);
	ASSERT_GE(r.pages, (long)(o.max_bytes / 4096));
	/* at least what RAM could not hold went to the device */
	ASSERT_GE(cdm_kb, 64 * 1024);
	/*
	 * and only once RAM was low: the first device page came in a chunk
	 * that took node 0 below its high watermark, not while RAM had room.
	 * MemFree is read after each chunk.  Usually it is still below high
	 * then (measured: within 2.6 MiB of low, either side).  But memory
	 * can be freed between the spill and the read (kswapd reclaiming
	 * slab and caches is the likely source): once 38816 kB after the
	 * chunk, with high at 36556 kB.  So it is enough that the chunk could
	 * have taken RAM below high: the reading after the chunk before,
	 * less one chunk.
	 */
	ASSERT_GE(r.first_cdm_chunk, 1);
	ASSERT_TRUE(r.node0_free_at_first_cdm < high_kb ||
		    r.node0_free_before_first_cdm - chunk_kb < high_kb);
	ASSERT_GE(r.nodes[self->ram[0]] * 4, ram_kb / 2);
}

TEST_F_TIMEOUT(iso, tmpfs_fill_system_ram, 420)
{
	struct fill_opts o = { .mode = -1, .file_dir = TMPFS_DIR };

	/*
	 * File pages are not freed by an OOM kill (only when the file goes):
	 * stop between the min and low watermarks instead of at OOM. Below
	 * the low watermarks a stock kernel already falls back to the next
	 * node of the zonelist (ramfs page cache is not movable: only the
	 * zones below ZONE_MOVABLE count for it).
	 */
	o.stop_at_low = 1;
	char opts[64];

	mkdir(TMPFS_DIR, 0700);
	/* a size limit above system RAM: RAM runs out first */
	snprintf(opts, sizeof(opts), "size=%ldk,huge=never",
		 self->ram_total_kb + 512 * 1024);
	ASSERT_EQ(0, mount("tmpfs", TMPFS_DIR, "tmpfs", 0, opts));
	self->tmpfs = true;
	fill_and_check(_metadata, self, &o, "tmpfs (shmem) file");
	for (int i = 0; i < self->ncdm; i++) {
		ASSERT_LE(node_meminfo_kb(self->cdm[i], "Shmem"), 1024);
	}
}

TEST_F_TIMEOUT(iso, page_cache_fill_system_ram, 420)
{
	struct fill_opts o = { .mode = -1, .file_dir = RAMFS_DIR };

	/*
	 * File pages are not freed by an OOM kill (only when the file goes):
	 * stop between the min and low watermarks instead of at OOM. Below
	 * the low watermarks a stock kernel already falls back to the next
	 * node of the zonelist (ramfs page cache is not movable: only the
	 * zones below ZONE_MOVABLE count for it).
	 */
	o.stop_at_low = 2;

	/*
	 * The guest has no block device file system: ramfs is the page cache
	 * of a regular (non-shmem) file system, allocated through the
	 * generic filemap path (filemap_alloc_folio, cpuset spread).
	 */
	mkdir(RAMFS_DIR, 0700);
	ASSERT_EQ(0, mount("ramfs", RAMFS_DIR, "ramfs", 0, NULL));
	self->ramfs = true;
	fill_and_check(_metadata, self, &o, "ramfs page cache");
	for (int i = 0; i < self->ncdm; i++) {
		ASSERT_LE(node_meminfo_kb(self->cdm[i], "FilePages"), 1024);
	}
}

/* a fresh ext2 on the RAM disk at EXT2_DIR; the teardown discards it */
static int ext2_ramdisk(FIXTURE_DATA(iso) *self)
{
	char *mke2fs[] = { "/sbin/mke2fs", "-q", "-F", RAMDISK, NULL };
	int r = run_cmd(mke2fs, NULL, 0, 120);

	if (r)
		return r;
	mkdir(EXT2_DIR, 0700);
	if (mount(RAMDISK, EXT2_DIR, "ext2", 0, NULL))
		return -errno;
	self->ext2 = true;
	return 0;
}

/*
 * Page cache of a block-device file system, the memory that spills into
 * GPU memory on machines that online it as an ordinary node.  ext2 on a
 * RAM disk (scripts/vm-run boots with brd): the disk's own pages are not
 * movable and stay on node 0, so writing a file about half the size of
 * node 0 puts node 0 under pressure from both the disk and the file's
 * page cache.  Reclaim must make room on node 0; no file page may land on
 * a CDM node, and the test checks that the pressure really happened.
 *
 * The disk's pages cannot go to ZONE_MOVABLE, so the file is sized to what
 * node 0 has free outside it (a KASAN guest's movablecore=512M and shadow
 * leave about 300 MiB there: a file of 7/8 of the disk ran it out of
 * memory with nothing left to kill).  If the disk and the file's cache
 * together would then fit in node 0's free memory, an anonymous holder
 * bound to node 0 takes the difference: from ZONE_MOVABLE where there is
 * one, else beside the disk, leaving room for both.
 */
TEST_F_TIMEOUT(iso, page_cache_ext2_ramdisk, 1200)
{
	size_t chunk = 1 << 20, len, off, hold_len = 0;
	long disk_kb, free_kb, min_free_kb = -1, low_kb;
	long fixed_free, fixed_low, all_free, all_low, len_kb, hold_kb;
	char *buf, *map, *hold = NULL;
	int fd, pass;

	if (!path_exists(RAMDISK))
		SKIP(return, "no %s (boot with brd.rd_nr=1)", RAMDISK);
	ASSERT_EQ(0, read_long("/sys/block/ram0/size", &disk_kb));
	disk_kb /= 2;	/* 512-byte sectors */
	ASSERT_EQ(0, write_str("/proc/sys/vm/drop_caches", "3"));
	ASSERT_EQ(0, node_zone_free_low(self->ram[0], false, &fixed_free, &fixed_low));
	ASSERT_EQ(0, node_zone_free_low(self->ram[0], true, &all_free, &all_low));
	/* 7/8 of the disk, or of node 0's free room outside ZONE_MOVABLE. */
	len_kb = disk_kb / 8 * 7;
	if (len_kb > (fixed_free - 2 * fixed_low) / 8 * 7 - 16384)
		len_kb = (fixed_free - 2 * fixed_low) / 8 * 7 - 16384;
	len = (size_t)len_kb * 1024 / chunk * chunk;
	/*
	 * The holder below supplies whatever pressure the file does not, so
	 * the file need only be a real share of RAM: an eighth.  (A KASAN
	 * guest with movablecore=512M has 287 MiB outside ZONE_MOVABLE, and
	 * 7/8 of that is just under a quarter of its RAM.)
	 */
	ASSERT_GE((long)(len >> 10), self->ram_total_kb / 8)
		TH_LOG("RAM disk (%ld kB) or unmovable room (%ld kB) too small to press on %ld kB of RAM",
		       disk_kb, fixed_free, self->ram_total_kb);
	/* Disk + cache at least 64 MiB over node 0's free memory. */
	hold_kb = all_free + 65536 - 2 * (long)(len >> 10);
	if (hold_kb > 0) {
		long movable_room = all_free - fixed_free -
				    2 * (all_low - fixed_low) - 16384;
		long spill_kb = hold_kb - (movable_room > 0 ? movable_room : 0);

		/*
		 * Whatever of the holder ZONE_MOVABLE cannot take (all of it
		 * when the guest has no movablecore) shares the other zones
		 * with the disk, and neither can be reclaimed (no swap).
		 */
		if (spill_kb > 0)
			ASSERT_LE((long)(len >> 10) + spill_kb,
				  fixed_free - 2 * fixed_low - 16384)
				TH_LOG("node %d: %ld kB free, %ld kB of it movable: no room for a %ld kB holder beside a %zu kB disk",
				       self->ram[0], all_free, all_free - fixed_free,
				       hold_kb, len >> 10);
		hold_len = (size_t)hold_kb * 1024 / chunk * chunk;
		hold = map_anon(hold_len);
		ASSERT_NE(NULL, hold);
		ASSERT_EQ(0, mbind_nodes(hold, hold_len, MPOL_BIND, self->ram, 1, 0));
		touch_pages(hold, hold_len);
	}
	ASSERT_EQ(0, ext2_ramdisk(self));

	buf = malloc(chunk);
	ASSERT_NE(NULL, buf);
	fd = open(EXT2_DIR "/big", O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	/* Write it, then read it back twice: the cache churns under pressure. */
	for (pass = 0; pass < 3; pass++) {
		ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
		for (off = 0; off < len; off += chunk) {
			ssize_t r;

			if (pass == 0) {
				fill_pattern(buf, chunk, off);
				r = write(fd, buf, chunk);
			} else {
				r = read(fd, buf, chunk);
				ASSERT_EQ((size_t)-1, check_pattern(buf, chunk, off));
			}
			ASSERT_EQ((ssize_t)chunk, r);
			free_kb = node_meminfo_kb(self->ram[0], "MemFree");
			if (min_free_kb < 0 || free_kb < min_free_kb)
				min_free_kb = free_kb;
			for (int i = 0; i < self->ncdm; i++) {
				ASSERT_LE(node_meminfo_kb(self->cdm[i], "FilePages"), 1024)
					TH_LOG("page cache on CDM node %d at %zu MiB, pass %d",
					       self->cdm[i], off >> 20, pass);
			}
		}
		if (pass == 0)
			ASSERT_EQ(0, fsync(fd));
	}
	/* Every page of the file that is cached right now: where is it? */
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (off = 0; off < len; off += 4096)
		(void)((volatile char *)map)[off];
	EXPECT_EQ(0, pages_on_cdm(map, len));
	munmap(map, len);
	close(fd);
	free(buf);

	/* The pressure was real: node 0 went down near its low watermark. */
	low_kb = node_watermark_kb(self->ram[0], "low");
	TH_LOG("file %zu MiB, holder %zu MiB, node %d MemFree min %ld kB, low watermark %ld kB",
	       len >> 20, hold_len >> 20, self->ram[0], min_free_kb, low_kb);
	if (hold)
		munmap(hold, hold_len);
	EXPECT_LT(min_free_kb, 8 * low_kb + 32768);
	for (int i = 0; i < self->ncdm; i++) {
		EXPECT_LE(node_meminfo_kb(self->cdm[i], "FilePages"), 1024);
	}
}


#define MEMCG_DIR "/sys/fs/cgroup/cdm_iso_memcg"

/* @key's value in a cgroup file of "key value" lines, -1 if absent */
static long memcg_val(const char *file, const char *key)
{
	char path[128];

	snprintf(path, sizeof(path), MEMCG_DIR "/%s", file);
	return kv_file(path, key, false);
}

/* bytes of "file" on @nid in memory.numa_stat ("file N0=.. N2=.."), or -1 */
static long memcg_file_on_node(int nid)
{
	char buf[4096], want[16], *l, *p;

	if (read_str(MEMCG_DIR "/memory.numa_stat", buf, sizeof(buf)) < 0)
		return -1;
	snprintf(want, sizeof(want), " N%d=", nid);
	for (l = buf; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, "file ", 5))
			continue;
		p = strstr(l, want);
		return p ? atol(p + strlen(want)) : -1;
	}
	return -1;
}

/*
 * A memory cgroup at memory.max reclaims its page cache on a CDM node.
 * Memcg reclaim walks a zonelist, and no zonelist of a RAM node holds a
 * CDM zone: before mm_cdm's reclaim zonelist, a job bound to the device
 * that read more files than its limit was OOM-killed with reclaimable
 * cache on the device.  The child reads a 96 MiB file under
 * memory.max=32M, bound to the node: it must finish with the right data,
 * no OOM, the limit hit and its cache on the node.
 */
TEST_F_TIMEOUT(iso, memcg_reclaims_device_page_cache, 600)
{
	size_t len = 96 * MiB, chunk = MiB;
	int node = self->cdm[0], fd, st, rep[2];
	long res[2] = { -1, -1 }, oom0, oom, oom_kill, max_events;
	uint64_t want = 0;
	char *buf;
	pid_t c;

	if (!path_exists("/sys/fs/cgroup/cgroup.subtree_control"))
		SKIP(return, "cgroup2 not mounted at /sys/fs/cgroup");
	if (!path_exists(RAMDISK))
		SKIP(return, "no %s (boot with brd.rd_nr=1)", RAMDISK);
	ASSERT_EQ(0, ext2_ramdisk(self));
	buf = malloc(chunk);
	ASSERT_NE(NULL, buf);
	fd = open(EXT2_DIR "/memcg", O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	for (size_t off = 0; off < len; off += chunk) {
		fill_pattern(buf, chunk, off);
		want ^= checksum(buf, chunk);
		ASSERT_EQ((ssize_t)chunk, write(fd, buf, chunk));
	}
	ASSERT_EQ(0, fsync(fd));
	close(fd);
	ASSERT_EQ(0, write_str("/proc/sys/vm/drop_caches", "3"));

	ASSERT_EQ(0, write_str("/sys/fs/cgroup/cgroup.subtree_control",
			       "+memory"));
	rmdir(MEMCG_DIR);
	ASSERT_EQ(0, mkdir(MEMCG_DIR, 0755));
	ASSERT_EQ(0, write_str(MEMCG_DIR "/memory.max", "32M"));
	oom0 = memcg_val("memory.events", "oom_kill");
	ASSERT_EQ(0, pipe(rep));
	c = fork_kid();
	if (!c) {
		char pid[32];
		uint64_t sum = 0;
		ssize_t r;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_str(MEMCG_DIR "/cgroup.procs", pid) ||
		    set_policy_nodes(MPOL_BIND, &node, 1))
			_exit(1);
		fd = open(EXT2_DIR "/memcg", O_RDONLY);
		if (fd < 0)
			_exit(2);
		for (size_t off = 0; off < len; off += chunk) {
			r = read(fd, buf, chunk);
			if (r != (ssize_t)chunk)
				_exit(3);
			sum ^= checksum(buf, chunk);
		}
		res[0] = (long)(sum == want);
		res[1] = memcg_file_on_node(node);
		if (write(rep[1], res, sizeof(res)) != sizeof(res))
			_exit(4);
		_exit(0);
	}
	close(rep[1]);
	if (read(rep[0], res, sizeof(res)) != sizeof(res))
		res[0] = -1;
	close(rep[0]);
	ASSERT_EQ(c, waitpid(c, &st, 0));
	max_events = memcg_val("memory.events", "max");
	oom = memcg_val("memory.events", "oom");
	oom_kill = memcg_val("memory.events", "oom_kill");
	TH_LOG("child: %s %d; data %s; its file cache on node %d %ld kB; memory.events max %ld, oom %ld, oom_kill %ld (was %ld)",
	       WIFSIGNALED(st) ? "killed by signal" : "exit status",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
	       res[0] == 1 ? "intact" : "not read", node,
	       res[1] < 0 ? -1 : res[1] >> 10, max_events, oom, oom_kill,
	       oom0);
	free(buf);
	EXPECT_EQ(0, rmdir(MEMCG_DIR));
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_EQ(1, res[0]);
	/* the cache was on the device, the limit was hit, and reclaim coped */
	ASSERT_GT(res[1], 0);
	ASSERT_GT(max_events, 0);
	ASSERT_EQ(0, oom);
	ASSERT_EQ(oom0, oom_kill);
}

/*
 * With demotion on, reclaim moves cold anonymous pages to a lower memory
 * tier instead of failing: a CDM node must never be that tier.
 */
TEST_F_TIMEOUT(iso, anon_fill_with_demotion_enabled, 420)
{
	const char *knob = "/sys/kernel/mm/numa/demotion_enabled";
	struct fill_opts o = { .mode = -1 };

	if (!path_exists(knob))
		SKIP(return, "no %s (memory tiers not built)", knob);
	ASSERT_EQ(0, set_knob(self, knob, "true"));
	fill_and_check(_metadata, self, &o, "anon, demotion enabled");
}

TEST_F(iso, memory_tiers_exclude_cdm)
{
	const char *dir = "/sys/devices/virtual/memory_tiering";
	char path[300], buf[256];
	int tiers = 0;

	if (!path_exists(dir))
		SKIP(return, "no memory tiers in sysfs");
	for (int t = 0; t < 4096; t++) {
		int n[CDM_MAX_NODES], c;

		snprintf(path, sizeof(path), "%s/memory_tier%d/nodelist", dir, t);
		if (read_str(path, buf, sizeof(buf)) < 0)
			continue;
		tiers++;
		c = parse_nodelist(buf, n, CDM_MAX_NODES);
		TH_LOG("memory_tier%d: %s", t, buf);
		for (int i = 0; i < c; i++) {
			ASSERT_FALSE(node_is_cdm(n[i]))
				TH_LOG("CDM node %d in memory_tier%d", n[i], t);
		}
	}
	ASSERT_GT(tiers, 0);
}

/* ZONE_MOVABLE only: no slab, stacks or page tables on a CDM node */
TEST_F(iso, no_kernel_memory_on_cdm)
{
	static const char *const keys[] = {
		"Slab", "SReclaimable", "SUnreclaim", "KernelStack",
		"PageTables", "SecPageTables", "Bounce",
	};

	for (int i = 0; i < self->ncdm; i++) {
		for (unsigned int k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			long v = node_meminfo_kb(self->cdm[i], keys[k]);

			if (v < 0)
				continue;
			ASSERT_EQ(0, v) {
				TH_LOG("node %d %s %ld kB", self->cdm[i],
				       keys[k], v);
			}
		}
	}
}

static long hp_total_on(const int *nodes, int n)
{
	long s = 0;

	for (int i = 0; i < n; i++)
		s += node_nr_hugepages(nodes[i]);
	return s;
}

TEST_F_TIMEOUT(iso, hugetlb_pool_growth, 300)
{
	static const char *const knobs[] = {
		"/proc/sys/vm/nr_hugepages",
		"/proc/sys/vm/nr_hugepages_mempolicy",
		HUGEPAGES_2M "/nr_hugepages",
	};
	long want = 0, got;
	char val[32];

	if (!path_exists(knobs[0]))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	/*
	 * The pool spreads round-robin over the nodes it may use, so a
	 * modest size shows a leak; growing it to all RAM would starve the
	 * guest (no OOM victim frees hugetlb pages).
	 */
	(void)self->ncdm;
	/*
	 * Earlier cases leave page cache and fragmented free lists (a KASAN
	 * guest once fell short of 90%): start from clean, compacted RAM so
	 * that a short pool means the allocator refused, not that RAM had no
	 * free 2 MiB block.
	 */
	write_str("/proc/sys/vm/drop_caches", "3");
	write_str("/proc/sys/vm/compact_memory", "1");
	want = node_meminfo_kb(self->ram[0], "MemFree") / 2048 / 3;
	if (want > 128)
		want = 128;
	snprintf(val, sizeof(val), "%ld", want);
	for (unsigned int k = 0; k < 3; k++) {
		if (!path_exists(knobs[k]))
			continue;
		ASSERT_EQ(0, set_knob(self, knobs[k], val));
		ASSERT_EQ(0, read_long(knobs[k], &got));
		TH_LOG("%s=%ld: pool %ld, on RAM nodes %ld, on CDM nodes %ld",
		       knobs[k], want, got, hp_total_on(self->ram, self->nram),
		       hp_total_on(self->cdm, self->ncdm));
		EXPECT_EQ(0, hp_total_on(self->cdm, self->ncdm));
		EXPECT_GE(got, want * 9 / 10);
		ASSERT_EQ(0, write_str(knobs[k], "0"));
		ASSERT_EQ(0, hp_total_on(self->cdm, self->ncdm));
	}
	/* the per-node knob on a CDM node is explicit: report what it does */
	{
		char p[160];
		int r;

		snprintf(p, sizeof(p), NODE_HPAGE_POOL, self->cdm[0]);
		if (path_exists(p)) {
			r = write_str(p, "1");
			TH_LOG("explicit node%d nr_hugepages=1: write %d, pool there %ld",
			       self->cdm[0], r, node_nr_hugepages(self->cdm[0]));
			write_str(p, "0");
			ASSERT_EQ(0, node_nr_hugepages(self->cdm[0]));
		}
	}
}

/*
 * The gate on its own: cdm_test_kmod runs what any kernel path nobody
 * audited for CDM might do - loop over every node with memory and allocate
 * there, without the CDM helper and without __GFP_NOWARN.  No page may come
 * from a CDM node, the refusals are counted in /proc/vmstat, and the
 * console stays clean (no allocation-failure warning).
 */
static void implicit_loop(struct __test_metadata *_metadata,
			  FIXTURE_DATA(iso) *self, const char *mode)
{
	bool thisnode = !strncmp(mode, "thisnode", 8);
	long before, after;
	char buf[2048], *line, *save;
	int r, seen_cdm = 0;

	r = test_kmod_ready();
	ASSERT_EQ(0, r) TH_LOG("cdm_test_kmod: %s", strerror(-r));
	before = vmstat_val("cdm_alloc_refused");
	ASSERT_LE(0, before) TH_LOG("no cdm_alloc_refused in /proc/vmstat");
	ASSERT_EQ(0, write_strf(mode, TEST_DBG "/implicit"));
	after = vmstat_val("cdm_alloc_refused");
	ASSERT_LT(0, read_str(TEST_DBG "/implicit", buf, sizeof(buf)));
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int nid, got;

		ASSERT_EQ(2, sscanf(line, "%d %d", &nid, &got));
		TH_LOG("%s: alloc_pages_node(%d) -> node %d", mode, nid, got);
		if (node_is_cdm(nid)) {
			seen_cdm++;
			if (thisnode)
				ASSERT_EQ(-1, got);
		} else if (thisnode) {
			ASSERT_EQ(nid, got);
		}
		if (!thisnode) {
			ASSERT_LE(0, got);
			ASSERT_FALSE(node_is_cdm(got));
		}
	}
	TH_LOG("cdm_alloc_refused %ld -> %ld", before, after);
	ASSERT_EQ(self->ncdm, seen_cdm);
	ASSERT_LE(before + seen_cdm, after);
}

TEST_F(iso, gate_thisnode_loop_over_nodes)
{
	implicit_loop(_metadata, self, "thisnode 0");
}

TEST_F(iso, gate_fallback_loop_over_nodes)
{
	implicit_loop(_metadata, self, "fallback 0");
}

/*
 * tmpfs "mpol=interleave" (and "=static") without a node list means every
 * node with memory: system RAM, not device memory.  A list that names a
 * CDM node is explicit and reaches it (the control that shows the
 * measurement can see CDM pages).
 */
static long tmpfs_interleave_cdm_pages(struct __test_metadata *_metadata,
				       FIXTURE_DATA(iso) *self,
				       const char *mpol)
{
	size_t len = 48 * MiB;
	char opts[96], path[128];
	long on_cdm;
	void *p;
	int fd;

	mkdir(TMPFS_DIR, 0700);
	snprintf(opts, sizeof(opts), "size=64m,huge=never,mpol=%s", mpol);
	if (mount("tmpfs", TMPFS_DIR, "tmpfs", 0, opts))
		return -errno;
	self->tmpfs = true;
	snprintf(path, sizeof(path), TMPFS_DIR "/f");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, len))
		return -errno;
	fill_pattern(p, len, 7);
	on_cdm = pages_on_cdm(p, len);
	TH_LOG("tmpfs mpol=%s: %ld of %zu pages on CDM nodes", mpol, on_cdm,
	       len / PAGE_SZ);
	munmap(p, len);
	close(fd);
	unlink(path);
	umount2(TMPFS_DIR, MNT_DETACH);
	self->tmpfs = false;
	return on_cdm;
}

TEST_F(iso, tmpfs_interleave_without_nodelist)
{
	char mpol[64];

	ASSERT_EQ(0, tmpfs_interleave_cdm_pages(_metadata, self, "interleave"));
	ASSERT_EQ(0, tmpfs_interleave_cdm_pages(_metadata, self,
						 "interleave=static"));
	ASSERT_EQ(0, tmpfs_interleave_cdm_pages(_metadata, self,
						 "interleave=relative"));
	snprintf(mpol, sizeof(mpol), "interleave:%d,%d", self->ram[0],
		 self->cdm[0]);
	ASSERT_LT(0, tmpfs_interleave_cdm_pages(_metadata, self, mpol));
}

static long node_hp_attr(int nid, const char *attr)
{
	long v = -1;
	char p[160];

	snprintf(p, sizeof(p), NODE_SYS "/node%d/hugepages/hugepages-2048kB/%s",
		 nid, attr);
	read_long(p, &v);
	return v;
}

static long cdm_hp_attr(FIXTURE_DATA(iso) *self, const char *attr)
{
	long s = 0;

	for (int i = 0; i < self->ncdm; i++)
		s += node_hp_attr(self->cdm[i], attr);
	return s;
}

/*
 * Map and touch @n huge pages (MAP_HUGETLB, or a hugetlbfs file when @dir
 * is set).  Return: pages on CDM nodes (>= 0), or -errno of the mmap.
 */
static long map_huge_here(const char *dir, int flags, int n)
{
	size_t len = n * HPAGE_SZ;
	long res;
	int fd = -1;
	void *p;

	if (dir) {
		char path[128];

		snprintf(path, sizeof(path), "%s/f", dir);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		unlink(path);
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 flags | (dir ? 0 : MAP_ANONYMOUS | MAP_HUGETLB), fd, 0);
	if (p == MAP_FAILED) {
		res = -errno;
	} else {
		memset(p, 1, len);
		res = pages_on_cdm(p, len);
		munmap(p, len);
	}
	if (fd >= 0)
		close(fd);
	return res;
}

/*
 * map_huge_here() in a child, so that a SIGBUS shows: -EFAULT if the child
 * died.  Only where memory is not short (fork's copy-on-write needs pages).
 */
static long map_huge(const char *dir, int flags, int n)
{
	int pfd[2], st;
	long res = -EIO;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (!pid) {
		res = map_huge_here(dir, flags, n);
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &res, sizeof(res)) != sizeof(res))
		res = -EFAULT;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	return res;
}

/*
 * Surplus huge pages with system RAM short (anonymous memory holds node 0
 * at its low watermark): gather_surplus_pages() loops over every node of
 * mems_allowed.  An unbound task must get them from RAM or not at all,
 * never from a CDM node - as a MAP_HUGETLB mapping and as a hugetlbfs file.
 *
 * The filler is anonymous, not a tmpfs file, so that an OOM kill of it
 * (a GFP_KERNEL allocation can meet the min watermark here) frees its
 * memory before the OOM killer looks for another victim; a tmpfs file is
 * freed only after that, and the next OOM found nothing left to kill.
 */
TEST_F_TIMEOUT(iso, hugetlb_surplus_ram_short, 420)
{
	struct fill_opts o = { .mode = -1, .stop_at_low = 1, .keep = true };
	static const char *const how[] = { "MAP_HUGETLB", "hugetlbfs file" };
	struct fill_result r;
	struct oom_quiet q;
	char first[256];
	long res[2];
	int rfd, st;
	pid_t pid;

	if (!path_exists(HUGEPAGES_2M "/nr_overcommit_hugepages"))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	o.max_bytes = (size_t)self->ram_total_kb * KiB + 256 * MiB;
	o.chunk = 8 * MiB;
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_hugepages", "0"));
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_overcommit_hugepages", "8"));
	mkdir(HUGETLBFS_DIR, 0700);
	ASSERT_EQ(0, mount("none", HUGETLBFS_DIR, "hugetlbfs", 0, NULL));

	oom_quiet_begin(&q);
	pid = fill_start(&o, &rfd);
	ASSERT_LT(0, pid);
	fill_collect(rfd, &r);
	TH_LOG("node %d held at its low watermark: %s, MemFree %ld kB",
	       self->ram[0], r.stopped_low ? "yes" : "NO",
	       node_meminfo_kb(self->ram[0], "MemFree"));
	/*
	 * In this process: a fork would need copy-on-write pages with RAM at
	 * its low watermark.  The reservation at mmap() time means a touch
	 * cannot SIGBUS once the mapping exists.
	 */
	res[0] = map_huge_here(NULL, MAP_PRIVATE, 4);
	res[1] = map_huge_here(HUGETLBFS_DIR, MAP_SHARED, 4);
	kill(pid, SIGKILL);
	wait_child(pid, &st, 60);
	close(rfd);
	umount2(HUGETLBFS_DIR, MNT_DETACH);
	rmdir(HUGETLBFS_DIR);
	ASSERT_EQ(0, oom_quiet_end(&q, first, sizeof(first)))
		TH_LOG("kernel report: %s", first);
	ASSERT_TRUE(r.stopped_low);
	for (int i = 0; i < 2; i++) {
		TH_LOG("%s, 4 huge pages: %s %ld", how[i],
		       res[i] < 0 ? "error" : "pages on CDM", res[i]);
		/* no room in RAM: the reservation fails, never a CDM page */
		ASSERT_TRUE(res[i] == 0 || res[i] == -ENOMEM);
	}
	ASSERT_EQ(0, cdm_hp_attr(self, "surplus_hugepages"));
	ASSERT_EQ(0, cdm_hp_attr(self, "nr_hugepages"));
}

/*
 * A huge page pool on a CDM node, none in RAM: an unbound task's
 * reservation must not count it (it would be promised pages it can never
 * be given, and die with SIGBUS at first touch); a task bound to the node
 * gets them.
 */
TEST_F_TIMEOUT(iso, hugetlb_reservation_cdm_pool, 120)
{
	char p[160];
	long res;
	int node = self->cdm[0];

	if (!path_exists(HUGEPAGES_2M "/nr_overcommit_hugepages"))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_hugepages", "0"));
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_overcommit_hugepages", "0"));
	snprintf(p, sizeof(p), NODE_HPAGE_POOL, node);
	ASSERT_EQ(0, set_knob(self, p, "4"));
	ASSERT_EQ(4, node_hp_attr(node, "nr_hugepages"));

	res = map_huge(NULL, MAP_SHARED, 2);
	TH_LOG("unbound MAP_SHARED|MAP_HUGETLB, pool only on node %d: %ld",
	       node, res);
	ASSERT_EQ(-ENOMEM, res);

	ASSERT_EQ(0, set_policy_nodes(MPOL_BIND, &node, 1));
	res = map_huge(NULL, MAP_SHARED, 2);
	set_policy_nodes(MPOL_DEFAULT, NULL, 0);
	TH_LOG("bound to node %d: %ld pages on CDM", node, res);
	ASSERT_EQ(2 * 512, res);
	ASSERT_EQ(0, write_str(p, "0"));
}

/*
 * No pool, overcommit only, a task bound to a CDM node: the surplus pages
 * its reservation allocates at mmap() must come from the node, where its
 * faults look for them.  Surplus pages in RAM could never serve them, and
 * with the overcommit limit used up by them the first touch would SIGBUS.
 */
TEST_F_TIMEOUT(iso, hugetlb_surplus_bound_task, 120)
{
	static const int flags[] = { MAP_SHARED, MAP_PRIVATE };
	int node = self->cdm[0];
	long res;

	if (!path_exists(HUGEPAGES_2M "/nr_overcommit_hugepages"))
		SKIP(return, "CONFIG_HUGETLB_PAGE off");
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_hugepages", "0"));
	ASSERT_EQ(0, set_knob(self, HUGEPAGES_2M "/nr_overcommit_hugepages", "2"));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, set_policy_nodes(MPOL_BIND, &node, 1));
		res = map_huge(NULL, flags[i], 2);
		set_policy_nodes(MPOL_DEFAULT, NULL, 0);
		TH_LOG("bound to node %d, %s|MAP_HUGETLB, 2 surplus pages allowed: %s %ld",
		       node, flags[i] == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE",
		       res < 0 ? "error" : "pages on CDM", res);
		/* -EFAULT: the child died (SIGBUS) */
		ASSERT_EQ(2 * 512, res);
	}
	/* the mappings are gone, and so are their surplus pages */
	ASSERT_EQ(0, cdm_hp_attr(self, "surplus_hugepages"));
	ASSERT_EQ(0, cdm_hp_attr(self, "nr_hugepages"));
}

/* Run KSM until @n more full scans are done (at most @ms); the scans done. */
static long ksm_scans(long n, uint64_t ms)
{
	long scans0, scans;
	uint64_t end = now_ms() + ms;

	if (read_long(KSM "/full_scans", &scans0))
		return -1;
	do {
		usleep(100000);
		read_long(KSM "/full_scans", &scans);
	} while (scans < scans0 + n && now_ms() < end);
	return scans - scans0;
}

/* KSM stopped and unmerged, one tree for all nodes, scanning fast */
static int ksm_prepare(FIXTURE_DATA(iso) *self)
{
	if (set_knob(self, KSM "/run", "2") ||
	    set_knob(self, KSM "/merge_across_nodes", "1") ||
	    set_knob(self, KSM "/pages_to_scan", "5000") ||
	    set_knob(self, KSM "/sleep_millisecs", "10"))
		return -1;
	return 0;
}

/*
 * A 2 MiB range whose small pages are split between a CDM node and RAM:
 * collapsing it (MADV_COLLAPSE, or khugepaged) must not put the RAM pages'
 * data onto the CDM node, even though most of the range is there.
 */
static char *mixed_range(struct __test_metadata *_metadata, int cdm,
			 size_t len, long *moved)
{
	char *p = map_anon_aligned(len, HPAGE_SZ);

	if (!p)
		return NULL;
	if (madvise(p, len, MADV_NOHUGEPAGE))
		return NULL;
	fill_pattern(p, len, 61);
	*moved = 0;
	for (size_t off = 0; off < len; off += HPAGE_SZ) {
		/* 300 of 512 pages to the CDM node */
		long n = move_all(p + off, 300 * PAGE_SZ, cdm);

		if (n < 0)
			return NULL;
		*moved += n;
	}
	TH_LOG("range: %ld pages moved to node %d, %ld on CDM", *moved, cdm,
	       pages_on_cdm(p, len));
	if (madvise(p, len, MADV_HUGEPAGE))
		return NULL;
	return p;
}

TEST_F_TIMEOUT(iso, thp_collapse_madv_collapse, 120)
{
	size_t len = 8 * MiB;
	long moved, huge;
	char *p;
	int r;

	if (!path_exists(THP "/enabled"))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	ASSERT_EQ(0, set_knob(self, THP "/enabled", "madvise"));
	p = mixed_range(_metadata, self->cdm[0], len, &moved);
	ASSERT_NE(NULL, p);
	r = madvise(p, len, MADV_COLLAPSE) ? errno : 0;
	huge = smaps_anon_huge_kb(p);
	TH_LOG("MADV_COLLAPSE: %s; AnonHugePages %ld kB; pages on CDM %ld (were %ld)",
	       r ? strerror(r) : "ok", huge, pages_on_cdm(p, len), moved);
	ASSERT_LE(pages_on_cdm(p, len), moved);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 61));
}

TEST_F_TIMEOUT(iso, thp_collapse_khugepaged, 180)
{
	size_t len = 8 * MiB;
	long moved, scans0, scans;
	uint64_t end;
	char *p;

	if (!path_exists(THP "/khugepaged/full_scans"))
		SKIP(return, "CONFIG_TRANSPARENT_HUGEPAGE off");
	ASSERT_EQ(0, set_knob(self, THP "/enabled", "madvise"));
	ASSERT_EQ(0, set_knob(self, THP "/khugepaged/scan_sleep_millisecs", "10"));
	ASSERT_EQ(0, set_knob(self, THP "/khugepaged/alloc_sleep_millisecs", "10"));
	ASSERT_EQ(0, set_knob(self, THP "/khugepaged/pages_to_scan", "8192"));
	p = mixed_range(_metadata, self->cdm[0], len, &moved);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, read_long(THP "/khugepaged/full_scans", &scans0));
	end = now_ms() + 120000;
	do {
		usleep(100000);
		read_long(THP "/khugepaged/full_scans", &scans);
	} while (scans < scans0 + 3 && now_ms() < end);
	TH_LOG("khugepaged: %ld full scans; AnonHugePages %ld kB; pages on CDM %ld (were %ld)",
	       scans - scans0, smaps_anon_huge_kb(p), pages_on_cdm(p, len),
	       moved);
	ASSERT_GE(scans, scans0 + 2);
	ASSERT_LE(pages_on_cdm(p, len), moved);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 61));
}

TEST_F_TIMEOUT(iso, ksm_merge_across_nodes, 240)
{
	const size_t len = 1 * MiB;
	const long np = len / PAGE_SZ;
	long scans, sharing;
	char *a, *b;
	int cdm = self->cdm[0];

	if (!path_exists(KSM "/run"))
		SKIP(return, "CONFIG_KSM off");
	ASSERT_EQ(0, ksm_prepare(self));
	a = map_anon(len);
	b = map_anon(len);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	/* identical content everywhere */
	memset(a, 0x6b, len);
	memset(b, 0x6b, len);
	ASSERT_EQ(np, move_all(a, len, cdm));
	ASSERT_EQ(np, pages_on_node(b, len, self->ram[0]));
	ASSERT_EQ(0, madvise(a, len, MADV_MERGEABLE));
	ASSERT_EQ(0, madvise(b, len, MADV_MERGEABLE));
	ASSERT_EQ(0, write_str(KSM "/run", "1"));
	scans = ksm_scans(8, 150000);
	read_long(KSM "/pages_sharing", &sharing);
	TH_LOG("KSM: %ld full scans, pages_sharing %ld; CDM range: %ld/%ld on node %d; RAM range: %ld/%ld on node %d",
	       scans, sharing, pages_on_node(a, len, cdm), np, cdm,
	       pages_on_node(b, len, self->ram[0]), np, self->ram[0]);
	ASSERT_GE(scans, 2);
	/* KSM ran: the RAM range merged within itself */
	ASSERT_GT(sharing, 0);
	/* neither side moved to the other */
	ASSERT_EQ(np, pages_on_node(a, len, cdm));
	ASSERT_EQ(np, pages_on_node(b, len, self->ram[0]));
	for (size_t i = 0; i < len; i += PAGE_SZ) {
		ASSERT_EQ(0x6b, a[i]);
		ASSERT_EQ(0x6b, b[i]);
	}
	ASSERT_EQ(0, write_str(KSM "/run", "2"));
}


/*
 * KSM's stable tree keeps a KSM page that was moved onto a CDM node after
 * it was merged in RAM.  New identical pages of an unbound task must not
 * be merged into it: that would replace RAM pages by a mapping of device
 * memory nobody asked for.
 */
TEST_F_TIMEOUT(iso, ksm_stable_tree_page_moved_to_cdm, 240)
{
	/* fewer sharers than max_page_sharing (256), so b could join */
	const size_t len = 64 * PAGE_SZ;
	const long np = len / PAGE_SZ;
	int cdm = self->cdm[0], status = -1;
	long sharing, scans;
	void *first;
	char *a, *b;

	if (!path_exists(KSM "/run"))
		SKIP(return, "CONFIG_KSM off");
	ASSERT_EQ(0, ksm_prepare(self));
	a = map_anon(len);
	b = map_anon(len);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);

	/* a: identical pages in RAM, merged into one KSM page */
	memset(a, 0x5a, len);
	ASSERT_EQ(np, pages_on_node(a, len, self->ram[0]));
	ASSERT_EQ(0, madvise(a, len, MADV_MERGEABLE));
	ASSERT_EQ(0, write_str(KSM "/run", "1"));
	scans = ksm_scans(3, 60000);
	read_long(KSM "/pages_sharing", &sharing);
	ASSERT_GE(scans, 3);
	ASSERT_GT(sharing, 0) TH_LOG("KSM merged nothing in RAM");
	ASSERT_EQ(0, write_str(KSM "/run", "0"));

	/* move the shared KSM page onto the CDM node (it is mapped np times) */
	first = a;
	ASSERT_EQ(0, move_pages(0, 1, &first, &cdm, &status, MPOL_MF_MOVE_ALL));
	ASSERT_EQ(cdm, status);
	ASSERT_EQ(np, pages_on_node(a, len, cdm))
		TH_LOG("the range is not one KSM page any more");

	/* b: an unbound task's identical pages, offered to KSM */
	memset(b, 0x5a, len);
	ASSERT_EQ(np, pages_on_node(b, len, self->ram[0]));
	ASSERT_EQ(0, madvise(b, len, MADV_MERGEABLE));
	ASSERT_EQ(0, write_str(KSM "/run", "1"));
	scans = ksm_scans(4, 120000);
	TH_LOG("KSM page on node %d (%ld/%ld of a there); after %ld more full scans, b: %ld pages on node %d, %ld on CDM",
	       cdm, pages_on_node(a, len, cdm), np, scans,
	       pages_on_node(b, len, self->ram[0]), self->ram[0],
	       pages_on_cdm(b, len));
	ASSERT_GE(scans, 4);
	ASSERT_EQ(0, pages_on_cdm(b, len));
	ASSERT_EQ(np, pages_on_node(b, len, self->ram[0]));
	ASSERT_EQ(np, pages_on_node(a, len, cdm));
	for (size_t i = 0; i < len; i += PAGE_SZ) {
		ASSERT_EQ(0x5a, a[i]);
		ASSERT_EQ(0x5a, b[i]);
	}
	ASSERT_EQ(0, write_str(KSM "/run", "2"));
}

/* ksmd's state letter from /proc/PID/stat ('S': in its timed wait) */
static char ksmd_state(void)
{
	static int pid;
	char path[300], buf[256], *p;
	DIR *dir;
	struct dirent *e;

	if (!pid && (dir = opendir("/proc"))) {
		while (!pid && (e = readdir(dir))) {
			snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
			if (read_str(path, buf, sizeof(buf)) > 0 &&
			    !strncmp(buf, "ksmd", 4) &&
			    (buf[4] == '\n' || !buf[4]))
				pid = atoi(e->d_name);
		}
		closedir(dir);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!pid || read_str(path, buf, sizeof(buf)) <= 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

/*
 * ksmd's progress: pages scanned plus full scans.  Each wake of a ksmd that
 * scans one page per batch adds exactly one: a page, or the end of a pass
 * (which returns before it scans a page).
 */
static long ksm_progress(void)
{
	long pages, scans;

	if (read_long(KSM "/pages_scanned", &pages) ||
	    read_long(KSM "/full_scans", &scans))
		return -1;
	return pages + scans;
}

/* ksm_progress() once it is above @above and ksmd waits; -1 after @ms */
static long ksm_settled(long above, uint64_t ms)
{
	uint64_t end = now_ms() + ms;
	long p;

	do {
		if (ksmd_state() == 'S') {
			p = ksm_progress();
			if (p > above)
				return p;
		}
		usleep(2000);
	} while (now_ms() < end);
	return -1;
}

/*
 * Wake ksmd once and return ksm_progress() after its batch.  ksmd sleeps
 * sleep_millisecs (10 minutes here) after each batch, and a write of a new
 * value ends the sleep.  ksmd reads the value before it waits, so a write
 * that comes first is missed.  A write wakes a waiting ksmd before it
 * returns, so ksmd seen waiting with no progress after it missed it: only
 * then is a new value written, and no write can give a second batch.
 */
static long ksm_step(long progress)
{
	static unsigned int sleep_ms = 600000;
	uint64_t end = now_ms() + 60000;
	char v[16];
	long p;

	do {
		snprintf(v, sizeof(v), "%u", ++sleep_ms);
		if (write_str(KSM "/sleep_millisecs", v))
			return -1;
		for (;;) {
			p = ksm_settled(progress, 100);
			if (p >= 0)
				return p;
			if (now_ms() >= end)
				return -1;
			/* in that order: asleep, then still no progress */
			if (ksmd_state() == 'S' && ksm_progress() == progress)
				break;
		}
	} while (now_ms() < end);
	return -1;
}

/*
 * KSM's unstable tree holds a page that was explicitly moved onto a CDM
 * node after it entered the tree, earlier in the same scan pass.  An
 * identical page of an unbound task must not be merged with it: merging
 * makes the candidate (in RAM) the KSM page and maps it in place of the
 * tree page, so the move would be undone.  ksmd scans one page per wake
 * here, so the move lands exactly between the two pages' scans.
 */
TEST_F_TIMEOUT(iso, ksm_unstable_tree_page_moved_to_cdm, 300)
{
	const size_t len = 2 * PAGE_SZ;
	int cdm = self->cdm[0], status = -1, steps;
	long p, np, s0, s = -1, unshared = -1, sharing = -1, shared = -1;
	char *a, *b;
	void *pa;

	if (!path_exists(KSM "/run") || !path_exists(KSM "/pages_scanned"))
		SKIP(return, "CONFIG_KSM off");
	/* b is the page after a: ksmd scans a mm's pages by address */
	a = map_anon(len);
	ASSERT_NE(NULL, a);
	b = a + PAGE_SZ;
	ASSERT_EQ(0, madvise(a, len, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, set_knob(self, KSM "/run", "2"));
	ASSERT_EQ(0, set_knob(self, KSM "/merge_across_nodes", "1"));
	ASSERT_EQ(0, set_knob(self, KSM "/pages_to_scan", "1"));
	ASSERT_EQ(0, set_knob(self, KSM "/sleep_millisecs", "600000"));
	if (path_exists(KSM "/smart_scan"))
		ASSERT_EQ(0, set_knob(self, KSM "/smart_scan", "0"));
	memset(a, 0x5a, PAGE_SZ);	/* b stays absent: not scanned */
	ASSERT_EQ(1, pages_on_node(a, PAGE_SZ, self->ram[0]));
	ASSERT_EQ(0, madvise(a, len, MADV_MERGEABLE));

	/* a's first scan records its checksum (run=1 starts one batch) */
	p = ksm_progress();
	ASSERT_GE(p, 0);
	ASSERT_EQ(0, write_str(KSM "/run", "1"));
	np = ksm_settled(p, 60000);
	ASSERT_EQ(p + 1, np) TH_LOG("ksmd did not scan one page");
	p = np;
	/* b, identical, comes next in this pass; then a's next scan puts a
	 * alone into the unstable tree, as b's checksum is only one scan old
	 */
	memset(b, 0x5a, PAGE_SZ);
	ASSERT_EQ(1, pages_on_node(b, PAGE_SZ, self->ram[0]));
	for (steps = 0; steps < 4; steps++) {
		np = ksm_step(p);
		ASSERT_EQ(p + 1, np);
		p = np;
		read_long(KSM "/pages_unshared", &unshared);
		if (unshared)
			break;
	}
	read_long(KSM "/pages_sharing", &sharing);
	TH_LOG("%d wakes after a's first scan: pages_unshared %ld, pages_sharing %ld",
	       steps + 1, unshared, sharing);
	ASSERT_EQ(1, unshared) TH_LOG("a did not enter the unstable tree");
	ASSERT_EQ(0, sharing);

	/* the explicit move, between a's scan and b's */
	pa = a;
	ASSERT_EQ(0, move_pages(0, 1, &pa, &cdm, &status, MPOL_MF_MOVE));
	ASSERT_EQ(cdm, status);

	/* b's scan: it finds a, identical, in the unstable tree */
	ASSERT_EQ(0, read_long(KSM "/pages_scanned", &s0));
	np = ksm_step(p);
	ASSERT_EQ(p + 1, np);
	ASSERT_EQ(0, read_long(KSM "/pages_scanned", &s));
	ASSERT_EQ(s0 + 1, s) TH_LOG("the wake after a's insertion scanned no page");
	read_long(KSM "/pages_shared", &shared);
	read_long(KSM "/pages_sharing", &sharing);
	read_long(KSM "/pages_unshared", &unshared);
	TH_LOG("after b's scan: pages_shared %ld, pages_sharing %ld, pages_unshared %ld; a on node %d: %ld, b on node %d: %ld",
	       shared, sharing, unshared, cdm, pages_on_node(a, PAGE_SZ, cdm),
	       self->ram[0], pages_on_node(b, PAGE_SZ, self->ram[0]));
	ASSERT_EQ(1, pages_on_node(a, PAGE_SZ, cdm))
		TH_LOG("the page moved onto the CDM node was merged away");
	ASSERT_EQ(1, pages_on_node(b, PAGE_SZ, self->ram[0]));
	ASSERT_EQ(0, shared);
	ASSERT_EQ(0, sharing);
	for (size_t i = 0; i < PAGE_SZ; i++) {
		ASSERT_EQ(0x5a, a[i]);
		ASSERT_EQ(0x5a, b[i]);
	}
	ASSERT_EQ(0, write_str(KSM "/run", "2"));
}

/* hinting faults so far: /proc/vmstat, or the task's own count */
static long hint_faults(void)
{
	char sched[8192];
	long v = vmstat_val("numa_hint_faults");
	char *p;

	if (v >= 0)
		return v;
	if (read_str("/proc/self/sched", sched, sizeof(sched)) < 0)
		return -1;
	p = strstr(sched, "total_numa_faults");
	p = p ? strchr(p, ':') : NULL;
	return p ? strtol(p + 1, NULL, 10) : -1;
}

static void numa_balancing_case(struct __test_metadata *_metadata,
				FIXTURE_DATA(iso) *self, const char *mode)
{
	const size_t len = 16 * MiB;
	const long np = len / PAGE_SZ;
	long f0 = hint_faults(), f = f0;
	bool tiering = !strcmp(mode, "2");
	long m0 = vmstat_val("numa_pages_migrated");
	int cdm = self->cdm[0];
	volatile char *p = map_anon(len);
	volatile char *ctl = map_anon(len);	/* control range in RAM */
	uint64_t start = now_ms();
	long sum = 0;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, ctl);
	fill_pattern((void *)p, len, 71);
	touch_pages((void *)ctl, len);
	/* the task's pages were moved to the CDM node, the task runs on RAM */
	ASSERT_EQ(np, move_all((void *)p, len, cdm));
	ASSERT_EQ(0, set_knob(self, "/proc/sys/kernel/numa_balancing", mode));
	/*
	 * Keep touching both ranges until the scanner made hinting faults
	 * (at least on the control range: a kernel may skip CDM pages).
	 */
	while (now_ms() - start < 60000) {
		for (size_t i = 0; i < len; i += PAGE_SZ)
			sum += p[i] + ctl[i];
		f = hint_faults();
		if (f - f0 >= np / 2 && now_ms() - start > 5000)
			break;
		if (tiering && now_ms() - start > 20000)
			break;
	}
	TH_LOG("numa_balancing=%s: %ld hinting faults, %ld pages migrated in %llu ms; range %ld/%ld still on node %d (sum %ld)",
	       mode, f - f0, vmstat_val("numa_pages_migrated") - m0,
	       (unsigned long long)(now_ms() - start),
	       pages_on_node((void *)p, len, cdm), np, cdm, sum & 1);
	{
		char sched[4096];

		if (read_str("/proc/self/sched", sched, sizeof(sched)) > 0) {
			for (char *l = strtok(sched, "\n"); l; l = strtok(NULL, "\n"))
				if (strstr(l, "numa"))
					TH_LOG("%s", l);
		}
	}
	write_str("/proc/sys/kernel/numa_balancing", "0");
	/*
	 * Tiering mode scans only pages on lower tiers: with the CDM node out
	 * of the tiers there may be nothing to scan, which is fine.
	 */
	if (!tiering)
		ASSERT_GT(f - f0, 0)
			TH_LOG("NUMA balancing never scanned the task");
	ASSERT_EQ(np, pages_on_node((void *)p, len, cdm));
	ASSERT_EQ((size_t)-1, check_pattern((void *)p, len, 71));
}

static void nb_knobs(FIXTURE_DATA(iso) *self)
{
	const char *d = "/sys/kernel/debug/sched/numa_balancing";
	char p[128];

	ensure_debugfs();
	snprintf(p, sizeof(p), "%s/scan_delay_ms", d);
	set_knob(self, p, "0");
	snprintf(p, sizeof(p), "%s/scan_period_min_ms", d);
	set_knob(self, p, "100");
	snprintf(p, sizeof(p), "%s/scan_size_mb", d);
	set_knob(self, p, "256");
}

TEST_F_TIMEOUT(iso, numa_balancing_keeps_cdm_pages, 120)
{
	if (!path_exists("/proc/sys/kernel/numa_balancing"))
		SKIP(return, "CONFIG_NUMA_BALANCING off");
	nb_knobs(self);
	numa_balancing_case(_metadata, self, "1");
}

TEST_F_TIMEOUT(iso, numa_balancing_tiering_keeps_cdm_pages, 120)
{
	if (!path_exists("/proc/sys/kernel/numa_balancing"))
		SKIP(return, "CONFIG_NUMA_BALANCING off");
	nb_knobs(self);
	/* NUMA_BALANCING_MEMORY_TIERING: promotion from slow tiers */
	numa_balancing_case(_metadata, self, "2");
}

/* memory block number holding the most pages of [p, p+len) */
static int busiest_blocks(void *p, size_t len, int *blocks, int max)
{
	long bsz;
	char buf[64];
	int fd = open("/proc/self/pagemap", O_RDONLY);
	static long count[4096];
	int n = 0;

	if (fd < 0 || read_str(MEMSYS "/block_size_bytes", buf, sizeof(buf)) < 0)
		return 0;
	bsz = strtol(buf, NULL, 16);
	memset(count, 0, sizeof(count));
	for (size_t off = 0; off < len; off += PAGE_SZ) {
		uint64_t e = pagemap_pfn(fd, (char *)p + off);

		if (!e)
			continue;
		if (e * PAGE_SZ / bsz < 4096)
			count[e * PAGE_SZ / bsz]++;
	}
	close(fd);
	while (n < max) {
		int best = -1;

		for (int b = 1; b < 4096; b++)
			if (count[b] && (best < 0 || count[b] > count[best]))
				best = b;
		if (best < 0)
			break;
		blocks[n++] = best;
		count[best] = 0;
	}
	return n;
}

TEST_F_TIMEOUT(iso, offline_ram_block, 300)
{
	size_t len = 256 * MiB;
	int blocks[16], nb, r = -1, b = -1;
	struct cdm_watch w;
	char *p;

	if (!path_exists(MEMSYS "/block_size_bytes"))
		SKIP(return, "no memory hotplug sysfs");
	if (!memory_blocks_movable(self->ram[0]))
		SKIP(return, "node %d has no ZONE_MOVABLE memory block (boot with movablecore=256M)",
		     self->ram[0]);
	p = map_anon(len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mbind_nodes(p, len, MPOL_BIND, self->ram, 1, 0));
	fill_pattern(p, len, 81);
	nb = busiest_blocks(p, len, blocks, 16);
	ASSERT_GT(nb, 0);
	watch_start(&w);
	for (int i = 0; i < nb; i++) {
		char path[128], st[32];

		snprintf(path, sizeof(path), MEMSYS "/memory%d/node%d", blocks[i],
			 self->ram[0]);
		if (!path_exists(path))
			continue;
		snprintf(path, sizeof(path), MEMSYS "/memory%d/state", blocks[i]);
		if (read_str(path, st, sizeof(st)) < 0 || strcmp(st, "online"))
			continue;
		/*
		 * Only ZONE_MOVABLE RAM can be offlined reliably: a DMA32
		 * block holds page tables or slab, and the refusal dumps
		 * them ("page dumped because: unmovable page").
		 */
		snprintf(path, sizeof(path), MEMSYS "/memory%d/valid_zones",
			 blocks[i]);
		if (read_str(path, st, sizeof(st)) < 0 || strcmp(st, "Movable"))
			continue;
		if (memory_block_has_reserved(blocks[i])) {
			TH_LOG("memory%d holds boot-time reserved pages: not offlinable",
			       blocks[i]);
			continue;
		}
		self->offlined_block = blocks[i];
		r = memory_block_offline(blocks[i], 30);
		TH_LOG("offline memory%d: %s", blocks[i], r ? strerror(-r) : "ok");
		if (!r) {
			b = blocks[i];
			break;
		}
		self->offlined_block = -1;
		ASSERT_NE(-ETIMEDOUT, r)
			TH_LOG("offlining a RAM block hung (no migration target?)");
	}
	watch_stop(&w);
	ASSERT_LE(0, b) TH_LOG("no RAM block could be offlined");
	TH_LOG("memory%d offline; buffer pages on CDM %ld; CDM MemFree max drop %ld kB",
	       b, pages_on_cdm(p, len), watch_max_drop(&w));
	ASSERT_EQ(0, pages_on_cdm(p, len));
	ASSERT_LE(watch_max_drop(&w), DRIFT_KB);
	ASSERT_EQ((size_t)-1, check_pattern(p, len, 81));
	{
		char path[128];

		snprintf(path, sizeof(path), MEMSYS "/memory%d/state", b);
		/* as it was: a plain "online" would pick the kernel zone */
		ASSERT_EQ(0, write_str(path, "online_movable"));
		self->offlined_block = -1;
	}
}

TEST_F_TIMEOUT(iso, emergency_fallback_knob, 900)
{
	int node = self->cdm[self->ncdm - 1];
	char knob[128], v[16];
	long free_kb = node_meminfo_kb(node, "MemFree");
	struct fill_opts o = { .mode = -1, .chunk = 8 * MiB };
	struct fill_result r;
	struct oom_quiet q;
	char first[256];
	long spill0;

	ASSERT_LT(node, 4);	/* fill reports count nodes 0..3 */
	snprintf(knob, sizeof(knob), NODE_SYS "/node%d/cdm/emergency_fallback",
		 node);
	ASSERT_TRUE(path_exists(knob));
	ASSERT_LT(0, read_str(knob, v, sizeof(v)));
	ASSERT_STREQ("0", v);

	/* on: movable allocations spill there, but only once RAM is gone */
	spill0 = vmstat_val("cdm_emergency_alloc");
	ASSERT_LE(0, spill0) TH_LOG("no cdm_emergency_alloc in /proc/vmstat");
	ASSERT_EQ(0, set_knob(self, knob, "1"));
	/*
	 * What RAM has free now, not its MemTotal: a KASAN kernel holds
	 * over 200 MiB of node 0 (quarantine, slab, vmalloc shadow), and
	 * a fill sized by MemTotal overran the 256 MiB device and was
	 * rightly OOM-killed once it was full too.
	 */
	for (int i = 0; i < self->nram; i++)
		o.max_bytes += (size_t)node_meminfo_kb(self->ram[i], "MemFree") * KiB;
	o.max_bytes += (size_t)free_kb * KiB / 2;
	oom_quiet_begin(&q);
	ASSERT_EQ(0, fill_run(&o, &r, 400));
	ASSERT_EQ(0, oom_quiet_end(&q, first, sizeof(first)))
		TH_LOG("kernel report: %s", first);
	TH_LOG("knob on: %ld MiB, node0 %ld node%d %ld pages, on CDM %ld; first CDM page in chunk %ld with node0 MemFree %ld kB; child %s",
	       r.pages * 4 / 1024, r.nodes[0], node, r.nodes[node],
	       r.on_cdm, r.first_cdm_chunk, r.node0_free_at_first_cdm,
	       r.oom_killed ? "OOM-killed" : "exited");
	ASSERT_FALSE(r.oom_killed);
	ASSERT_EQ(0, r.err);
	ASSERT_GT(r.nodes[node], 0);
	ASSERT_EQ(r.on_cdm, r.nodes[node]);	/* only the knob's node */
	/* each spilled page went through the emergency path, counted */
	ASSERT_LE(spill0 + r.nodes[node], vmstat_val("cdm_emergency_alloc"));
	ASSERT_LT(r.node0_free_at_first_cdm, self->ram_total_kb / 10);

	/* off again: no spill */
	ASSERT_EQ(0, write_str(knob, "0"));
	ASSERT_LT(0, read_str(knob, v, sizeof(v)));
	ASSERT_STREQ("0", v);
	{
		struct fill_opts o2 = { .mode = -1 };

		fill_and_check(_metadata, self, &o2, "anon, knob off again");
	}
}

/*
 * The emergency knob is for when system RAM is really exhausted, not for
 * when it is merely full: with RAM held at its low watermark by memory
 * reclaim cannot free (a tmpfs file, no swap), reading a clean file must
 * reclaim the file's own cache, not spill it onto the device, and
 * cdm_emergency_alloc must not move.  (emergency_fallback_knob shows the
 * same knob taking pages once reclaim can free nothing.)
 */
TEST_F_TIMEOUT(iso, emergency_knob_reclaimable_page_cache, 900)
{
	struct fill_opts o = { .mode = -1, .file_dir = TMPFS_DIR,
			       .stop_at_low = 1, .keep = true };
	int node = self->cdm[self->ncdm - 1];
	size_t chunk = 1 << 20, len = 160 * MiB, off;
	long spill0, file_kb = 0;
	struct fill_result r;
	struct cdm_watch w;
	char knob[128], opts[64];
	char *buf;
	int fd, rfd, st, knob_err;
	pid_t pid;

	if (!path_exists(RAMDISK))
		SKIP(return, "no %s (boot with brd.rd_nr=1)", RAMDISK);
	snprintf(knob, sizeof(knob), NODE_SYS "/node%d/cdm/emergency_fallback",
		 node);
	spill0 = vmstat_val("cdm_emergency_alloc");
	ASSERT_LE(0, spill0) TH_LOG("no cdm_emergency_alloc in /proc/vmstat");

	/* a file on ext2 on the RAM disk, then out of the page cache */
	ASSERT_EQ(0, ext2_ramdisk(self));
	buf = malloc(chunk);
	ASSERT_NE(NULL, buf);
	fd = open(EXT2_DIR "/f", O_CREAT | O_RDWR | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	for (off = 0; off < len; off += chunk) {
		fill_pattern(buf, chunk, off);
		ASSERT_EQ((ssize_t)chunk, write(fd, buf, chunk));
	}
	ASSERT_EQ(0, fsync(fd));
	ASSERT_EQ(0, posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));

	o.max_bytes = (size_t)self->ram_total_kb * KiB + 256 * MiB;
	o.chunk = 8 * MiB;
	mkdir(TMPFS_DIR, 0700);
	snprintf(opts, sizeof(opts), "size=%ldk,huge=never",
		 self->ram_total_kb + 512 * 1024);
	ASSERT_EQ(0, mount("tmpfs", TMPFS_DIR, "tmpfs", 0, opts));
	self->tmpfs = true;
	pid = fill_start(&o, &rfd);
	ASSERT_LT(0, pid);
	fill_collect(rfd, &r);
	/*
	 * The knob goes on only once the filler holds RAM at its low
	 * watermark.  With the file's cache dropped, RAM holds nothing
	 * reclaimable while the filler writes, and the knob would rightly
	 * give its last tmpfs pages to the device: that is the other case,
	 * not the one measured here.
	 */
	knob_err = set_knob(self, knob, "1");
	spill0 = vmstat_val("cdm_emergency_alloc");
	watch_start(&w);
	for (int pass = 0; pass < 2; pass++) {
		ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
		for (off = 0; off < len; off += chunk) {
			ASSERT_EQ((ssize_t)chunk, read(fd, buf, chunk));
			ASSERT_EQ((size_t)-1, check_pattern(buf, chunk, off));
		}
	}
	watch_stop(&w);
	file_kb = node_meminfo_kb(node, "FilePages");
	TH_LOG("RAM held at node %d's low watermark: %s (filler: %ld pages on CDM); read %zu MiB twice: node %d FilePages %ld kB, MemFree max drop %ld kB, cdm_emergency_alloc +%ld",
	       self->ram[0], r.stopped_low ? "yes" : "NO", r.on_cdm,
	       len >> 20, node, file_kb, watch_max_drop(&w),
	       vmstat_val("cdm_emergency_alloc") - spill0);
	kill(pid, SIGKILL);
	wait_child(pid, &st, 60);
	close(rfd);
	close(fd);
	free(buf);
	ASSERT_EQ(0, knob_err);
	ASSERT_TRUE(r.stopped_low);
	ASSERT_EQ(0, r.on_cdm);	/* knob off while it filled: isolation */
	ASSERT_LE(file_kb, 1024);
	ASSERT_LE(watch_max_drop(&w), DRIFT_KB);
	ASSERT_EQ(spill0, vmstat_val("cdm_emergency_alloc"));
}

int main(int argc, char **argv)
{
	set_oom_adj(-1000);
	return test_harness_run(argc, argv);
}

/*
 * The OOM killer chooses by where memory is (issue 12, 3b).  A holder is a
 * process that keeps @bytes of anonymous memory with a known pattern,
 * bound to @node (-1: no policy), at oom_score_adj @adj.  It reports the
 * bytes placed after each chunk; once full it waits for a byte on its
 * command pipe, then checks the pattern and where the pages are, and exits
 * 0 only if both hold (all on @node, or none on a CDM node for -1).
 */
struct holder {
	pid_t pid;
	int rep, cmd;
	size_t bytes, placed;
	int status;
	bool exited;
};

#define HOLDER_CHUNK (4 * MiB)

static void holder_child(int node, size_t bytes, int adj, int rep, int cmd)
{
	char *buf;
	char c;
	size_t off;

	set_oom_adj(adj);
	if (node >= 0 && set_policy_nodes(MPOL_BIND, &node, 1))
		_exit(2);
	buf = map_anon(bytes);
	if (!buf)
		_exit(2);
	for (off = 0; off < bytes; off += HOLDER_CHUNK) {
		size_t done = off + HOLDER_CHUNK;

		fill_pattern(buf + off, HOLDER_CHUNK, off);
		if (write(rep, &done, sizeof(done)) != sizeof(done))
			_exit(2);
	}
	if (read(cmd, &c, 1) != 1)
		_exit(3);
	for (off = 0; off < bytes; off += HOLDER_CHUNK)
		if (check_pattern(buf + off, HOLDER_CHUNK, off) != (size_t)-1)
			_exit(4);
	if (node >= 0 ? pages_on_node(buf, bytes, node) != (long)(bytes / PAGE_SZ) :
			pages_on_cdm(buf, bytes) != 0)
		_exit(5);
	_exit(0);
}

/* Start a holder and wait until it is full (true) or has died (false). */
static bool holder_fill(struct holder *h, int node, size_t bytes, int adj)
{
	int rp[2], cp[2];
	size_t done;

	memset(h, 0, sizeof(*h));
	h->bytes = bytes;
	if (pipe(rp) || pipe(cp))
		return false;
	h->pid = fork_kid();
	if (h->pid == 0) {
		close(rp[0]);
		close(cp[1]);
		holder_child(node, bytes, adj, rp[1], cp[0]);
	}
	close(rp[1]);
	close(cp[0]);
	h->rep = rp[0];
	h->cmd = cp[1];
	while (h->placed < bytes &&
	       read(h->rep, &done, sizeof(done)) == sizeof(done))
		h->placed = done;
	return h->placed >= bytes;
}

/* Ask a full holder to check itself; its exit status, or its death. */
static void holder_finish(struct holder *h, bool check)
{
	if (h->pid <= 0 || h->exited)
		return;
	signal(SIGPIPE, SIG_IGN);	/* it may have died: EPIPE, not a signal */
	if (check && write(h->cmd, "c", 1) == 1) {
		if (wait_child(h->pid, &h->status, 120) == 0) {
			h->exited = true;
			goto out;
		}
	}
	kill(h->pid, SIGKILL);
	if (wait_child(h->pid, &h->status, 120) == 0)
		h->exited = true;
out:
	close(h->rep);
	close(h->cmd);
}

#define MAX_HOGS 16

/* Reap a holder whose report pipe hit EOF: it exited, memory freed. */
static void holder_reap(struct holder *h)
{
	if (h->pid <= 0 || h->exited)
		return;
	if (wait_child(h->pid, &h->status, 120) == 0)
		h->exited = true;
	close(h->rep);
	close(h->cmd);
}

static bool holder_killed(const struct holder *h)
{
	return h->exited && WIFSIGNALED(h->status) &&
	       WTERMSIG(h->status) == SIGKILL;
}

/*
 * Wait until @kills of the holders have exited (EOF on their report pipe,
 * which closes after the exiting task has released its memory), at most
 * @timeout_s; reap them.  Returns how many exited.
 */
static int holders_wait_exits(struct holder **hs, int n, long kills,
			      int timeout_s)
{
	uint64_t end = now_ms() + timeout_s * 1000ULL;
	struct pollfd pfd[MAX_HOGS + 1];
	int gone = 0;
	bool eof[MAX_HOGS + 1] = { false };

	while (gone < kills && now_ms() < end) {
		for (int i = 0; i < n; i++) {
			pfd[i].fd = eof[i] || hs[i]->exited ? -1 : hs[i]->rep;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, n, 1000) < 0)
			break;
		for (int i = 0; i < n; i++) {
			size_t done;

			if (!pfd[i].revents)
				continue;
			if (read(hs[i]->rep, &done, sizeof(done)) > 0)
				continue;	/* a late report */
			eof[i] = true;
			gone++;
			holder_reap(hs[i]);
		}
	}
	return gone;
}

/*
 * Start hogs of @hog_bytes each (bound to @node, or -1), one after the
 * other, until the OOM killer has killed something; then wait until as
 * many holders (@keep and the hogs) have exited as were killed, so their
 * memory is free before anything is measured.  Returns the hogs started.
 */
static int hogs_until_oom(struct holder *hogs, int node, size_t hog_bytes,
			  struct holder *keep, long oom0)
{
	struct holder *all[MAX_HOGS + 1];
	int n;

	for (n = 0; n < MAX_HOGS && vmstat_val("oom_kill") == oom0; n++)
		holder_fill(&hogs[n], node, hog_bytes, 500);
	all[0] = keep;
	for (int i = 0; i < n; i++)
		all[i + 1] = &hogs[i];
	holders_wait_exits(all, n + 1, vmstat_val("oom_kill") - oom0, 120);
	return n;
}

/* The largest (@largest) or smallest CDM node by free memory. */
static int cdm_node_by_free(FIXTURE_DATA(iso) *self, bool largest)
{
	int best = self->cdm[0];

	for (int i = 1; i < self->ncdm; i++) {
		long f = node_meminfo_kb(self->cdm[i], "MemFree");
		long b = node_meminfo_kb(best, "MemFree");

		if (largest ? f > b : f < b)
			best = self->cdm[i];
	}
	return best;
}

/*
 * System RAM runs out because of RAM-only hogs, each smaller than a device
 * job that holds most of a CDM node and nothing in RAM.  Killing the device
 * job would free no RAM: a hog must be the victim, the device job must
 * survive with its data and its pages where they were.
 */
TEST_F_TIMEOUT(iso, oom_ram_spares_device_job, 600)
{
	int node = cdm_node_by_free(self, true);
	size_t dev = (size_t)node_meminfo_kb(node, "MemFree") * KiB * 6 / 10;
	struct holder job, hogs[MAX_HOGS];
	struct oom_quiet q;
	char first[256];
	int n, killed = 0;
	long oom0;

	dev &= ~(HOLDER_CHUNK - 1);
	oom_quiet_begin(&q);
	ASSERT_TRUE(holder_fill(&job, node, dev, 500))
		TH_LOG("device job could not place %zu MiB on node %d",
		       dev / MiB, node);
	oom0 = vmstat_val("oom_kill");
	n = hogs_until_oom(hogs, -1, dev / 2, &job, oom0);
	for (int i = 0; i < n; i++)
		killed += holder_killed(&hogs[i]);
	holder_finish(&job, true);
	for (int i = 0; i < n; i++)
		holder_finish(&hogs[i], false);
	ASSERT_EQ(0, oom_quiet_end(&q, first, sizeof(first)))
		TH_LOG("kernel report: %s", first);
	TH_LOG("device job %zu MiB on node %d; %d RAM hogs of %zu MiB, %d OOM-killed; oom_kill +%ld; device job %s (status 0x%x)",
	       dev / MiB, node, n, dev / 2 / MiB, killed,
	       vmstat_val("oom_kill") - oom0,
	       holder_killed(&job) ? "OOM-killed" : "alive", job.status);
	ASSERT_LT(oom0, vmstat_val("oom_kill"))
		TH_LOG("RAM never ran out: the case proves nothing");
	ASSERT_LE(1, killed);
	/* alive until asked, data intact, every page still on its node */
	ASSERT_TRUE(WIFEXITED(job.status));
	ASSERT_EQ(0, WEXITSTATUS(job.status));
}

/*
 * A CDM node runs out under tasks bound to it while a RAM-only bystander
 * holds more memory than any of them.  Killing the bystander would free
 * nothing on the node: one of the bound tasks must be the victim, the
 * bystander must survive with its data.
 */
TEST_F_TIMEOUT(iso, oom_cdm_spares_ram_bystander, 600)
{
	int node = cdm_node_by_free(self, false);
	long node_free = node_meminfo_kb(node, "MemFree");
	size_t hog = (size_t)node_free * KiB * 45 / 100;
	size_t by = (size_t)node_meminfo_kb(self->ram[0], "MemFree") * KiB * 4 / 10;
	struct holder bystander, hogs[MAX_HOGS];
	struct oom_quiet q;
	char first[256];
	int n, killed = 0;
	long oom0;

	hog &= ~(HOLDER_CHUNK - 1);
	by &= ~(HOLDER_CHUNK - 1);
	ASSERT_LT(hog, by) TH_LOG("RAM too small for a bystander larger than a hog");
	oom_quiet_begin(&q);
	ASSERT_TRUE(holder_fill(&bystander, -1, by, 500));
	oom0 = vmstat_val("oom_kill");
	n = hogs_until_oom(hogs, node, hog, &bystander, oom0);
	for (int i = 0; i < n; i++)
		killed += holder_killed(&hogs[i]);
	holder_finish(&bystander, true);
	for (int i = 0; i < n; i++)
		holder_finish(&hogs[i], false);
	ASSERT_EQ(0, oom_quiet_end(&q, first, sizeof(first)))
		TH_LOG("kernel report: %s", first);
	TH_LOG("bystander %zu MiB in RAM; %d hogs of %zu MiB bound to node %d (%ld kB free), %d OOM-killed; oom_kill +%ld; bystander %s (status 0x%x)",
	       by / MiB, n, hog / MiB, node, node_free, killed,
	       vmstat_val("oom_kill") - oom0,
	       holder_killed(&bystander) ? "OOM-killed" : "alive",
	       bystander.status);
	ASSERT_LT(oom0, vmstat_val("oom_kill"))
		TH_LOG("node %d never ran out: the case proves nothing", node);
	ASSERT_LE(1, killed);
	ASSERT_TRUE(WIFEXITED(bystander.status));
	ASSERT_EQ(0, WEXITSTATUS(bystander.status));
}

/*
 * What the system's memory totals do with device memory (issue 12, 3c;
 * the admin guide's "Accounting"): MemTotal and MemFree count it,
 * MemAvailable and the dirty limits do not (no new application and no
 * page cache can use it), CommitLimit and tmpfs's default size follow
 * MemTotal.
 */
TEST_F_TIMEOUT(iso, accounting_of_device_memory, 300)
{
	int node = cdm_node_by_free(self, true);
	size_t dev = (size_t)node_meminfo_kb(node, "MemFree") * KiB * 6 / 10;
	const size_t ram = 96 * MiB;
	long dev_kb, ram_kb, ratio, nodes_total = 0, hp;
	long avail0, thr0, free0, avail1, thr1, free1, avail2, thr2;
	struct holder job, hog;
	struct statvfs sv;
	int nodes[CDM_MAX_NODES], n;

	dev &= ~(HOLDER_CHUNK - 1);
	dev_kb = dev / KiB;
	ram_kb = ram / KiB;
	ASSERT_EQ(0, read_long("/proc/sys/vm/dirty_ratio", &ratio));
	ASSERT_LT(0, ratio) TH_LOG("vm.dirty_bytes is in use");

	/* MemTotal counts every node, device nodes included */
	n = mem_nodes(nodes, CDM_MAX_NODES);
	for (int i = 0; i < n; i++)
		nodes_total += node_meminfo_kb(nodes[i], "MemTotal");
	TH_LOG("MemTotal %ld kB, nodes' MemTotal summed %ld kB (%d nodes)",
	       meminfo_kb("MemTotal"), nodes_total, n);
	ASSERT_LE(labs(meminfo_kb("MemTotal") - nodes_total), DRIFT_KB);

	/* CommitLimit (overcommit_ratio of MemTotal less hugetlb) and
	 * tmpfs's default size (half of MemTotal) include device memory */
	hp = meminfo_kb("HugePages_Total") * meminfo_kb("Hugepagesize");
	{
		long r, limit;

		ASSERT_EQ(0, read_long("/proc/sys/vm/overcommit_ratio", &r));
		limit = (meminfo_kb("MemTotal") - hp) * r / 100 +
			meminfo_kb("SwapTotal");
		TH_LOG("CommitLimit %ld kB, expected %ld kB", meminfo_kb("CommitLimit"), limit);
		ASSERT_LE(labs(meminfo_kb("CommitLimit") - limit), limit / 100 + 4);
	}
	mkdir(TMPFS_DIR, 0755);
	ASSERT_EQ(0, mount("tmpfs", TMPFS_DIR, "tmpfs", 0, NULL));
	self->tmpfs = true;
	ASSERT_EQ(0, statvfs(TMPFS_DIR, &sv));
	TH_LOG("tmpfs default size %llu kB, MemTotal/2 %ld kB",
	       (unsigned long long)sv.f_blocks * sv.f_frsize / KiB,
	       meminfo_kb("MemTotal") / 2);
	ASSERT_LE(labs((long)(sv.f_blocks * sv.f_frsize / KiB) -
		       meminfo_kb("MemTotal") / 2), 8);

	/* a device job: MemFree drops, MemAvailable and the limits do not */
	write_str("/proc/sys/vm/drop_caches", "3");
	free0 = meminfo_kb("MemFree");
	avail0 = meminfo_kb("MemAvailable");
	thr0 = vmstat_val("nr_dirty_threshold") * 4;
	ASSERT_TRUE(holder_fill(&job, node, dev, 0));
	free1 = meminfo_kb("MemFree");
	avail1 = meminfo_kb("MemAvailable");
	thr1 = vmstat_val("nr_dirty_threshold") * 4;
	/* then a RAM job of a third of the size: both must see that */
	ASSERT_TRUE(holder_fill(&hog, -1, ram, 0));
	avail2 = meminfo_kb("MemAvailable");
	thr2 = vmstat_val("nr_dirty_threshold") * 4;
	holder_finish(&job, true);
	holder_finish(&hog, true);
	TH_LOG("device job %ld kB on node %d: MemFree %+ld kB, MemAvailable %+ld kB, dirty threshold %+ld kB (dirty_ratio %ld)",
	       dev_kb, node, free1 - free0, avail1 - avail0, thr1 - thr0, ratio);
	TH_LOG("RAM job %ld kB: MemAvailable %+ld kB, dirty threshold %+ld kB",
	       ram_kb, avail2 - avail1, thr2 - thr1);
	ASSERT_EQ(0, job.status);
	ASSERT_EQ(0, hog.status);
	ASSERT_GE(free0 - free1, dev_kb * 9 / 10);
	ASSERT_LT(labs(avail1 - avail0), dev_kb / 10);
	ASSERT_LT(labs(thr1 - thr0), dev_kb * ratio / 100 / 5);
	/*
	 * Most of a RAM job shows (88 of 96 MiB in the boot guest, where
	 * reclaim also moves page cache meanwhile); a device job's delta
	 * must stay below a tenth of its size.
	 */
	ASSERT_GE(avail1 - avail2, ram_kb * 3 / 4);
	ASSERT_GE(thr1 - thr2, ram_kb * ratio / 100 * 3 / 4);
}
