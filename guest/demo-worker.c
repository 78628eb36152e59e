// SPDX-License-Identifier: GPL-2.0
/*
 * demo-worker - the workload of the `make run` demo.
 *
 *   demo-worker MIB
 *
 * Allocates MIB MiB under whatever memory policy it was started with (e.g.
 * `numactl --membind=1 demo-worker 128`), fills it with a pattern, and
 * prints where its pages live and a checksum.  Then it keeps rewriting the
 * buffer (so it is live during an evacuation) and answers commands read
 * from stdin, one per line:
 *   where    print per-node residency of the buffer (move_pages)
 *   verify   check every byte against the pattern; print the result
 *   quit     exit (status 0 if every verify passed)
 */
#include <errno.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_NODES 64

static unsigned char *buf;
static size_t len, page_size;
static atomic_int stop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long rounds;

static unsigned char pattern(size_t i, unsigned long round)
{
	return (unsigned char)((i * 131 + (i >> 12) * 7 + round) & 0xff);
}

/* Rewrite the whole buffer with the next round's pattern, again and again. */
static void *writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&lock);
		rounds++;
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern(i, rounds);
		pthread_mutex_unlock(&lock);
		usleep(1000);
	}
	return NULL;
}

static void where(void)
{
	size_t npages = len / page_size, i;
	long count[MAX_NODES] = { 0 }, other = 0;
	void **pages = calloc(npages, sizeof(*pages));
	int *status = calloc(npages, sizeof(*status));

	if (!pages || !status) {
		perror("calloc");
		exit(1);
	}
	for (i = 0; i < npages; i++)
		pages[i] = buf + i * page_size;
	if (move_pages(0, npages, pages, NULL, status, 0)) {
		perror("move_pages");
		exit(1);
	}
	for (i = 0; i < npages; i++) {
		if (status[i] >= 0 && status[i] < MAX_NODES)
			count[status[i]]++;
		else
			other++;
	}
	printf("where:");
	for (i = 0; i < MAX_NODES; i++)
		if (count[i])
			printf(" node%zu=%ld pages (%ld%%)", i, count[i],
			       count[i] * 100 / (long)npages);
	if (other)
		printf(" not-present=%ld", other);
	printf("\n");
	free(pages);
	free(status);
}

static int verify(void)
{
	size_t bad = 0, i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < len; i++)
		bad += buf[i] != pattern(i, rounds);
	pthread_mutex_unlock(&lock);
	printf("verify: %zu MiB after %lu rewrites: %s (%zu bad bytes)\n",
	       len >> 20, rounds, bad ? "CORRUPTED" : "every byte intact", bad);
	return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
	char line[64];
	pthread_t tid;
	int failed = 0;

	if (argc != 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: demo-worker MIB\n");
		return 2;
	}
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	len = (size_t)atol(argv[1]) << 20;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i, 0);
	where();
	if (pthread_create(&tid, NULL, writer, NULL)) {
		perror("pthread_create");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "where", 5))
			where();
		else if (!strncmp(line, "verify", 6))
			failed |= verify();
		else if (!strncmp(line, "quit", 4))
			break;
		else
			printf("unknown command: %s", line);
		fflush(stdout);
	}
	atomic_store(&stop, 1);
	pthread_join(tid, NULL);
	return failed ? 1 : 0;
}
