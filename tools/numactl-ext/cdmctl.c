// SPDX-License-Identifier: GPL-2.0
/*
 * cdmctl - inspect and control coherent device memory (CDM) nodes.
 *
 *   cdmctl [-j|--json] [-u|--human] [-q|--quiet] COMMAND [OPTIONS] [ARGS]
 *   cdmctl list
 *   cdmctl status <targets>
 *   cdmctl evacuate <targets> [-t|--timeout MS] [--dry-run]
 *   cdmctl online <targets> [-r|--restore]
 *   cdmctl run -n|--node NODES [-p|--preferred] -- CMD [ARGS...]
 *   cdmctl where <pid|self>
 *   cdmctl users <targets>
 *   cdmctl unspill <targets>
 *   cdmctl help [COMMAND] | cdmctl COMMAND -h | cdmctl version | cdmctl -V
 *
 * <targets>: a device, a node, a node list ("1-2,4") or "all", acted on
 * one after another (see for_each_target()).
 *
 * A table of commands, each parsing its own options with getopt_long();
 * -j/-u (and -q where there is progress) also after the command, and
 * before it only for the commands that take them after it.  JSON through
 * json-c.  This file holds the table, the option parsing and the
 * help; each cdmctl-*.c file a group of commands (cdmctl.h: what they
 * share).
 *
 * See cdmctl.8 for the exit codes.  All /sys and /proc paths are read below
 * $CDM_SYSFS_ROOT (tests point it at a fake tree).
 */
#include "cdmctl.h"

int last_errno;		/* errno of the last failure, 0 unknown */
char last_msg[512];	/* the last error message */
int json;		/* -j, --json */
int human_sizes;	/* -u, --human: sizes in JSON as daxctl -u shows them */
int quiet;		/* -q, --quiet: no progress */

/* An error message on stderr, kept in last_msg; errno is left as it was. */
void err(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cdmctl: %s\n", last_msg);
	errno = e;
}

/* ----------------------------------------------------------------- main */

struct command {
	const char *name;
	int (*fn)(const struct command *c, int argc, char **argv);
	const char *takes;	/* which of -j, -u, -q it takes ("juq") */
	const char *summary;	/* one line, for "cdmctl help" */
	const char *usage;	/* "cdmctl help NAME", "cdmctl NAME --help" */
};

/*
 * Every option of every command, to tell "no such option" from "not an
 * option of this command".
 */
static const struct {
	const char *name;
	int letter;
	const char *commands;
} known_opts[] = {
	{ "json", 'j', "list, status, evacuate, online, where, users, unspill" },
	{ "human", 'u', "list, status, evacuate, online, where, users, unspill" },
	{ "quiet", 'q', "evacuate, online, unspill" },
	{ "timeout", 't', "evacuate" },
	{ "dry-run", 0, "evacuate" },
	{ "restore", 'r', "online" },
	{ "node", 'n', "run" },
	{ "preferred", 'p', "run" },
	{ "version", 'V', "cdmctl itself, before the command" },
};

static const char main_usage[] =
	"usage: cdmctl [-j|--json] [-u|--human] [-q|--quiet] COMMAND [ARGS]\n"
	"       cdmctl help [COMMAND] | cdmctl COMMAND --help | cdmctl -V|--version\n"
	"commands:\n";

static void cmd_usage(const struct command *c, FILE *f)
{
	fprintf(f, "usage: %s", c->usage);
}

/*
 * Option @name ("-q", "--quiet", "--qu") is one of another command (or,
 * for @c without fn, of a command): prints so and returns 0; -1 if it is
 * no option of cdmctl's.
 */
static int not_here(const struct command *c, const char *name)
{
	for (size_t i = 0; i < sizeof(known_opts) / sizeof(known_opts[0]); i++) {
		int match = name[1] == '-' ?
			    !strncmp(name + 2, known_opts[i].name, strlen(name + 2)) &&
			    name[2] :
			    name[1] == known_opts[i].letter && !name[2];

		if (match && !c->fn) {
			err("option '%s' goes after the command (it is an option of: %s)",
			    name, known_opts[i].commands);
			return 0;
		}
		if (match) {
			err("%s: option '%s' does not apply to '%s' (it is an option of: %s)",
			    c->name, name, c->name, known_opts[i].commands);
			return 0;
		}
	}
	return -1;
}

