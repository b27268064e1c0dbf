/* audiohead/store.c: clips from a feature set of the store (its audio_emb records) labelled by
 * an AudioSet segment CSV (audiohead.h):
 *   # comment lines
 *   # YTID, start_seconds, end_seconds, positive_labels
 *   -0Gj8-vB1q4, 30.000, 40.000, "/m/0140xf,/m/02cjck"
 * YTID is the store video's uid; second k (covering [k-1, k)) belongs to the row when
 * start <= k-1 and k <= end (clip-relative seconds). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "audiohead/audiohead.h"
#include "core/db.h"
#include "core/fs.h"
#include "features/cache.h"

struct sec {
    char *uid;
    int k;
    int64_t off;
};

struct store {
    struct sec *s;
    int n;
    struct avs_cache *cache;
    int field, E;
};

static int load_index(struct store *st, const struct avs_ah_store_src *src, struct avs_err *err)
{
    char *dbp = src->db_path ? avs_strdup(src->db_path) : avs_db_path_for_root(src->root);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char *path = NULL;
    int rc = -1;
    if (avs_db_open_readonly(dbp, &db, err) ||
        avs_db_prepare(db, "SELECT id, path FROM feature_sets WHERE name = ?", &q, err))
        goto out;
    sqlite3_bind_text(q, 1, src->set, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) {
        avs_err_set(err, "%s: no feature set \"%s\" (make one with avs-features --set %s)", dbp,
                    src->set, src->set);
        goto out;
    }
    int64_t id = sqlite3_column_int64(q, 0);
    path = avs_sprintf("%s/%s", src->root, (const char *)sqlite3_column_text(q, 1));
    sqlite3_finalize(q);
    q = NULL;
    if (avs_cache_open(&st->cache, path, err))
        goto out;
    st->field = avs_cache_find(st->cache, "audio_emb");
    if (st->field < 0) {
        avs_err_set(err, "%s: the feature set has no audio_emb field", path);
        goto out;
    }
    st->E = (int)avs_cache_field_numel(&st->cache->field[st->field]);
    if (avs_db_prepare(db, "SELECT v.uid, e.k, e.offset FROM feature_entries e JOIN videos v "
                       "ON v.id = e.video_id WHERE e.set_id = ? AND e.flipped = 0 "
                       "ORDER BY v.uid, e.k", &q, err))
        goto out;
    sqlite3_bind_int64(q, 1, id);
    while (sqlite3_step(q) == SQLITE_ROW) {
        st->s = avs_realloc(st->s, ((size_t)st->n + 1) * sizeof *st->s);
        st->s[st->n].uid = avs_strdup((const char *)sqlite3_column_text(q, 0));
        st->s[st->n].k = sqlite3_column_int(q, 1);
        st->s[st->n].off = sqlite3_column_int64(q, 2);
        st->n++;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    avs_db_close(&db);
    free(dbp);
    free(path);
    return rc;
}

static void store_free(struct store *st)
{
    for (int i = 0; i < st->n; i++)
        free(st->s[i].uid);
    free(st->s);
    avs_cache_close(&st->cache);
}

/* first second of uid, or st->n */
static int first_of(const struct store *st, const char *uid)
{
    int lo = 0, hi = st->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(st->s[mid].uid, uid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* One data line into id, start, end and label indices. */
static int parse_row(char *line, char **mids, int K, char **id, double *t0, double *t1,
                     int64_t **lab, int *nl, char *why, size_t whylen)
{
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    char *c3 = c2 ? strchr(c2 + 1, ',') : NULL, *end;
    if (!c3)
        return snprintf(why, whylen, "need 4 columns: YTID, start_seconds, end_seconds, "
                        "\"positive_labels\""), -1;
    *c1 = *c2 = *c3 = 0;
    *id = trim(line);
    *t0 = strtod(c1 + 1, &end);
    if (*trim(end))
        return snprintf(why, whylen, "start_seconds \"%s\" is not a number", trim(c1 + 1)), -1;
    *t1 = strtod(c2 + 1, &end);
    if (*trim(end) || *t1 <= *t0)
        return snprintf(why, whylen, "end_seconds \"%s\" is not a number above start",
                        trim(c2 + 1)), -1;
    char *l = trim(c3 + 1);
    size_t n = strlen(l);
    if (n >= 2 && l[0] == '"' && l[n - 1] == '"')
        l[n - 1] = 0, l++;
    *nl = 0;
    char *sv = NULL;
    for (char *tok = strtok_r(l, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
        tok = trim(tok);
        int k = 0;
        while (k < K && strcmp(mids[k], tok))
            k++;
        if (k == K)
            return snprintf(why, whylen, "label \"%s\" is not in the class list", tok), -1;
        *lab = avs_realloc(*lab, ((size_t)*nl + 1) * sizeof **lab);
        (*lab)[(*nl)++] = k;
    }
    return 0;
}

/* The rows of uid's seconds inside [t0, t1] into x (postprocessed with pca when given). */
static int gather(const struct store *st, const char *uid, double t0, double t1,
                  const struct avs_ah_pca *pca, float **x, int *T, struct avs_err *err)
{
    float raw[4096];
    *T = 0;
    for (int i = first_of(st, uid); i < st->n && !strcmp(st->s[i].uid, uid); i++) {
        int k = st->s[i].k;
        if (k - 1 < t0 - 1e-6 || k > t1 + 1e-6)
            continue;
        int D = pca && pca->have ? AVS_AH_EMB : st->E;
        *x = avs_realloc(*x, ((size_t)*T + 1) * (size_t)D * sizeof **x);
        float *row = *x + (size_t)*T * D;
        if (avs_cache_read(st->cache, st->s[i].off, st->field, pca && pca->have ? raw : row, err))
            return avs_err_wrap(err, "video %s second %d", uid, k);
        if (pca && pca->have)
            avs_ah_pca_apply(pca, raw, row);
        (*T)++;
    }
    return 0;
}

static int add_rows(struct avs_ah_data *d, const struct store *st, struct avs_ah_store_src *src,
                    char *text, char **mids, int K, const struct avs_ah_pca *pca,
                    struct avs_err *err)
{
    int line = 0, rc = 0;
    float *x = NULL;
    int64_t *lab = NULL;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && !rc;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *s = trim(l), *id, why[200];
        double t0, t1;
        int nl, T;
        if (!*s || *s == '#')
            continue;
        if (parse_row(s, mids, K, &id, &t0, &t1, &lab, &nl, why, sizeof why)) {
            rc = avs_err_set(err, "%s: line %d: %s", src->labels_csv, line, why);
            break;
        }
        if (gather(st, id, t0, t1, pca, &x, &T, err)) {
            rc = avs_err_wrap(err, "%s: line %d", src->labels_csv, line);
            break;
        }
        if (!T)
            src->unmatched++;
        else
            avs_ah_data_push(d, id, x, T, lab, nl);
    }
    free(x);
    free(lab);
    return rc;
}

int avs_ah_data_add_store(struct avs_ah_data *d, struct avs_ah_store_src *src,
                          const struct avs_ah_pca *pca, struct avs_err *err)
{
    struct store st = {0};
    char **mids = NULL, *text = NULL;
    size_t len;
    int K = 0, rc = -1;
    if (avs_ah_classes_read(src->classes_csv, &mids, &K, err) || load_index(&st, src, err) ||
        avs_fs_read_all(src->labels_csv, &text, &len, err))
        goto out;
    const char *space = pca && pca->have ? "audioset-pca-uint8" : "raw";
    int D = pca && pca->have ? AVS_AH_EMB : st.E;
    if (pca && pca->have && st.E != AVS_AH_EMB) {
        avs_err_set(err, "feature set %s: embeddings of %d values; the PCA needs 128", src->set, st.E);
        goto out;
    }
    if (st.E > 4096) {
        avs_err_set(err, "feature set %s: embeddings of %d values (at most 4096)", src->set, st.E);
        goto out;
    }
    if (d->D && (d->D != D || d->K != K || strcmp(d->space, space))) {
        avs_err_set(err, "feature set %s gives %s inputs of %d values and %d classes, the other "
                    "data %s of %d and %d (give --pca to train on both)", src->set, space, D, K,
                    d->space, d->D, d->K);
        goto out;
    }
    d->D = D, d->K = K, d->space = space;
    rc = add_rows(d, &st, src, text, mids, K, pca, err);
out:
    free(text);
    avs_ah_classes_free(&mids, K);
    store_free(&st);
    return rc;
}
