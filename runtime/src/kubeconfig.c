#include "stk/kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "stk/alloc.h"
#include "stk/base64.h"
#include "stk/buf.h"
#include "stk/limits.h"
#include "stk/parse.h"

#define KC_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Room for a name or path quoted in an error message (truncated, control bytes masked). */
#define KC_LABEL_MAX 96
/* `cluster "<label>"` and friends. */
#define KC_WHERE_MAX (KC_LABEL_MAX + 32)
/* A path built from a directory and a kubeconfig entry. */
#define KC_PATH_MAX (64u * 1024)

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                          */
/* ------------------------------------------------------------------------------------ */

/*
 * Copies input-derived text (a name, a path) into `dst` for an error message: truncated
 * with "..." and with control bytes shown as '?', so every message stays one line.
 */
static const char *kc_label(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, n = 0;

	if (!s)
		s = "";
	for (i = 0; i < len && n + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
	if (i < len && cap > 4)
		memcpy(dst + cap - 4, "...", 4);
	return dst;
}

static const char *kc_label_str(char *dst, size_t cap, const char *s)
{
	return kc_label(dst, cap, s, s ? strlen(s) : 0);
}

/* Wipes and frees a buffer of `len` bytes plus its terminator. NULL-safe. */
static void kc_wipe_free(char *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len + 1);
	free(p);
}

static void kc_wipe_free_str(char *p)
{
	if (p)
		kc_wipe_free(p, strlen(p));
}