/* An option getopt_long() did not take; prints why.  Returns EX_USAGE. */
static int bad_option(const struct command *c, int opt, char **argv)
{
	const char *arg = argv[optind - 1];
	char name[64];

	/*
	 * A long option: optopt 0 (unknown), or set (missing or unwanted
	 * value).  A short one in a cluster ("-xj") leaves optind on it, so
	 * argv[optind - 1] may be an earlier long option.
	 */
	if (!strncmp(arg, "--", 2) &&
	    (!optopt || opt == ':' || strchr(arg, '=')))
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
	else
		snprintf(name, sizeof(name), "-%c", optopt);
	if (opt == '?' && optopt && strchr(arg, '=') && !strncmp(arg, "--", 2)) {
		err("%s: option '%s' takes no value", c->fn ? c->name : "cdmctl",
		    name);
		return EX_USAGE;
	}
	if (opt == ':') {
		err("%s: option '%s' needs a value", c->fn ? c->name : "cdmctl",
		    name);
		return EX_USAGE;
	}
	if (!not_here(c, name))
		return EX_USAGE;
	if (!c->fn)
		err("unknown option '%s' (see 'cdmctl --help')", name);
	else
		err("%s: unknown option '%s' (see 'cdmctl %s --help')", c->name,
		    name, c->name);
	return EX_USAGE;
}

/*
 * The options every command that prints data shares.  Returns -1 if @opt
 * is not one of them, else 0 to go on, or the exit status + 1000 to stop.
 */
#define OPT_DONE(r)	((r) + 1000)
static int common_opt(const struct command *c, int opt)
{
	switch (opt) {
	case 'j':
		json = 1;
		return 0;
	case 'u':
		human_sizes = 1;
		return 0;
	case 'q':
		quiet = 1;
		return 0;
	case 'h':
		cmd_usage(c, stdout);
		return OPT_DONE(EX_OK);
	default:
		return -1;
	}
}

#define COMMON_LONG \
	{ "json", no_argument, NULL, 'j' }, \
	{ "human", no_argument, NULL, 'u' }, \
	{ "help", no_argument, NULL, 'h' }
#define QUIET_LONG { "quiet", no_argument, NULL, 'q' }

/* --timeout's value: 0 to EVAC_MAX_MS. */
static int parse_ms(const char *opt, const char *s, long *v)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || end == s || !isdigit((unsigned char)s[0])) {
		err("%s: '%s' is not a number of milliseconds", opt, s);
		return EX_USAGE;
	}
	if (n > EVAC_MAX_MS) {
		err("%s: at most %u ms (0: the kernel's default, 10 s)", opt,
		    EVAC_MAX_MS);
		return EX_USAGE;
	}
	*v = (long)n;
	return EX_OK;
}

/*
 * The usual option loop: @extra handles a command's own options (returns
 * -1 for "not mine", like common_opt()).  Returns -1 to go on, else the
 * exit status.
 */
static int parse_opts(const struct command *c, int argc, char **argv,
		      const char *shortopts, const struct option *longopts,
		      int (*extra)(const struct command *, int, const char *))
{
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		r = common_opt(c, opt);
		if (r < 0 && extra)
			r = extra(c, opt, optarg);
		if (r < 0)
			return bad_option(c, opt, argv);
		if (r)
			return r >= 1000 ? r - 1000 : r;
	}
	return -1;
}

/*
 * parse_opts(), then the one positional argument, argv[optind]: -1 with
 * *@arg set to go on, else the exit status.
 */
static int parse_one_arg(const struct command *c, int argc, char **argv,
			 const char *shortopts, const struct option *longopts,
			 int (*extra)(const struct command *, int, const char *),
			 const char **arg)
{
	int r = parse_opts(c, argc, argv, shortopts, longopts, extra);

	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		err("%s needs exactly one argument (see 'cdmctl %s --help')",
		    c->name, c->name);
		return EX_USAGE;
	}
	*arg = argv[optind];
	return -1;
}

static int list_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, { 0 } };
	int r = parse_opts(c, argc, argv, ":juh", lo, NULL);

	if (r >= 0)
		return r;
	if (optind < argc) {
		err("%s takes no arguments", c->name);
		return EX_USAGE;
	}
	return cmd_list();
}

/*
 * Of two exit statuses, the one a command on several targets exits with:
 * the first failure, but a failure other than "nothing to do" before that.
 */
