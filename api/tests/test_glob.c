#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/alloc.h"
#include "stk/api/glob.h"

/*
 * Each check runs on heap copies of exactly the string's size, so that under ASan a read
 * past either NUL is caught. The pattern must also pass stk_glob_check.
 */
static bool match(const char *pattern, const char *path, bool is_dir)
{
	char *p = stk_strdup(pattern), *s = stk_strdup(path);
	stk_err err = STK_ERR_INIT;
	bool hit;

	if (stk_glob_check(p, &err))
		fail_msg("check %s: %s", pattern, err.message);
	hit = stk_glob_match(p, s, is_dir);
	free(p);
	free(s);
	return hit;
}

#define MATCH(pat, path)     assert_true(match(pat, path, false))
#define NO_MATCH(pat, path)  assert_false(match(pat, path, false))
#define DIR_MATCH(pat, path) assert_true(match(pat, path, true))
#define DIR_NO(pat, path)    assert_false(match(pat, path, true))

/* stk_glob_check rejects `pattern` with exactly `msg`; stk_glob_match never matches it. */
static void expect_error(const char *pattern, const char *msg)
{
	char *p = stk_strdup(pattern);
	stk_err err = STK_ERR_INIT;

	assert_int_equal(stk_glob_check(p, &err), STK_EINVAL);
	assert_int_equal(err.code, STK_EINVAL);
	if (strcmp(err.message, msg))
		fail_msg("check %s:\n  got  %s\n  want %s", pattern, err.message, msg);
	assert_int_equal(stk_glob_check(p, NULL), STK_EINVAL);
	assert_false(stk_glob_match(p, pattern, false));
	assert_false(stk_glob_match(p, pattern, true));
	assert_false(stk_glob_match(p, "a", false));
	free(p);
}

static void test_glob__literal(void **state)
{
	(void)state;
	MATCH("config.json", "config.json");
	MATCH("a/b/c", "a/b/c");
	NO_MATCH("config.json", "config.jso");
	NO_MATCH("config.json", "config.json5");
	NO_MATCH("config.json", "x/config.json");
	NO_MATCH("a/b", "a");
	NO_MATCH("a", "a/b");
	/* Case-sensitive; ',', ']', '!' and '^' are literal outside braces and classes. */
	NO_MATCH("Config.json", "config.json");
	MATCH("a,b]!^", "a,b]!^");
	/* The whole path: never a suffix (unlike an unanchored .gitignore pattern). */
	NO_MATCH("b", "a/b");
	/* A literal pattern matches directories too. */
	DIR_MATCH("build", "build");
}

static void test_glob__star(void **state)
{
	(void)state;
	MATCH("*", "a");
	MATCH("*", "config.json");
	NO_MATCH("*", "a/b");
	MATCH("*.json", "config.json");
	MATCH("*.json", ".json");
	NO_MATCH("*.json", "config.json.bak");
	NO_MATCH("*.json", "dir/config.json");
	MATCH("a*", "a");
	MATCH("a*b*c", "axxbyyc");
	MATCH("a*b*c", "abc");
	NO_MATCH("a*b*c", "axxbyy");
	/* Backtracking: the first "b" is not the one that lets the rest match. */
	MATCH("*b.json", "ab.b.json");
	MATCH("a*ab", "aaaab");
	NO_MATCH("a*ab", "aaaa");
	/* A star stays within its segment. */
	MATCH("a/*/c", "a/b/c");
	NO_MATCH("a/*/c", "a/b/x/c");
	NO_MATCH("a*c", "a/c");
	MATCH("*/*", "a/b");
	NO_MATCH("*/*", "a");
	/* "**" not alone in a segment is a star. */
	MATCH("a**b", "axxb");
	NO_MATCH("a**b", "a/b");
	MATCH("**.json", "x.json");
	NO_MATCH("**.json", "a/x.json");
	MATCH("x/***", "x/y");
	NO_MATCH("x/***", "x/y/z");
}

static void test_glob__question_mark(void **state)
{
	(void)state;
	MATCH("?.txt", "a.txt");
	NO_MATCH("?.txt", ".txt");
	NO_MATCH("?.txt", "ab.txt");
	MATCH("a?c", "abc");
	NO_MATCH("a?c", "a/c");
	MATCH("??", "ab");
	NO_MATCH("??", "a");
	MATCH("*?", "a");
	NO_MATCH("a*?", "a");
	/* One byte: a two-byte UTF-8 character takes two. */
	MATCH("caf??", "caf\xc3\xa9");
	NO_MATCH("caf?", "caf\xc3\xa9");
}

