// SPDX-License-Identifier: GPL-2.0
/*
 * doc_test - the shell examples of a reStructuredText guide, run as written.
 *
 *   doc_test GUIDE.rst
 *
 * Every literal block with shell prompts ("$ " or "# " after the block's
 * indentation) is an example.  The examples run in document order in one
 * shell, in a scratch directory, because a guide narrates one session: a
 * program started in the background is looked at by the next example, a
 * device evacuated in one is brought back in another.
 *
 * What must hold, per command:
 * - the lines the guide shows after it appear in its output (stdout and
 *   stderr together), in order; numbers are abstracted ("N") and so are
 *   sizes ("512.0 MiB" and "4.0 KiB" are both "S"), so a figure may differ
 *   but a word, a column or a key may not; an exit status the guide shows
 *   with "echo $?" is compared as it is;
 * - "..." in the guide stands for any lines, a line ending in "..." for
 *   any line that starts like it, and a progress bar (drawn only on a
 *   terminal) is not compared;
 * - a command the guide shows no output for must exit 0.
 *
 * rST comments steer it and do not show in the rendered guide:
 *   .. doc-test: skip REASON   the next block is not run (host-only steps)
 *   .. doc-test: before CMD    CMD runs, unseen, before the next block
 *
 * The guides' example programs are this binary under other names, linked
 * into the scratch directory: "./hold MIB" touches MIB MiB and waits to be
 * killed (the next command starts once it has touched them), "./solver"
 * touches 8 MiB and exits, "./app [SECONDS]" (the admin guide's job) touches
 * 8 MiB and stays SECONDS (default 0), started like "./hold" when it stays.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"
#include "cdm_lib.h"

#define MAX_LINES	4096
#define MAX_CMDS	512
#define MAX_BLOCKS	256
#define READY_FILE	".ready"
#define RUN_LIMIT_S	600

struct cmd {
	int line;		/* in the guide */
	char *text;		/* continuation lines joined */
	char **expect;		/* output lines the guide shows */
	int nexpect;
	bool background;
};

struct block {
	int line;
	const char *skip;	/* reason, or NULL */
	char *before;		/* hidden setup, or NULL */
	int first, ncmds;	/* into cmds[] */
};

static char *lines[MAX_LINES];
static int nlines;
static struct cmd cmds[MAX_CMDS];
static int ncmds;
static struct block blocks[MAX_BLOCKS];
static int nblocks;
static char work[] = "/tmp/doc_test.XXXXXX";	/* mkdtemp() fills it in */

/* ---- the example programs ---- */

static char *touch_mib(long mib)
{
	size_t len = (size_t)mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < len; i += 4096)
		p[i] = (char)i;
	return p;
}

static int hold_main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 16;
	FILE *f;

	if (mib <= 0 || !touch_mib(mib))
		return 1;
	f = fopen(READY_FILE, "w");
	if (f)
		fclose(f);
	for (;;)
		pause();
}

static int solver_main(void)
{
	return touch_mib(8) ? 0 : 1;
}

static int app_main(int argc, char **argv)
{
	unsigned int seconds = argc > 1 ? (unsigned int)atoi(argv[1]) : 0;
	FILE *f;

	if (!touch_mib(8))
		return 1;
	if (!seconds)
		return 0;
	f = fopen(READY_FILE, "w");
	if (f)
		fclose(f);
	while (seconds)
		seconds = sleep(seconds);
	return 0;
}

/* ---- reading the guide ---- */

static int indent_of(const char *s)
{
	int n = 0;

	while (s[n] == ' ')
		n++;
	return s[n] ? n : -1;	/* -1: blank */
}

static int read_guide(const char *path)
{
	FILE *f = fopen(path, "r");
	char *l = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f)
		return -errno;
	while ((len = getline(&l, &cap, f)) >= 0 && nlines < MAX_LINES) {
		while (len && (l[len - 1] == '\n' || l[len - 1] == '\r'))
			l[--len] = 0;
		lines[nlines++] = strdup(l);
	}
	free(l);
	fclose(f);
	return nlines < MAX_LINES ? 0 : -E2BIG;
}

static void add_expect(struct cmd *c, const char *s)
{
	c->expect = realloc(c->expect, (c->nexpect + 1) * sizeof(*c->expect));
	c->expect[c->nexpect++] = strdup(s);
}

/*
 * The length of @text without a trailing shell comment ("cmd &  # why")
 * and the blanks before it: a '#' that starts a word outside quotes.
 */
static size_t code_length(const char *text)
{
	char quote = 0;
	size_t n = strlen(text);

	for (size_t i = 0; text[i]; i++) {
		if (quote) {
			if (text[i] == quote)
				quote = 0;
		} else if (text[i] == '\\' && text[i + 1]) {
			i++;
		} else if (text[i] == '\'' || text[i] == '"') {
			quote = text[i];
		} else if (text[i] == '#' && i && text[i - 1] == ' ') {
			n = i;
			break;
		}
	}
	while (n && text[n - 1] == ' ')
		n--;
	return n;
}

