/* bench/fuzz/fuzz_csv.c: the CSV reader (core/csv.c) from memory, the column look-ups ingest
 * makes, every cell, and the AVSS metadata.csv columns (core/avss.c). */
#include "bench/fuzz/fuzz.h"
#include "core/avss.h"
#include "core/csv.h"

int avs_fuzz_csv(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_csv(const uint8_t *data, size_t size, struct avs_err *err)
{
    struct avs_csv t = {0};
    if (avs_csv_parse((const char *)data, size, &t)) {
        avs_err_set(err, "fuzz input: the CSV does not parse");
        return -1;
    }
    static const char *const names[] = {"name", "vid", "uid", "category", "split", NULL};
    int col = avs_csv_column(&t, names);
    size_t total = 0;
    for (size_t r = 0; r < t.n_rows; r++)
        for (int c = -1; c <= t.n_cols; c++) {
            const char *v = avs_csv_cell(&t, r, c);
            total += v ? strlen(v) : 0;
        }
    AVS_ASSERT(col < t.n_cols && total <= size);
    int uid, split, label;
    int rc = avs_avss_meta_columns(&t, "metadata.csv", &uid, &split, &label, err);
    avs_csv_free(&t);
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_csv)
