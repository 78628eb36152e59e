// SPDX-License-Identifier: GPL-2.0
/* cdmctl: cdmctl evacuate (and --dry-run) and cdmctl online, with their progress. */
#include "cdmctl.h"

/* ------------------------------------------------------ evacuate/online */

/* Who owns @node, for messages: the device, or "firmware" for none. */
static const char *node_owner(int node, const struct dev *d,
			      struct numacdm_node_info *in)
{
	if (d)
		return d->bdf;
	if (!numacdm_node_info(node, in) && strcmp(in->owner, "none"))
		return in->owner;
	return "firmware";
}

/* bytes of memory online on @node, 0 if none or unknown */
uint64_t node_online_bytes(int node)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;

	if (numacdm_node_info(node, &in) || !in.present)
		return 0;
	return in.mem_total;
}

int errno_exit(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return EX_PERM;
	case ENOENT:
	case ENODEV:
		return EX_NODEV;
	case EINVAL:
		return EX_USAGE;
	case EALREADY:
		return EX_NOTHING;
	default:
		return EX_FAIL;
	}
}

struct evac_job {
	char rel[PATH_MAX];
	char val[32];
	atomic_int done;
	int err;
};

static void *evac_thread(void *arg)
{
	struct evac_job *j = arg;

	j->err = cdm_sysfs_write(j->val, "%s", j->rel) ? errno : 0;
	atomic_store(&j->done, 1);
	return NULL;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_eta(double s, char *buf, size_t len)
{
	if (s < 0 || s > 1e7)
		snprintf(buf, len, "--:--");
	else if (s >= 3600)
		snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600,
			 (int)s / 60 % 60, (int)s % 60);
	else
		snprintf(buf, len, "%02d:%02d", (int)s / 60, (int)s % 60);
}

void progress_init(struct progress *p, const char *what, int node)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->node = node;
	p->tty = isatty(STDERR_FILENO);
	p->step = -1;
	p->t0 = now_s();
}

void progress_frame(struct progress *p, int final)
{
	double el = now_s() - p->t0, rate, pct;
	uint64_t done = p->done, total = p->total;
	char a[32], b[32], eta[16];
	int step;

	if (quiet || (!final && el < 0.2) || (final && !p->shown))
		return;
	if (final)
		done = total = total > done ? total : done;
	rate = el > 0 ? (double)done / el : 0;
	pct = total ? 100.0 * (double)done / (double)total : (final ? 100 : 0);
	if (pct > 100)
		pct = 100;
	fmt_eta(final ? 0 : rate > 0 ? (double)(total - done) / rate : -1, eta,
		sizeof(eta));
	human(done, a, sizeof(a));
	human(total, b, sizeof(b));
	if (p->tty) {
		int w = 20, fill = (int)(pct * w / 100);

		fprintf(stderr, "\r%s: node %d: [%.*s%*s] %5.1f%% %s of %s, %.1f MiB/s, ETA %s  ",
			p->what, p->node, fill, "####################",
			w - fill, "", pct, a, b, rate / 1048576, eta);
		if (final)
			fputc('\n', stderr);
	} else {
		step = (int)(pct / 10);
		if (step <= p->step)
			return;
		p->step = step;
		fprintf(stderr, "%s: node %d: %s of %s (%.1f%%), %.1f MiB/s, ETA %s\n",
			p->what, p->node, a, b, pct, rate / 1048576, eta);
	}
	p->shown = 1;
}

/* End the bar's line after a failure (the last frame stays as it was). */
void progress_end(struct progress *p)
{
	if (p->shown && p->tty)
		fputc('\n', stderr);
}

/*
 * Pages and microseconds of @node's last evacuation, from nodeN/cdm/; 0
 * and 0 when the last one failed or there was none.
 */
