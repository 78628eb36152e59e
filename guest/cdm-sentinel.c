// SPDX-License-Identifier: GPL-2.0
/*
 * cdm-sentinel - a checksummed buffer that must never read a wrong byte,
 * for make stress and make soak.
 *
 *   cdm-sentinel MIB STATUS
 *
 * Started under the memory policy to test (e.g. `numactl --membind=1
 * cdm-sentinel 16 /dev/shm/s1`), it maps MIB MiB, touches it all, prints
 * where the pages landed ("sentinel: <pages> pages, node <n>: <count> ...")
 * and then rewrites the buffer with a new pattern each round and verifies
 * every word, forever, while evacuation, migration and the stressors move
 * its pages underneath.  After each round it overwrites STATUS in place
 * with "rounds R errors E" (in place: no allocation after start-up, so a
 * policy bound to a node being evacuated never makes it allocate there).
 * A wrong word is reported on stderr with its address and node.
 * SIGTERM ends it after the current round: exit 0 if no word was ever
 * wrong, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_NODES 64

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* A different value for every word and round (splitmix64 finaliser). */
static uint64_t pattern(uint64_t i, uint64_t round)
{
	uint64_t z = i + (round << 40) + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int node_of(void *addr)
{
	int status = -1;

	if (move_pages(0, 1, &addr, NULL, &status, 0))
		return -errno;
	return status;
}

/* Print the buffer's placement: pages per node (move_pages query). */
static void print_placement(uint64_t *buf, size_t len, size_t page)
{
	size_t n = len / page, counts[MAX_NODES] = { 0 }, other = 0;
	void **pages = calloc(n, sizeof(*pages));
	int *status = calloc(n, sizeof(*status));

	if (!pages || !status) {
		perror("sentinel: calloc");
		exit(2);
	}
	for (size_t i = 0; i < n; i++)
		pages[i] = (char *)buf + i * page;
	if (move_pages(0, n, pages, NULL, status, 0)) {
		perror("sentinel: move_pages");
		exit(2);
	}
	printf("sentinel: %zu pages", n);
	for (size_t i = 0; i < n; i++) {
		if (status[i] >= 0 && status[i] < MAX_NODES)
			counts[status[i]]++;
		else
			other++;
	}
	for (int nid = 0; nid < MAX_NODES; nid++)
		if (counts[nid])
			printf(", node %d: %zu", nid, counts[nid]);
	if (other)
		printf(", not present: %zu", other);
	printf("\n");
	fflush(stdout);
	free(pages);
	free(status);
}

int main(int argc, char **argv)
{
	uint64_t round = 0, errors = 0;
	size_t len, words, page = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa = { .sa_handler = on_term };
	uint64_t *buf;
	char line[64];
	int fd;

	if (argc != 3 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: cdm-sentinel MIB STATUS\n");
		return 2;
	}
	len = (size_t)atoi(argv[1]) << 20;
	words = len / sizeof(*buf);
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[2]);
		return 2;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("sentinel: mmap");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	for (size_t i = 0; i < words; i++)
		buf[i] = pattern(i, round);
	print_placement(buf, len, page);

	while (!stop) {
		for (size_t i = 0; i < words; i++) {
			if (buf[i] == pattern(i, round))
				continue;
			if (errors++ < 16)
				fprintf(stderr,
					"sentinel: round %llu: word %zu at %p (node %d) is %#llx, expected %#llx\n",
					(unsigned long long)round, i,
					(void *)&buf[i],
					node_of(&buf[i & ~(page / 8 - 1)]),
					(unsigned long long)buf[i],
					(unsigned long long)pattern(i, round));
		}
		round++;
		for (size_t i = 0; i < words; i++)
			buf[i] = pattern(i, round);
		snprintf(line, sizeof(line), "rounds %-12llu errors %-12llu\n",
			 (unsigned long long)round,
			 (unsigned long long)errors);
		if (pwrite(fd, line, strlen(line), 0) < 0) {
			perror("sentinel: status");
			return 2;
		}
	}
	printf("sentinel: %llu rounds, %llu wrong words\n",
	       (unsigned long long)round, (unsigned long long)errors);
	return errors ? 1 : 0;
}
