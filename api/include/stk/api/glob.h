/*
 * Glob patterns for `excludePatterns` (SyncProfile, Stoker, the exclude-patterns
 * annotation and the mandatory ones; DESIGN.md §3, §6): which files of a project tree are
 * never copied to, nor deleted from, a gateway. (In this file's comments a globstar
 * followed by a slash is written `**`/ since the three bytes together would end the
 * comment.)
 *
 * Paths are relative to the tree's root and '/'-separated, as a tree walk produces them:
 * "projects/site/.resources/x.bin". No leading or trailing '/', no empty, "." or ".."
 * segments; the result for any other path is defined (no crash) but not meaningful. A
 * pattern is matched against the whole path, byte by byte and case-sensitively (a
 * multi-byte UTF-8 character is several bytes to `?`).
 *
 * Grammar (bytes):
 *
 *   pattern   = body [ "/" ]                ; a trailing "/" matches directories only
 *   body      = segment *( "/" segment )    ; segments are split by every '/'
 *   segment   = "**"                        ; a globstar: the whole segment is "**"
 *             / 1*item
 *   item      = "*"       ; any run of bytes but '/' (so is "**" inside a segment)
 *             / "?"       ; one byte but '/'
 *             / class
 *             / brace
 *             / "\" byte  ; that byte, literally ('/' excepted)
 *             / byte      ; itself; a "," outside braces is literal
 *   class     = "[" [ "!" / "^" ] [ "]" ] *( range / cbyte ) "]"
 *   range     = cbyte "-" cbyte                 ; inclusive; "z-a" is an error
 *   cbyte     = "\" byte / any byte but "]"     ; "-" first or last is literal
 *   brace     = "{" alt *( "," alt ) "}"        ; one of the alternatives
 *   alt       = *( item / "/" )                 ; may be empty, may hold wildcards
 *
 * A pattern with braces stands for the brace-free patterns it expands to and matches
 * when one of them does; each of them must itself be valid (so "{a,/b}" is rejected). A
 * class never matches '/'. A "[" inside a class is literal; "[:" (a POSIX class such as
 * "[[:digit:]]") is rejected rather than misread.
 *
 * A globstar segment stands for whole path segments: zero or more when it comes first or
 * in the middle, one or more when it comes last (as in .gitignore):
 *
 *   `**`/x      x, a/x, a/b/x                  not: ax, x/a
 *   a/`**`/b    a/b, a/x/b, a/x/y/b            not: ab, a/xb
 *   a/`**`      a/x, a/x/y                     not: a (the directory itself)
 *   `**`        every path
 *   `**`/.git/  the directories .git, a/.git   not: a file named .git
 *
 * To cover a directory itself as well as (through stk_glob_excluded) everything below
 * it, use a directory-only pattern: `**`/.git/ rather than `**`/.git/`**`.
 *
 * Errors (STK_EINVAL from stk_glob_check): an empty pattern; one longer than
 * STK_GLOB_PATTERN_MAX bytes; an unterminated "[" or "{"; a "}" without its "{"; braces
 * nested deeper than STK_GLOB_BRACE_DEPTH; more than STK_GLOB_ALTERNATIVES_MAX
 * alternatives, or alternatives longer than STK_GLOB_EXPANSION_MAX bytes in total; a
 * trailing lone "\"; an escaped '/' or a '/' inside a class; a reversed range; a POSIX
 * class; and, in the pattern or any alternative, a leading '/', an empty segment ("//"),
 * or a "." or ".." segment. Messages read
 *   glob "<pattern>": <problem> at offset <n>
 * where <n> is the byte offset in the pattern of the offending character (the messages
 * about emptiness, length and the number of alternatives have no offset).
 *
 * Matching takes time proportional to the size of the pattern's expansion times the
 * length of the path (no exponential backtracking), recurses no deeper than the brace
 * nesting, and reads nothing past either string's NUL.
 */
#ifndef STK_API_GLOB_H
#define STK_API_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "stk/err.h"

/* Longest pattern, in bytes. */
#define STK_GLOB_PATTERN_MAX 1024u
/* Deepest brace nesting: "{a,{b,c}}" nests 2 deep. */
#define STK_GLOB_BRACE_DEPTH 8u
/* Most brace-free patterns one pattern may expand to. */
#define STK_GLOB_ALTERNATIVES_MAX 256u
/* Most bytes all of those together may hold (bounds the work of one match). */
#define STK_GLOB_EXPANSION_MAX 16384u

/*
 * Checks `pattern` against the grammar and limits above. 0, or STK_EINVAL with the
 * message above (also for a NULL pattern). `err` may be NULL. Any thread.
 */
int stk_glob_check(const char *pattern, stk_err *err);

/*
 * True when `path` (a file, or a directory when `is_dir`) matches `pattern` as a whole.
 * Ancestors are not considered: `**`/.git/ matches the directory "a/.git" but not
 * "a/.git/config"; see stk_glob_excluded. False for an invalid pattern (see
 * stk_glob_check), a NULL argument or an empty path. Nothing is retained. Any thread.
 */
bool stk_glob_match(const char *pattern, const char *path, bool is_dir);

/*
 * True when `path` (a file, or a directory when `is_dir`) or one of its ancestor
 * directories matches one of the `n` patterns, so that a whole excluded directory is
 * skipped: `**`/.git/ excludes "a/.git" and "a/.git/config"; `**`/.resources/`**` excludes
 * ".resources/x" (but not the directory ".resources" itself). Two matches per pattern,
 * however deep the path. Invalid patterns match nothing: validate them with
 * stk_glob_check when they are accepted. False for a NULL or empty path; `patterns` may
 * be NULL when `n` is 0. Any thread.
 */
bool stk_glob_excluded(const char *const *patterns, size_t n, const char *path, bool is_dir);

#endif