static void test_glob__classes(void **state)
{
	(void)state;
	MATCH("[abc].txt", "b.txt");
	NO_MATCH("[abc].txt", "d.txt");
	MATCH("v[0-9]", "v7");
	NO_MATCH("v[0-9]", "va");
	MATCH("[a-cx-z]", "y");
	NO_MATCH("[a-cx-z]", "d");
	NO_MATCH("[a-z]", "A");
	/* Negation with ! or ^. */
	MATCH("[!a-c]", "d");
	NO_MATCH("[!a-c]", "b");
	MATCH("[^a-c]", "d");
	NO_MATCH("[^a-c]", "a");
	/* "]" first is literal, also after the negation. */
	MATCH("[]]", "]");
	MATCH("[]a]", "a");
	NO_MATCH("[]a]", "b");
	MATCH("[!]]", "a");
	NO_MATCH("[!]]", "]");
	/* "-" first or last is literal. */
	MATCH("[-a]", "-");
	MATCH("[a-]", "-");
	NO_MATCH("[a-]", "b");
	/* Escapes inside a class; "[" is literal there; "!" not first is literal. */
	MATCH("[\\]]", "]");
	MATCH("[\\!a]", "!");
	MATCH("[a!]", "!");
	MATCH("[[]", "[");
	MATCH("[\\-]", "-");
	NO_MATCH("[a\\-z]", "b");
	MATCH("[a\\-z]", "z");
	/* A class never matches '/', even negated. */
	NO_MATCH("a[!x]b", "a/b");
	NO_MATCH("a[^b]", "a/");
	/* Bytes past 0x7f compare unsigned. */
	MATCH("[\x80-\xff]", "\xc3");
	NO_MATCH("[\x80-\xff]", "a");
	/* Braces and commas inside a class are class members. */
	MATCH("[{,}]", ",");
	MATCH("x[{]", "x{");
}

static void test_glob__braces(void **state)
{
	(void)state;
	MATCH("*.{json,bin}", "a.json");
	MATCH("*.{json,bin}", "a.bin");
	NO_MATCH("*.{json,bin}", "a.txt");
	NO_MATCH("*.{json,bin}", "a.{json,bin}");
	MATCH("{a,b}/{c,d}", "b/c");
	MATCH("{a,b}/{c,d}", "a/d");
	NO_MATCH("{a,b}/{c,d}", "a/b");
	/* Nested. */
	MATCH("{a,{b,{c,d}}}x", "dx");
	MATCH("{a,{b,{c,d}}}x", "bx");
	NO_MATCH("{a,{b,{c,d}}}x", "ex");
	MATCH("{x{1,2},y}z", "x2z");
	NO_MATCH("{x{1,2},y}z", "xz");
	/* Alternatives with wildcards, classes and slashes. */
	MATCH("{*.json,data/**}", "data/a/b");
	MATCH("{*.json,data/**}", "c.json");
	NO_MATCH("{*.json,data/**}", "x/c.json");
	MATCH("{a/b,c}/d", "a/b/d");
	MATCH("{a/b,c}/d", "c/d");
	MATCH("{[0-9],x?}", "xy");
	MATCH("{**/,}x", "a/b/x");
	MATCH("{**/,}x", "x");
	/* An alternative may be empty; "{}" is one empty alternative. */
	MATCH("x{,y}", "x");
	MATCH("x{,y}", "xy");
	MATCH("a{}b", "ab");
	/* Escaped commas and braces are literal. */
	MATCH("{a\\,b,c}", "a,b");
	MATCH("{a\\,b,c}", "c");
	NO_MATCH("{a\\,b,c}", "a");
	NO_MATCH("{a\\,b,c}", "b");
	MATCH("\\{a,b\\}", "{a,b}");
	NO_MATCH("\\{a,b\\}", "a");
	MATCH("{\\}}", "}");
	/* Eight levels, the most allowed. */
	MATCH("{{{{{{{{a}}}}}}}}", "a");
	/* A globstar formed by an alternative is a globstar. */
	MATCH("{*,x}*/y", "a/b/y");
	MATCH("{*,x}*/y", "y");
}

