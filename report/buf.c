/* report/buf.c: text buffer, per-format escaping, base64. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

void avs_buf_put(struct avs_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = avs_realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void avs_buf_puts(struct avs_buf *b, const char *s) { avs_buf_put(b, s, strlen(s)); }

void avs_buf_printf(struct avs_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    AVS_ASSERT(n >= 0);
    if ((size_t)n < sizeof small) {
        avs_buf_put(b, small, (size_t)n);
        return;
    }
    char *big = avs_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    avs_buf_put(b, big, (size_t)n);
    free(big);
}

static const char *html_entity(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

static const char *latex_entity(char c)
{
    switch (c) {
    case '\\': return "\\textbackslash{}";
    case '{': return "\\{";
    case '}': return "\\}";
    case '$': return "\\$";
    case '&': return "\\&";
    case '#': return "\\#";
    case '^': return "\\textasciicircum{}";
    case '_': return "\\_";
    case '%': return "\\%";
    case '~': return "\\textasciitilde{}";
    case '<': return "\\textless{}";
    case '>': return "\\textgreater{}";
    default: return NULL;
    }
}

void avs_buf_esc(struct avs_buf *b, enum avs_report_format f, const char *s)
{
    if (!s)
        return;
    if (f == AVS_REPORT_CSV)
        avs_buf_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        const char *e = NULL;
        char one[3] = {0};
        switch (f) {
        case AVS_REPORT_HTML: e = html_entity(*p); break;
        case AVS_REPORT_LATEX: e = latex_entity(*p); break;
        case AVS_REPORT_CSV:
            if (*p == '"')
                e = "\"\"";
            break;
        case AVS_REPORT_MARKDOWN:
            if (*p == '\n' || *p == '\r')
                e = " ";
            else if (strchr("|\\`*_[]#<>&", *p)) {
                /* markdown renderers pass HTML through: neutralise it as entities */
                e = html_entity(*p);
                if (!e) {
                    one[0] = '\\', one[1] = *p;
                    e = one;
                }
            }
            break;
        }
        if (e)
            avs_buf_puts(b, e);
        else if (f != AVS_REPORT_CSV && (unsigned char)*p < 0x20)
            avs_buf_put(b, " ", 1); /* control characters */
        else
            avs_buf_put(b, p, 1);
    }
    if (f == AVS_REPORT_CSV)
        avs_buf_put(b, "\"", 1);
}

void avs_buf_base64(struct avs_buf *b, const uint8_t *d, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        q[0] = T[v >> 18 & 63];
        q[1] = T[v >> 12 & 63];
        q[2] = i + 1 < n ? T[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? T[v & 63] : '=';
        avs_buf_put(b, q, 4);
    }
}

void avs_buf_free(struct avs_buf *b)
{
    if (b) {
        free(b->p);
        memset(b, 0, sizeof *b);
    }
}