static void last_evacuation(int node, uint64_t *pages, uint64_t *us)
{
	uint64_t ms = 0, error = 1;

	*pages = 0;
	*us = 0;
	/* a failed evacuation's error is negative: no number read */
	if (cdm_sysfs_read_u64(&error, NODE_DIR "/node%d/cdm/evacuation_error",
			       node) || error ||
	    cdm_sysfs_read_u64(&ms, NODE_DIR "/node%d/cdm/evacuation_ms",
			       node) ||
	    cdm_sysfs_read_u64(pages, NODE_DIR "/node%d/cdm/pages_migrated",
			       node))
		return;
	*us = ms * 1000;
}

/*
 * Evacuation rate in bytes/s: the device's last evacuation's, or
 * EVAC_DEFAULT_RATE when none was measured (*measured 0).
 */
static double evac_rate(int node, int *measured)
{
	uint64_t pages, us;

	last_evacuation(node, &pages, &us);
	*measured = pages && us;
	if (!*measured)
		return EVAC_DEFAULT_RATE;
	/* pages_migrated counts base pages of the kernel's page size */
	return (double)pages * (double)sysconf(_SC_PAGESIZE) /
	       ((double)us / 1e6);
}

/*
 * The default timeout: EVAC_BASE_MS + EVAC_SLACK x the time moving @used
 * bytes takes at @rate bytes/s, at most EVAC_MAX_MS.
 */
static unsigned int default_timeout_ms(uint64_t used, double rate)
{
	double ms = EVAC_BASE_MS + EVAC_SLACK * (double)used / rate * 1000;

	return ms >= EVAC_MAX_MS ? EVAC_MAX_MS : (unsigned int)ms;
}

/* MemAvailable of /proc/meminfo in bytes (system RAM only on a CDM kernel). */
static int ram_available(uint64_t *bytes)
{
	char buf[4096], *p;

	if (cdm_sysfs_read(buf, sizeof(buf), "/proc/meminfo") < 0)
		return -1;
	p = strstr(buf, "MemAvailable:");
	if (!p)
		return -1;
	*bytes = strtoull(p + 13, NULL, 10) * 1024;
	return 0;
}

/*
 * cdmctl evacuate --dry-run: what an evacuation would move, whether system
 * RAM can take it, how long it would take at the rate of the device's
 * last evacuation and the timeout cdmctl would give it.  Reads only; exit
 * 1 when RAM cannot take it (what the evacuation itself would return), 0
 * otherwise.  Of several targets, each is given the RAM the ones before it
 * that fit would leave (they are evacuated one after another).
 */
int evacuate_dry_run(const struct target *t, struct json_object *o)
{
	static uint64_t taken;		/* by the targets before */
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	uint64_t avail = 0;
	double est = -1, rate;
	char a[32], b[32];
	struct dev *d = t->dev;
	int node = t->node, fits, measured;

	if (numacdm_node_info(node, &in) || !in.present) {
		err("node %d has no memory online (already evacuated?)", node);
		return json_failed(o, t, EX_NOTHING, EALREADY);
	}
	if (ram_available(&avail)) {
		err("/proc/meminfo: %s", strerror(errno));
		return json_failed(o, t, EX_FAIL, errno);
	}
	avail = avail > taken ? avail - taken : 0;
	fits = in.mem_used <= avail;
	if (fits)
		taken += in.mem_used;
	rate = evac_rate(node, &measured);
	if (measured)
		est = (double)in.mem_used / rate;
	if (o) {
		jnum(o, "target_node", node);
		jstr(o, "device", d ? d->bdf : NULL);
		jstr(o, "chardev", d && d->misc[0] ? d->misc : NULL);
		jstr(o, "owner", in.owner);
		jsize(o, "in_use_bytes", in.mem_used);
		jsize(o, "ram_available_bytes", avail);
		jbool(o, "fits", fits);
		if (est >= 0)
			jsecs(o, "estimated_seconds", est);
		else
			jadd(o, "estimated_seconds", NULL);
		ju64(o, "rate_bytes_per_second", (uint64_t)rate);
		jbool(o, "rate_measured", measured);
		ju64(o, "default_timeout_ms",
		     default_timeout_ms(in.mem_used, rate));
	} else {
		printf("node %d (%s): %s in use would move to system RAM\n",
		       node, d ? d->bdf : in.owner,
		       human(in.mem_used, a, sizeof(a)));
		printf("system RAM available: %s: %s\n",
		       human(avail, b, sizeof(b)),
		       fits ? "fits" : "does NOT fit");
		if (est >= 0)
			printf("estimated time: %.1f s (at the rate of the last evacuation, %.1f MiB/s)\n",
			       est, rate / 1048576.0);
		else
			printf("estimated time: unknown (no earlier evacuation of this node)\n");
		printf("default timeout: %u ms (%s)\n",
		       default_timeout_ms(in.mem_used, rate),
		       measured ? "10 s + 3 x the estimate" :
		       "10 s + 3 x the time at 8 MiB/s");
	}
	return fits ? EX_OK : EX_FAIL;
}

