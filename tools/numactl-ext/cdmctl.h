/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cdmctl: what its files share.  cdmctl.c holds the command table and
 * option parsing; each cdmctl-*.c file one group of commands (see the
 * comment at its top).
 */
#ifndef CDMCTL_H
#define CDMCTL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <numa.h>
#include <numaif.h>
#include <getopt.h>
#include <json-c/json.h>

#include "numacdm.h"
#include "sysfs.h"

#define NODE_DIR	"/sys/devices/system/node"
#define CAPI_SIM_DIR	"/sys/bus/pci/drivers/capi_sim"
#define MAX_NODES	1024
#define MAX_DEVS	64
#define EVAC_MAX_MS	3600000u	/* the capi_sim driver's maximum */
#define EVAC_KERNEL_DEFAULT_MS	10000u	/* what the kernel makes of 0 */
/* The default timeout: EVAC_BASE_MS + EVAC_SLACK x (used bytes / rate). */
#define EVAC_BASE_MS	10000.0
#define EVAC_SLACK	3.0
/* The rate when no evacuation of the device was measured: conservative. */
#define EVAC_DEFAULT_RATE (8.0 * 1048576)

enum {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_NODEV = 3,
	EX_PERM = 4,
	EX_EVAC = 5,
	EX_NOTHING = 6,
	EX_NOEXEC = 126,
	EX_NOTFOUND = 127,
};

extern int last_errno;		/* errno of the last failure, 0 unknown */
extern char last_msg[512];	/* the last error message */
extern int json;		/* -j, --json */
extern int human_sizes;		/* -u, --human: sizes in JSON as daxctl -u shows them */
extern int quiet;		/* -q, --quiet: no progress */

void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A device that owns a CDM node (capi_sim, or another driver). */
struct dev {
	char bdf[64];
	char misc[64];		/* capi_simN, or "" */
	int node;		/* -1 unknown */
	uint64_t size;
	char state[32];
};

extern struct dev devs[MAX_DEVS];
extern int ndevs;

/* A CDM node a command acts on, and the capi_sim device that owns it. */
struct target {
	int node;
	struct dev *dev;	/* NULL: another owner, or none */
};

/*
 * Progress on stderr, in bytes: a bar redrawn in place on a terminal; one
 * line per 10 % step otherwise (logs).  Nothing with --quiet, nothing for
 * what is over within 0.2 s; a last frame at 100 % when the work is done.
 */
struct progress {
	const char *what;	/* "evacuate", "restore", "unspill" */
	int node;
	int tty;
	int shown;		/* a frame was printed */
	int step;		/* last 10 % step printed (no terminal) */
	double t0;
	uint64_t done, total;	/* bytes */
};

/* cdmctl-devices.c */
void scan_devices(void);
struct dev *dev_of_node(int node, const char *owner);
int is_number(const char *s);
int resolve_targets(const char *arg, struct target **t, int *n);
void node_memblocks(int node, int *online, int *total);
void read_distances(int node, int *dist);
const char *human(uint64_t b, char *buf, size_t len);

/* cdmctl-json.c */
void jadd(struct json_object *o, const char *k, struct json_object *v);
void jstr(struct json_object *o, const char *k, const char *v);
void jnum(struct json_object *o, const char *k, int64_t v);
void ju64(struct json_object *o, const char *k, uint64_t v);
void jsize(struct json_object *o, const char *k, uint64_t v);
void jbool(struct json_object *o, const char *k, int v);
void jsecs(struct json_object *o, const char *k, double v);
void jprint(struct json_object *o);
void jmemblocks(struct json_object *o, int node);
const char *result_of(int ret);
void json_result(struct json_object *o, const struct target *t,
		 const char *result, int e, const char *msg);
int json_failed(struct json_object *o, const struct target *t, int ret, int e);

/* cdmctl-status.c */
int cmd_list(void);
int cmd_status(const struct target *t, struct json_object *o);

/* cdmctl-evacuate.c */
uint64_t node_online_bytes(int node);
int errno_exit(int e);
double now_s(void);
void progress_init(struct progress *p, const char *what, int node);
void progress_frame(struct progress *p, int final);
void progress_end(struct progress *p);
int evacuate_dry_run(const struct target *t, struct json_object *o);
int cmd_evacuate(const struct target *t, long timeout_ms, struct json_object *o);
int online_node(const struct target *t);

/* cdmctl-pages.c */
int cmd_online(const struct target *t, int restore, struct json_object *o);
int cmd_unspill(const struct target *t, struct json_object *o);

/* cdmctl-procs.c */
int cmd_users(const struct target *t, struct json_object *o);
int cmd_run(struct bitmask *nodes, int all, int preferred, char **argv);
int cmd_where(const char *pidarg);

#endif /* CDMCTL_H */