static int worse(int ret, int r)
{
	if (!ret || (ret == EX_NOTHING && r && r != EX_NOTHING))
		return r;
	return ret;
}

/*
 * Run @fn on each target of @arg (a device, a node, a node list, "all"),
 * in order, one after another.  Every target is resolved before @fn runs
 * on any: a target that cannot be, prints its error and nothing else
 * happens.  With --json, @fn fills an object per target; one target's
 * object is printed as it is, several targets' as an array of them.  Text
 * output of several targets: @sep 1 puts a blank line between them, 2
 * also a "node N:" heading before each.  The exit status is worse() of
 * the targets'.
 */
static int for_each_target(const char *arg,
			   int (*fn)(const struct target *, struct json_object *),
			   int sep)
{
	struct json_object *a = NULL, *o = NULL;
	struct target *t;
	int n, ret, r;

	ret = resolve_targets(arg, &t, &n);
	if (ret)
		return ret;
	if (json && n > 1)
		a = json_object_new_array();
	for (int i = 0; i < n; i++) {
		if (json)
			o = json_object_new_object();
		else if (n > 1 && sep && i)
			putchar('\n');
		if (!json && n > 1 && sep > 1)
			printf("node %d:\n", t[i].node);
		last_errno = 0;
		r = fn(&t[i], o);
		/* every outcome says something: an object left empty as well */
		if (o && !json_object_object_length(o))
			json_result(o, &t[i], result_of(r), last_errno,
				    r ? last_msg : NULL);
		if (a)
			json_object_array_add(a, o);
		else if (o)
			jprint(o);
		ret = worse(ret, r);
	}
	if (a)
		jprint(a);
	free(t);
	return ret;
}

static int data_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, { 0 } };
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juh", lo, NULL, &arg);

	if (r >= 0)
		return r;
	if (!strcmp(c->name, "status"))
		return for_each_target(arg, cmd_status, 1);
	if (!strcmp(c->name, "where"))
		return cmd_where(arg);
	return for_each_target(arg, cmd_users, 2);
}

static long evac_timeout;
static int evac_dry_run, online_restore;

static int evacuate_opt(const struct command *c, int opt, const char *val)
{
	(void)c;
	switch (opt) {
	case 't':
		return parse_ms("--timeout", val, &evac_timeout);
	case 'D':
		evac_dry_run = 1;
		return 0;
	case 'r':
		online_restore = 1;
		return 0;
	}
	return -1;
}

static int evacuate_target(const struct target *t, struct json_object *o)
{
	if (evac_dry_run)
		return evacuate_dry_run(t, o);
	return cmd_evacuate(t, evac_timeout, o);
}

static int evacuate_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONG,
		QUIET_LONG,
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ 0 }
	};
	const char *arg;
	int r;

	evac_timeout = -1;
	r = parse_one_arg(c, argc, argv, ":juqht:", lo, evacuate_opt, &arg);
	if (r >= 0)
		return r;
	return for_each_target(arg, evacuate_target, evac_dry_run);
}

static int online_target(const struct target *t, struct json_object *o)
{
	return cmd_online(t, online_restore, o);
}

static int online_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		COMMON_LONG,
		QUIET_LONG,
		{ "restore", no_argument, NULL, 'r' },
		{ 0 }
	};
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juqhr", lo, evacuate_opt, &arg);

	return r >= 0 ? r : for_each_target(arg, online_target, 0);
}

static int unspill_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONG, QUIET_LONG, { 0 } };
	const char *arg;
	int r = parse_one_arg(c, argc, argv, ":juqh", lo, NULL, &arg);

	return r >= 0 ? r : for_each_target(arg, cmd_unspill, 0);
}

/*
 * run --node: a node number or node list ("1", "1-2,4"); "all" is every
 * CDM node with memory online (cmd_run() checks each node).
 * numacdm_parse_nodelist() rather than numa_parse_nodestring(): the
 * latter accepts only nodes with memory on the running system, which an
 * evacuated CDM node (or one of a CDM_SYSFS_ROOT tree) is not; cmd_run()
 * says what is wrong with the node.
 */
