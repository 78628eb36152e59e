// SPDX-License-Identifier: GPL-2.0
/*
 * cdmbench - the guest side of `make bench`.
 *
 * Every subcommand prints one "KEY VALUE" line per sample on stdout (times
 * in nanoseconds of guest CLOCK_MONOTONIC, which under QEMU -icount follows
 * the instructions executed); scripts/bench collects them.
 *
 *   cdmbench fault4k MIB REPS     mmap + touch every 4 KiB page + munmap
 *   cdmbench faultthp MIB REPS    the same, MADV_HUGEPAGE (2 MiB faults)
 *   cdmbench fork COUNT REPS      COUNT x (fork, child _exit, wait), the
 *                                 parent holding 16 MiB of touched memory
 *   cdmbench tmpfs MIB REPS       write MIB to a new /dev/shm file in 64 KiB
 *                                 writes, then unlink it
 *   cdmbench place NODE MIB REPS  first touch of MIB under MPOL_BIND to NODE
 *                                 and under the default policy, alternating
 *   cdmbench evac KIND NODE DEVDIR FILL REPS [WRITERS]
 *                                 fill NODE to FILL percent of its memory
 *                                 (FILL NNNm: NNN MiB, whatever its size)
 *                                 with KIND (anon4k, thp, shmem), time memcpy of
 *                                 as many bytes (and of rep movsb, the
 *                                 kernel's copy), then evacuate through
 *                                 DEVDIR/evacuate (written by a child that
 *                                 maps none of the data), check every page moved
 *                                 intact, bring the memory back through
 *                                 DEVDIR/online; WRITERS processes keep
 *                                 writing their own pages on NODE meanwhile
 *                                 (CDMBENCH_PROFILE set: the ftrace function
 *                                 profiler runs during the evacuation only)
 *   cdmbench tlbalias MIB REPS    rep movsb of MIB to 2 x MIB (rounded up to
 *                                 a power of two) further and to one page
 *                                 more: what aliasing in the emulator's TLB
 *                                 costs a copy (BENCHMARKS.md)
 *   cdmbench memsnap TAG          kernel memory counters, keys TAG_*
 *   cdmbench touch NODE MIB       one first touch of MIB, 4 KiB pages, under
 *                                 MPOL_BIND to NODE (-1: default policy);
 *                                 the workload of a function profile
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define HPAGE		(2UL << 20)
#define MIB		(1UL << 20)
#define WRITER_MIB	8UL

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	fprintf(stderr, "cdmbench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s)\n", strerror(e));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sample(const char *key, uint64_t value)
{
	printf("%s %llu\n", key, (unsigned long long)value);
	fflush(stdout);
}

static unsigned long arg_ul(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s)
		die("'%s' is not a number", s);
	return v;
}

/* An anonymous mapping; THP-aligned and advised when thp is set. */
static char *map_anon(size_t len, int thp)
{
	size_t span = thp ? len + HPAGE : len;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu", span);
	if (thp) {
		char *a = (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));

		if (a > p)
			munmap(p, a - p);
		if (a + len < p + span)
			munmap(a + len, p + span - (a + len));
		p = a;
	}
	if (madvise(p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise");
	return p;
}

static void bind_to(void *p, size_t len, int node)
{
	unsigned long mask[4] = { 0 };

	if (node < 0)
		return;
	mask[node / 64] = 1UL << (node % 64);
	if (mbind(p, len, MPOL_BIND, mask, 256, 0))
		die("mbind node %d", node);
}

static void touch(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		p[off] = 1;
}

static void bench_fault(size_t mib, unsigned long reps, int thp)
{
	size_t len = mib * MIB;

	for (unsigned long r = 0; r < reps; r++) {
		uint64_t t0 = now_ns();
		char *p = map_anon(len, thp);

		touch(p, len);
		munmap(p, len);
		sample(thp ? "fault_thp_ns" : "fault_4k_ns", now_ns() - t0);
	}
}

static void bench_fork(unsigned long count, unsigned long reps)
{
	size_t len = 16 * MIB;
	char *p = map_anon(len, 0);

	touch(p, len);
	for (unsigned long r = 0; r < reps; r++) {
		uint64_t t0 = now_ns();

		for (unsigned long i = 0; i < count; i++) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (!pid)
				_exit(0);
			if (waitpid(pid, NULL, 0) != pid)
				die("waitpid");
		}
		sample("fork_exit_ns", now_ns() - t0);
	}
	munmap(p, len);
}

