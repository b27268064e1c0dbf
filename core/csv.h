/* core/csv.h: a small RFC 4180 CSV reader (quoted fields, doubled quotes, CRLF).
 *
 *   struct avs_csv t = {0};
 *   avs_csv_read("s4_meta_data.csv", &t, &err);
 *   int col = avs_csv_column(&t, (const char *[]){"name", "vid", NULL});  header row is row 0
 *   const char *v = avs_csv_cell(&t, row, col);
 *   avs_csv_free(&t);
 */
#ifndef AVS_CORE_CSV_H
#define AVS_CORE_CSV_H

#include <stddef.h>

#include "core/common.h"

struct avs_csv {
    char **cells;    /* [n_rows][n_cols], missing cells NULL */
    size_t n_rows;
    int n_cols;      /* columns of the header row */
};

int avs_csv_read(const char *path, struct avs_csv *t, struct avs_err *err);
int avs_csv_parse(const char *text, size_t len, struct avs_csv *t);
/* Index of the first header cell equal (case-insensitive, trimmed) to one of names; -1 if none. */
int avs_csv_column(const struct avs_csv *t, const char *const *names);
const char *avs_csv_cell(const struct avs_csv *t, size_t row, int col);
void avs_csv_free(struct avs_csv *t);

#endif
