/* audiohead/data.c: clips in memory, from AudioSet's TFRecords (audiohead.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "core/csv.h"
#include "core/fs.h"

void avs_ah_data_push(struct avs_ah_data *d, const char *id, const float *x, int T,
                      const int64_t *labels, int n_labels)
{
    if (d->n + 1 >= d->cap) {
        d->cap = d->cap ? 2 * d->cap : 256;
        d->off = avs_realloc(d->off, ((size_t)d->cap + 1) * sizeof *d->off);
        d->y = avs_realloc(d->y, (size_t)d->cap * (size_t)d->K);
        d->id = avs_realloc(d->id, (size_t)d->cap * sizeof *d->id);
    }
    if (d->rows + T > d->rows_cap) {
        d->rows_cap = (d->rows + T) * 2 + 1024;
        d->x = avs_realloc(d->x, (size_t)d->rows_cap * (size_t)d->D * sizeof *d->x);
    }
    if (!d->n)
        d->off[0] = 0;
    memcpy(d->x + (size_t)d->rows * d->D, x, (size_t)T * d->D * sizeof *x);
    d->rows += T;
    d->off[d->n + 1] = d->rows;
    uint8_t *y = d->y + (size_t)d->n * d->K;
    memset(y, 0, (size_t)d->K);
    for (int i = 0; i < n_labels; i++)
        y[labels[i]] = 1;
    snprintf(d->id[d->n], sizeof d->id[0], "%s", id);
    d->n++;
}

int avs_ah_data_add_tfrecord(struct avs_ah_data *d, const char *path, int *skipped,
                             struct avs_err *err)
{
    struct avs_ah_tfr r;
    if (avs_ah_tfr_open(&r, path, err))
        return -1;
    if (!d->D)
        d->D = AVS_AH_EMB, d->K = d->K ? d->K : AVS_AH_CLASSES, d->space = "audioset-pca-uint8";
    if (d->D != AVS_AH_EMB || strcmp(d->space, "audioset-pca-uint8")) {
        avs_ah_tfr_close(&r);
        return avs_err_set(err, "%s: AudioSet's released embeddings cannot be mixed with raw "
                           "store embeddings: give --pca so that the store's are postprocessed "
                           "the same way", path);
    }
    const uint8_t *rec;
    size_t len;
    int got, rc = 0;
    float *x = NULL;
    while (!rc && (got = avs_ah_tfr_next(&r, &rec, &len, err)) == 1) {
        struct avs_ah_clip c;
        char why[160];
        if (avs_ah_parse_example(rec, len, &c, why, sizeof why)) {
            rc = avs_err_set(err, "%s: record %lld: %s (not an AudioSet embedding "
                             "SequenceExample)", path, (long long)r.index - 1, why);
            break;
        }
        for (int i = 0; i < c.n_labels && !rc; i++)
            if (c.labels[i] < 0 || c.labels[i] >= d->K)
                rc = avs_err_set(err, "%s: record %lld (%s): label %lld outside 0..%d", path,
                                 (long long)r.index - 1, c.id, (long long)c.labels[i], d->K - 1);
        if (!rc && !c.T && skipped)
            (*skipped)++;
        if (!rc && c.T) {
            x = avs_realloc(x, (size_t)c.T * AVS_AH_EMB * sizeof *x);
            for (size_t i = 0; i < (size_t)c.T * AVS_AH_EMB; i++)
                x[i] = ((float)c.emb[i] - 128.0f) / 128.0f; /* Kong's uint8_to_float32 */
            avs_ah_data_push(d, c.id, x, c.T, c.labels, c.n_labels);
        }
        avs_ah_clip_free(&c);
    }
    if (!rc && got < 0)
        rc = -1;
    free(x);
    avs_ah_tfr_close(&r);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int avs_ah_data_add_path(struct avs_ah_data *d, const char *path, int *skipped,
                         struct avs_err *err)
{
    if (!avs_fs_is_dir(path))
        return avs_ah_data_add_tfrecord(d, path, skipped, err);
    DIR *dir = opendir(path);
    if (!dir)
        return avs_err_set(err, "%s: cannot open the folder", path);
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l > 9 && !strcmp(e->d_name + l - 9, ".tfrecord")) {
            names = avs_realloc(names, ((size_t)n + 1) * sizeof *names);
            names[n++] = avs_sprintf("%s/%s", path, e->d_name);
        }
    }
    closedir(dir);
    if (!n)
        rc = avs_err_set(err, "%s: no *.tfrecord files in this folder (AudioSet's "
                         "features/audioset_v1_embeddings/bal_train or eval)", path);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        if (!rc)
            rc = avs_ah_data_add_tfrecord(d, names[i], skipped, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

int avs_ah_data_positives(const struct avs_ah_data *d, int k)
{
    int c = 0;
    for (int i = 0; i < d->n; i++)
        c += d->y[(size_t)i * d->K + k];
    return c;
}

void avs_ah_data_free(struct avs_ah_data *d)
{
    free(d->off);
    free(d->x);
    free(d->y);
    free(d->id);
    memset(d, 0, sizeof *d);
}

int avs_ah_classes_read(const char *path, char ***mids, int *n, struct avs_err *err)
{
    struct avs_csv t = {0};
    if (avs_csv_read(path, &t, err))
        return avs_err_wrap(err, "the AudioSet class list (give --classes FILE: the project's "
                            "features/data/audioset_class_labels_indices.csv)");
    int ci = avs_csv_column(&t, (const char *[]){"index", NULL});
    int cm = avs_csv_column(&t, (const char *[]){"mid", NULL});
    int rc = 0;
    if (ci < 0 || cm < 0 || t.n_rows < 2)
        rc = avs_err_set(err, "%s: not an AudioSet class list (header index,mid,display_name)", path);
    char **m = rc ? NULL : avs_calloc(t.n_rows, sizeof *m);
    for (size_t r = 1; !rc && r < t.n_rows; r++) {
        const char *iv = avs_csv_cell(&t, r, ci), *mv = avs_csv_cell(&t, r, cm);
        if (!iv || !mv || atoi(iv) != (int)r - 1)
            rc = avs_err_set(err, "%s: row %zu: index %s, expected %zu (rows in index order)",
                             path, r + 1, iv ? iv : "(none)", r - 1);
        else
            m[r - 1] = avs_strdup(mv);
    }
    if (rc)
        avs_ah_classes_free(&m, (int)t.n_rows);
    else
        *mids = m, *n = (int)t.n_rows - 1;
    avs_csv_free(&t);
    return rc;
}

void avs_ah_classes_free(char ***mids, int n)
{
    if (!*mids)
        return;
    for (int i = 0; i < n; i++)
        free((*mids)[i]);
    free(*mids);
    *mids = NULL;
}