/*
 * An evacuation that did not succeed: its JSON "result" in *@result, the
 * message for the user in @msg; returns the exit status @exit.
 */
static int __attribute__((format(printf, 6, 7)))
evac_failed(const char **result, const char *what, int exit, char *msg,
	    size_t len, const char *fmt, ...)
{
	va_list ap;

	*result = what;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return exit;
}

/*
 * cdmctl evacuate, of one target.  @timeout_ms: the --timeout value, -1
 * without one (the default: see default_timeout_ms()), 0 for the kernel's
 * default (10 s).  The driver and the node's file read the value the same
 * way.  With --json every outcome goes into @o.
 */
int cmd_evacuate(const struct target *t, long timeout_ms, struct json_object *o)
{
	struct evac_job job = { .done = 0 };
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	struct numacdm_node_info oi = NUMACDM_NODE_INFO_INIT;
	const char *who;		/* the owner, for messages */
	struct progress pg;
	struct dev *d = t->dev;
	pthread_t th;
	int node = t->node, ret = EX_OK, measured;
	unsigned int tmo, deadline_ms;
	uint64_t v = 0, us = 0, used = 0;
	long psz = sysconf(_SC_PAGESIZE);
	const char *result = "ok";
	char msg[256] = "";
	double secs;

	who = node_owner(node, d, &oi);
	if (!numacdm_node_info(node, &in) && in.present)
		used = in.mem_used;
	if (timeout_ms < 0)
		tmo = default_timeout_ms(used, evac_rate(node, &measured));
	else
		tmo = (unsigned int)timeout_ms;
	/* what the kernel will allow, for messages and JSON */
	deadline_ms = tmo ? tmo : EVAC_KERNEL_DEFAULT_MS;
	progress_init(&pg, "evacuate", node);
	if (d && !strcmp(d->state, "offline")) {
		job.err = EALREADY;
		ret = evac_failed(&result, "nothing", EX_NOTHING, msg, sizeof(msg),
				  "node %d is already evacuated (device offline)",
				  node);
		goto out;
	}
	if (!d && !node_online_bytes(node)) {
		job.err = EALREADY;
		ret = evac_failed(&result, "nothing", EX_NOTHING, msg, sizeof(msg),
				  "node %d has no memory online (already evacuated?)",
				  node);
		goto out;
	}
	snprintf(job.rel, sizeof(job.rel), NODE_DIR "/node%d/cdm/evacuate", node);
	snprintf(job.val, sizeof(job.val), "%u\n", tmo);
	/* not into job.err: the thread may have set it already */
	ret = pthread_create(&th, NULL, evac_thread, &job);
	if (ret) {
		job.err = ret;
		ret = evac_failed(&result, "error", EX_FAIL, msg, sizeof(msg),
				  "cannot start the evacuation thread: %s",
				  strerror(job.err));
		goto out;
	}
	while (!atomic_load(&job.done)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		uint64_t done, left;

		if (!cdm_sysfs_read_u64(&done, NODE_DIR "/node%d/cdm/pages_migrated",
					node) &&
		    !cdm_sysfs_read_u64(&left, NODE_DIR "/node%d/cdm/pages_remaining",
					node)) {
			pg.done = done * (uint64_t)psz;
			pg.total = (done + left) * (uint64_t)psz;
			progress_frame(&pg, 0);
		}
		nanosleep(&ts, NULL);
	}
	pthread_join(th, NULL);

	switch (job.err) {
	case 0:
		break;
	case EBUSY:
		progress_end(&pg);
		cdm_sysfs_read_u64(&v, NODE_DIR "/node%d/cdm/pages_remaining",
				   node);
		ret = evac_failed(&result, "timeout", EX_EVAC, msg, sizeof(msg),
				  "evacuation of node %d timed out after %u ms: %" PRIu64
				  " pages could not be migrated; the memory is back online",
				  node, deadline_ms, v);
		break;
	case EINTR:
		progress_end(&pg);
		ret = evac_failed(&result, "interrupted", EX_EVAC, msg, sizeof(msg),
				  "evacuation of node %d interrupted; the memory is back online",
				  node);
		break;
	case EALREADY:
		ret = evac_failed(&result, "nothing", EX_NOTHING, msg, sizeof(msg),
				  "node %d has no memory to evacuate", node);
		break;
	case EINVAL:
		ret = evac_failed(&result, "rejected", EX_USAGE, msg, sizeof(msg),
				  "the request was rejected (timeout %u ms)", tmo);
		break;
	default:
		progress_end(&pg);
		ret = evac_failed(&result, "error", errno_exit(job.err), msg,
				  sizeof(msg), "evacuate: %s%s", strerror(job.err),
				  job.err == EACCES || job.err == EPERM ?
				  " (needs root)" : "");
		break;
	}
out:
	secs = now_s() - pg.t0;
	if (!job.err) {
		last_evacuation(node, &v, &us);
		if (us)
			secs = (double)us / 1e6;
		pg.done = v * (uint64_t)psz;
		progress_frame(&pg, 1);
		if (!o) {
			printf("node %d (%s) evacuated: %" PRIu64
			       " pages migrated in %.2f s (%s)\n", node, who, v,
			       secs, human(v * (uint64_t)psz, msg, sizeof(msg)));
			printf("bring it back with 'cdmctl online %d'\n", node);
		}
	} else {
		err("%s: %s", who, msg);
		if (job.err != EBUSY)
			cdm_sysfs_read_u64(&v, NODE_DIR
					   "/node%d/cdm/pages_remaining", node);
	}
	if (o) {
		json_result(o, t, result, job.err, job.err ? msg : NULL);
		ju64(o, job.err ? "pages_remaining" : "pages_migrated", v);
		jsize(o, job.err ? "bytes_remaining" : "bytes",
		      v * (uint64_t)psz);
		jsecs(o, "seconds", secs);
		ju64(o, "timeout_ms", deadline_ms);
	}
	return ret;
}