static int parse_nodes(const char *s, struct bitmask **nodes, int *all)
{
	if (*nodes)
		numa_bitmask_free(*nodes);
	*all = !strcmp(s, "all");
	*nodes = *all ? numacdm_nodes() : numacdm_parse_nodelist(s);
	if (!*nodes && *all) {
		err("cannot read CDM nodes: %s", strerror(errno));
		return EX_FAIL;
	}
	if (!*nodes) {
		err("run: --node: '%s' is not a node number or node list", s);
		return EX_USAGE;
	}
	/* "all" naming nothing is cmd_run()'s to explain */
	if (!*all && !numa_bitmask_weight(*nodes)) {
		err("run: --node '%s' names no node", s);
		return EX_USAGE;
	}
	return EX_OK;
}

static int run_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "preferred", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct bitmask *nodes = NULL;
	int opt, all = 0, preferred = 0, r;

	optind = 0;
	opterr = 0;
	/* '+': options end at the first argument; CMD follows "--" */
	while ((opt = getopt_long(argc, argv, "+:n:ph", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			r = parse_nodes(optarg, &nodes, &all);
			if (r)
				goto out;
			break;
		case 'p':
			preferred = 1;
			break;
		case 'h':
			cmd_usage(c, stdout);
			r = EX_OK;
			goto out;
		default:
			r = bad_option(c, opt, argv);
			goto out;
		}
	}
	if (!nodes) {
		err("run needs --node NODES");
		return EX_USAGE;
	}
	if (optind >= argc || strcmp(argv[optind - 1], "--")) {
		err("usage: cdmctl run --node NODES [--preferred] -- CMD [ARGS...]");
		r = EX_USAGE;
		goto out;
	}
	r = cmd_run(nodes, all, preferred, argv + optind);
out:
	if (nodes)
		numa_bitmask_free(nodes);
	return r;
}

static int version_main(const struct command *c, int argc, char **argv)
{
	int r = parse_opts(c, argc, argv, ":h",
			   (const struct option[]){ { "help", no_argument, NULL, 'h' },
						    { 0 } }, NULL);

	if (r >= 0)
		return r;
	if (optind < argc) {
		err("%s takes no arguments", c->name);
		return EX_USAGE;
	}
	printf("cdmctl " CDM_TOOLS_VERSION "\n");
	return EX_OK;
}

static int help_main(const struct command *c, int argc, char **argv);

#define DATA_OPTS \
	"  -j, --json      JSON output (several targets: an array)\n" \
	"  -u, --human     sizes in JSON as daxctl -u shows them:\n" \
	"                  \"256.00 MiB (268.44 MB)\", bytes below 5000 KiB\n" \
	"  -h, --help      this help\n"
#define TARGETS \
	"<targets>: a device, a node, a node list (1-2,4) or all (every CDM node),\n" \
	"acted on one after another.\n"

static const struct command commands[] = {
	{ "list", list_main, "ju",
	  "every CDM node: device, size, use, state, distances",
	  "cdmctl list [-j] [-u]\n"
	  "Every CDM node: device, size, use, state, distances to system RAM.\n"
	  DATA_OPTS },
	{ "status", data_main, "ju", "details of CDM nodes and their devices",
	  "cdmctl status <targets> [-j] [-u]\n"
	  "Details of each CDM node and its device, with the device's stats.\n"
	  TARGETS DATA_OPTS },
	{ "evacuate", evacuate_main, "juq",
	  "migrate everything off nodes, remove their memory",
	  "cdmctl evacuate <targets> [-t MS] [--dry-run] [-q] [-j] [-u]\n"
	  "Migrate every page off each node and remove (firmware memory: offline)\n"
	  "its memory.  Progress on stderr: a bar on a terminal, else a line per 10 %.\n"
	  TARGETS
	  "  -t, --timeout MS  give up on a node after MS ms (0 to 3600000) and put\n"
	  "                    its memory back; 0 = the kernel's default, 10 s (every\n"
	  "                    evacuation has a deadline).  Default: 10 s + 3 x the\n"
	  "                    time the node's used memory takes at the rate of the\n"
	  "                    device's last evacuation (8 MiB/s if none was\n"
	  "                    measured), at most 3600000 ms; --dry-run shows it.\n"
	  "      --dry-run     what would move, whether RAM has room, how long, the\n"
	  "                    default timeout; changes nothing\n"
	  "  -q, --quiet       no progress\n"
	  DATA_OPTS },
	{ "online", online_main, "juq", "add the device memory back",
	  "cdmctl online <targets> [-r] [-q] [-j] [-u]\n"
	  "Add each node's memory back (firmware memory: online its blocks).\n"
	  TARGETS
	  "  -r, --restore   also move back the pages whose policy names the node\n"
	  "                  (a node online already is then not an error)\n"
	  "  -q, --quiet     no progress\n"
	  DATA_OPTS },
	{ "run", run_main, "", "run a command with its memory on CDM nodes",
	  "cdmctl run -n NODES [-p] -- CMD [ARGS...]\n"
	  "Run CMD with its memory bound to (or preferring) CDM nodes.\n"
	  "  -n, --node NODES  a node number or node list (\"1-2,4\"; \"all\":\n"
	  "                    every CDM node with memory online)\n"
	  "  -p, --preferred   MPOL_PREFERRED (MPOL_PREFERRED_MANY for several\n"
	  "                    nodes) instead of MPOL_BIND\n"
	  "  -h, --help        this help\n" },
	{ "where", data_main, "ju", "per-node memory residency of a process",
	  "cdmctl where <pid|self> [-j] [-u]\n"
	  "Per-node memory residency of a process.\n"
	  DATA_OPTS },
	{ "users", data_main, "ju",
	  "processes with memory on nodes, largest first",
	  "cdmctl users <targets> [-j] [-u]\n"
	  "Processes with memory on each node, largest first.\n"
	  TARGETS DATA_OPTS },
	{ "unspill", unspill_main, "juq",
	  "move pages no policy put on nodes back to system RAM",
	  "cdmctl unspill <targets> [-q] [-j] [-u]\n"
	  "Move the pages on each node whose policy does not name it (emergency\n"
	  "fallback) back to system RAM.\n"
	  TARGETS
	  "  -q, --quiet     no progress\n"
	  DATA_OPTS },
	{ "help", help_main, "", "this list, or a command's options",
	  "cdmctl help [COMMAND]\n" },
	{ "version", version_main, "", "cdmctl's version",
	  "cdmctl version\n" },
	{ NULL, NULL, NULL, NULL, NULL }
};