static bool kc_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* True when every byte is printable ASCII without spaces (tokens, URLs, header values). */
static bool kc_is_graph(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* A DNS-1123 label, the shape of a namespace name; it ends up in request paths. */
static bool kc_is_dns_label(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

/* "dir/path", or `path` itself when it is absolute or `dir` is NULL. */
static int kc_join(char **out, const char *dir, const char *path, stk_err *err)
{
	stk_buf b = STK_BUF_INIT(KC_PATH_MAX);
	int rc;

	if (path[0] == '/' || !dir || !*dir)
		rc = stk_buf_puts(&b, path);
	else
		rc = stk_buf_printf(&b, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
				    path);
	if (rc) {
		stk_buf_release(&b);
		return stk_err_set(err, STK_ETOOBIG, "path longer than %u bytes", KC_PATH_MAX);
	}
	*out = stk_buf_detach(&b, NULL);
	return 0;
}

/*
 * The directory of `path`, made absolute against the working directory so that a token
 * file recorded from it can be re-read after a chdir.
 */
static int kc_dir_of(char **out, const char *path, stk_err *err)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL, *abs = NULL;
	char cwd[PATH_MAX];
	int rc = 0;

	if (!slash)
		dir = stk_strdup(".");
	else if (slash == path)
		dir = stk_strdup("/");
	else
		dir = stk_strndup(path, (size_t)(slash - path));
	if (dir[0] == '/') {
		*out = dir;
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		rc = stk_err_errno(err, errno, "cannot resolve the directory of %s", path);
		goto out;
	}
	rc = kc_join(&abs, cwd, strcmp(dir, ".") ? dir : "", err);
	if (rc)
		goto out;
	*out = abs;
	abs = NULL;
out:
	free(dir);
	free(abs);
	return rc;
}

/*
 * Reads `path` into a new NUL-terminated buffer of at most `max` bytes. The buffer grows
 * by copying into a fresh allocation and wiping the old one, so no stray copy of a secret
 * is left in freed memory. `regular` refuses anything but a regular file: a FIFO or
 * device named inside a kubeconfig could block forever or never end (the kubeconfig
 * itself may be a pipe, as in `--kubeconfig <(...)`). Messages name `what` and the path.
 * 0, STK_ENOTFOUND (cannot open, not a regular file), STK_EIO, STK_ETOOBIG.
 */
static int kc_read_file(char **out, size_t *out_len, const char *path, size_t max, bool regular,
			const char *what, stk_err *err)
{
	char pl[KC_LABEL_MAX];
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	int fd, rc = 0;

	kc_label_str(pl, sizeof(pl), path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular ? O_NONBLOCK : 0));
	if (fd < 0)
		return stk_err_set(err, STK_ENOTFOUND, "cannot read %s %s: %s", what, pl,
				   strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = stk_err_errno(err, errno, "cannot read %s %s", what, pl);
		goto out;
	}
	if (S_ISDIR(st.st_mode) || (regular && !S_ISREG(st.st_mode))) {
		rc = stk_err_set(err, STK_ENOTFOUND, "cannot read %s %s: not a regular file", what,
				 pl);
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size > max) {
		rc = stk_err_set(err, STK_ETOOBIG, "%s %s is larger than %zu bytes", what, pl, max);
		goto out;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	if (cap < 64)
		cap = 64;
	buf = stk_malloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			/* Full: probe for one more byte before growing, so a file read at its
			 * fstat size is not copied for nothing. Grow through a copy: realloc
			 * would free the old bytes unwiped. */
			char more;
			char *nbuf;

			n = read(fd, &more, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = stk_err_errno(err, errno, "cannot read %s %s", what, pl);
				goto out;
			}
			if (n == 0)
				break;
			nbuf = stk_malloc(cap * 2);
			memcpy(nbuf, buf, len);
			kc_wipe_free(buf, cap - 1);
			buf = nbuf;
			cap *= 2;
			buf[len++] = more;
			OPENSSL_cleanse(&more, 1);
		} else {
			n = read(fd, buf + len, cap - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = stk_err_errno(err, errno, "cannot read %s %s", what, pl);
				goto out;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
		if (len > max) {
			rc = stk_err_set(err, STK_ETOOBIG, "%s %s is larger than %zu bytes", what,
					 pl, max);
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	if (buf)
		kc_wipe_free(buf, cap - 1);
	close(fd);
	return rc;
}

/* A PEM file or blob holds at least one "-----BEGIN " line; anything else is a mistake
 * (a DER file, a path pasted into a -data field, double base64) curl reports obscurely. */
static bool kc_looks_pem(const char *p, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	size_t i;

	for (i = 0; i + sizeof(tag) - 1 <= len; i++)
		if (p[i] == '-' && memcmp(p + i, tag, sizeof(tag) - 1) == 0)
			return true;
	return false;
}

/*
 * Decodes standard, padded base64 (what Go writes for []byte) ignoring line breaks and
 * blanks. Returns 0 or STK_EPARSE (no message: the caller names the field).
 */
static int kc_b64_decode(char **out, size_t *out_len, const char *s, size_t len)
{
	char *in = stk_malloc(len + 1);
	size_t n = 0;
	int rc = STK_EPARSE;

	for (size_t i = 0; i < len; i++)
		if (!kc_is_space(s[i]))
			in[n++] = s[i];
	if (n)
		rc = stk_base64_decode(in, n, out, out_len, NULL);
	kc_wipe_free(in, n);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* YAML tree                                                                              */
/* ------------------------------------------------------------------------------------ */

enum kc_kind {
	KC_SCALAR,
	KC_MAP,
	KC_SEQ
};

/*
 * A parsed YAML node. An alias is the anchored node itself, shared, not a copy, and
 * anchors are registered when their node is complete, so the graph has no cycles. Every
 * node knows its expanded size (what it would be with aliases copied) and an alias costs
 * that size against the document's node budget: a "billion laughs" document is refused,
 * and no walk over the tree can cost more than the budget, however it is aliased.
 */
struct kc_node {
	enum kc_kind kind;
	bool plain;		/* unquoted scalar: subject to null and boolean resolution */
	char *str;		/* scalar bytes, NUL-terminated */
	size_t len;		/* scalar length */
	struct kc_node **items; /* mapping: key, value, key, value…; sequence: elements */
	size_t n, cap;
	size_t size;  /* expanded node count, set when the node is complete */
	size_t start; /* an open collection: the tree's budget used at its start */
	char *anchor; /* an open collection's anchor, registered at its end */
};

struct kc_anchor {
	char *name;
	struct kc_node *node;
};

struct kc_tree {
	struct kc_node **nodes; /* every node, for freeing */
	size_t nnodes, capnodes;
	size_t used; /* expanded nodes so far, against STK_LIMIT_KUBECONFIG_NODES */
	struct kc_anchor anchors[STK_LIMIT_KUBECONFIG_ANCHORS];
	size_t nanchors;
	struct kc_node *root; /* NULL for an empty stream */
};

static void kc_tree_release(struct kc_tree *t)
{
	size_t i;

	for (i = 0; i < t->nnodes; i++) {
		struct kc_node *nd = t->nodes[i];
		/* Scalars may be keys or tokens: wipe them all rather than guess. */
		if (nd->str)
			kc_wipe_free(nd->str, nd->len);
		free(nd->items);
		free(nd->anchor);
		free(nd);
	}
	free(t->nodes);
	for (i = 0; i < t->nanchors; i++)
		free(t->anchors[i].name);
	memset(t, 0, sizeof(*t));
}

/* Charges `n` expanded nodes to the document's budget. */
static int kc_count(struct kc_tree *t, size_t n, stk_err *err)
{
	if (n > STK_LIMIT_KUBECONFIG_NODES - t->used)
		return stk_err_set(err, STK_ETOOBIG,
				   "kubeconfig has more than %u YAML nodes (aliases count as "
				   "what they expand to)",
				   STK_LIMIT_KUBECONFIG_NODES);
	t->used += n;
	return 0;
}

static struct kc_node *kc_node_new(struct kc_tree *t, enum kc_kind kind)
{
	struct kc_node *nd = stk_calloc(1, sizeof(*nd));

	if (t->nnodes == t->capnodes) {
		t->capnodes = t->capnodes ? t->capnodes * 2 : 64;
		t->nodes = stk_reallocarray(t->nodes, t->capnodes, sizeof(*t->nodes));
	}
	t->nodes[t->nnodes++] = nd;
	nd->kind = kind;
	return nd;
}

static void kc_attach(struct kc_tree *t, struct kc_node *parent, struct kc_node *child)
{
	if (!parent) {
		t->root = child;
		return;
	}
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 8;
		parent->items =
			stk_reallocarray(parent->items, parent->cap, sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
}

static int kc_anchor_add(struct kc_tree *t, const char *name, struct kc_node *nd, stk_err *err)
{
	if (t->nanchors == STK_LIMIT_KUBECONFIG_ANCHORS)
		return stk_err_set(err, STK_ETOOBIG, "kubeconfig has more than %u YAML anchors",
				   STK_LIMIT_KUBECONFIG_ANCHORS);
	t->anchors[t->nanchors].name = stk_strdup(name);
	t->anchors[t->nanchors].node = nd;
	t->nanchors++;
	return 0;
}

static struct kc_node *kc_anchor_find(const struct kc_tree *t, const char *name)
{
	size_t i;

	/* A redefined anchor refers to its latest definition. */
	for (i = t->nanchors; i > 0; i--)
		if (strcmp(t->anchors[i - 1].name, name) == 0)
			return t->anchors[i - 1].node;
	return NULL;
}

/* Wipes what libyaml still holds of the input: its buffers and queued scalar tokens. */
static void kc_parser_wipe(yaml_parser_t *p)
{
	yaml_token_t *tk;

	if (p->buffer.start)
		OPENSSL_cleanse(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
	if (p->raw_buffer.start)
		OPENSSL_cleanse(p->raw_buffer.start,
				(size_t)(p->raw_buffer.end - p->raw_buffer.start));
	for (tk = p->tokens.head; tk && tk != p->tokens.tail; tk++)
		if (tk->type == YAML_SCALAR_TOKEN && tk->data.scalar.value)
			OPENSSL_cleanse(tk->data.scalar.value, tk->data.scalar.length);
}

static const char *kc_event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return (const char *)ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return (const char *)ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return (const char *)ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

/*
 * Builds a tree from the first YAML document of yaml[0..len) with libyaml's event API.
 * Bounded: STK_LIMIT_KUBECONFIG_NODES nodes with aliases expanded, nesting depth
 * STK_LIMIT_KUBECONFIG_DEPTH, STK_LIMIT_KUBECONFIG_ANCHORS anchors.
 */
static int kc_tree_parse(struct kc_tree *t, const char *yaml, size_t len, stk_err *err)
{
	struct kc_node *stack[STK_LIMIT_KUBECONFIG_DEPTH];
	char al[KC_LABEL_MAX];
	size_t depth = 0;
	yaml_parser_t p;
	yaml_event_t ev;
	bool have_ev = false, done = false;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (!yaml_parser_initialize(&p))
		return stk_err_set(err, STK_EPARSE, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&p, (const unsigned char *)(len ? yaml : ""), len);
	while (!done) {
		struct kc_node *parent = depth ? stack[depth - 1] : NULL;
		struct kc_node *nd = NULL;
		const char *anchor;

		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_READER_ERROR) /* encoding: an offset, no line */
				rc = stk_err_set(err, STK_EPARSE, "invalid YAML at byte %zu: %s",
						 p.problem_offset,
						 p.problem ? p.problem : "bad encoding");
			else
				rc = stk_err_set(err, STK_EPARSE,
						 "invalid YAML at line %zu column %zu: %s%s%s",
						 p.problem_mark.line + 1, p.problem_mark.column + 1,
						 p.problem ? p.problem : "syntax error",
						 p.context ? " " : "", p.context ? p.context : "");
			goto out;
		}
		have_ev = true;
		anchor = kc_event_anchor(&ev);
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			/* Like kubectl, only the first document counts. */
			done = true;
			break;
		case YAML_SCALAR_EVENT:
			rc = kc_count(t, 1, err);
			if (rc)
				goto out;
			nd = kc_node_new(t, KC_SCALAR);
			nd->size = 1;
			nd->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			nd->len = ev.data.scalar.length;
			nd->str = stk_malloc(nd->len + 1);
			memcpy(nd->str, ev.data.scalar.value, nd->len);
			nd->str[nd->len] = '\0';
			kc_attach(t, parent, nd);
			if (anchor) {
				rc = kc_anchor_add(t, anchor, nd, err);
				if (rc)
					goto out;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == STK_LIMIT_KUBECONFIG_DEPTH) {
				rc = stk_err_set(err, STK_ETOOBIG,
						 "kubeconfig YAML nests deeper than %u levels",
						 STK_LIMIT_KUBECONFIG_DEPTH);
				goto out;
			}
			rc = kc_count(t, 1, err);
			if (rc)
				goto out;
			nd = kc_node_new(t, ev.type == YAML_MAPPING_START_EVENT ? KC_MAP : KC_SEQ);
			nd->start = t->used;
			if (anchor)
				nd->anchor = stk_strdup(anchor);
			kc_attach(t, parent, nd);
			stack[depth++] = nd;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			/* libyaml balances start and end events, so depth > 0 here. */
			nd = stack[--depth];
			/* Itself plus everything charged since it opened. */
			nd->size = 1 + (t->used - nd->start);
			if (nd->anchor) {
				rc = kc_anchor_add(t, nd->anchor, nd, err);
				if (rc)
					goto out;
				free(nd->anchor);
				nd->anchor = NULL;
			}
			break;
		case YAML_ALIAS_EVENT:
			nd = kc_anchor_find(t, (const char *)ev.data.alias.anchor);
			if (!nd) {
				rc = stk_err_set(err, STK_EPARSE,
						 "invalid YAML at line %zu: alias *%s names no "
						 "complete anchor",
						 ev.start_mark.line + 1,
						 kc_label_str(al, sizeof(al),
							      (const char *)ev.data.alias.anchor));
				goto out;
			}
			rc = kc_count(t, nd->size, err);
			if (rc)
				goto out;
			kc_attach(t, parent, nd);
			break;
		default:
			break;
		}
		if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.value)
			OPENSSL_cleanse(ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
		have_ev = false;
	}
out:
	if (have_ev) {
		if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.value)
			OPENSSL_cleanse(ev.data.scalar.value, ev.data.scalar.length);
		yaml_event_delete(&ev);
	}
	kc_parser_wipe(&p);
	yaml_parser_delete(&p);
	if (rc)
		kc_tree_release(t);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Tree access                                                                            */
/* ------------------------------------------------------------------------------------ */

/* YAML 1.1 null: absent, or a plain "", "~", "null", "Null", "NULL". */
static bool kc_is_null(const struct kc_node *nd)
{
	if (!nd)
		return true;
	if (nd->kind != KC_SCALAR || !nd->plain)
		return false;
	return nd->len == 0 || !strcmp(nd->str, "~") || !strcmp(nd->str, "null") ||
	       !strcmp(nd->str, "Null") || !strcmp(nd->str, "NULL");
}

/* Null, an empty string, or an empty collection: what Go decodes to a zero value. */
static bool kc_is_empty(const struct kc_node *nd)
{
	if (kc_is_null(nd))
		return true;
	return nd->kind == KC_SCALAR ? nd->len == 0 : nd->n == 0;
}

/*
 * Looks `key` up in a mapping (NULL counts as empty). A key given twice is an error,
 * since a kubeconfig must not be ambiguous about servers or credentials.
 */
static int kc_get(const struct kc_node **val, const struct kc_node *map, const char *key,
		  const char *where, stk_err *err)
{
	size_t i, klen = strlen(key);
	const struct kc_node *found = NULL;

	*val = NULL;
	if (!map || map->kind != KC_MAP)
		return 0;
	for (i = 0; i + 1 < map->n; i += 2) {
		const struct kc_node *k = map->items[i];
		if (k->kind != KC_SCALAR || k->len != klen || memcmp(k->str, key, klen) != 0)
			continue;
		if (found)
			return stk_err_set(err, STK_EPARSE, "%s: duplicate key %s", where, key);
		found = map->items[i + 1];
	}
	*val = found;
	return 0;
}

/*
 * A string field: *out borrows the node's bytes, NULL when the field is absent, null or
 * empty (Go's zero value means "not given"). STK_EPARSE if it is a collection or holds a
 * NUL byte.
 */
static int kc_str(const char **out, const struct kc_node *map, const char *key, const char *where,
		  stk_err *err)
{
	const struct kc_node *v;
	int rc = kc_get(&v, map, key, where, err);

	if (rc)
		return rc;
	*out = NULL;
	if (kc_is_null(v))
		return 0;
	if (v->kind != KC_SCALAR)
		return stk_err_set(err, STK_EPARSE, "%s: %s must be a string", where, key);
	if (memchr(v->str, '\0', v->len))
		return stk_err_set(err, STK_EPARSE, "%s: %s contains a NUL byte", where, key);
	if (v->len)
		*out = v->str;
	return 0;
}

/* A boolean field, YAML 1.1 spellings as kubectl's YAML library accepts; absent is false. */
static int kc_bool(bool *out, const struct kc_node *map, const char *key, const char *where,
		   stk_err *err)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
					  "on",	  "On",	  "ON",	  "y",	 "Y"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
					 "off",	  "Off",   "OFF",   "n",  "N"};
	const struct kc_node *v;
	size_t i;
	int rc = kc_get(&v, map, key, where, err);

	if (rc)
		return rc;
	if (kc_is_null(v)) {
		*out = false;
		return 0;
	}
	if (v->kind == KC_SCALAR && v->plain) {
		for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (!strcmp(v->str, yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(v->str, no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	return stk_err_set(err, STK_EPARSE, "%s: %s must be true or false", where, key);
}

/* ------------------------------------------------------------------------------------ */
/* Resolution                                                                             */
/* ------------------------------------------------------------------------------------ */

/* One parsed kubeconfig file; several when $KUBECONFIG lists several. */
struct kc_src {
	struct kc_tree tree;
	const char *dir; /* resolves relative paths; NULL: paths are used as written */
};

/*
 * Finds the entry called `name` in the `list` ("contexts", "clusters", "users") of the
 * sources, the first source that has it winning, as kubectl merges files. *body is the
 * entry's `field` mapping (NULL when empty) and *src its source. 1 found, 0 not found,
 * or an error (a malformed list, a name defined twice in one file).
 */
static int kc_find(const struct kc_node **body, size_t *src, const struct kc_src *srcs,
		   size_t nsrcs, const char *list, const char *field, const char *name,
		   stk_err *err)
{
	char nl[KC_LABEL_MAX], where[KC_WHERE_MAX];
	size_t s, i, nlen = strlen(name);
	int rc;

	for (s = 0; s < nsrcs; s++) {
		const struct kc_node *seq, *hit = NULL, *v;

		rc = kc_get(&seq, srcs[s].tree.root, list, "kubeconfig", err);
		if (rc)
			return rc;
		if (kc_is_null(seq))
			continue;
		if (seq->kind != KC_SEQ)
			return stk_err_set(err, STK_EPARSE, "kubeconfig: %s must be a list", list);
		for (i = 0; i < seq->n; i++) {
			const struct kc_node *item = seq->items[i], *nm;

			if (item->kind != KC_MAP)
				return stk_err_set(err, STK_EPARSE,
						   "kubeconfig: %s[%zu] must be a mapping", list,
						   i);
			rc = kc_get(&nm, item, "name", "kubeconfig", err);
			if (rc)
				return rc;
			if (!nm || nm->kind != KC_SCALAR || nm->len != nlen ||
			    memcmp(nm->str, name, nlen) != 0)
				continue;
			if (hit)
				return stk_err_set(err, STK_EINVAL,
						   "kubeconfig: %s \"%s\" is defined twice", field,
						   kc_label_str(nl, sizeof(nl), name));
			hit = item;
		}
		if (!hit)
			continue;
		snprintf(where, sizeof(where), "%s \"%s\"", field,
			 kc_label_str(nl, sizeof(nl), name));
		rc = kc_get(&v, hit, field, where, err);
		if (rc)
			return rc;
		if (!kc_is_null(v) && v->kind != KC_MAP)
			return stk_err_set(err, STK_EPARSE, "%s: %s must be a mapping", where,
					   field);
		*body = kc_is_null(v) ? NULL : v;
		*src = s;
		return 1;
	}
	return 0;
}

/*
 * Loads PEM bytes given either as a file (`file_key`, resolved against `dir`) or inline
 * base64 (`data_key`). Both at once is an error, as kubectl's validation says.
 */
static int kc_pem(char **out, size_t *out_len, const struct kc_node *map, const char *file_key,
		  const char *data_key, const char *dir, const char *where, stk_err *err)
{
	char pl[KC_LABEL_MAX];
	const char *file, *data;
	char *path = NULL, *pem = NULL;
	size_t pem_len = 0;
	int rc;

	rc = kc_str(&file, map, file_key, where, err);
	if (rc)
		return rc;
	rc = kc_str(&data, map, data_key, where, err);
	if (rc)
		return rc;
	if (file && data)
		return stk_err_set(err, STK_EINVAL, "%s: both %s and %s are set", where, file_key,
				   data_key);
	if (data) {
		const struct kc_node *v;

		(void)kc_get(&v, map, data_key, where, NULL);
		if (kc_b64_decode(&pem, &pem_len, v->str, v->len) != 0) {
			rc = stk_err_set(err, STK_EPARSE, "%s: %s is not valid base64", where,
					 data_key);
			goto out;
		}
		if (!kc_looks_pem(pem, pem_len)) {
			rc = stk_err_set(err, STK_EPARSE, "%s: %s does not hold PEM data", where,
					 data_key);
			goto out;
		}
	} else if (file) {
		rc = kc_join(&path, dir, file, err);
		if (rc)
			goto out;
		rc = kc_read_file(&pem, &pem_len, path, STK_LIMIT_KUBECONFIG_PEM, true, file_key,
				  err);
		if (rc) {
			stk_err_wrap(err, "%s", where);
			goto out;
		}
		if (!kc_looks_pem(pem, pem_len)) {
			rc = stk_err_set(err, STK_EPARSE, "%s: %s %s does not hold PEM data", where,
					 file_key, kc_label_str(pl, sizeof(pl), path));
			goto out;
		}
	}
	*out = pem;
	*out_len = pem_len;
	pem = NULL;
out:
	kc_wipe_free(pem, pem_len);
	free(path);
	return rc;
}

/* "https://host:port[/path]" without trailing slashes; a bare "host:port" gets https. */
static int kc_server(char **out, const char *server, const char *where, stk_err *err)
{
	stk_buf b = STK_BUF_INIT(KC_PATH_MAX);
	const char *sep = strstr(server, "://");
	size_t len = strlen(server);
	size_t hostpos;

	if (!kc_is_graph(server, len))
		return stk_err_set(err, STK_EINVAL,
				   "%s: server contains whitespace or control characters", where);
	if (sep && !((sep - server == 5 && !strncasecmp(server, "https", 5)) ||
		     (sep - server == 4 && !strncasecmp(server, "http", 4))))
		return stk_err_set(err, STK_EINVAL, "%s: server scheme must be https or http",
				   where);
	while (len > 0 && server[len - 1] == '/')
		len--;
	hostpos = sep ? (size_t)(sep - server) + 3 : 0;
	if (len <= hostpos || server[hostpos] == '/')
		return stk_err_set(err, STK_EINVAL, "%s: server has no host", where);
	if ((!sep && stk_buf_puts(&b, "https://")) || stk_buf_put(&b, server, len)) {
		stk_buf_release(&b);
		return stk_err_set(err, STK_ETOOBIG, "%s: server longer than %u bytes", where,
				   KC_PATH_MAX);
	}
	*out = stk_buf_detach(&b, NULL);
	return 0;
}

/* The config built so far; released (wiped) on failure. */
static void kc_cfg_release(struct stk_kubeconfig *c)
{
	kc_wipe_free_str(c->server);
	kc_wipe_free_str(c->namespace);
	kc_wipe_free(c->ca_pem, c->ca_pem_len);
	kc_wipe_free(c->client_cert_pem, c->client_cert_pem_len);
	kc_wipe_free(c->client_key_pem, c->client_key_pem_len);
	kc_wipe_free_str(c->tls_server_name);
	kc_wipe_free_str(c->token);
	kc_wipe_free_str(c->token_file);
	memset(c, 0, sizeof(*c));
}

static struct stk_kubeconfig *kc_publish(struct stk_kubeconfig *c)
{
	struct stk_kubeconfig *out = stk_malloc(sizeof(*out));

	*out = *c;
	memset(c, 0, sizeof(*c));
	return out;
}

static int kc_cluster(struct stk_kubeconfig *cfg, const struct kc_node *c, const char *dir,
		      const char *where, stk_err *err)
{
	const char *server, *sni, *proxy;
	int rc;

	rc = kc_str(&server, c, "server", where, err);
	if (rc)
		return rc;
	if (!server)
		return stk_err_set(err, STK_EINVAL, "%s: no server", where);
	rc = kc_server(&cfg->server, server, where, err);
	if (rc)
		return rc;
	rc = kc_str(&proxy, c, "proxy-url", where, err);
	if (rc)
		return rc;
	if (proxy)
		return stk_err_set(err, STK_EINVAL, "%s: proxy-url is not supported", where);
	rc = kc_bool(&cfg->insecure_skip_tls_verify, c, "insecure-skip-tls-verify", where, err);
	if (rc)
		return rc;
	rc = kc_pem(&cfg->ca_pem, &cfg->ca_pem_len, c, "certificate-authority",
		    "certificate-authority-data", dir, where, err);
	if (rc)
		return rc;
	if (cfg->ca_pem && cfg->insecure_skip_tls_verify)
		return stk_err_set(err, STK_EINVAL,
				   "%s: a certificate authority cannot be combined with "
				   "insecure-skip-tls-verify",
				   where);
	rc = kc_str(&sni, c, "tls-server-name", where, err);
	if (rc)
		return rc;
	if (sni) {
		if (!kc_is_graph(sni, strlen(sni)))
			return stk_err_set(err, STK_EINVAL,
					   "%s: tls-server-name contains whitespace or control "
					   "characters",
					   where);
		cfg->tls_server_name = stk_strdup(sni);
	}
	return 0;
}

static int kc_user(struct stk_kubeconfig *cfg, const struct kc_node *u, const char *dir,
		   const char *where, stk_err *err)
{
	/* Auth kinds this client does not implement; ignoring them would silently send
	 * requests as someone else (or as nobody). */
	static const char *const unsupported[] = {
		"exec", "auth-provider", "username",  "password",
		"as",	"as-uid",	 "as-groups", "as-user-extra"};
	const struct kc_node *v;
	const char *token, *token_file;
	char *path = NULL, *probe = NULL;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		rc = kc_get(&v, u, unsupported[i], where, err);
		if (rc)
			return rc;
		if (!kc_is_empty(v))
			return stk_err_set(err, STK_EINVAL,
					   "%s: %s is not supported (use a client certificate "
					   "or a bearer token)",
					   where, unsupported[i]);
	}
	rc = kc_pem(&cfg->client_cert_pem, &cfg->client_cert_pem_len, u, "client-certificate",
		    "client-certificate-data", dir, where, err);
	if (rc)
		return rc;
	rc = kc_pem(&cfg->client_key_pem, &cfg->client_key_pem_len, u, "client-key",
		    "client-key-data", dir, where, err);
	if (rc)
		return rc;
	if (!cfg->client_cert_pem != !cfg->client_key_pem)
		return stk_err_set(err, STK_EINVAL, "%s: %s without %s", where,
				   cfg->client_cert_pem ? "client certificate" : "client key",
				   cfg->client_cert_pem ? "client key" : "client certificate");
	rc = kc_str(&token, u, "token", where, err);
	if (rc)
		return rc;
	if (token) {
		if (!kc_is_graph(token, strlen(token)))
			return stk_err_set(err, STK_EINVAL,
					   "%s: token contains whitespace or control characters",
					   where);
		cfg->token = stk_strdup(token);
	}
	rc = kc_str(&token_file, u, "tokenFile", where, err);
	if (rc)
		return rc;
	if (token_file) {
		rc = kc_join(&path, dir, token_file, err);
		if (rc)
			goto out;
		/* Fail at load, naming the user, rather than at the first request. */
		rc = stk_kubeconfig_read_token(&probe, path, err);
		if (rc) {
			stk_err_wrap(err, "%s: tokenFile", where);
			goto out;
		}
		cfg->token_file = path;
		path = NULL;
	}
out:
	kc_wipe_free_str(probe);
	free(path);
	return rc;
}

/* Selects the context and builds the configuration from the parsed sources. */
static int kc_resolve(struct stk_kubeconfig **out, const struct kc_src *srcs, size_t nsrcs,
		      const char *context, stk_err *err)
{
	struct stk_kubeconfig cfg;
	const struct kc_node *ctx = NULL, *cl = NULL, *us = NULL, *v;
	char cl_where[KC_WHERE_MAX], us_where[KC_WHERE_MAX], cx_where[KC_WHERE_MAX];
	char l1[KC_LABEL_MAX], l2[KC_LABEL_MAX];
	const char *name = NULL, *cluster, *user, *ns;
	size_t s, ctx_src = 0, cl_src = 0, us_src = 0;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	for (s = 0; s < nsrcs; s++) {
		const struct kc_node *root = srcs[s].tree.root;
		if (!kc_is_null(root) && root->kind != KC_MAP)
			return stk_err_set(err, STK_EPARSE, "kubeconfig is not a YAML mapping");
		rc = kc_get(&v, root, "kind", "kubeconfig", err);
		if (rc)
			return rc;
		if (!kc_is_null(v) && (v->kind != KC_SCALAR || strcmp(v->str, "Config") != 0))
			return stk_err_set(err, STK_EPARSE, "kubeconfig: kind must be Config");
	}
	if (context && *context) {
		name = context;
	} else {
		/* The first file that sets current-context wins. */
		for (s = 0; s < nsrcs && !name; s++) {
			rc = kc_str(&name, srcs[s].tree.root, "current-context", "kubeconfig", err);
			if (rc)
				return rc;
		}
		if (!name)
			return stk_err_set(err, STK_ENOTFOUND,
					   "no context: current-context is not set and none was "
					   "requested");
	}
	snprintf(cx_where, sizeof(cx_where), "context \"%s\"", kc_label_str(l1, sizeof(l1), name));
	rc = kc_find(&ctx, &ctx_src, srcs, nsrcs, "contexts", "context", name, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return stk_err_set(err, STK_ENOTFOUND, "%s not found", cx_where);

	rc = kc_str(&cluster, ctx, "cluster", cx_where, err);
	if (rc)
		return rc;
	if (!cluster)
		return stk_err_set(err, STK_EINVAL, "%s names no cluster", cx_where);
	rc = kc_str(&user, ctx, "user", cx_where, err);
	if (rc)
		return rc;
	rc = kc_str(&ns, ctx, "namespace", cx_where, err);
	if (rc)
		return rc;
	if (ns && !kc_is_dns_label(ns))
		return stk_err_set(err, STK_EINVAL, "%s: namespace \"%s\" is not a valid name",
				   cx_where, kc_label_str(l2, sizeof(l2), ns));

	snprintf(cl_where, sizeof(cl_where), "cluster \"%s\"",
		 kc_label_str(l2, sizeof(l2), cluster));
	rc = kc_find(&cl, &cl_src, srcs, nsrcs, "clusters", "cluster", cluster, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return stk_err_set(err, STK_ENOTFOUND, "%s of %s not found", cl_where, cx_where);
	if (user) {
		snprintf(us_where, sizeof(us_where), "user \"%s\"",
			 kc_label_str(l2, sizeof(l2), user));
		rc = kc_find(&us, &us_src, srcs, nsrcs, "users", "user", user, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return stk_err_set(err, STK_ENOTFOUND, "%s of %s not found", us_where,
					   cx_where);
	}

	rc = kc_cluster(&cfg, cl, srcs[cl_src].dir, cl_where, err);
	if (rc)
		goto out;
	/* A context without a user talks to the server anonymously, as kubectl does. */
	if (user) {
		rc = kc_user(&cfg, us, srcs[us_src].dir, us_where, err);
		if (rc)
			goto out;
	}
	cfg.namespace = stk_strdup(ns ? ns : "default");
	*out = kc_publish(&cfg);
out:
	kc_cfg_release(&cfg);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Public API                                                                             */
/* ------------------------------------------------------------------------------------ */

int stk_kubeconfig_parse(struct stk_kubeconfig **out, const char *yaml, size_t len, const char *dir,
			 const char *context, stk_err *err)
{
	struct kc_src src;
	int rc;

	if (!out || (!yaml && len))
		return stk_err_set(err, STK_EINVAL, "stk_kubeconfig_parse: bad arguments");
	if (len > STK_LIMIT_KUBECONFIG)
		return stk_err_set(err, STK_ETOOBIG, "kubeconfig of %zu bytes exceeds %u", len,
				   STK_LIMIT_KUBECONFIG);
	memset(&src, 0, sizeof(src));
	src.dir = dir;
	rc = kc_tree_parse(&src.tree, yaml, len, err);
	if (rc)
		return rc;
	rc = kc_resolve(out, &src, 1, context, err);
	kc_tree_release(&src.tree);
	return rc;
}

/* Parses the files in order and resolves across them (merged as kubectl merges). */
static int kc_load_files(struct stk_kubeconfig **out, const char *const *paths, size_t n,
			 const char *context, stk_err *err)
{
	struct kc_src *srcs = stk_calloc(n, sizeof(*srcs));
	char **dirs = stk_calloc(n, sizeof(*dirs));
	char pl[KC_LABEL_MAX], names[KC_LABEL_MAX * 2];
	char *yaml = NULL;
	size_t i, len = 0, parsed = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		rc = kc_read_file(&yaml, &len, paths[i], STK_LIMIT_KUBECONFIG, false, "kubeconfig",
				  err);
		if (rc)
			goto out;
		rc = kc_dir_of(&dirs[i], paths[i], err);
		if (rc == 0)
			rc = kc_tree_parse(&srcs[i].tree, yaml, len, err);
		kc_wipe_free(yaml, len);
		yaml = NULL;
		if (rc) {
			stk_err_wrap(err, "kubeconfig %s", kc_label_str(pl, sizeof(pl), paths[i]));
			goto out;
		}
		srcs[i].dir = dirs[i];
		parsed++;
	}
	rc = kc_resolve(out, srcs, n, context, err);
	if (rc) {
		size_t at = 0;

		names[0] = '\0';
		for (i = 0; i < n && at + 1 < sizeof(names); i++) {
			int w = snprintf(names + at, sizeof(names) - at, "%s%s", i ? ":" : "",
					 kc_label_str(pl, sizeof(pl), paths[i]));
			if (w < 0)
				break;
			at += (size_t)w;
		}
		stk_err_wrap(err, "kubeconfig %s", names);
	}
out:
	for (i = 0; i < parsed; i++)
		kc_tree_release(&srcs[i].tree);
	for (i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	free(srcs);
	return rc;
}

/* The existing files of a $KUBECONFIG list, in order, without repeats (as client-go). */
static size_t kc_split_list(char ***out, const char *list)
{
	char **paths = NULL;
	size_t n = 0, cap = 0, i;
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ':');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		char *path;
		struct stat st;
		bool dup = false;

		path = stk_strndup(p, plen);
		p += plen + (end ? 1 : 0);
		for (i = 0; i < n && !dup; i++)
			dup = strcmp(paths[i], path) == 0;
		if (!plen || dup || stat(path, &st) != 0) {
			free(path);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			paths = stk_reallocarray(paths, cap, sizeof(*paths));
		}
		paths[n++] = path;
	}
	*out = paths;
	return n;
}

int stk_kubeconfig_load(struct stk_kubeconfig **out, const struct stk_kubeconfig_opts *opts,
			stk_err *err)
{
	struct stk_kubeconfig_opts none = STK_KUBECONFIG_OPTS_INIT;
	const char *env, *home, *host;
	char **paths = NULL;
	char *home_path = NULL;
	char pl[KC_LABEL_MAX];
	size_t n = 0, i;
	int rc;

	if (!out)
		return stk_err_set(err, STK_EINVAL, "stk_kubeconfig_load: bad arguments");
	if (!opts)
		opts = &none;
	if (opts->path && *opts->path) {
		return kc_load_files(out, &opts->path, 1, opts->context, err);
	}
	host = getenv("KUBERNETES_SERVICE_HOST");
	if (host && *host && !(opts->context && *opts->context))
		return stk_kubeconfig_in_cluster(out, opts->sa_dir, err);
	env = getenv("KUBECONFIG");
	if (env && *env) {
		n = kc_split_list(&paths, env);
		if (n == 0) {
			rc = stk_err_set(err, STK_ENOTFOUND,
					 "no kubeconfig: none of the files in $KUBECONFIG (%s) "
					 "exists",
					 kc_label_str(pl, sizeof(pl), env));
			goto out;
		}
		rc = kc_load_files(out, (const char *const *)paths, n, opts->context, err);
		goto out;
	}
	home = getenv("HOME");
	if (!home || !*home) {
		rc = stk_err_set(err, STK_ENOTFOUND,
				 "no kubeconfig: not in a cluster, $KUBECONFIG and $HOME unset");
		goto out;
	}
	rc = kc_join(&home_path, home, ".kube/config", err);
	if (rc)
		goto out;
	if (access(home_path, F_OK) != 0) {
		rc = stk_err_set(err, STK_ENOTFOUND,
				 "no kubeconfig: not in a cluster, $KUBECONFIG unset and %s does "
				 "not exist",
				 kc_label_str(pl, sizeof(pl), home_path));
		goto out;
	}
	rc = kc_load_files(out, (const char *const *)&home_path, 1, opts->context, err);
out:
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(home_path);
	return rc;
}

/* Reads `dir`/ns-file: trimmed, "default" when missing or empty. */
static int kc_sa_namespace(char **out, const char *dir, stk_err *err)
{
	char *path = NULL, *raw = NULL;
	char pl[KC_LABEL_MAX];
	size_t len = 0, a = 0;
	struct stat st;
	int rc;

	rc = kc_join(&path, dir, "namespace", err);
	if (rc)
		return rc;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		*out = stk_strdup("default");
		goto out;
	}
	rc = kc_read_file(&raw, &len, path, STK_LIMIT_TOKEN_FILE, true, "namespace file", err);
	if (rc)
		goto out;
	while (len > 0 && kc_is_space(raw[len - 1]))
		len--;
	while (a < len && kc_is_space(raw[a]))
		a++;
	raw[len] = '\0';
	if (a == len) {
		*out = stk_strdup("default");
		goto out;
	}
	if (!kc_is_dns_label(raw + a)) {
		rc = stk_err_set(err, STK_EINVAL, "namespace file %s does not hold a valid name",
				 kc_label_str(pl, sizeof(pl), path));
		goto out;
	}
	*out = stk_strdup(raw + a);
out:
	free(raw);
	free(path);
	return rc;
}

int stk_kubeconfig_in_cluster(struct stk_kubeconfig **out, const char *sa_dir, stk_err *err)
{
	struct stk_kubeconfig cfg;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	stk_buf url = STK_BUF_INIT(1024);
	char *ca_path = NULL, *probe = NULL;
	char pl[KC_LABEL_MAX];
	int64_t portnum;
	bool v6;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	if (!out)
		return stk_err_set(err, STK_EINVAL, "stk_kubeconfig_in_cluster: bad arguments");
	if (!sa_dir || !*sa_dir)
		sa_dir = KC_SA_DIR;
	if (!host || !*host || !port || !*port)
		return stk_err_set(err, STK_ENOTFOUND,
				   "not in a cluster: KUBERNETES_SERVICE_HOST and "
				   "KUBERNETES_SERVICE_PORT must both be set");
	if (stk_parse_i64(port, strlen(port), 1, 65535, &portnum, NULL) != 0)
		return stk_err_set(err, STK_EINVAL,
				   "KUBERNETES_SERVICE_PORT \"%s\" is not a port number",
				   kc_label_str(pl, sizeof(pl), port));
	if (!kc_is_graph(host, strlen(host)) || strpbrk(host, "/@?#[]"))
		return stk_err_set(err, STK_EINVAL,
				   "KUBERNETES_SERVICE_HOST \"%s\" is not a host name or address",
				   kc_label_str(pl, sizeof(pl), host));
	v6 = strchr(host, ':') != NULL;
	if (stk_buf_printf(&url, "https://%s%s%s:%lld", v6 ? "[" : "", host, v6 ? "]" : "",
			   (long long)portnum)) {
		rc = stk_err_set(err, STK_EINVAL, "KUBERNETES_SERVICE_HOST is too long");
		goto out;
	}
	cfg.server = stk_buf_detach(&url, NULL);
	cfg.in_cluster = true;

	rc = kc_join(&ca_path, sa_dir, "ca.crt", err);
	if (rc)
		goto out;
	rc = kc_read_file(&cfg.ca_pem, &cfg.ca_pem_len, ca_path, STK_LIMIT_KUBECONFIG_PEM, true,
			  "service account CA", err);
	if (rc)
		goto out;
	if (!kc_looks_pem(cfg.ca_pem, cfg.ca_pem_len)) {
		rc = stk_err_set(err, STK_EPARSE, "service account CA %s does not hold PEM data",
				 kc_label_str(pl, sizeof(pl), ca_path));
		goto out;
	}
	rc = kc_join(&cfg.token_file, sa_dir, "token", err);
	if (rc)
		goto out;
	/* The token must be readable now; the client re-reads it as kubelet rotates it. */
	rc = stk_kubeconfig_read_token(&probe, cfg.token_file, err);
	if (rc) {
		stk_err_wrap(err, "service account token");
		goto out;
	}
	rc = kc_sa_namespace(&cfg.namespace, sa_dir, err);
	if (rc)
		goto out;
	*out = kc_publish(&cfg);
out:
	stk_buf_release(&url);
	kc_wipe_free_str(probe);
	free(ca_path);
	kc_cfg_release(&cfg);
	return rc;
}

int stk_kubeconfig_read_token(char **out, const char *path, stk_err *err)
{
	char pl[KC_LABEL_MAX];
	char *raw = NULL;
	size_t raw_len = 0, len, a = 0;
	int rc;

	if (!out || !path)
		return stk_err_set(err, STK_EINVAL, "stk_kubeconfig_read_token: bad arguments");
	rc = kc_read_file(&raw, &raw_len, path, STK_LIMIT_TOKEN_FILE, true, "token file", err);
	if (rc)
		return rc;
	len = raw_len;
	while (len > 0 && kc_is_space(raw[len - 1]))
		len--;
	while (a < len && kc_is_space(raw[a]))
		a++;
	if (a == len) {
		rc = stk_err_set(err, STK_EINVAL, "token file %s is empty",
				 kc_label_str(pl, sizeof(pl), path));
		goto out;
	}
	/* A newline inside would split the Authorization header. */
	if (!kc_is_graph(raw + a, len - a)) {
		rc = stk_err_set(err, STK_EINVAL,
				 "token file %s holds whitespace or control characters inside "
				 "the token",
				 kc_label_str(pl, sizeof(pl), path));
		goto out;
	}
	*out = stk_strndup(raw + a, len - a);
out:
	kc_wipe_free(raw, raw_len);
	return rc;
}

void stk_kubeconfig_free(struct stk_kubeconfig *cfg)
{
	if (!cfg)
		return;
	kc_cfg_release(cfg);
	free(cfg);
}