/*
 * Bring the target's memory back through nodeN/cdm/online: the owning
 * driver adds it again, or the kernel onlines the blocks an evacuation
 * offlined (memory no driver owns).  EX_NOTHING if it is online already;
 * on failure the errno in last_errno.
 */
int online_node(const struct target *t)
{
	struct numacdm_node_info in = NUMACDM_NODE_INFO_INIT;
	int node = t->node;
	const char *who = node_owner(node, t->dev, &in);
	char a[32];

	if (t->dev && !strcmp(t->dev->state, "online")) {
		last_errno = EALREADY;
		err("%s: node %d is already online", who, node);
		return EX_NOTHING;
	}
	if (cdm_sysfs_write("1\n", NODE_DIR "/node%d/cdm/online", node)) {
		int e = errno;

		last_errno = e;
		if (e == EALREADY) {
			err("%s: node %d is already online", who, node);
			return EX_NOTHING;
		}
		err("%s: node %d: online: %s%s", who, node, strerror(e),
		    e == EACCES || e == EPERM ? " (needs root)" :
		    e == ENODEV ? " (nothing to bring back)" : "");
		return errno_exit(e);
	}
	if (!json)
		printf("node %d (%s) online: %s\n", node, who,
		       human(node_online_bytes(node), a, sizeof(a)));
	return EX_OK;
}