static void test_glob__escapes(void **state)
{
	(void)state;
	MATCH("\\*", "*");
	NO_MATCH("\\*", "a");
	MATCH("\\?", "?");
	NO_MATCH("\\?", "a");
	MATCH("\\[a]", "[a]");
	NO_MATCH("\\[a]", "a");
	MATCH("a\\\\b", "a\\b");
	MATCH("\\a\\b", "ab");
	/* An escaped globstar is two literal stars. */
	MATCH("x/\\*\\*", "x/**");
	NO_MATCH("x/\\*\\*", "x/y");
	NO_MATCH("\\**/x", "a/b/x");
	MATCH("\\**/x", "*y/x");
}

static void test_glob__globstar(void **state)
{
	(void)state;
	/* Leading: zero or more segments. */
	MATCH("**/x", "x");
	MATCH("**/x", "a/x");
	MATCH("**/x", "a/b/x");
	NO_MATCH("**/x", "ax");
	NO_MATCH("**/x", "x/a");
	NO_MATCH("**/x", "a/xx");
	/* Middle: zero or more. */
	MATCH("a/**/b", "a/b");
	MATCH("a/**/b", "a/x/b");
	MATCH("a/**/b", "a/x/y/b");
	NO_MATCH("a/**/b", "ab");
	NO_MATCH("a/**/b", "a/xb");
	NO_MATCH("a/**/b", "b");
	NO_MATCH("a/**/b", "a/b/c");
	NO_MATCH("a/**/b", "x/a/b");
	/* A wrong first guess: the first "b" is followed by "x", the second by "c". */
	MATCH("a/**/b/c", "a/b/x/b/c");
	MATCH("**/a/b", "a/a/b");
	MATCH("**/a/**/b", "x/a/y/a/z/b");
	NO_MATCH("**/a/**/b", "x/y/b");
	/* Last: one or more, not the directory itself. */
	MATCH("a/**", "a/x");
	MATCH("a/**", "a/x/y");
	NO_MATCH("a/**", "a");
	NO_MATCH("a/**", "ab");
	NO_MATCH("a/**", "b/a/x");
	DIR_NO("a/**", "a");
	NO_MATCH("a/**/**", "a");
	MATCH("a/**/**", "a/b");
	/* Alone: every path. */
	MATCH("**", "a");
	MATCH("**", "a/b/c");
	DIR_MATCH("**", "a/b");
	MATCH("**/**", "a");
	/* Both ends, as in the mandatory patterns. */
	MATCH("**/.resources/**", ".resources/x");
	MATCH("**/.resources/**", "projects/site/.resources/x.bin");
	MATCH("**/.resources/**", "a/.resources/b/c");
	NO_MATCH("**/.resources/**", ".resources");
	NO_MATCH("**/.resources/**", "a/.resources");
	NO_MATCH("**/.resources/**", "a/resources/x");
	NO_MATCH("**/.resources/**", "a/x.resources/y");
	/* A globstar segment with other segment patterns around it. */
	MATCH("src/**/*.c", "src/main.c");
	MATCH("src/**/*.c", "src/a/b/main.c");
	NO_MATCH("src/**/*.c", "src/a/b/main.h");
	NO_MATCH("src/**/*.c", "lib/src/main.c");
}

static void test_glob__directory_only(void **state)
{
	(void)state;
	DIR_MATCH("**/.git/", ".git");
	DIR_MATCH("**/.git/", "a/b/.git");
	NO_MATCH("**/.git/", ".git");
	NO_MATCH("**/.git/", "a/.git");
	/* Only the directory itself: below it is stk_glob_excluded's business. */
	DIR_NO("**/.git/", ".git/objects");
	NO_MATCH("**/.git/", ".git/config");
	DIR_MATCH("build/", "build");
	NO_MATCH("build/", "build");
	DIR_NO("build/", "a/build");
	DIR_MATCH("a/*/", "a/b");
	NO_MATCH("a/*/", "a/b");
	DIR_MATCH("a/**/", "a/b/c");
	DIR_NO("a/**/", "a");
	NO_MATCH("a/**/", "a/b");
	DIR_MATCH("**/", "x");
	NO_MATCH("**/", "x");
	DIR_MATCH("{a,b/}", "b");
	NO_MATCH("{a,b/}", "b");
	MATCH("{a,b/}", "a");
	/* A pattern without the slash matches both. */
	MATCH("**/.gitkeep", "x/.gitkeep");
	DIR_MATCH("**/.gitkeep", "x/.gitkeep");
}

