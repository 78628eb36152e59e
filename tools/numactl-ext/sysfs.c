// SPDX-License-Identifier: LGPL-2.1-only
/*
 * The sysfs and procfs file access of libnumacdm, shared with cdmctl.
 * See sysfs.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numacdm.h"
#include "sysfs.h"

static int vpath(char *out, size_t len, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static int vpath(char *out, size_t len, const char *fmt, va_list ap)
{
	char rel[PATH_MAX];
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);

	if (n >= 0 && (size_t)n < sizeof(rel))
		n = snprintf(out, len, "%s%s", numacdm_sysfs_root(), rel);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* The path array @path from the (@fmt, ...) arguments of the caller. */
#define FORMAT_PATH(path, fmt) ({					\
	va_list __ap;							\
	int __r;							\
									\
	va_start(__ap, fmt);						\
	__r = vpath(path, sizeof(path), fmt, __ap);			\
	va_end(__ap);							\
	__r;								\
})

int cdm_sysfs_path(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vpath(out, len, fmt, ap);
	va_end(ap);
	return r;
}

static int read_path(const char *path, char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;
	int fd, e;

	if (!len) {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (off + 1 < len) {
		n = read(fd, buf + off, len - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (!n)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	while (off && isspace((unsigned char)buf[off - 1]))
		buf[--off] = '\0';
	return (int)off;
}

int cdm_sysfs_read(char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];

	if (FORMAT_PATH(path, fmt))
		return -1;
	return read_path(path, buf, len);
}

int cdm_parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -1;
	*v = x;
	return 0;
}

int cdm_sysfs_read_u64(uint64_t *v, const char *fmt, ...)
{
	char path[PATH_MAX], buf[64];

	if (FORMAT_PATH(path, fmt) || read_path(path, buf, sizeof(buf)) < 0)
		return -1;
	if (cdm_parse_u64(buf, v)) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int cdm_sysfs_write(const char *val, const char *fmt, ...)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, e;

	if (FORMAT_PATH(path, fmt))
		return -1;
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do
		n = write(fd, val, strlen(val));
	while (n < 0 && errno == EINTR);
	e = errno;
	if (close(fd) && n >= 0) {
		e = errno;
		n = -1;
	}
	errno = e;
	return n < 0 ? -1 : 0;
}
