// SPDX-License-Identifier: GPL-2.0
/* cdmctl: cdmctl online --restore and cdmctl unspill: pages moved by policy. */
#include "cdmctl.h"

/* ------------------------------------------------------ restore, unspill */

/*
 * Two ways of putting pages where their policy says they belong, both
 * read from numa_maps, which shows each VMA's policy (or its task's):
 *
 * restore (online --restore): after an evacuation, pages that left a node
 * belong back there if their policy still names it - CDM hotplug never
 * rewrites a policy, so a task bound to the node keeps "bind:N" through
 * the evacuation and the re-add.  The pages of MPOL_BIND, MPOL_PREFERRED
 * and MPOL_PREFERRED_MANY VMAs naming the node that sit outside the
 * policy's nodes move onto the node.  Interleave policies are left alone:
 * which of their pages were on the node is not known.
 *
 * unspill: pages on the node whose policy does not name it at all - they
 * got there through the emergency fallback, or by hand - move to system
 * RAM once it has room again: to the policy's first system-RAM node, or
 * to the RAM node nearest to the device node.
 *
 * move_pages(MPOL_MF_MOVE) moves only pages that one process maps, so page
 * cache and memory shared with other processes stay where they are; they
 * are counted as "shared".
 */
enum page_fix { PF_RESTORE, PF_UNSPILL };

struct fix_vma {
	int pid;
	unsigned long start, end, pagesize;
	unsigned long nr_misplaced;	/* pages to move, from numa_maps */
	struct bitmask *policy;		/* the policy's nodes, or NULL */
	int target;			/* node the pages move to */
};

struct page_fixer {
	enum page_fix how;
	int node;			/* the CDM node */
	int ram_node;			/* nearest system-RAM node to it */
	struct bitmask *cdm;		/* every CDM node */
	struct fix_vma *v;
	size_t nr, cap;
	uint64_t bytes_total, bytes_moved;
	unsigned long moved, shared, failed, denied, denied_procs;
	int last_err;
	struct progress pg;
};

static int mask_has(const struct bitmask *m, int node)
{
	return m && node >= 0 && (unsigned int)node < m->size &&
	       numa_bitmask_isbitset(m, (unsigned int)node);
}

/*
 * The policy of a numa_maps line, after its address: "default", "local",
 * "bind:1-2", "prefer=static:1", "prefer (many):1,3", "interleave:0-1",
 * "weighted interleave:0-1".  Returns its node list (NULL for none) and
 * sets *@keeps if the mode keeps pages on its nodes (bind, preferred).
 */
static struct bitmask *policy_nodes(const char *pol, int *keeps)
{
	static const struct { const char *name; int keeps; } modes[] = {
		{ "bind", 1 }, { "prefer (many)", 1 }, { "prefer", 1 },
		{ "weighted interleave", 0 }, { "interleave", 0 },
	};
	char list[256];
	size_t n;

	*keeps = 0;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		size_t l = strlen(modes[i].name);
		const char *c;

		if (strncmp(pol, modes[i].name, l) ||
		    (pol[l] != ':' && pol[l] != '='))
			continue;
		c = strchr(pol + l, ':');
		if (!c)
			return NULL;
		n = strcspn(c + 1, " \n");
		if (!n || n >= sizeof(list))
			return NULL;
		memcpy(list, c + 1, n);
		list[n] = '\0';
		*keeps = modes[i].keeps;
		return numacdm_parse_nodelist(list);
	}
	return NULL;
}

/* /proc/PID/maps read forward once, with one line of lookahead. */
struct maps_reader {
	FILE *f;
	unsigned long start, end;	/* of the line read ahead */
	int ahead;
};

/*
 * End of the VMA that starts at @start, 0 if none.  numa_maps and maps list
 * the VMAs in the same ascending order, so the caller asks for ascending
 * starts and one pass over maps serves them all (a rewind per VMA made a
 * process with many mappings quadratic).
 */
static unsigned long vma_end(struct maps_reader *m, unsigned long start)
{
	char line[PATH_MAX + 128];

	for (;;) {
		if (!m->ahead) {
			if (!fgets(line, sizeof(line), m->f))
				return 0;
			/* the rest of an overlong line is no mapping */
			while (!strchr(line, '\n') &&
			       fgets(line, sizeof(line), m->f))
				;
			if (sscanf(line, "%lx-%lx", &m->start, &m->end) != 2)
				continue;
			m->ahead = 1;
		}
		if (m->start > start)
			return 0;	/* keep it for a later, higher start */
		m->ahead = 0;
		if (m->start == start)
			return m->end;
	}
}

