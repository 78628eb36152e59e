// SPDX-License-Identifier: GPL-2.0
/*
 * topology_test - the guest machine is what scripts/vm-run said it would be,
 * before any driver has loaded: node 0 has CPUs and memory; each device node
 * is possible, CPU-less and memory-less and named a CDM node by cdm_nodes=;
 * each simulated accelerator (ivshmem-plain) is on the PCI bus with a BAR2 of
 * the configured size.  The expected topology comes from /etc/cdm/topology,
 * written by vm-run.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "cdm_kmsg.h"

#define NODE_SYSFS "/sys/devices/system/node"
#define MAX_NODES 64

struct topology {
	int cpus;
	long ram_mib;
	int ndev;
	long dev_mib[8];
};

static int read_topology(struct topology *t)
{
	char line[256];
	FILE *f = fopen("/etc/cdm/topology", "r");

	if (!f)
		return -1;
	memset(t, 0, sizeof(*t));
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (sscanf(line, "cpus=%d", &t->cpus) == 1 ||
		    sscanf(line, "ram_mib=%ld", &t->ram_mib) == 1)
			continue;
		if (strncmp(line, "devices=", 8))
			continue;
		for (p = strtok(line + 8, " \n"); p && t->ndev < 8;
		     p = strtok(NULL, " \n"))
			t->dev_mib[t->ndev++] = atol(p);
	}
	fclose(f);
	return 0;
}

/* Parse a sysfs node list ("0-2,5") into a membership array. */
static int read_nodelist(const char *path, int *member)
{
	char buf[512], *p;
	FILE *f = fopen(path, "r");

	memset(member, 0, sizeof(int) * MAX_NODES);
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n")) {
		int a, b;

		if (sscanf(p, "%d-%d", &a, &b) != 2) {
			a = atoi(p);
			b = a;
		}
		for (; a <= b && a < MAX_NODES; a++)
			member[a] = 1;
	}
	return 0;
}

/* Pages the node physically has (zoneinfo "present"), in KiB. */
static long node_present_kib(int nid)
{
	char line[256], zone[32];
	long v, kib = 0;
	int n = -1;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone %31s", &n, zone) == 2)
			continue;
		if (n == nid && sscanf(line, " present %ld", &v) == 1)
			kib += v * 4;
	}
	fclose(f);
	return kib;
}

static long node_memtotal_kib(int nid)
{
	char path[128], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), NODE_SYSFS "/node%d/meminfo", nid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Node %*d MemTotal: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int read_hex_file(const char *path, unsigned long *val)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%lx", val) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* Sizes of BAR2 of every ivshmem device, in MiB; returns the count. */
