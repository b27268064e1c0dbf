/* core/names.h: the one validator of names that become part of a path (README "Names and
 * confinement"): uids, categories, splits, run names, feature-set names, checkpoint names,
 * whether they come from a CSV, a JSON file, a file name or the command line.
 *
 *   if (avs_name_check(o->run, "--run", &err)) ...;      a name the user chose: refused if bad
 *   char *uid, *why;
 *   if (avs_name_for_uid(csv_name, &uid, &why)) ...;     a dataset's name: mapped or refused
 *
 * A valid name is one path component: 1..AVS_NAME_MAX bytes of well-formed UTF-8 (names end
 * up in JSON, HTML and SQLite text; RFC 3629: no overlong forms or surrogates); no '/', no
 * byte < 0x20 or 0x7f (NUL, newline, tab...); not "." or ".."; no leading '.' (hidden files,
 * our temp files) or '-' (read as an option by other tools); no ".tmp." (our temp-file
 * marker: stale temp files are swept by that name).
 *
 * The mapping (avs_name_safe) makes a valid name of a dataset's name that is not one: each
 * byte '%', '/', < 0x20, 0x7f, a leading '.' or '-', the '.' that starts a ".tmp.", and each
 * byte that belongs to no UTF-8 character (a Latin-1 file name's 0xE9) is written %XX (two
 * uppercase hex digits). It is deterministic and collision-free (every '%' is encoded, so the
 * encoding can be undone), and a valid name maps to itself unless it holds a '%'. The index
 * keeps the original in videos.name when it differs from the uid.
 */
#ifndef AVS_CORE_NAMES_H
#define AVS_CORE_NAMES_H

#include "core/common.h"

/* Longest name, in bytes (encoded form): leaves room under the file-system limit of 255 for
 * the suffixes we add (".bin", ".safetensors", ".<name>.tmp.<pid>", "_<k>"). */
#define AVS_NAME_MAX 128

/* NULL when name is a valid name, else why not (a static string). */
const char *avs_name_problem(const char *name);
/* 0 if name is valid, else -1 with err: "<what> '<name>': <why>: <fix>" (the name printed
 * with control bytes escaped). */
int avs_name_check(const char *name, const char *what, struct avs_err *err);
/* A dataset's name as a uid: *uid = avs_name_safe(name) (malloc'd) and 0; or -1 with *why
 * (malloc'd) when the name is refused outright: empty, "." or "..", a ".." component, a
 * leading '/', a control byte, or longer than AVS_NAME_MAX once encoded. */
int avs_name_for_uid(const char *name, char **uid, char **why);
/* The uid of the failed row that records a refused name: "refused-" + the first 16 hex digits
 * of the content hash (core/hash.h) of key, the input's unique source (the clip's path, or
 * "<table> row <r>"), so two inputs never share one; deterministic (malloc'd). */
char *avs_name_refused_uid(const char *key);
/* The documented encoding above, always a valid name unless too long (malloc'd). */
char *avs_name_safe(const char *name);
/* name as UTF-8 text, for JSON and HTML (a name read from a folder or a CSV the user made):
 * each byte of no UTF-8 character as %XX, the rest kept (malloc'd). */
char *avs_name_text(const char *name);
/* The bytes avs_name_text encoded: every %80..%FF decoded, the rest kept (malloc'd). A name
 * that held such text itself is ambiguous: try it as written first. */
char *avs_name_untext(const char *text);
/* name printable in a message: control bytes, a backslash and bytes of no UTF-8 character
 * as \xNN, cut at 80 bytes with "..." (malloc'd): always UTF-8 text. */
char *avs_name_printable(const char *name);
/* A label (class or category name shown, never a path on its own): 1..AVS_NAME_MAX bytes of
 * UTF-8, no control byte. 0 or -1 with err as avs_name_check. */
int avs_name_check_label(const char *label, const char *what, struct avs_err *err);

#endif
