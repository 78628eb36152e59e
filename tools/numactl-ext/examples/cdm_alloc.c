// SPDX-License-Identifier: GPL-2.0
/*
 * cdm_alloc: put a buffer on a device's CDM node with libnumacdm.
 *
 *   cc -O2 -o cdm_alloc cdm_alloc.c $(pkg-config --cflags --libs numacdm)
 *   ./cdm_alloc [DEVICE|NODE] [MiB]
 *
 * DEVICE is a PCI address or device name (capi_sim0); without one the first
 * CDM node is used.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <numaif.h>
#include <numacdm.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
	size_t size = mib << 20;
	struct bitmask *cdm = numacdm_nodes();
	int node = -1, where = -1;
	char *buf;

	if (!cdm) {
		perror("numacdm_nodes");
		return 1;
	}
	if (argc > 1 && isdigit((unsigned char)argv[1][0]) && !strchr(argv[1], ':'))
		node = atoi(argv[1]);
	else if (argc > 1)
		node = numacdm_node_of_device(argv[1]);
	else
		for (unsigned int i = 0; i < cdm->size && node < 0; i++)
			if (numa_bitmask_isbitset(cdm, i))
				node = (int)i;
	numa_bitmask_free(cdm);
	if (node < 0) {
		fprintf(stderr, "no CDM node%s%s: %s\n", argc > 1 ? " for " : "",
			argc > 1 ? argv[1] : "", strerror(errno ? errno : ENODEV));
		return 1;
	}

	buf = numacdm_alloc(size, node);	/* MPOL_BIND to the node */
	if (!buf) {
		fprintf(stderr, "numacdm_alloc(%zu MiB, node %d): %s\n", mib,
			node, strerror(errno));
		return 1;
	}
	memset(buf, 0x5a, size);		/* first touch allocates */
	get_mempolicy(&where, NULL, 0, buf, MPOL_F_NODE | MPOL_F_ADDR);
	printf("%zu MiB on node %d (first page on node %d)\n", mib, node, where);
	numacdm_free(buf, size);
	return where == node ? 0 : 1;
}
