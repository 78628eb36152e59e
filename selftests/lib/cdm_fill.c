// SPDX-License-Identifier: GPL-2.0
/*
 * cdm selftest library: child processes: commands, memory fills, the CDM free-memory watcher.
 * See cdm_fill.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>


#include "cdm_lib.h"

/* ---------------------------------------------------------------- processes */

pid_t fork_kid(void)
{
	pid_t parent = getpid();
	pid_t c = fork();

	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return c;
}

int set_oom_adj(int v)
{
	return write_long("/proc/self/oom_score_adj", v);
}

bool kernel_has_kasan(void)
{
	static int known = -1;
	char line[256];
	FILE *f;

	if (known >= 0)
		return known;
	known = 0;
	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return false;
	while (!known && fgets(line, sizeof(line), f))
		known = strstr(line, " __asan_load8") != NULL;
	fclose(f);
	return known;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_child(pid_t pid, int *st, int timeout_s)
{
	uint64_t end = now_ms() + (uint64_t)timeout_s * 1000;

	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

int run_cmd(char *const argv[], char *out, size_t outlen, int timeout_s)
{
	int pfd[2], st = 0;
	size_t tot = 0;
	pid_t pid;
	uint64_t end;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork_kid();
	if (pid < 0)
		return -1;
	if (!pid) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execv(argv[0], argv);
		fprintf(stderr, "execv %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	end = now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int left = (int)(end - now_ms());
		char tmp[4096];
		ssize_t n;

		if (now_ms() >= end || poll(&p, 1, left > 0 ? left : 0) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(pfd[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && tot + 1 < outlen) {
			size_t c = (size_t)n < outlen - 1 - tot ? (size_t)n :
				   outlen - 1 - tot;
			memcpy(out + tot, tmp, c);
			tot += c;
		}
	}
	if (out && outlen)
		out[tot] = 0;
	close(pfd[0]);
	if (wait_child(pid, &st, timeout_s + 5)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static void report(int fd, struct fill_report *r)
{
	if (write(fd, r, sizeof(*r)) != sizeof(*r))
		_exit(3);
}

/* Node 0's free memory is below its low watermarks (o->stop_at_low) */
static bool node0_below_low(const struct fill_opts *o)
{
	long fr, lo;

	node_zone_free_low(0, o->stop_at_low == 1, &fr, &lo);
	return fr < lo;
}

pid_t fill_start(const struct fill_opts *o, int *rfd)
{
	bool stop = false;
	char *wbuf;
	int pfd[2], ffd;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork_kid();
	if (pid < 0)
		return -1;
	if (pid) {
		close(pfd[1]);
		*rfd = pfd[0];
		return pid;
	}
	/* child */
	close(pfd[0]);
	ffd = -1;
	wbuf = NULL;
	set_oom_adj(1000);
	if (o->mode >= 0 && set_policy_nodes(o->mode, o->nodes, o->nnodes)) {
		struct fill_report r = { .chunk = -2, .err = errno };

		report(pfd[1], &r);
		_exit(2);
	}
	if (o->file_dir) {
		char path[256];

		snprintf(path, sizeof(path), "%s/fill.%d", o->file_dir, getpid());
		ffd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (ffd < 0 || unlink(path)) {
			struct fill_report r = { .chunk = -2, .err = errno };

			report(pfd[1], &r);
			_exit(2);
		}
		wbuf = map_anon(o->chunk);
		if (!wbuf)
			_exit(2);
		memset(wbuf, 0x5a, o->chunk);
	}
	for (long i = 0; (size_t)i * o->chunk < o->max_bytes; i++) {
		struct fill_report r = { .chunk = i };
		long c[CDM_MAX_NODES], e;
		size_t qlen = o->chunk;
		char *p;

		if (ffd >= 0) {
			size_t done = 0;

			/* 1 MiB at a time, watching node 0's free memory */
			while (done < o->chunk) {
				size_t w = o->chunk - done < MiB ?
					   o->chunk - done : MiB;
				ssize_t n;

				if (o->stop_at_low && node0_below_low(o)) {
					stop = true;
					break;
				}
				n = write(ffd, wbuf + done, w);
				if (n <= 0) {
					r.err = n < 0 ? errno : ENOSPC;
					report(pfd[1], &r);
					_exit(1);
				}
				done += n;
			}
			qlen = done & ~(PAGE_SZ - 1);
			if (!qlen) {	/* stopped before this chunk began */
				r.stopped_low = stop;
				report(pfd[1], &r);
				break;
			}
			p = mmap(NULL, qlen, PROT_READ, MAP_SHARED, ffd,
				 (off_t)i * o->chunk);
			if (p == MAP_FAILED)
				p = NULL;
		} else {
			p = o->thp ? map_anon_aligned(o->chunk, HPAGE_SZ) :
				     map_anon(o->chunk);
		}
		if (!p) {
			r.err = errno ? errno : ENOMEM;
			report(pfd[1], &r);
			_exit(1);
		}
		if (ffd >= 0) {
			/* map the page cache just written, to ask its node */
			for (size_t off = 0; off < qlen; off += PAGE_SZ)
				(void)((volatile char *)p)[off];
		}
		if (o->thp)
			madvise(p, o->chunk, MADV_HUGEPAGE);
		if (ffd < 0 && !o->stop_at_low)
			touch_pages(p, o->chunk);
		if (ffd < 0 && o->stop_at_low) {
			/* 1 MiB at a time, as for a file */
			for (qlen = 0; qlen < o->chunk; qlen += MiB) {
				if (node0_below_low(o)) {
					stop = true;
					break;
				}
				touch_pages(p + qlen, o->chunk - qlen < MiB ?
						      o->chunk - qlen : MiB);
			}
			if (qlen > o->chunk)
				qlen = o->chunk;
			if (!qlen) {
				munmap(p, o->chunk);
				r.stopped_low = stop;
				report(pfd[1], &r);
				break;
			}
		}
		r.pages = page_nodes(p, qlen, c, &e);
		if (r.pages < 0) {
			r.err = (int)-r.pages;
			report(pfd[1], &r);
			_exit(1);
		}
		for (int n = 0; n < 4; n++)
			r.nodes[n] = c[n];
		for (int n = 0; n < CDM_MAX_NODES; n++)
			if (c[n] && node_is_cdm(n))
				r.on_cdm += c[n];
		r.node0_free_kb = node_meminfo_kb(0, "MemFree");
		if (ffd >= 0)
			munmap(p, qlen);
		r.stopped_low = stop;
		report(pfd[1], &r);
		if (stop)
			break;
	}
	{
		struct fill_report r = { .chunk = -1 };

		report(pfd[1], &r);
	}
	if (o->keep)
		for (;;)
			pause();
	_exit(0);
}

void fill_collect(int rfd, struct fill_result *r)
{
	struct fill_report rep;
	long prev_free_kb = -1;

	memset(r, 0, sizeof(*r));
	r->first_cdm_chunk = -1;
	r->min_node0_free_kb = -1;
	r->node0_free_before_first_cdm = -1;
	while (read(rfd, &rep, sizeof(rep)) == sizeof(rep)) {
		if (rep.chunk == -1)
			break;
		if (rep.chunk == -2) {
			r->err = rep.err;
			break;
		}
		if (rep.err) {
			r->err = rep.err;
			continue;
		}
		r->chunks++;
		r->stopped_low |= rep.stopped_low;
		r->pages += rep.pages;
		r->on_cdm += rep.on_cdm;
		for (int n = 0; n < 4; n++)
			r->nodes[n] += rep.nodes[n];
		if (rep.on_cdm && r->first_cdm_chunk < 0) {
			r->first_cdm_chunk = rep.chunk;
			r->node0_free_at_first_cdm = rep.node0_free_kb;
			r->node0_free_before_first_cdm = prev_free_kb;
		}
		prev_free_kb = rep.node0_free_kb;
		if (r->min_node0_free_kb < 0 ||
		    rep.node0_free_kb < r->min_node0_free_kb)
			r->min_node0_free_kb = rep.node0_free_kb;
	}
}

int fill_run(const struct fill_opts *o, struct fill_result *r, int timeout_s)
{
	int rfd, st = 0;
	pid_t pid = fill_start(o, &rfd);

	if (pid < 0)
		return -errno;
	fill_collect(rfd, r);
	close(rfd);
	if (o->keep)
		kill(pid, SIGKILL);
	if (wait_child(pid, &st, timeout_s)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		r->status = st;
		return -ETIMEDOUT;
	}
	r->status = st;
	r->oom_killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !o->keep;
	return 0;
}

/*
 * MemFree of an open nodeN/meminfo, read again from offset 0.  The watcher
 * samples while a fill drives RAM to OOM: opening the file for every sample
 * allocated kernel memory each time, and such an allocation, made between
 * an OOM kill and the victim's exit, started a second OOM that killed the
 * guest's command shell (make check "did not run").  A file kept open is
 * re-read into the buffer it already has.
 */
static long free_kb_of(int fd)
{
	char buf[4096], *p;
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "MemFree:");
	return p ? strtol(p + strlen("MemFree:"), NULL, 10) : -1;
}

static int open_meminfo(int nid)
{
	char path[128];

	snprintf(path, sizeof(path), NODE_SYS "/node%d/meminfo", nid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void *watch_fn(void *arg)
{
	struct cdm_watch *w = arg;

	while (!w->stop) {
		for (int i = 0; i < w->n; i++) {
			long f = free_kb_of(w->fd[i]);

			if (f >= 0 && f < w->min_free[i])
				w->min_free[i] = f;
		}
		{
			long f = free_kb_of(w->fd0);

			if (f >= 0 && (w->min_node0_free < 0 ||
				       f < w->min_node0_free))
				w->min_node0_free = f;
		}
		usleep(5000);
	}
	return NULL;
}

void watch_start(struct cdm_watch *w)
{
	pthread_t t;

	memset(w, 0, sizeof(*w));
	w->n = cdm_mem_nodes(w->nodes, CDM_MAX_NODES);
	for (int i = 0; i < w->n; i++) {
		w->fd[i] = open_meminfo(w->nodes[i]);
		w->base_free[i] = free_kb_of(w->fd[i]);
		w->min_free[i] = w->base_free[i];
	}
	w->fd0 = open_meminfo(0);
	w->min_node0_free = -1;
	pthread_create(&t, NULL, watch_fn, w);
	w->tid = (unsigned long)t;
}

void watch_stop(struct cdm_watch *w)
{
	w->stop = 1;
	pthread_join((pthread_t)w->tid, NULL);
	for (int i = 0; i < w->n; i++)
		if (w->fd[i] >= 0)
			close(w->fd[i]);
	if (w->fd0 >= 0)
		close(w->fd0);
}

long watch_max_drop(const struct cdm_watch *w)
{
	long m = 0;

	for (int i = 0; i < w->n; i++)
		if (w->base_free[i] - w->min_free[i] > m)
			m = w->base_free[i] - w->min_free[i];
	return m;
}
