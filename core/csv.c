/* core/csv.c: see csv.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fs.h"
#include "core/csv.h"

struct row_builder {
    char **cells;
    size_t n, cap;
};

static void push_cell(struct row_builder *rb, const char *s, size_t len)
{
    if (rb->n == rb->cap)
        rb->cells = avs_realloc(rb->cells, (rb->cap = rb->cap ? 2 * rb->cap : 64) * sizeof(char *));
    char *c = avs_malloc(len + 1);
    memcpy(c, s, len);
    c[len] = '\0';
    rb->cells[rb->n++] = c;
}

/* Parse one field starting at text[*i]; leaves *i at the delimiter or end. */
static char *field(const char *text, size_t len, size_t *i, size_t *flen)
{
    size_t cap = 64, n = 0;
    char *buf = avs_malloc(cap);
    int quoted = *i < len && text[*i] == '"';
    if (quoted)
        (*i)++;
    while (*i < len) {
        char ch = text[*i];
        if (quoted && ch == '"') {
            if (*i + 1 < len && text[*i + 1] == '"') {
                ch = '"';
                (*i)++;
            } else {
                quoted = 0;
                (*i)++;
                continue;
            }
        } else if (!quoted && (ch == ',' || ch == '\n' || ch == '\r')) {
            break;
        }
        if (n + 1 >= cap)
            buf = avs_realloc(buf, cap *= 2);
        buf[n++] = ch;
        (*i)++;
    }
    buf[n] = '\0';
    *flen = n;
    return buf;
}

int avs_csv_parse(const char *text, size_t len, struct avs_csv *t)
{
    struct row_builder rb = {0};
    size_t i = 0, rows = 0;
    int cols = -1;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        i = 3; /* UTF-8 byte-order mark */
    while (i < len) {
        int ncell = 0;
        size_t row_start_cells = rb.n;
        for (;;) {
            size_t fl;
            char *f = field(text, len, &i, &fl);
            push_cell(&rb, f, fl);
            free(f);
            ncell++;
            if (i < len && text[i] == ',') {
                i++;
                continue;
            }
            break;
        }
        while (i < len && (text[i] == '\r' || text[i] == '\n'))
            i++;
        if (ncell == 1 && rb.cells[row_start_cells][0] == '\0') { /* blank line */
            free(rb.cells[--rb.n]);
            continue;
        }
        if (cols < 0)
            cols = ncell;
        /* Normalise the row to `cols` cells. */
        while (ncell > cols)
            free(rb.cells[--rb.n]), ncell--;
        while (ncell < cols)
            push_cell(&rb, "", 0), ncell++;
        rows++;
    }
    t->cells = rb.cells;
    t->n_rows = rows;
    t->n_cols = cols < 0 ? 0 : cols;
    return 0;
}

int avs_csv_read(const char *path, struct avs_csv *t, struct avs_err *err)
{
    char *data;
    size_t len;
    if (avs_fs_read_all(path, &data, &len, err))
        return -1;
    avs_csv_parse(data, len, t);
    free(data);
    if (t->n_rows == 0) {
        avs_csv_free(t); /* blank lines leave an empty cell array */
        return avs_err_set(err, "%s: empty CSV (expected a header line)", path);
    }
    return 0;
}

int avs_csv_column(const struct avs_csv *t, const char *const *names)
{
    for (int c = 0; c < t->n_cols; c++) {
        const char *h = t->cells[c];
        while (*h == ' ')
            h++;
        for (int k = 0; names[k]; k++) {
            size_t n = strlen(names[k]);
            if (!strncasecmp(h, names[k], n) && (h[n] == '\0' || h[n] == ' '))
                return c;
        }
    }
    return -1;
}

const char *avs_csv_cell(const struct avs_csv *t, size_t row, int col)
{
    if (row >= t->n_rows || col < 0 || col >= t->n_cols)
        return NULL;
    return t->cells[row * (size_t)t->n_cols + (size_t)col];
}

void avs_csv_free(struct avs_csv *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_rows * (size_t)t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
