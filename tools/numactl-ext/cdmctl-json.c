// SPDX-License-Identifier: GPL-2.0
/* cdmctl: JSON output through json-c, and sizes for people. */
#include "cdmctl.h"

/* ----------------------------------------------------------------- json */

/*
 * Length of the valid UTF-8 sequence at @s (1 to 4), or 0 if the bytes
 * there are not one: overlong forms, surrogates and code points above
 * U+10FFFF included.  Never reads past a NUL.
 */
static int utf8_seq_len(const unsigned char *s)
{
	uint32_t cp;
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A JSON string.  Names come from the system (process names, cgroup
 * paths) and may hold any bytes: what is not valid UTF-8 becomes U+FFFD
 * before json-c sees it (json-c copies bytes as they are), so the output
 * is always valid UTF-8.  json-c escapes quotes and control characters.
 */
static struct json_object *jstring(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	struct json_object *o;
	char *buf = malloc(strlen(str) * 3 + 1), *p = buf;

	if (!buf)
		return json_object_new_string("");
	while (*s) {
		int n = utf8_seq_len(s);

		if (!n) {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
			s++;
		} else {
			memcpy(p, s, (size_t)n);
			p += n;
			s += n;
		}
	}
	*p = '\0';
	o = json_object_new_string(buf);
	free(buf);
	return o;
}

/*
 * @b in hundredths of @unit, rounded half up: (b * 200 / unit + 1) / 2,
 * with b * 200 / unit taken apart so that no size overflows.
 */
static uint64_t centi(uint64_t b, uint64_t unit)
{
	return (b / unit * 200 + b % unit * 200 / unit + 1) / 2;
}

/*
 * A size with --human, in daxctl's format (ndctl's util/json.c): below
 * 5000 KiB the number of bytes; from there a string, binary units with
 * two decimals (MiB below 2 GiB, GiB below 2 TiB, TiB above) and the
 * same size in decimal units in parentheses: "256.00 MiB (268.44 MB)".
 */
static struct json_object *human_size(uint64_t b)
{
	static const struct {
		uint64_t below, bin, dec;
		const char *bname, *dname;
	} u[] = {
		{ 2ULL << 30, 1ULL << 20, 1000000ULL, "MiB", "MB" },
		{ 2ULL << 40, 1ULL << 30, 1000000000ULL, "GiB", "GB" },
		{ UINT64_MAX, 1ULL << 40, 1000000000000ULL, "TiB", "TB" },
	};
	uint64_t cb, cd;
	char buf[64];
	size_t i = 0;

	if (b < 5000 * 1024)
		return json_object_new_uint64(b);
	while (i < sizeof(u) / sizeof(u[0]) - 1 && b >= u[i].below)
		i++;
	cb = centi(b, u[i].bin);
	cd = centi(b, u[i].dec);
	snprintf(buf, sizeof(buf), "%" PRIu64 ".%02" PRIu64 " %s (%" PRIu64
		 ".%02" PRIu64 " %s)", cb / 100, cb % 100, u[i].bname,
		 cd / 100, cd % 100, u[i].dname);
	return json_object_new_string(buf);
}

void jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);	/* v NULL: null */
}

void jstr(struct json_object *o, const char *k, const char *v)
{
	jadd(o, k, v ? jstring(v) : NULL);
}

void jnum(struct json_object *o, const char *k, int64_t v)
{
	jadd(o, k, json_object_new_int64(v));
}

void ju64(struct json_object *o, const char *k, uint64_t v)
{
	jadd(o, k, json_object_new_uint64(v));
}

/* A size in bytes: a number, or with --human see human_size(). */
void jsize(struct json_object *o, const char *k, uint64_t v)
{
	jadd(o, k, human_sizes ? human_size(v) : json_object_new_uint64(v));
}

void jbool(struct json_object *o, const char *k, int v)
{
	jadd(o, k, json_object_new_boolean(v));
}

/* A number of seconds, with two decimals in the text. */
void jsecs(struct json_object *o, const char *k, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.2f", v);
	jadd(o, k, json_object_new_double_s(v, buf));
}

/* daxctl's online_memblocks and total_memblocks, for CDM node @node. */
void jmemblocks(struct json_object *o, int node)
{
	int online, total;

	node_memblocks(node, &online, &total);
	jnum(o, "online_memblocks", online);
	jnum(o, "total_memblocks", total);
}

/* The "result" of a command on a target, from its exit status. */
const char *result_of(int ret)
{
	switch (ret) {
	case EX_OK:
		return "ok";
	case EX_NOTHING:
		return "nothing";
	case EX_PERM:
		return "denied";
	case EX_NODEV:
		return "nodev";
	case EX_EVAC:
		return "incomplete";
	default:
		return "error";
	}
}

/*
 * The head of a result object: the target (target_node, device, chardev),
 * "result", and "errno" (when @e > 0) and "message" (when @msg) of a
 * failure.
 */
void json_result(struct json_object *o, const struct target *t,
		 const char *result, int e, const char *msg)
{
	const struct dev *d = t->dev;

	jnum(o, "target_node", t->node);
	jstr(o, "device", d ? d->bdf : NULL);
	jstr(o, "chardev", d && d->misc[0] ? d->misc : NULL);
	jstr(o, "result", result);
	if (e > 0)
		jnum(o, "errno", e);
	if (msg)
		jstr(o, "message", msg);
}

/*
 * A command could not act on target @t (exit status @ret, errno @e): with
 * --json, @o (if not NULL) says so - result, errno, and the message err()
 * printed last.  Returns @ret.
 */
int json_failed(struct json_object *o, const struct target *t, int ret, int e)
{
	if (o)
		json_result(o, t, result_of(ret), e, last_msg);
	return ret;
}

/* Print @o (pretty, 2 spaces, as daxctl does) and free it. */
void jprint(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