/* The commands of the literal block in lines [from, to), @ind deep. */
static void parse_block(struct block *b, int from, int to, int ind)
{
	struct cmd *c = NULL;

	b->first = ncmds;
	for (int i = from; i < to && ncmds < MAX_CMDS; i++) {
		const char *s = lines[i];

		if (indent_of(s) < 0)
			continue;
		s += ind;
		if ((s[0] == '$' || s[0] == '#') && s[1] == ' ') {
			size_t n;

			c = &cmds[ncmds++];
			c->line = i + 1;
			c->text = strdup(s + 2);
			/* a trailing backslash continues the command */
			while ((n = strlen(c->text)) && c->text[n - 1] == '\\' &&
			       i + 1 < to) {
				char *j;

				c->text[n - 1] = 0;
				i++;
				if (asprintf(&j, "%s %s", c->text,
					     lines[i] + indent_of(lines[i])) < 0)
					break;
				free(c->text);
				c->text = j;
			}
			n = strlen(c->text);
			while (n && c->text[n - 1] == ' ')
				c->text[--n] = 0;
			n = code_length(c->text);
			c->background = n && c->text[n - 1] == '&';
		} else if (c) {
			add_expect(c, s);
		}
	}
	b->ncmds = ncmds - b->first;
}

/* Literal blocks: after a line ending in "::", the lines indented deeper. */
static void parse_guide(void)
{
	const char *skip = NULL;
	char *before = NULL;

	for (int i = 0; i < nlines && nblocks < MAX_BLOCKS; i++) {
		const char *s = lines[i];
		size_t n = strlen(s);
		int base, j, ind = 1 << 30;

		if (!strncmp(s, ".. doc-test: skip ", 18)) {
			skip = s + 18;
			continue;
		}
		if (!strncmp(s, ".. doc-test: before ", 20)) {
			before = strdup(s + 20);
			continue;
		}
		if (n < 2 || strcmp(s + n - 2, "::") || indent_of(s) < 0)
			continue;
		base = indent_of(s);
		for (j = i + 1; j < nlines; j++) {
			int in = indent_of(lines[j]);

			if (in >= 0 && in <= base)
				break;
			if (in >= 0 && in < ind)
				ind = in;
		}
		if (ind != 1 << 30) {
			struct block *b = &blocks[nblocks];

			parse_block(b, i + 1, j, ind);
			if (b->ncmds) {
				b->line = cmds[b->first].line;
				b->skip = skip;
				b->before = before;
				nblocks++;
			}
			skip = NULL;
			before = NULL;
		}
		i = j - 1;
	}
}

/* ---- running it ---- */

static int write_script(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "cd %s || exit 99\n", work);
	for (int b = 0; b < nblocks; b++) {
		if (blocks[b].skip)
			continue;
		if (blocks[b].before)
			fprintf(f, "{ %s\n} >/dev/null 2>&1\n", blocks[b].before);
		for (int k = blocks[b].first;
		     k < blocks[b].first + blocks[b].ncmds; k++) {
			/*
			 * The group runs in this shell, so "$!" and "$?" mean
			 * what they mean to a reader; the status is kept for
			 * the next example's "echo $?".
			 */
			fprintf(f, "{ %s\n} >out.%d 2>&1; s=$?; echo $s >rc.%d\n",
				cmds[k].text, k, k);
			if (cmds[k].background)
				fprintf(f, "i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do\n"
					"sleep 0.1; i=$((i + 1)); done\n", READY_FILE);
			fprintf(f, "rm -f %s; (exit $s)\n", READY_FILE);
		}
	}
	fclose(f);
	return 0;
}