/* Does page on @nid (a move_pages status) have to move? */
static int misplaced(const struct page_fixer *f, const struct fix_vma *v,
		     int nid)
{
	if (nid < 0)
		return 0;	/* not resident */
	if (f->how == PF_RESTORE)
		return !mask_has(v->policy, nid);
	return nid == f->node;
}

/* Which VMAs of a numa_maps line need fixing; fills @v, 0 if none. */
static int fix_candidate(const struct page_fixer *f, char *pol,
			 struct fix_vma *v)
{
	char *t, *save = NULL;
	int keeps;

	v->policy = policy_nodes(pol, &keeps);
	if (f->how == PF_RESTORE) {
		if (!keeps || !mask_has(v->policy, f->node))
			goto none;
		v->target = f->node;
	} else {
		if (mask_has(v->policy, f->node))
			goto none;
		v->target = f->ram_node;
		for (unsigned int i = 0; v->policy && i < v->policy->size; i++)
			if (numa_bitmask_isbitset(v->policy, i) &&
			    !mask_has(f->cdm, (int)i)) {
				v->target = (int)i;
				break;
			}
	}
	for (t = strtok_r(pol, " \n", &save); t;
	     t = strtok_r(NULL, " \n", &save)) {
		unsigned long long cnt;
		int nd;

		if (sscanf(t, "N%d=%llu", &nd, &cnt) == 2 &&
		    misplaced(f, v, nd))
			v->nr_misplaced += cnt;
		else if (sscanf(t, "kernelpagesize_kB=%llu", &cnt) == 1)
			v->pagesize = cnt * 1024;
	}
	if (v->nr_misplaced && v->target >= 0)
		return 1;
none:
	if (v->policy)
		numa_bitmask_free(v->policy);
	v->policy = NULL;
	return 0;
}

static int fixer_add(struct page_fixer *f, const struct fix_vma *v)
{
	if (f->nr == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct fix_vma *n = realloc(f->v, cap * sizeof(*n));

		if (!n)
			return -1;
		f->v = n;
		f->cap = cap;
	}
	f->v[f->nr++] = *v;
	f->bytes_total += (uint64_t)v->nr_misplaced * v->pagesize;
	return 0;
}

/* The VMAs of process @pid with pages to move. */
static void fixer_scan_pid(struct page_fixer *f, int pid)
{
	char rel[64], path[PATH_MAX], line[8192];
	struct maps_reader maps = { NULL };
	FILE *nm;

	snprintf(rel, sizeof(rel), "/proc/%d/numa_maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(nm = fopen(path, "re"))) {
		if (errno == EACCES || errno == EPERM)
			f->denied_procs++;
		return;		/* gone, or not ours to read */
	}
	snprintf(rel, sizeof(rel), "/proc/%d/maps", pid);
	if (cdm_sysfs_path(path, sizeof(path), "%s", rel) ||
	    !(maps.f = fopen(path, "re"))) {
		fclose(nm);
		return;
	}
	while (fgets(line, sizeof(line), nm)) {
		struct fix_vma v = { .pid = pid,
				       .pagesize = (unsigned long)sysconf(_SC_PAGESIZE) };
		char *pol = strchr(line, ' ');

		if (!pol || sscanf(line, "%lx", &v.start) != 1 ||
		    !fix_candidate(f, pol + 1, &v))
			continue;
		v.end = vma_end(&maps, v.start);
		if (!v.end || fixer_add(f, &v))
			numa_bitmask_free(v.policy);
	}
	fclose(maps.f);
	fclose(nm);
}

#define FIX_BATCH	512

/*
 * move_pages() reports -EBUSY for the second address of a THP it has just
 * queued (the folio is off the LRU, being moved), and the THP then moves
 * with all its pages: with THP "always" one page per THP looked stuck.
 * Ask where the -EBUSY pages are now and keep the error only for those
 * still off target.
 */