static int ivshmem_bar2_mib(long *mib, int max)
{
	const char *base = "/sys/bus/pci/devices";
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(base);

	if (!d)
		return -1;
	while ((de = readdir(d)) && n < max) {
		unsigned long vendor, device, start, end, flags;
		char path[512], line[256];
		FILE *f;
		int i;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/vendor", base, de->d_name);
		if (read_hex_file(path, &vendor) || vendor != 0x1af4)
			continue;
		snprintf(path, sizeof(path), "%s/%s/device", base, de->d_name);
		if (read_hex_file(path, &device) || device != 0x1110)
			continue;
		snprintf(path, sizeof(path), "%s/%s/resource", base, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		for (i = 0; i <= 2 && fgets(line, sizeof(line), f); i++)
			;
		fclose(f);
		if (i != 3 || sscanf(line, "%lx %lx %lx", &start, &end, &flags) != 3)
			continue;
		mib[n++] = end > start ? (long)((end - start + 1) >> 20) : 0;
	}
	closedir(d);
	return n;
}

FIXTURE(topology) {
	struct topology t;
};

FIXTURE_SETUP(topology)
{
	ASSERT_EQ(0, read_topology(&self->t))
		TH_LOG("/etc/cdm/topology missing: not booted by scripts/vm-run?");
}

FIXTURE_TEARDOWN(topology)
{
}

TEST_F(topology, node0_has_cpus_and_memory)
{
	int cpu[MAX_NODES], mem[MAX_NODES];
	long kib;

	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/has_cpu", cpu));
	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/has_memory", mem));
	EXPECT_TRUE(cpu[0]);
	EXPECT_TRUE(mem[0]);
	/*
	 * The configured RAM is on node 0: all of it present (bar the few
	 * firmware holes below 1 MiB), most of it managed by the page
	 * allocator.  What the kernel keeps varies (a KASAN kernel's shadow
	 * takes an eighth), so "most" is a half.
	 */
	kib = node_present_kib(0);
	EXPECT_GT(kib, self->t.ram_mib * 1024 * 95 / 100);
	EXPECT_LE(kib, self->t.ram_mib * 1024);
	kib = node_memtotal_kib(0);
	EXPECT_GT(kib, self->t.ram_mib * 1024 / 2);
	EXPECT_LE(kib, self->t.ram_mib * 1024);
	EXPECT_EQ(self->t.cpus, (int)sysconf(_SC_NPROCESSORS_ONLN));
}

TEST_F(topology, device_nodes_possible_cpuless_memoryless)
{
	int possible[MAX_NODES], cpu[MAX_NODES], mem[MAX_NODES];
	int nid;

	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/possible", possible));
	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/has_cpu", cpu));
	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/has_memory", mem));
	for (nid = 1; nid <= self->t.ndev; nid++) {
		EXPECT_TRUE(possible[nid]) TH_LOG("node %d not possible", nid);
		EXPECT_FALSE(cpu[nid]) TH_LOG("node %d has CPUs", nid);
		EXPECT_FALSE(mem[nid]) TH_LOG("node %d has memory", nid);
		EXPECT_EQ(-1, node_memtotal_kib(nid));
	}
	/* Nothing beyond the configured nodes. */
	for (nid = self->t.ndev + 1; nid < MAX_NODES; nid++)
		EXPECT_FALSE(possible[nid]) TH_LOG("unexpected node %d", nid);
}

TEST_F(topology, device_nodes_are_cdm_nodes)
{
	int cdm[MAX_NODES];
	int nid;

	ASSERT_EQ(0, read_nodelist(NODE_SYSFS "/has_coherent_device", cdm))
		TH_LOG("kernel without coherent device memory support");
	EXPECT_FALSE(cdm[0]);
	for (nid = 1; nid <= self->t.ndev; nid++)
		EXPECT_TRUE(cdm[nid]) TH_LOG("node %d not a CDM node", nid);
}

/* What the boot log says about CDM nodes (admin guide, "Boot"). */
struct boot_log {
	bool named[MAX_NODES];		/* "node N is a coherent device memory node" */
	bool possible[MAX_NODES];	/* "making node N possible" */
	int other;			/* such lines about any other node */
};

static void scan_boot_log(const char *msg, void *arg)
{
	struct boot_log *l = arg;
	int nid, named = 0, possible = 0;

	/* %n is reached only when the whole line matched */
	sscanf(msg, "cdm: node %d is a coherent device memory node%n", &nid, &named);
	sscanf(msg, "cdm: making node %d possible%n", &nid, &possible);
	if (!named && !possible)
		return;
	if (nid < 0 || nid >= MAX_NODES)
		l->other++;
	else if (named)
		l->named[nid] = true;
	else
		l->possible[nid] = true;
}

/*
 * The admin guide quotes the lines cdm_nodes= logs at boot: "cdm: node N
 * is a coherent device memory node" for each node it names, and "cdm:
 * making node N possible" only for a node it names.
 */
TEST_F(topology, boot_log_names_cdm_nodes)
{
	struct boot_log l = { 0 };
	int nid, r;

	r = kmsg_boot_log(scan_boot_log, &l);
	if (r == -ENODATA)
		SKIP(return, "the kernel log no longer holds the boot's first lines");
	ASSERT_EQ(0, r);
	EXPECT_EQ(0, l.other);
	EXPECT_FALSE(l.named[0]);
	for (nid = 1; nid <= self->t.ndev; nid++)
		EXPECT_TRUE(l.named[nid])
			TH_LOG("no \"cdm: node %d is a coherent device memory node\"", nid);
	for (nid = self->t.ndev + 1; nid < MAX_NODES; nid++) {
		EXPECT_FALSE(l.named[nid]) TH_LOG("node %d named", nid);
		EXPECT_FALSE(l.possible[nid]) TH_LOG("node %d made possible", nid);
	}
	EXPECT_FALSE(l.possible[0]);
}

TEST_F(topology, ivshmem_devices_have_configured_bar_sizes)
{
	long found[8], want[8];
	int n, i, j;

	n = ivshmem_bar2_mib(found, 8);
	ASSERT_EQ(self->t.ndev, n);
	memcpy(want, self->t.dev_mib, sizeof(want));
	/* Compare as multisets: PCI enumeration order is not QEMU's order. */
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			if (want[j] == found[i]) {
				want[j] = -1;
				break;
			}
		}
		EXPECT_LT(j, n) TH_LOG("unexpected BAR2 of %ld MiB", found[i]);
	}
}

TEST_HARNESS_MAIN