static const char *const mandatory[] = {
	"**/.git/",
	"**/.gitkeep",
	"**/.resources/**",
	"**/.sync-staging/**",
};

static bool excluded(const char *path, bool is_dir)
{
	char *s = stk_strdup(path);
	bool hit = stk_glob_excluded(mandatory, 4, s, is_dir);

	free(s);
	return hit;
}

static void test_glob__excluded_mandatory(void **state)
{
	(void)state;
	assert_true(excluded(".git", true));
	assert_true(excluded(".git/config", false));
	assert_true(excluded(".git/objects", true));
	assert_true(excluded("a/.git/objects/ab/cdef", false));
	assert_true(excluded("projects/p/.git/HEAD", false));
	/* A file named .git (a submodule's gitfile) is not the directory. */
	assert_false(excluded("a/.git", false));
	assert_false(excluded(".github/workflows/ci.yaml", false));
	assert_false(excluded("a/x.git/y", false));

	assert_true(excluded(".gitkeep", false));
	assert_true(excluded("projects/site/views/.gitkeep", false));
	assert_false(excluded("projects/.gitkeeper", false));
	assert_false(excluded("projects/gitkeep", false));

	assert_true(excluded(".resources/x", false));
	assert_true(excluded(".resources/a/b", true));
	assert_true(excluded("projects/site/.resources/x.bin", false));
	assert_false(excluded(".resources", true));
	assert_false(excluded("config/resources/core/x.json", false));

	assert_true(excluded(".sync-staging/a", false));
	assert_true(excluded("x/.sync-staging/y/z", false));
	assert_false(excluded(".sync-staging", true));

	assert_false(
		excluded("projects/site/com.inductiveautomation.perspective/views/v.json", false));
	assert_false(excluded("config.json", false));
	assert_false(excluded("projects", true));
}

static void test_glob__excluded_ancestors(void **state)
{
	const char *const pats[] = {"node_modules", "*.bak", "logs/", "[", "tmp/**"};

	(void)state;
	/* A pattern that names a directory excludes everything below it. */
	assert_true(stk_glob_excluded(pats, 5, "node_modules", true));
	assert_true(stk_glob_excluded(pats, 5, "node_modules/x/y.js", false));
	assert_false(stk_glob_excluded(pats, 5, "a/node_modules/x", false));
	assert_true(stk_glob_excluded(pats, 5, "a.bak", false));
	assert_true(stk_glob_excluded(pats, 5, "old.bak/file", false));
	assert_false(stk_glob_excluded(pats, 5, "a/old.bak", false));
	/* A directory-only pattern, through an ancestor that is a directory by position. */
	assert_true(stk_glob_excluded(pats, 5, "logs/today.txt", false));
	assert_false(stk_glob_excluded(pats, 5, "logs", false));
	assert_true(stk_glob_excluded(pats, 5, "logs", true));
	/* A last globstar leaves tmp itself alone. */
	assert_false(stk_glob_excluded(pats, 5, "tmp", true));
	assert_true(stk_glob_excluded(pats, 5, "tmp/a", false));
	/* The invalid "[" matches nothing, not even "[", and does not stop the others. */
	assert_false(stk_glob_excluded(pats, 5, "[", false));
	assert_false(stk_glob_excluded(pats, 5, "src/main.c", false));
	/*
	 * A last globstar takes at least one segment, also when the match is of an
	 * ancestor: "a" does not match a/`**`/, so neither does it exclude a/b.
	 */
	assert_false(stk_glob_excluded((const char *const[]){"a/**/"}, 1, "a/b", false));
	assert_true(stk_glob_excluded((const char *const[]){"a/**/"}, 1, "a/b/c", false));
	assert_false(stk_glob_excluded((const char *const[]){"**/"}, 1, "x", false));
	assert_true(stk_glob_excluded((const char *const[]){"**/"}, 1, "x/y", false));
	assert_false(stk_glob_excluded((const char *const[]){"x/**/"}, 1, "x/y", false));
	assert_true(stk_glob_excluded((const char *const[]){"x/**/"}, 1, "x/y", true));
	/* Only the first n patterns count. */
	assert_false(stk_glob_excluded(pats, 1, "a.bak", false));
	assert_false(stk_glob_excluded(pats, 0, "a.bak", false));
	assert_false(stk_glob_excluded(NULL, 0, "a.bak", false));
	assert_false(stk_glob_excluded(pats, 5, NULL, false));
	assert_false(stk_glob_excluded(pats, 5, "", false));
}