static void bench_tmpfs(size_t mib, unsigned long reps)
{
	static char chunk[64 * 1024];
	const char *path = "/dev/shm/cdmbench.tmp";

	memset(chunk, 0x5a, sizeof(chunk));
	for (unsigned long r = 0; r < reps; r++) {
		uint64_t t0 = now_ns();
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

		if (fd < 0)
			die("open %s", path);
		for (size_t done = 0; done < mib * MIB; done += sizeof(chunk))
			if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
				die("write %s", path);
		close(fd);
		unlink(path);
		sample("tmpfs_write_ns", now_ns() - t0);
	}
}

static void bench_place(int node, size_t mib, unsigned long reps)
{
	size_t len = mib * MIB;

	/* Alternate so any drift over the run hits both sides alike. */
	for (unsigned long r = 0; r < reps; r++) {
		for (int bound = 0; bound < 2; bound++) {
			uint64_t t0 = now_ns();
			char *p = map_anon(len, 0);

			bind_to(p, len, bound ? node : -1);
			touch(p, len);
			munmap(p, len);
			sample(bound ? "place_bind_ns" : "place_default_ns", now_ns() - t0);
		}
	}
}

/* ---- evacuation ---- */

/*
 * The copy migration really runs: since 6.12 it copies every folio with
 * folio_mc_copy() -> copy_mc_to_kernel(), which on a CPU with ERMS (QEMU's
 * -cpu max has it) is copy_mc_enhanced_fast_string(), a rep movsb.  Under
 * -icount each iteration of a rep instruction counts as an instruction, so
 * a byte costs what glibc's memcpy pays for 32: this limit tells the copy
 * primitive apart from migration's own overhead.
 */
static void copy_movsb(void *dst, const void *src, size_t len)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
}

/*
 * A copy between two addresses a power of two apart (at least twice the
 * copy) and the same copy one page further: under TCG the first is ten times
 * slower (QEMU's TLB is direct-mapped), on hardware the two are alike.
 */
static void bench_tlbalias(unsigned long mib, unsigned long reps)
{
	size_t len = mib * MIB, dist = MIB;
	char *p;

	while (dist < 2 * len)
		dist <<= 1;
	p = map_anon(dist + len + PAGE, 0);
	memset(p, 1, dist + len + PAGE);
	for (unsigned long r = 0; r < reps; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		copy_movsb(p + dist, p, len);
		t1 = now_ns();
		copy_movsb(p + dist + PAGE, p, len);
		t2 = now_ns();
		sample("tlbalias_aliased_movsb_ns", t1 - t0);
		sample("tlbalias_offset_movsb_ns", t2 - t1);
	}
	sample("tlbalias_bytes", len);
	munmap(p, dist + len + PAGE);
}

static unsigned long node_meminfo_kb(int node, const char *field)
{
	char path[128], line[256], key[64];
	unsigned long v = 0, kb;
	int n;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	f = fopen(path, "r");
	if (!f)
		die("open %s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Node %d %63[^:]: %lu", &n, key, &kb) == 3 && !strcmp(key, field))
			v = kb;
	fclose(f);
	return v;
}

