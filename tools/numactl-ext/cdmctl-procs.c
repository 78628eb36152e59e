// SPDX-License-Identifier: GPL-2.0
/* cdmctl: cdmctl users, run and where: processes and their memory. */
#include "cdmctl.h"

/* ---------------------------------------------------------------- users */

struct node_user {
	int pid;
	char comm[64];
	char cgroup[256];
	uint64_t bytes;
};

/*
 * Bytes process @pid has resident on @node, from numa_maps: the sum over
 * its mappings, so a page several processes map counts for each of them.
 * -1 if the process is gone or not ours to read (errno says which).
 */
static int64_t pid_node_bytes(int pid, int node)
{
	char rel[64], path[PATH_MAX], line[8192];
	uint64_t bytes = 0;
	FILE *f;

	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long cnt = 0, kps = 4, v;
		char *save = NULL;

		for (char *t = strtok_r(line, " \n", &save); t;
		     t = strtok_r(NULL, " \n", &save)) {
			int nd;

			if (sscanf(t, "N%d=%llu", &nd, &v) == 2 && nd == node)
				cnt = v;
			else if (sscanf(t, "kernelpagesize_kB=%llu", &v) == 1)
				kps = v;
		}
		bytes += cnt * kps * 1024;
	}
	fclose(f);
	return (int64_t)bytes;
}

static int cmp_user(const void *a, const void *b)
{
	const struct node_user *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->pid - y->pid;
}

/* cdmctl users, of one target: the processes with memory on it, largest first. */
int cmd_users(const struct target *t, struct json_object *o)
{
	struct node_user *u = NULL;
	size_t n = 0, cap = 0;
	unsigned long unreadable = 0;
	char path[PATH_MAX], a[32];
	uint64_t total = 0;
	struct dirent *de;
	int node = t->node;
	DIR *dir;

	if (cdm_sysfs_path(path, sizeof(path), "/proc") ||
	    !(dir = opendir(path))) {
		err("users: /proc: %s", strerror(errno));
		return json_failed(o, t, EX_FAIL, errno);
	}
	while ((de = readdir(dir))) {
		char rel[64], cg[300];
		int64_t b;
		int pid;

		if (!is_number(de->d_name))
			continue;
		pid = atoi(de->d_name);
		b = pid_node_bytes(pid, node);
		if (b < 0) {
			if (errno == EACCES || errno == EPERM)
				unreadable++;
			continue;
		}
		if (!b)
			continue;
		if (n == cap) {
			struct node_user *nu;

			cap = cap ? 2 * cap : 32;
			nu = realloc(u, cap * sizeof(*u));
			if (!nu) {
				err("out of memory");
				free(u);
				closedir(dir);
				return json_failed(o, t, EX_FAIL, ENOMEM);
			}
			u = nu;
		}
		memset(&u[n], 0, sizeof(u[n]));
		u[n].pid = pid;
		u[n].bytes = (uint64_t)b;
		snprintf(rel, sizeof(rel), "/proc/%d/comm", pid);
		if (cdm_sysfs_read(u[n].comm, sizeof(u[n].comm), "%s", rel) < 0)
			snprintf(u[n].comm, sizeof(u[n].comm), "?");
		/* cgroup v2: one line "0::/path" */
		snprintf(rel, sizeof(rel), "/proc/%d/cgroup", pid);
		if (cdm_sysfs_read(cg, sizeof(cg), "%s", rel) >= 0 &&
		    !strncmp(cg, "0::", 3))
			snprintf(u[n].cgroup, sizeof(u[n].cgroup), "%.*s",
				 (int)strcspn(cg + 3, "\n"), cg + 3);
		total += u[n].bytes;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(u, n, sizeof(*u), cmp_user);

	if (o) {
		struct json_object *a = json_object_new_array();

		jnum(o, "target_node", node);
		jsize(o, "total_bytes", total);
		ju64(o, "unreadable_processes", unreadable);
		for (size_t i = 0; i < n; i++) {
			struct json_object *p = json_object_new_object();

			jnum(p, "pid", u[i].pid);
			jstr(p, "command", u[i].comm);
			jstr(p, "cgroup", u[i].cgroup);
			jsize(p, "bytes", u[i].bytes);
			json_object_array_add(a, p);
		}
		jadd(o, "processes", a);
	} else {
		printf("%-8s %-16s %10s  %s\n", "PID", "COMMAND", "SIZE",
		       "CGROUP");
		for (size_t i = 0; i < n; i++)
			printf("%-8d %-16s %10s  %s\n", u[i].pid, u[i].comm,
			       human(u[i].bytes, a, sizeof(a)),
			       u[i].cgroup[0] ? u[i].cgroup : "-");
		if (!n)
			printf("(no process has memory on node %d)\n", node);
	}
	if (unreadable)
		fprintf(stderr, "cdmctl: %lu processes of other users were not looked at (needs root)\n",
			unreadable);
	free(u);
	return EX_OK;
}

/* ------------------------------------------------------------------ run */

/* Nodes of @m as a list ("1,2"), for messages. */
static void format_nodes(struct bitmask *m, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; m && i < m->size && off < len; i++)
		if (numa_bitmask_isbitset(m, i))
			off += (size_t)snprintf(buf + off, len - off, "%s%u",
						off ? "," : "", i);
}

