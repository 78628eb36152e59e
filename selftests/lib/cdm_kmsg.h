/* SPDX-License-Identifier: GPL-2.0 */
/* cdm selftest library: modules, debugfs and the kernel log. */
#ifndef CDM_KMSG_H
#define CDM_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TEST_KO "/lib/modules/cdm/cdm_test_kmod.ko"
#define TEST_DBG "/sys/kernel/debug/cdm_test"

/* ---- modules, debugfs, kmsg ---- */
int load_module(const char *path, const char *params);	/* 0, -EEXIST ok */
int unload_module(const char *name);
bool module_loaded(const char *name);
int ensure_debugfs(void);
int test_kmod_ready(void);	/* loads cdm_test_kmod if needed */
/*
 * Drop the previous pin, then pin @n pages of this task from @addr (with
 * FOLL_LONGTERM if @longterm): pages pinned, or -errno.  The node of the
 * first pinned page goes to *@first_node when asked.  "unpin" drops it.
 */
int test_kmod_pin(void *addr, int n, bool longterm, int *first_node);
int kmsg_open(void);		/* positioned at the end */
/* count kernel report lines since open; copy the first into buf */
int kmsg_reports(int fd, char *first, size_t len);
/* read @fd until a record contains @needle: 0, or -ETIMEDOUT */
int kmsg_wait_for(int fd, const char *needle, int timeout_ms);
/*
 * Every message of the kernel log since boot, in order, to @fn (the text
 * after the record's prefix): 0, or -ENODATA when the ring buffer no
 * longer holds the boot's first records (the log wrapped; what it said
 * then cannot be checked), or -errno.
 */
int kmsg_boot_log(void (*fn)(const char *msg, void *arg), void *arg);

/*
 * A test that provokes the OOM killer on purpose scans /dev/kmsg for real
 * kernel reports (WARNING, BUG, ...) outside the OOM killer's own stack dump
 * ("invoked oom-killer" .. "Out of memory"), as scripts/check-console does.
 * end() returns the number of real reports.
 */
struct oom_quiet {
	int saved;
	int kfd;
};
int oom_quiet_begin(struct oom_quiet *q);
int oom_quiet_end(struct oom_quiet *q, char *first, size_t len);

#endif