static unsigned long file_field(const char *path, const char *field)
{
	char line[256], key[64];
	unsigned long v = 0, val;
	FILE *f = fopen(path, "r");

	if (!f)
		die("open %s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^: ]%*[: ]%lu", key, &val) == 2 && !strcmp(key, field))
			v = val;
	fclose(f);
	return v;
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die("open %s", path);
	if (write(fd, text, strlen(text)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static uint64_t pattern(size_t page, unsigned long rep)
{
	return (page + 1) * 0x9e3779b97f4a7c15ULL ^ rep;
}

/* Pages of [p, p + len) per node: counts[node], and those on none. */
static void where(char *p, size_t len, long *on_node, int node, long *elsewhere)
{
	enum { BATCH = 4096 };
	void *pages[BATCH];
	int status[BATCH];
	size_t npages = len / PAGE;

	*on_node = *elsewhere = 0;
	for (size_t i = 0; i < npages; i += BATCH) {
		size_t n = npages - i < BATCH ? npages - i : BATCH;

		for (size_t j = 0; j < n; j++)
			pages[j] = p + (i + j) * PAGE;
		if (move_pages(0, n, pages, NULL, status, 0))
			die("move_pages");
		for (size_t j = 0; j < n; j++) {
			if (status[j] == node)
				(*on_node)++;
			else
				(*elsewhere)++;
		}
	}
}

/*
 * The process that starts an evacuation maps none of the data, like cdmctl
 * or a driver's remove path.  Were the data's owner to start it, the
 * owner's mm would be live on the evacuating CPU, and every folio a copy
 * worker unmaps on another CPU would cost that CPU a TLB-flush IPI; under
 * TCG each such flush also lets QEMU shrink the vCPU's softmmu TLB, after
 * which more 2 MiB copies alias (BENCHMARKS.md: "Aliasing in QEMU's TLB").
 * Forked before the data is mapped, the evacuator waits on a pipe and
 * sends back its result and its clock readings; the owner sleeps meanwhile.
 */
struct evacuator {
	pid_t pid;
	int go, done;			/* the owner's ends of the two pipes */
};

struct evacuation {
	int rc;
	uint64_t t0, t1;
};

static void evacuator_start(struct evacuator *e, const char *devdir)
{
	int go[2], done[2];

	if (pipe(go) || pipe(done))
		die("pipe");
	fflush(NULL);	/* a child that dies must not repeat buffered samples */
	e->pid = fork();
	if (e->pid < 0)
		die("fork");
	if (!e->pid) {
		struct evacuation r = { 0, 0, 0 };
		char c;

		close(go[1]);
		close(done[0]);
		if (read(go[0], &c, 1) != 1)
			_exit(0);	/* the owner gave up */
		r.t0 = now_ns();
		r.rc = write_file(devdir, "evacuate", "3600000");
		r.t1 = now_ns();
		_exit(write(done[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(go[0]);
	close(done[1]);
	e->go = go[1];
	e->done = done[0];
}

static struct evacuation evacuator_run(struct evacuator *e)
{
	struct evacuation r;

	if (write(e->go, "1", 1) != 1)
		die("evacuator: go");
	if (read(e->done, &r, sizeof(r)) != sizeof(r))
		die("evacuator: no result");
	if (waitpid(e->pid, NULL, 0) != e->pid)
		die("waitpid evacuator");
	close(e->go);
	close(e->done);
	return r;
}

/* A gap between two writer iterations this long is a stall: a fault, a
 * wait on a page under migration, or the scheduler; shorter ones are the
 * loop itself (about 0.1-1 us). */
#define STALL_MIN_NS	20000ULL
#define STALLS_MAX	8192

struct writer_state {
	_Atomic int phase;		/* 0 before, 1 during evacuation, 2 stop */
	_Atomic int ready;
	struct {
		uint64_t max_gap_before_ns;
		uint64_t max_gap_during_ns;
		uint64_t iterations;
		/* the stalls during the evacuation (the first STALLS_MAX) */
		uint64_t nstalls;
		uint64_t stall_ns[STALLS_MAX];
	} w[16];
};

/* A writer: stores into its own pages on the device node, one page per
 * iteration, and records the longest gap between iterations and every
 * stall during the evacuation. */
static void writer(struct writer_state *ws, int id, int node)
{
	size_t len = WRITER_MIB * MIB;
	char *p = map_anon(len, 0);
	uint64_t last, gap, max[2] = { 0, 0 }, iters = 0, nstalls = 0;
	size_t off = 0;
	int phase;

	bind_to(p, len, node);
	touch(p, len);
	atomic_fetch_add(&ws->ready, 1);
	last = now_ns();
	while ((phase = atomic_load(&ws->phase)) < 2) {
		uint64_t t;

		p[off]++;
		off = (off + PAGE) % len;
		t = now_ns();
		gap = t - last;
		last = t;
		if (gap > max[phase])
			max[phase] = gap;
		if (phase == 1 && gap >= STALL_MIN_NS) {
			if (nstalls < STALLS_MAX)
				ws->w[id].stall_ns[nstalls] = gap;
			nstalls++;
		}
		iters++;
	}
	ws->w[id].nstalls = nstalls;
	ws->w[id].max_gap_before_ns = max[0];
	ws->w[id].max_gap_during_ns = max[1];
	ws->w[id].iterations = iters;
	_exit(0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The distribution of one writer's stalls during an evacuation: how many,
 * and their 50th, 90th and 99th percentiles (nearest rank). */
static void stall_percentiles(uint64_t *stall_ns, uint64_t nstalls,
			      unsigned long nwriters)
{
	static const unsigned int pct[] = { 50, 90, 99 };
	uint64_t n = nstalls < STALLS_MAX ? nstalls : STALLS_MAX;
	char key[64];

	snprintf(key, sizeof(key), "stalls_w%lu_count", nwriters);
	sample(key, nstalls);
	if (!n)
		return;
	qsort(stall_ns, n, sizeof(*stall_ns), cmp_u64);
	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
		uint64_t rank = (n * pct[i] + 99) / 100;

		snprintf(key, sizeof(key), "stalls_w%lu_p%u_ns", nwriters, pct[i]);
		sample(key, stall_ns[rank ? rank - 1 : 0]);
	}
}

static const char *const vmstat_keys[] = {
	"pgmigrate_success", "pgmigrate_fail", "thp_migration_success",
	"thp_migration_fail", "thp_migration_split", "cdm_pages_evacuated",
	"compact_isolated", NULL,
};

static void bench_evac(const char *kind, int node, const char *devdir,
		       const char *fill, unsigned long reps, unsigned long nwriters)
{
	size_t fill_len = strlen(fill);
	/* "NNNm": NNN MiB; else a percentage of the node */
	int fill_mib = fill_len > 1 && fill[fill_len - 1] == 'm';
	char amount[32];
	unsigned long percent;
	int thp = !strcmp(kind, "thp"), shm = !strcmp(kind, "shmem");
	/* Profile the evacuation alone (bench/guest-run reads the result). */
	int profile = getenv("CDMBENCH_PROFILE") != NULL;

	if (!thp && !shm && strcmp(kind, "anon4k"))
		die("unknown kind %s", kind);
	if (nwriters > 16)
		die("at most 16 writers");
	if (fill_len >= sizeof(amount))
		die("'%s' is not an amount", fill);
	memcpy(amount, fill, fill_len + 1);
	if (fill_mib)
		amount[fill_len - 1] = 0;
	percent = arg_ul(amount);
	for (unsigned long r = 0; r < reps; r++) {
		unsigned long total_kb, before[8], after[8];
		struct writer_state *ws;
		struct evacuator evacuator;
		struct evacuation evacuation;
		pid_t pids[16];
		size_t len, npages;
		char key[96], *p;
		long on, off;
		int fd = -1, rc;
		uint64_t t0, t1;

		total_kb = node_meminfo_kb(node, "MemTotal");
		if (!total_kb) {
			if ((rc = write_file(devdir, "online", "1")))
				die("online %s: %d", devdir, rc);
			total_kb = node_meminfo_kb(node, "MemTotal");
		}
		len = fill_mib ? percent * MIB : total_kb * 1024 * percent / 100;
		len = (len - nwriters * WRITER_MIB * MIB) & ~(HPAGE - 1);
		npages = len / PAGE;
		ws = mmap(NULL, sizeof(*ws), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (ws == MAP_FAILED)
			die("mmap");
		memset(ws, 0, sizeof(*ws));
		evacuator_start(&evacuator, devdir);

		/* Fill. */
		if (shm) {
			fd = memfd_create("cdmbench", 0);
			if (fd < 0 || ftruncate(fd, len))
				die("memfd %zu", len);
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED)
				die("mmap memfd");
		} else {
			p = map_anon(len, thp);
		}
		/* The writers write their own pages, and map none of these. */
		if (madvise(p, len, MADV_DONTFORK))
			die("madvise DONTFORK");
		bind_to(p, len, node);
		t0 = now_ns();
		for (size_t i = 0; i < npages; i++)
			*(uint64_t *)(p + i * PAGE) = pattern(i, r);
		t1 = now_ns();
		snprintf(key, sizeof(key), "fill_%s_ns", kind);
		sample(key, t1 - t0);
		where(p, len, &on, node, &off);
		if (off)
			fprintf(stderr, "cdmbench: %ld of %zu pages not on node %d after the fill\n",
				off, npages, node);
		snprintf(key, sizeof(key), "evac_%s_bytes", kind);
		sample(key, len);
		snprintf(key, sizeof(key), "evac_%s_thp_before", kind);
		sample(key, file_field("/proc/self/smaps_rollup", "AnonHugePages") / 2048);

		/*
		 * The physical limit: one memcpy of as many bytes off the node.
		 * The copy goes one page past the start of its mapping: QEMU's
		 * softmmu TLB is direct-mapped, and a source and destination
		 * whose addresses differ by a multiple of its reach evict each
		 * other's entry at every access, which makes a copy under TCG
		 * ten times slower (BENCHMARKS.md: "Aliasing in QEMU's TLB").
		 */
		if (!nwriters) {
			char *map = map_anon(len + HPAGE, thp), *dst = map + PAGE;

			memset(dst, 0, len);
			t0 = now_ns();
			memcpy(dst, p, len);
			t1 = now_ns();
			snprintf(key, sizeof(key), "memcpy_%s_ns", kind);
			sample(key, t1 - t0);
			t0 = now_ns();
			copy_movsb(dst, p, len);
			t1 = now_ns();
			snprintf(key, sizeof(key), "movsb_%s_ns", kind);
			sample(key, t1 - t0);
			munmap(map, len + HPAGE);
		}

		for (unsigned long w = 0; w < nwriters; w++) {
			pids[w] = fork();
			if (pids[w] < 0)
				die("fork");
			if (!pids[w])
				writer(ws, (int)w, node);
		}
		while (atomic_load(&ws->ready) < (int)nwriters)
			usleep(1000);
		/* Writers' baseline: the gaps they see without an evacuation. */
		if (nwriters)
			usleep(500 * 1000);

		for (int i = 0; vmstat_keys[i]; i++)
			before[i] = file_field("/proc/vmstat", vmstat_keys[i]);
		atomic_store(&ws->phase, 1);
		if (profile)
			write_file("/sys/kernel/tracing", "function_profile_enabled", "1");
		evacuation = evacuator_run(&evacuator);
		rc = evacuation.rc;
		t0 = evacuation.t0;
		t1 = evacuation.t1;
		if (profile)
			write_file("/sys/kernel/tracing", "function_profile_enabled", "0");
		atomic_store(&ws->phase, 2);
		if (rc)
			die("evacuate %s: %d", devdir, rc);
		for (int i = 0; vmstat_keys[i]; i++)
			after[i] = file_field("/proc/vmstat", vmstat_keys[i]);
		if (nwriters)
			snprintf(key, sizeof(key), "evac_%s_w%lu_ns", kind, nwriters);
		else
			snprintf(key, sizeof(key), "evac_%s_ns", kind);
		sample(key, t1 - t0);
		for (int i = 0; vmstat_keys[i]; i++) {
			snprintf(key, sizeof(key), "evac_%s_%s", kind, vmstat_keys[i]);
			sample(key, after[i] - before[i]);
		}

		for (unsigned long w = 0; w < nwriters; w++) {
			if (waitpid(pids[w], NULL, 0) != pids[w])
				die("waitpid");
			snprintf(key, sizeof(key), "stall_w%lu_before_ns", nwriters);
			sample(key, ws->w[w].max_gap_before_ns);
			snprintf(key, sizeof(key), "stall_w%lu_during_ns", nwriters);
			sample(key, ws->w[w].max_gap_during_ns);
			stall_percentiles(ws->w[w].stall_ns, ws->w[w].nstalls,
					  nwriters);
		}

		/* Every page left the node and kept its contents. */
		snprintf(key, sizeof(key), "evac_%s_thp_after", kind);
		sample(key, file_field("/proc/self/smaps_rollup", "AnonHugePages") / 2048);
		where(p, len, &on, node, &off);
		snprintf(key, sizeof(key), "evac_%s_pages_left_on_node", kind);
		sample(key, (uint64_t)on);
		{
			uint64_t bad = 0;

			for (size_t i = 0; i < npages; i++)
				bad += *(uint64_t *)(p + i * PAGE) != pattern(i, r);
			snprintf(key, sizeof(key), "evac_%s_pages_corrupt", kind);
			sample(key, bad);
		}
		munmap(p, len);
		if (fd >= 0)
			close(fd);
		munmap(ws, sizeof(*ws));
		if ((rc = write_file(devdir, "online", "1")))
			die("online %s: %d", devdir, rc);
	}
}

static void memsnap(const char *tag)
{
	static const char *const meminfo[] = {
		"MemTotal", "MemFree", "Slab", "SUnreclaim", "PageTables", "Percpu",
		"KernelStack", "VmallocUsed", NULL,
	};
	char key[96];

	for (int i = 0; meminfo[i]; i++) {
		snprintf(key, sizeof(key), "%s_%s_kb", tag, meminfo[i]);
		sample(key, file_field("/proc/meminfo", meminfo[i]));
	}
	snprintf(key, sizeof(key), "%s_node0_MemFree_kb", tag);
	sample(key, node_meminfo_kb(0, "MemFree"));
	snprintf(key, sizeof(key), "%s_nr_memmap_pages", tag);
	sample(key, file_field("/proc/vmstat", "nr_memmap_pages"));
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "fault4k") && argc == 4)
		bench_fault(arg_ul(argv[2]), arg_ul(argv[3]), 0);
	else if (!strcmp(cmd, "faultthp") && argc == 4)
		bench_fault(arg_ul(argv[2]), arg_ul(argv[3]), 1);
	else if (!strcmp(cmd, "fork") && argc == 4)
		bench_fork(arg_ul(argv[2]), arg_ul(argv[3]));
	else if (!strcmp(cmd, "tmpfs") && argc == 4)
		bench_tmpfs(arg_ul(argv[2]), arg_ul(argv[3]));
	else if (!strcmp(cmd, "place") && argc == 5)
		bench_place((int)arg_ul(argv[2]), arg_ul(argv[3]), arg_ul(argv[4]));
	else if (!strcmp(cmd, "evac") && (argc == 7 || argc == 8))
		bench_evac(argv[2], (int)arg_ul(argv[3]), argv[4], argv[5],
			   arg_ul(argv[6]), argc == 8 ? arg_ul(argv[7]) : 0);
	else if (!strcmp(cmd, "touch") && argc == 4) {
		size_t len = arg_ul(argv[3]) * MIB;
		char *p = map_anon(len, 0);

		bind_to(p, len, atoi(argv[2]));
		touch(p, len);
		munmap(p, len);
	} else if (!strcmp(cmd, "tlbalias") && argc == 4)
		bench_tlbalias(arg_ul(argv[2]), arg_ul(argv[3]));
	else if (!strcmp(cmd, "memsnap") && argc == 3)
		memsnap(argv[2]);
	else {
		fprintf(stderr, "usage: see the comment at the top of bench/cdmbench.c\n");
		return 2;
	}
	return 0;
}
