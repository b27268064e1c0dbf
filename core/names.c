/* core/names.c: see names.h. */
#include "core/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* Length of the well-formed UTF-8 sequence at s (1..4; RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when the bytes at s are not one. */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n)
        return 0;
    /* the second byte's range narrows after E0 (overlong), ED (surrogates), F0 and F4 */
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

static const char *control_problem(const char *s)
{
    for (; *s; s++)
        if (is_control((unsigned char)*s))
            return "it holds a control character (newline, tab...)";
    return NULL;
}

/* A name's or label's bytes: UTF-8 text without control characters. */
static const char *text_problem(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = utf8_len(p);
        if (!n)
            return "it is not valid UTF-8 text (a file name: rename it, e.g. with convmv)";
        if (is_control(*p))
            return "it holds a control character (newline, tab...)";
        p += n;
    }
    return NULL;
}

const char *avs_name_problem(const char *name)
{
    if (!name || !*name)
        return "it is empty";
    if (strlen(name) > AVS_NAME_MAX)
        return "it is longer than 128 bytes";
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return "'.' and '..' name folders, not files";
    if (strchr(name, '/'))
        return "it holds a '/' (a name is one path component)";
    const char *c = text_problem(name);
    if (c)
        return c;
    if (name[0] == '.')
        return "it starts with '.' (hidden and temp files start so)";
    if (name[0] == '-')
        return "it starts with '-' (other tools read it as an option)";
    if (strstr(name, ".tmp."))
        return "it holds \".tmp.\" (the marker of our temp files, which are swept)";
    return NULL;
}

char *avs_name_printable(const char *name)
{
    size_t n = strlen(name), cut = n > 80 ? 80 : n;
    char *o = avs_malloc(cut * 4 + 4), *q = o;
    for (size_t i = 0; i < cut;) {
        unsigned char c = (unsigned char)name[i];
        int len = utf8_len((const unsigned char *)name + i);
        if (len > 1 && i + len <= cut) { /* a whole UTF-8 character */
            memcpy(q, name + i, len), q += len, i += len;
            continue;
        }
        if (is_control(c) || c == '\\' || c >= 0x80)
            q += sprintf(q, "\\x%02X", c);
        else
            *q++ = (char)c;
        i++;
    }
    strcpy(q, n > cut ? "..." : "");
    return o;
}

int avs_name_check(const char *name, const char *what, struct avs_err *err)
{
    const char *why = avs_name_problem(name);
    if (!why)
        return 0;
    char *p = avs_name_printable(name ? name : "");
    avs_err_set(err, "%s '%s': %s: choose a name of 1 to %d bytes of UTF-8 without '/', control "
                     "characters, \".tmp.\" or a leading '.' or '-'",
                what, p, why, AVS_NAME_MAX);
    free(p);
    return -1;
}

int avs_name_check_label(const char *label, const char *what, struct avs_err *err)
{
    const char *why = !label || !*label ? "it is empty"
                      : strlen(label) > AVS_NAME_MAX ? "it is longer than 128 bytes"
                                                     : text_problem(label);
    if (!why)
        return 0;
    char *p = avs_name_printable(label ? label : "");
    avs_err_set(err, "%s '%s': %s: fix it (1 to %d bytes of UTF-8, no control characters)", what, p, why,
                AVS_NAME_MAX);
    free(p);
    return -1;
}

/* Byte i of s needs %XX in the safe form. */
static int needs_escape(const char *s, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '%' || c == '/' || is_control(c))
        return 1;
    if (i == 0 && (c == '.' || c == '-'))
        return 1;
    return c == '.' && !strncmp(s + i, ".tmp.", 5);
}

/* name with each byte of no UTF-8 character as %XX, and with every byte needs_escape names
 * too when `path` (avs_name_safe). */
static char *encode(const char *name, int path)
{
    size_t n = strlen(name);
    char *o = avs_malloc(3 * n + 1), *q = o;
    for (size_t i = 0; i < n;) {
        int len = utf8_len((const unsigned char *)name + i);
        if (len > 1) { /* a whole UTF-8 character, kept */
            memcpy(q, name + i, len), q += len, i += len;
            continue;
        }
        if (!len || (path && needs_escape(name, i))) /* !len: a byte of no UTF-8 character */
            q += sprintf(q, "%%%02X", (unsigned char)name[i]);
        else
            *q++ = name[i];
        i++;
    }
    *q = '\0';
    return o;
}

char *avs_name_safe(const char *name) { return encode(name, 1); }

char *avs_name_text(const char *name) { return encode(name, 0); }

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *avs_name_untext(const char *text)
{
    char *o = avs_malloc(strlen(text) + 1), *q = o;
    for (const char *p = text; *p;) {
        int hi = p[0] == '%' ? hexval(p[1]) : -1, lo = hi >= 8 ? hexval(p[2]) : -1;
        if (lo >= 0) { /* %80..%FF: a byte avs_name_text encoded */
            *q++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *q++ = *p++;
        }
    }
    *q = '\0';
    return o;
}

/* A ".." component anywhere: "..", "../x", "x/..", "x/../y". */
static int has_dotdot(const char *s)
{
    for (const char *p = s; (p = strstr(p, "..")); p++)
        if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 1;
    return 0;
}

int avs_name_for_uid(const char *name, char **uid, char **why)
{
    const char *bad = !*name ? "it is empty"
                      : !strcmp(name, ".") ? "'.' names a folder, not a video"
                      : has_dotdot(name) ? "it has a '..' component (it would leave the store)"
                      : name[0] == '/' ? "it is an absolute path"
                                       : control_problem(name);
    char *safe = bad ? NULL : avs_name_safe(name);
    if (safe && strlen(safe) > AVS_NAME_MAX) {
        bad = "it is longer than 128 bytes once encoded ('/', '%' and bytes of no UTF-8 "
              "character take 3 bytes each)";
        free(safe);
        safe = NULL;
    }
    if (bad) {
        char *p = avs_name_printable(name);
        *why = avs_sprintf("name '%s' refused: %s: fix it where it comes from, the row or the file name (a uid may not be "
                           "empty, '.', an absolute path, have a '..' component or a control "
                           "character, and is at most %d bytes)", p, bad, AVS_NAME_MAX);
        free(p);
        return -1;
    }
    *uid = safe;
    return 0;
}

char *avs_name_refused_uid(const char *key)
{
    struct avs_hash h;
    char hex[33];
    avs_hash_init(&h);
    avs_hash_update(&h, key, strlen(key));
    avs_hash_final(&h, hex);
    return avs_sprintf("refused-%.16s", hex);
}