static int run_script(const char *script)
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		return -errno;
	if (!pid) {
		setpgid(0, 0);
		alarm(RUN_LIMIT_S);
		execl("/bin/sh", "sh", script, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	/* the examples' background programs */
	kill(-pid, SIGKILL);
	while (waitpid(-pid, NULL, 0) > 0)
		;
	return st;
}

/* ---- comparing ---- */

static const char * const size_units[] = { "B", "KiB", "MiB", "GiB", "TiB" };

/*
 * Whitespace collapsed, every number "N", every "N unit" size "S": what a
 * line says, without the figures that differ from run to run.
 */
static void normalize(const char *in, char *out, size_t len)
{
	size_t o = 0;

	while (isspace((unsigned char)*in))
		in++;
	while (*in && o + 2 < len) {
		if (isspace((unsigned char)*in)) {
			while (isspace((unsigned char)*in))
				in++;
			if (*in)
				out[o++] = ' ';
		} else if (isdigit((unsigned char)*in)) {
			while (isdigit((unsigned char)*in) ||
			       (*in == '.' && isdigit((unsigned char)in[1])))
				in++;
			out[o++] = 'N';
			for (size_t u = 0; u < ARRAY_SIZE(size_units); u++) {
				size_t ul = strlen(size_units[u]);

				if (*in == ' ' && !strncmp(in + 1, size_units[u], ul) &&
				    !isalnum((unsigned char)in[1 + ul])) {
					out[o - 1] = 'S';
					in += 1 + ul;
					break;
				}
			}
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = 0;
}

static bool not_compared(const char *s)
{
	while (*s == ' ')
		s++;
	return !*s || !strcmp(s, "...") || strstr(s, "[#");
}

static int read_status(int k)
{
	char path[64], buf[16];

	snprintf(path, sizeof(path), "%s/rc.%d", work, k);
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return -1;	/* never ran */
	return atoi(buf);
}

/* 0 when command @k did what the guide shows; else says why. */
static int check_cmd(int k)
{
	struct cmd *c = &cmds[k];
	char path[64], want[512], have[512];
	char *out = NULL, *line, *save = NULL;
	size_t cap = 0, wlen;
	int rc = read_status(k), e = 0;
	bool exact = !strcmp(c->text, "echo $?"), prefix;
	FILE *f;

	if (rc < 0) {
		ksft_print_msg("line %d: '%s' did not run\n", c->line, c->text);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/out.%d", work, k);
	f = fopen(path, "r");
	if (f) {
		ssize_t n = getdelim(&out, &cap, 0, f);

		if (n < 0 && out)
			out[0] = 0;
		fclose(f);
	}
	line = out ? strtok_r(out, "\n", &save) : NULL;
	for (int x = 0; x < c->nexpect && !e; x++) {
		if (not_compared(c->expect[x]))
			continue;
		if (exact)
			snprintf(want, sizeof(want), "%s", c->expect[x]);
		else
			normalize(c->expect[x], want, sizeof(want));
		wlen = strlen(want);
		prefix = wlen > 3 && !strcmp(want + wlen - 3, "...");
		if (prefix)
			want[wlen -= 3] = 0;
		for (; line; line = strtok_r(NULL, "\n", &save)) {
			if (exact)
				snprintf(have, sizeof(have), "%s", line);
			else
				normalize(line, have, sizeof(have));
			if (prefix ? !strncmp(want, have, wlen) :
				     !strcmp(want, have))
				break;
		}
		if (!line) {
			ksft_print_msg("line %d: '%s' (exit %d) did not print: %s\n",
				       c->line, c->text, rc, c->expect[x]);
			e = -1;
		} else {
			line = strtok_r(NULL, "\n", &save);
		}
	}
	if (!e && !c->nexpect && rc && !c->background) {
		ksft_print_msg("line %d: '%s' exited %d\n", c->line, c->text, rc);
		e = -1;
	}
	if (e) {
		/* the whole output, for the log */
		f = fopen(path, "r");
		while (f && getline(&out, &cap, f) > 0)
			ksft_print_msg("  | %s", out);
		if (f)
			fclose(f);
	}
	free(out);
	return e;
}

int main(int argc, char **argv)
{
	const char *me = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
						 argv[0];
	char script[64], name[256], self[256];
	const char *guide, *base;
	ssize_t n;
	FILE *f;
	int r;

	if (!strcmp(me, "hold"))
		return hold_main(argc, argv);
	if (!strcmp(me, "solver"))
		return solver_main();
	if (!strcmp(me, "app"))
		return app_main(argc, argv);
	if (argc != 2) {
		fprintf(stderr, "usage: doc_test GUIDE.rst\n");
		return KSFT_FAIL;
	}
	guide = argv[1];
	base = strrchr(guide, '/') ? strrchr(guide, '/') + 1 : guide;

	ksft_print_header();
	r = read_guide(guide);
	if (r)
		ksft_exit_fail_msg("%s: %s\n", guide, strerror(-r));
	parse_guide();
	if (!nblocks)
		ksft_exit_fail_msg("%s: no example with a shell prompt\n", guide);
	ksft_set_plan(nblocks);

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0 || !mkdtemp(work))
		ksft_exit_fail_msg("scratch directory: %s\n", strerror(errno));
	self[n] = 0;
	snprintf(script, sizeof(script), "%s/guide.sh", work);
	snprintf(name, sizeof(name), "%s/hold", work);
	r = symlink(self, name);
	snprintf(name, sizeof(name), "%s/solver", work);
	r |= symlink(self, name);
	snprintf(name, sizeof(name), "%s/app", work);
	r |= symlink(self, name);
	snprintf(name, sizeof(name), "%s/input.dat", work);
	f = fopen(name, "w");	/* the solver's input: any file will do */
	if (r || !f || fclose(f) || write_script(script))
		ksft_exit_fail_msg("%s: cannot set up: %s\n", work, strerror(errno));

	r = run_script(script);
	if (!WIFEXITED(r))
		ksft_print_msg("the examples' shell was killed (signal %d; limit %d s)\n",
			       WTERMSIG(r), RUN_LIMIT_S);
	for (int b = 0; b < nblocks; b++) {
		int e = 0;

		snprintf(name, sizeof(name), "%s:%d", base, blocks[b].line);
		if (blocks[b].skip) {
			ksft_test_result_skip("%s: %s\n", name, blocks[b].skip);
			continue;
		}
		for (int k = blocks[b].first;
		     k < blocks[b].first + blocks[b].ncmds; k++)
			e |= check_cmd(k);
		ksft_test_result(!e, "%s\n", name);
	}
	/* Leave the devices online, as the next test expects. */
	capi_restore_all();
	ksft_finished();
}