static void recheck_busy(const struct fix_vma *v, unsigned long k,
			 void **pages, int *status)
{
	void *busy[FIX_BATCH];
	int where[FIX_BATCH];
	unsigned long idx[FIX_BATCH], m = 0;

	for (unsigned long i = 0; i < k; i++)
		if (status[i] == -EBUSY) {
			idx[m] = i;
			busy[m++] = pages[i];
		}
	if (!m || move_pages(v->pid, m, busy, NULL, where, 0))
		return;
	for (unsigned long j = 0; j < m; j++)
		if (where[j] == v->target)
			status[idx[j]] = v->target;
}

/* Move the misplaced pages of one VMA to its target node. */
static void fix_vma(struct page_fixer *f, const struct fix_vma *v)
{
	void *pages[FIX_BATCH];
	int nodes[FIX_BATCH], status[FIX_BATCH];
	unsigned long addr = v->start;

	while (addr < v->end) {
		unsigned long n = 0, k = 0;

		for (; addr < v->end && n < FIX_BATCH; addr += v->pagesize)
			pages[n++] = (void *)addr;
		if (move_pages(v->pid, n, pages, NULL, status, 0)) {
			if (errno == EPERM || errno == EACCES)
				f->denied += v->nr_misplaced;
			else if (errno != ESRCH)
				f->last_err = errno;
			return;
		}
		for (unsigned long i = 0; i < n; i++)
			if (misplaced(f, v, status[i]))
				pages[k++] = pages[i];
		if (!k)
			continue;
		for (unsigned long i = 0; i < k; i++)
			nodes[i] = v->target;
		if (move_pages(v->pid, k, pages, nodes, status, MPOL_MF_MOVE) < 0) {
			if (errno == EPERM || errno == EACCES) {
				f->denied += k;
			} else if (errno != ESRCH) {
				f->last_err = errno;
				f->failed += k;
			}
			return;
		}
		recheck_busy(v, k, pages, status);
		for (unsigned long i = 0; i < k; i++) {
			if (status[i] == v->target) {
				f->moved++;
				f->bytes_moved += v->pagesize;
			} else if (status[i] == -EACCES) {
				f->shared++;
			} else {
				f->failed++;
				if (status[i] < 0)
					f->last_err = -status[i];
			}
		}
		f->pg.done = f->bytes_moved;
		f->pg.total = f->bytes_total;
		progress_frame(&f->pg, 0);
	}
}

/* The system-RAM node nearest to @node, -1 if none. */
static int nearest_ram_node(int node, const struct bitmask *cdm)
{
	static int dist[MAX_NODES];
	int best = -1;

	read_distances(node, dist);
	for (int i = 0; i < MAX_NODES; i++)
		if (dist[i] >= 0 && i != node && !mask_has(cdm, i) &&
		    (best < 0 || dist[i] < dist[best]))
			best = i;
	return best;
}

/* What fix_pages() did, for JSON. */
struct fix_result {
	unsigned long moved, shared, failed, denied, denied_procs;
	uint64_t bytes;
	double secs;
	int e;			/* errno of a failure */
	char msg[512];		/* its message */
};

/* A failure of fix_pages(): its message (just printed) and @e; returns @ret. */
static int fix_failed(struct fix_result *res, int ret, int e)
{
	res->e = e;
	snprintf(res->msg, sizeof(res->msg), "%s", last_msg);
	return ret;
}

/*
 * cdmctl online --restore (PF_RESTORE) and cdmctl unspill (PF_UNSPILL):
 * see the comment at the top of this section.
 */
