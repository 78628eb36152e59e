// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl - ask the host (scripts/vm-run) to run a QEMU monitor command, e.g.
 *   vmctl device_del cdm1
 *   vmctl device_add ivshmem-plain,memdev=cdmmem1,id=cdm1
 * The request goes over the second serial port; the host answers with one
 * line "@ok TEXT" or "@err TEXT".  Exit status 0 on @ok, 1 on @err, 2 on a
 * local error.  QEMU's reply text is printed on stdout.
 *
 *   vmctl --next-test SEQ
 * asks make check's shared queue for the next selftest to run (guests
 * running in parallel take tests from one queue); prints its tests.list
 * line, or nothing when the queue is empty.  SEQ numbers the requests of
 * one guest: asked twice with the same SEQ (the first answer was lost),
 * the host repeats its answer instead of taking another test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define HOST_LINE "/dev/ttyS1"
#define REPLY_TIMEOUT_MS 120000
/* The host answers @next from a file at once; a longer wait is a lost line. */
#define NEXT_TEST_TIMEOUT_MS 30000

static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);

		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		if (read(fd, buf + n, 1) != 1)
			return -EIO;
		if (buf[n] == '\r')
			continue;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			/* Skip anything that is not a reply. */
			if (buf[0] == '@')
				return 0;
			n = 0;
			continue;
		}
		n++;
	}
	return -E2BIG;
}

int main(int argc, char **argv)
{
	char cmd[4096] = "@ctl", reply[8192];
	int timeout_ms = REPLY_TIMEOUT_MS;
	int first = 1;
	struct termios t;
	int fd, i, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: vmctl MONITOR-COMMAND [ARGS...]\n");
		return 2;
	}
	if (!strcmp(argv[1], "--next-test")) {
		if (argc != 3) {
			fprintf(stderr, "usage: vmctl --next-test SEQ\n");
			return 2;
		}
		strcpy(cmd, "@next");
		first = 2;
		timeout_ms = NEXT_TEST_TIMEOUT_MS;
	}
	for (i = first; i < argc; i++) {
		if (strlen(cmd) + strlen(argv[i]) + 3 > sizeof(cmd)) {
			fprintf(stderr, "vmctl: command too long\n");
			return 2;
		}
		strcat(cmd, " ");
		strcat(cmd, argv[i]);
	}
	strcat(cmd, "\n");

	fd = open(HOST_LINE, O_RDWR | O_NOCTTY);
	if (fd < 0) {
		perror("vmctl: " HOST_LINE);
		return 2;
	}
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	tcflush(fd, TCIFLUSH);
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		perror("vmctl: write");
		return 2;
	}
	ret = read_line(fd, reply, sizeof(reply), timeout_ms);
	close(fd);
	if (ret) {
		fprintf(stderr, "vmctl: no answer from the host: %s\n", strerror(-ret));
		return 2;
	}
	if (!strncmp(reply, "@ok", 3)) {
		if (reply[3])
			printf("%s\n", reply + 4);
		return 0;
	}
	fprintf(stderr, "vmctl: %s\n", reply[3] ? reply + 4 : "failed");
	return 1;
}
