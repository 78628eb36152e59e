/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The sysfs and procfs file access of libnumacdm, shared with cdmctl.
 *
 * Internal: not installed and not exported from libnumacdm.so (hidden
 * visibility).  cdmctl links the static library and uses these, so both
 * read the kernel's files one way.  Every path is a printf format of a
 * path below numacdm_sysfs_root(); every function returns -1 with errno
 * set on failure (ENAMETOOLONG for a path that does not fit, EPROTO for a
 * file that does not hold what was expected).
 */
#ifndef NUMACDM_SYSFS_H
#define NUMACDM_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#define NUMACDM_INTERNAL __attribute__((visibility("hidden")))

/* The full path of a file below the root; 0 or -1. */
NUMACDM_INTERNAL int cdm_sysfs_path(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Read a whole (small) file into @buf, NUL-terminated, trailing white space
 * removed.  Returns the length kept.
 */
NUMACDM_INTERNAL int cdm_sysfs_read(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Read a file that holds one unsigned decimal number. */
NUMACDM_INTERNAL int cdm_sysfs_read_u64(uint64_t *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Write @val to a file, as one write(2); 0, or -1 with the write's errno. */
NUMACDM_INTERNAL int cdm_sysfs_write(const char *val, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse an unsigned decimal number, white space around it allowed. */
NUMACDM_INTERNAL int cdm_parse_u64(const char *s, uint64_t *v);

#endif /* NUMACDM_SYSFS_H */