/*
 * Run @argv with its memory bound to (or, with @preferred, preferring) the
 * CDM nodes in @nodes.  Every node named must be a CDM node with memory
 * online; with @all (--node all) the nodes without memory online are
 * left out instead, and at least one must remain.
 */
int cmd_run(struct bitmask *nodes, int all, int preferred, char **argv)
{
	struct bitmask *cdm = numacdm_nodes();
	char list[256];
	int mode, n = 0;

	if (!cdm) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	for (unsigned int i = 0; i < nodes->size; i++) {
		struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;

		if (!numa_bitmask_isbitset(nodes, i))
			continue;
		if (i >= cdm->size || !numa_bitmask_isbitset(cdm, i)) {
			format_nodes(cdm, list, sizeof(list));
			err("node %u is not a coherent device memory node (CDM nodes: %s); "
			    "use numactl for system-RAM nodes", i,
			    list[0] ? list : "none");
			numa_bitmask_free(cdm);
			return EX_NODEV;
		}
		if (numacdm_node_info((int)i, &in) || !in.present) {
			if (all) {
				numa_bitmask_clearbit(nodes, i);
				continue;
			}
			err("node %u has no memory online (evacuated?); bring it back with 'cdmctl online %u'",
			    i, i);
			numa_bitmask_free(cdm);
			return EX_NODEV;
		}
		n++;
	}
	numa_bitmask_free(cdm);
	if (!n) {
		if (numacdm_available() == 0)
			err("this kernel has no coherent device memory support");
		else
			err("no CDM node has memory online");
		return EX_NODEV;
	}
	/* One node: MPOL_PREFERRED, as before; several: PREFERRED_MANY. */
	mode = !preferred ? MPOL_BIND : n == 1 ? MPOL_PREFERRED :
						 MPOL_PREFERRED_MANY;
	if (set_mempolicy(mode, nodes->maskp, nodes->size + 1)) {
		int e = errno;

		format_nodes(nodes, list, sizeof(list));
		err("set_mempolicy(%s, nodes %s): %s",
		    mode == MPOL_BIND ? "MPOL_BIND" : mode == MPOL_PREFERRED ?
		    "MPOL_PREFERRED" : "MPOL_PREFERRED_MANY", list,
		    strerror(e));
		return e == EINVAL ? EX_NODEV : EX_FAIL;
	}
	execvp(argv[0], argv);
	err("%s: %s", argv[0], strerror(errno));
	return errno == ENOENT ? EX_NOTFOUND : EX_NOEXEC;
}

/* ---------------------------------------------------------------- where */

/*
 * where could not read process @pid (exit status @ret, errno @e): with
 * --json an object saying so.  Returns @ret.
 */