static int fix_pages(int node, enum page_fix how, struct fix_result *res)
{
	struct page_fixer f = { .how = how, .node = node };
	const char *done = how == PF_RESTORE ? "restored" : "returned to system RAM";
	char path[PATH_MAX], a[32];
	int ret = EX_OK;
	struct dirent *de;
	DIR *dir;

	memset(res, 0, sizeof(*res));
	f.cdm = numacdm_nodes();
	if (!f.cdm) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return fix_failed(res, EX_FAIL, errno);
	}
	f.ram_node = nearest_ram_node(node, f.cdm);
	if (how == PF_UNSPILL && f.ram_node < 0) {
		err("node %d: no system-RAM node to return pages to", node);
		numa_bitmask_free(f.cdm);
		return fix_failed(res, EX_FAIL, 0);
	}
	if (cdm_sysfs_path(path, sizeof(path), "/proc") ||
	    !(dir = opendir(path))) {
		err("/proc: %s", strerror(errno));
		numa_bitmask_free(f.cdm);
		return fix_failed(res, EX_FAIL, errno);
	}
	while ((de = readdir(dir)))
		if (is_number(de->d_name) && atoi(de->d_name) != (int)getpid())
			fixer_scan_pid(&f, atoi(de->d_name));
	closedir(dir);

	progress_init(&f.pg, how == PF_RESTORE ? "restore" : "unspill", node);
	for (size_t i = 0; i < f.nr; i++) {
		fix_vma(&f, &f.v[i]);
		numa_bitmask_free(f.v[i].policy);
	}
	free(f.v);
	numa_bitmask_free(f.cdm);
	res->secs = now_s() - f.pg.t0;
	if (f.failed || f.denied) {
		progress_end(&f.pg);
	} else {
		f.pg.done = f.pg.total = f.bytes_moved;
		progress_frame(&f.pg, 1);
	}
	res->moved = f.moved;
	res->bytes = f.bytes_moved;
	res->shared = f.shared;
	res->failed = f.failed;
	res->denied = f.denied;
	res->denied_procs = f.denied_procs;

	if (!json)
		printf("node %d: %s %" PRIu64 " pages (%s) in %.2f s\n", node,
		       done, (uint64_t)f.moved,
		       human(f.bytes_moved, a, sizeof(a)), res->secs);
	if (f.shared && !json)
		printf("node %d: %lu pages mapped by several processes stay where they are\n",
		       node, f.shared);
	if (f.failed) {
		int e = f.last_err ? f.last_err : EBUSY;

		err("node %d: %lu pages could not move (%s)", node, f.failed,
		    strerror(e));
		ret = fix_failed(res, EX_EVAC, e);
	}
	if (f.denied || f.denied_procs) {
		err("node %d: other users' processes were left alone (%lu not readable, %lu pages not movable; needs root)",
		    node, f.denied_procs, f.denied);
		if (ret == EX_OK)
			ret = fix_failed(res, EX_PERM, EPERM);
	}
	return ret;
}

/*
 * The outcome of fix_pages() (exit status @ret) in @o: result, errno and
 * message on failure, then the counts.
 */
static void json_fix(struct json_object *o, int ret,
		     const struct fix_result *res)
{
	if (ret) {
		if (res->e > 0)
			jnum(o, "errno", res->e);
		jstr(o, "message", res->msg);
	}
	ju64(o, "pages_moved", res->moved);
	jsize(o, "bytes", res->bytes);
	jsecs(o, "seconds", res->secs);
	ju64(o, "pages_shared", res->shared);
	ju64(o, "pages_failed", res->failed);
	ju64(o, "pages_denied", res->denied);
	ju64(o, "unreadable_processes", res->denied_procs);
}

/*
 * cdmctl online [--restore], of one target: with --restore, a node
 * already online is not an error; its pages come back either way.  With
 * --json one result object in @o: target_node, device, chardev, result,
 * errno and message on failure, bytes (memory online), online_memblocks
 * and total_memblocks, and with --restore a "restore" object (see
 * json_fix()).
 */
int cmd_online(const struct target *t, int restore, struct json_object *o)
{
	struct fix_result res;
	struct json_object *r;
	int node = t->node, ret = EX_OK;
	const char *result = "nothing";

	if (!restore || !node_online_bytes(node)) {
		last_errno = 0;
		ret = online_node(t);
		result = result_of(ret);
	}
	if (o) {
		json_result(o, t, result, ret ? last_errno : 0,
			    ret ? last_msg : NULL);
		jsize(o, "bytes", node_online_bytes(node));
		jmemblocks(o, node);
	}
	if (ret || !restore)
		return ret;
	ret = fix_pages(node, PF_RESTORE, &res);
	if (o) {
		r = json_object_new_object();
		jstr(r, "result", result_of(ret));
		json_fix(r, ret, &res);
		jadd(o, "restore", r);
	}
	return ret;
}

/*
 * cdmctl unspill, of one target: pages on the node that no policy put
 * there go back to system RAM.
 */
int cmd_unspill(const struct target *t, struct json_object *o)
{
	struct fix_result res;
	int ret;

	if (!node_online_bytes(t->node)) {
		err("node %d has no memory online", t->node);
		memset(&res, 0, sizeof(res));
		ret = fix_failed(&res, EX_NOTHING, EALREADY);
	} else {
		ret = fix_pages(t->node, PF_UNSPILL, &res);
	}
	if (o) {
		json_result(o, t, result_of(ret), 0, NULL);
		json_fix(o, ret, &res);
	}
	return ret;
}