static void test_glob__check_errors(void **state)
{
	(void)state;
	expect_error("", "glob \"\": empty pattern");
	expect_error("a[bc", "glob \"a[bc\": unterminated '[' at offset 1");
	expect_error("[]", "glob \"[]\": unterminated '[' at offset 0");
	expect_error("[!]", "glob \"[!]\": unterminated '[' at offset 0");
	expect_error("{a,b", "glob \"{a,b\": unterminated '{' at offset 0");
	expect_error("x{a,{b}", "glob \"x{a,{b}\": unterminated '{' at offset 1");
	expect_error("a}", "glob \"a}\": unmatched '}' at offset 1");
	expect_error("a\\", "glob \"a\\\": trailing backslash at offset 1");
	expect_error("[a\\", "glob \"[a\\\": trailing backslash at offset 2");
	expect_error("a\\/b", "glob \"a\\/b\": escaped '/' at offset 1");
	expect_error("[a/b]", "glob \"[a/b]\": '/' inside [...] at offset 2");
	expect_error("[a\\/]", "glob \"[a\\/]\": '/' inside [...] at offset 3");
	expect_error("x[z-a]", "glob \"x[z-a]\": reversed range at offset 2");
	expect_error("[[:digit:]]",
		     "glob \"[[:digit:]]\": POSIX classes such as [:digit:] are not supported at "
		     "offset 1");
	expect_error("/a", "glob \"/a\": leading '/' at offset 0");
	expect_error("/", "glob \"/\": leading '/' at offset 0");
	expect_error("a//b", "glob \"a//b\": empty segment ('//') at offset 2");
	expect_error("a//", "glob \"a//\": empty segment ('//') at offset 2");
	expect_error("..", "glob \"..\": '..' segment at offset 0");
	expect_error("a/../b", "glob \"a/../b\": '..' segment at offset 2");
	expect_error("a/..", "glob \"a/..\": '..' segment at offset 2");
	expect_error("./a", "glob \"./a\": '.' segment at offset 0");
	/* In an alternative, at the offending byte's place in the pattern. */
	expect_error("{a,/b}", "glob \"{a,/b}\": leading '/' at offset 3");
	expect_error("x/{a,..}/y", "glob \"x/{a,..}/y\": '..' segment at offset 5");
	expect_error("a/{/b,c}", "glob \"a/{/b,c}\": empty segment ('//') at offset 3");
	expect_error("{,a}/b", "glob \"{,a}/b\": leading '/' at offset 4");
	expect_error("{{{{{{{{{a}}}}}}}}}",
		     "glob \"{{{{{{{{{a}}}}}}}}}\": braces nested deeper than 8 at offset 8");
	/* Nine two-way braces make 512 alternatives; eight make 256, the most allowed. */
	expect_error("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}",
		     "glob \"{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}\": too many "
		     "alternatives (more than 256)");
	MATCH("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", "abbabbaa");
	/* A sum, too: 257 one-byte alternatives in a single brace. */
	{
		char p[2 * 257 + 2];
		size_t n = 0;
		stk_err err = STK_ERR_INIT;

		p[n++] = '{';
		for (int i = 0; i < 257; i++) {
			p[n++] = (char)('a' + i % 26);
			p[n++] = ',';
		}
		p[n - 1] = '}';
		p[n] = '\0';
		assert_int_equal(stk_glob_check(p, &err), STK_EINVAL);
		assert_non_null(strstr(err.message, "\": too many alternatives (more than 256)"));
		p[n - 3] = '}';
		p[n - 2] = '\0';
		assert_int_equal(stk_glob_check(p, &err), 0);
	}
}