static int where_failed(int pid, const char *comm, int ret, int e)
{
	struct json_object *o;

	if (!json)
		return ret;
	o = json_object_new_object();
	jnum(o, "pid", pid);
	jstr(o, "command", comm);
	jstr(o, "result", result_of(ret));
	if (e > 0)
		jnum(o, "errno", e);
	jstr(o, "message", last_msg);
	jprint(o);
	return ret;
}

int cmd_where(const char *pidarg)
{
	static uint64_t bytes[MAX_NODES];
	struct bitmask *cdm;
	char path[PATH_MAX], comm[64] = "", line[8192];
	long psz = sysconf(_SC_PAGESIZE);
	struct json_object *jo = NULL, *ja = NULL;
	uint64_t total = 0;
	FILE *f;
	int pid;

	if (!strcmp(pidarg, "self"))
		pid = (int)getpid();
	else if (is_number(pidarg) && strlen(pidarg) < 10)
		pid = atoi(pidarg);
	else {
		err("where: '%s' is not a process id", pidarg);
		return EX_USAGE;
	}
	snprintf(line, sizeof(line), "/proc/%d/comm", pid);
	if (cdm_sysfs_read(comm, sizeof(comm), "%s", line) < 0) {
		err("process %d: %s", pid, strerror(errno));
		if (errno == ENOENT)
			return EX_NODEV;	/* no such process */
		return where_failed(pid, NULL, errno_exit(errno), errno);
	}
	snprintf(line, sizeof(line), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", line) ||
	    !(f = fopen(path, "re"))) {
		err("process %d: %s: %s", pid, line, strerror(errno));
		if (errno == ENOENT)
			return EX_NODEV;	/* gone: as if never there */
		return where_failed(pid, comm, errno_exit(errno), errno);
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t kps = (uint64_t)psz / 1024, cnt[64];
		int nodes[64], n = 0;
		char *save = NULL;

		for (char *t = strtok_r(line, " \n", &save); t;
		     t = strtok_r(NULL, " \n", &save)) {
			unsigned long long v;
			int nd;

			if (sscanf(t, "N%d=%llu", &nd, &v) == 2 && n < 64 &&
			    nd >= 0 && nd < MAX_NODES) {
				nodes[n] = nd;
				cnt[n++] = v;
			} else if (sscanf(t, "kernelpagesize_kB=%llu", &v) == 1) {
				kps = v;
			}
		}
		for (int i = 0; i < n; i++) {
			bytes[nodes[i]] += cnt[i] * kps * 1024;
			total += cnt[i] * kps * 1024;
		}
	}
	fclose(f);
	cdm = numacdm_nodes();
	if (!cdm) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return where_failed(pid, comm, EX_FAIL, errno);
	}
	if (json) {
		jo = json_object_new_object();
		ja = json_object_new_array();
		jnum(jo, "pid", pid);
		jstr(jo, "command", comm);
		jsize(jo, "total_bytes", total);
		jadd(jo, "nodes", ja);
	} else {
		printf("pid %d (%s)\n%-5s %-7s %12s %10s %6s\n", pid, comm,
		       "NODE", "KIND", "PAGES", "SIZE", "SHARE");
	}
	for (unsigned int i = 0; i < MAX_NODES; i++) {
		int is_cdm = i < cdm->size && numa_bitmask_isbitset(cdm, i);
		char a[32];

		if (!bytes[i])
			continue;
		if (json) {
			struct json_object *e = json_object_new_object();

			jnum(e, "node", i);
			jbool(e, "cdm", is_cdm);
			jsize(e, "bytes", bytes[i]);
			ju64(e, "pages", bytes[i] / (uint64_t)psz);
			json_object_array_add(ja, e);
		} else {
			printf("%-5u %-7s %12" PRIu64 " %10s %5.1f%%\n", i,
			       is_cdm ? "cdm" : "sysram",
			       bytes[i] / (uint64_t)psz,
			       human(bytes[i], a, sizeof(a)),
			       100.0 * (double)bytes[i] / (double)total);
		}
	}
	if (json) {
		jprint(jo);
	} else if (!total) {
		printf("(no resident pages)\n");
	}
	numa_bitmask_free(cdm);
	return EX_OK;
}
