/* core/names.c: see names.h. */
#include "core/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

static const char *control_problem(const char *s)
{
    for (; *s; s++)
        if (is_control((unsigned char)*s))
            return "it holds a control character (newline, tab...)";
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
    const char *c = control_problem(name);
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
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)name[i];
        if (is_control(c) || c == '\\')
            q += sprintf(q, "\\x%02X", c);
        else
            *q++ = (char)c;
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
    avs_err_set(err, "%s '%s': %s: choose a name of 1 to %d bytes without '/', control "
                     "characters, \".tmp.\" or a leading '.' or '-'",
                what, p, why, AVS_NAME_MAX);
    free(p);
    return -1;
}

int avs_name_check_label(const char *label, const char *what, struct avs_err *err)
{
    const char *why = !label || !*label ? "it is empty"
                      : strlen(label) > AVS_NAME_MAX ? "it is longer than 128 bytes"
                                                     : control_problem(label);
    if (!why)
        return 0;
    char *p = avs_name_printable(label ? label : "");
    avs_err_set(err, "%s '%s': %s: fix it (1 to %d bytes, no control characters)", what, p, why,
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

char *avs_name_safe(const char *name)
{
    size_t n = strlen(name);
    char *o = avs_malloc(3 * n + 1), *q = o;
    for (size_t i = 0; i < n; i++) {
        if (needs_escape(name, i))
            q += sprintf(q, "%%%02X", (unsigned char)name[i]);
        else
            *q++ = name[i];
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
        bad = "it is longer than 128 bytes once '/' and '%' are encoded";
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