static void usage(FILE *f)
{
	fputs(main_usage, f);
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fputs("<targets>: a PCI address (0000:00:03.0), a device name (capi_sim0), a\n"
	      "node, a node list (1-2,4) or all (every CDM node).\n"
	      "-j/--json: machine-readable output (every command but run, help, version);\n"
	      "-u/--human: sizes in JSON as daxctl -u shows them; -q/--quiet: no progress;\n"
	      "before the command, each only for the commands that take it after it.\n"
	      "See cdmctl(8).\n", f);
}

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static int help_main(const struct command *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	const struct command *t;
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (opt != 'h')
			return bad_option(c, opt, argv);
		cmd_usage(c, stdout);
		return EX_OK;
	}
	if (optind == argc) {
		usage(stdout);
		return EX_OK;
	}
	if (argc - optind > 1) {
		err("help takes at most one command");
		return EX_USAGE;
	}
	t = find_command(argv[optind]);
	if (!t) {
		err("help: unknown command '%s'", argv[optind]);
		return EX_USAGE;
	}
	cmd_usage(t, stdout);
	return EX_OK;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "human", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	static const struct command top = { "cdmctl", NULL, "", "", "" };
	static const char globals[] = "juq";
	char given[3][16] = { "", "", "" };	/* how -j, -u, -q were spelt */
	const struct command *c;
	int opt, li;

	opterr = 0;
	/* '+': global options end at the command */
	while ((li = -1, opt = getopt_long(argc, argv, "+:juqhvV", lo, &li)) != -1) {
		const char *g = opt > 0 ? strchr(globals, opt) : NULL;

		if (g && li >= 0)
			snprintf(given[g - globals], sizeof(given[0]), "--%s",
				 lo[li].name);
		else if (g)
			snprintf(given[g - globals], sizeof(given[0]), "-%c", opt);
		switch (opt) {
		case 'j':
			json = 1;
			break;
		case 'u':
			human_sizes = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'v':	/* daxctl's and ndctl's spelling */
		case 'V':
			printf("cdmctl " CDM_TOOLS_VERSION "\n");
			return EX_OK;
		default:
			return bad_option(&top, opt, argv);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	c = find_command(argv[optind]);
	if (!c) {
		err("unknown command '%s'", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	/* before the command as after it: "-q list" is refused as "list -q" */
	for (int i = 0; i < 3; i++)
		if (given[i][0] && !strchr(c->takes, globals[i])) {
			not_here(c, given[i]);
			return EX_USAGE;
		}
	return c->fn(c, argc - optind, argv + optind);
}