static void test_glob__check_limits(void **state)
{
	char p[STK_GLOB_PATTERN_MAX + 2];
	stk_err err = STK_ERR_INIT;

	(void)state;
	/* 1024 bytes are fine, 1025 are not; the message quotes only the start. */
	memset(p, 'a', STK_GLOB_PATTERN_MAX);
	p[STK_GLOB_PATTERN_MAX] = '\0';
	assert_int_equal(stk_glob_check(p, &err), 0);
	assert_true(stk_glob_match(p, p, false));
	p[STK_GLOB_PATTERN_MAX] = 'a';
	p[STK_GLOB_PATTERN_MAX + 1] = '\0';
	assert_int_equal(stk_glob_check(p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "aaa...\": pattern longer than 1024 bytes"));
	assert_true(strlen(err.message) < 140);
	assert_false(stk_glob_match(p, p, false));

	/* 256 alternatives of 74 bytes: more than 16 KiB of expansion. */
	snprintf(p, sizeof(p), "{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b,c,d}%070d", 0);
	assert_int_equal(stk_glob_check(p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "\": alternatives longer than 16384 bytes in total"));
	snprintf(p, sizeof(p), "{a,b,c,d}{a,b,c,d}{a,b,c,d}{a,b,c,d}%060d", 0);
	assert_int_equal(stk_glob_check(p, &err), 0);

	/* Control bytes are not copied into the one-line message. */
	assert_int_equal(stk_glob_check("a\nb[", &err), STK_EINVAL);
	assert_string_equal(err.message, "glob \"a?b[\": unterminated '[' at offset 3");

	/* NULL arguments. */
	assert_int_equal(stk_glob_check(NULL, &err), STK_EINVAL);
	assert_string_equal(err.message, "glob: NULL pattern");
	assert_int_equal(stk_glob_check(NULL, NULL), STK_EINVAL);
	assert_false(stk_glob_match(NULL, "a", false));
	assert_false(stk_glob_match("a", NULL, false));
	assert_false(stk_glob_match("*", "", false));
	assert_false(stk_glob_match("**", "", true));
	/* A valid pattern clears nothing: err is only written on failure. */
	stk_err_clear(&err);
	assert_int_equal(stk_glob_check("**/.git/", &err), 0);
	assert_int_equal(err.code, 0);
}

/*
 * Inputs on which a backtracking matcher that retries every star takes exponential
 * time. There is no clock here (STYLE: performance is measured in bench/); a matcher
 * that is not polynomial would not finish before the ctest timeout.
 */
static void test_glob__pathological(void **state)
{
	size_t n = 20000;
	char *s = stk_malloc(n + 1), *deep = stk_malloc(2 * 2000 + 1), *p;
	char pat[STK_GLOB_PATTERN_MAX + 1];
	size_t k = 0;

	(void)state;
	memset(s, 'a', n);
	s[n] = '\0';
	assert_false(stk_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s, false));
	assert_true(stk_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*", s, false));
	/* The longest pattern of that kind. */
	while (k + 2 < STK_GLOB_PATTERN_MAX) {
		pat[k++] = '*';
		pat[k++] = 'a';
	}
	pat[k++] = 'b';
	pat[k] = '\0';
	assert_false(stk_glob_match(pat, s, false));
	/* The same under every one of 256 alternatives. */
	assert_false(stk_glob_match("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}*a*a*a*a*a*a*a*a*c", s,
				    false));

	/* A hundred globstars over a path of 2000 segments. */
	for (k = 0; k < 2000; k++) {
		deep[2 * k] = 'a';
		deep[2 * k + 1] = '/';
	}
	deep[2 * k - 1] = '\0';
	p = pat;
	for (k = 0; k < 100; k++) {
		memcpy(p, "**/a/", 5);
		p += 5;
	}
	memcpy(p, "b", 2);
	assert_false(stk_glob_match(pat, deep, false));
	assert_false(stk_glob_excluded((const char *const[]){pat}, 1, deep, false));
	/* Without the final "/b" it matches: the globstars take the other 1900 segments. */
	p[-1] = '\0';
	assert_true(stk_glob_match(pat, deep, true));
	/* Every one of the 1999 ancestors is tried, each in linear time. */
	assert_false(
		stk_glob_excluded((const char *const[]){"**/a/**/b/", "**/c"}, 2, deep, false));
	free(s);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob__literal),
		cmocka_unit_test(test_glob__star),
		cmocka_unit_test(test_glob__question_mark),
		cmocka_unit_test(test_glob__classes),
		cmocka_unit_test(test_glob__braces),
		cmocka_unit_test(test_glob__escapes),
		cmocka_unit_test(test_glob__globstar),
		cmocka_unit_test(test_glob__directory_only),
		cmocka_unit_test(test_glob__excluded_mandatory),
		cmocka_unit_test(test_glob__excluded_ancestors),
		cmocka_unit_test(test_glob__check_errors),
		cmocka_unit_test(test_glob__check_limits),
		cmocka_unit_test(test_glob__pathological),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
