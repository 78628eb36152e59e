// SPDX-License-Identifier: GPL-2.0
/*
 * cdm selftest library: modules, debugfs and the kernel log (reports, OOM).
 * See cdm_kmsg.h.
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

/* ---------------------------------------------------------------- modules */

int load_module(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = syscall(SYS_finit_module, fd, params ? params : "", 0);
	r = r ? -errno : 0;
	close(fd);
	return r;
}

int unload_module(const char *name)
{
	for (int i = 0; i < 100; i++) {
		if (!syscall(SYS_delete_module, name, O_NONBLOCK))
			return 0;
		if (errno != EAGAIN && errno != EBUSY)
			return -errno;
		usleep(50000);
	}
	return -EBUSY;
}

bool module_loaded(const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/module/%s/initstate", name);
	return path_exists(p);
}

int ensure_debugfs(void)
{
	if (path_exists("/sys/kernel/debug/.") &&
	    path_exists("/sys/kernel/debug/bdi"))
		return 0;
	if (mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) &&
	    errno != EBUSY)
		return -errno;
	return 0;
}

int test_kmod_ready(void)
{
	int r = ensure_debugfs();

	if (r)
		return r;
	if (path_exists(TEST_DBG "/alloc"))
		return 0;
	r = load_module(TEST_KO, "");
	if (r && r != -EEXIST)
		return r;
	return path_exists(TEST_DBG "/alloc") ? 0 : -ENOENT;
}

int test_kmod_pin(void *addr, int n, bool longterm, int *first_node)
{
	char cmd[64], buf[64];
	int pinned = -1, node = -1, r;

	write_str(TEST_DBG "/pin", "unpin");
	snprintf(cmd, sizeof(cmd), "%lx %d%s", (unsigned long)addr, n,
		 longterm ? " longterm" : "");
	r = write_str(TEST_DBG "/pin", cmd);
	if (r)
		return r;
	r = read_str(TEST_DBG "/pin", buf, sizeof(buf));
	if (r < 0)
		return r;
	if (sscanf(buf, "%d %d", &pinned, &node) < 1)
		return -EIO;
	if (first_node)
		*first_node = node;
	return pinned;
}

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

int kmsg_reports(int fd, char *first, size_t len)
{
	static const char *const pat[] = {
		"WARNING:", "BUG:", "Oops", "Call Trace", "lockdep", "KASAN",
		"UBSAN", "kernel BUG", "general protection", "possible recursive",
		"circular locking", "page allocation failure",
	};
	char rec[8192];
	bool in_oom = false;
	int n = 0;

	if (first && len)
		first[0] = 0;
	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t r = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (r < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		rec[r] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		/* an OOM kill the test provoked dumps a stack: not a report */
		if (strstr(msg, "invoked oom-killer")) {
			in_oom = true;
			continue;
		}
		if (in_oom) {
			if (strstr(msg, "Out of memory") || strstr(msg, "oom-kill:"))
				in_oom = false;
			continue;
		}
		for (size_t i = 0; i < sizeof(pat) / sizeof(pat[0]); i++) {
			if (strstr(msg, pat[i])) {
				if (!n && first)
					snprintf(first, len, "%s", msg);
				n++;
				break;
			}
		}
	}
	return n;
}

/* ---------------------------------------------------------------- OOM */

int oom_quiet_begin(struct oom_quiet *q)
{
	char buf[64];

	q->saved = -1;
	q->kfd = kmsg_open();
	(void)buf;
	return 0;
}

int oom_quiet_end(struct oom_quiet *q, char *first, size_t len)
{
	int n = kmsg_reports(q->kfd, first, len);

	if (q->kfd >= 0)
		close(q->kfd);
	q->kfd = -1;
	return n;
}

/*
 * Read /dev/kmsg from @fd (non-blocking) until a record contains @needle;
 * 0, or -ETIMEDOUT after @timeout_ms.
 */
int kmsg_wait_for(int fd, const char *needle, int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	char rec[2048];

	while (now_ms() < end) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n > 0) {
			rec[n] = '\0';
			if (strstr(rec, needle))
				return 0;
		} else if (n < 0 && errno == EAGAIN) {
			usleep(100000);
		}
	}
	return -ETIMEDOUT;
}

int kmsg_boot_log(void (*fn)(const char *msg, void *arg), void *arg)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	bool first = true;
	char rec[8192];

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r = read(fd, rec, sizeof(rec) - 1);
		unsigned long long seq;
		char *msg, *nl;

		if (r <= 0) {
			/* EAGAIN: the end; EPIPE: records were lost */
			r = r < 0 && errno == EPIPE ? -ENODATA : 0;
			close(fd);
			return r;
		}
		rec[r] = 0;
		/* "prio,seq,usec,flags;text\n" (then continuation lines) */
		if (first) {
			first = false;
			if (sscanf(rec, "%*u,%llu,", &seq) != 1 || seq != 0) {
				close(fd);
				return -ENODATA;
			}
		}
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
		fn(msg, arg);
	}
}
