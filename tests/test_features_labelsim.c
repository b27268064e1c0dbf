/* tests/test_features_labelsim.c: tokens, word vector files (GloVe text, word2vec text and
 * binary give the same vectors), the similarity rules on hand-made vectors (identical token
 * strings -> 1, unknown words count as zero in the mean, multi-word means, zero vector -> 0),
 * the keep-filter, errors, the real class lists in features/data/, and S stored in and loaded
 * from the index (keyed by the vector file's hash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "features/labelsim.h"
#include "core/hash.h"
#include "tests/check.h"

static const char *words[] = {"dog", "cat", "bark", ",", "Meow"};
static const float vecs[][3] = {{1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {0, 0, 1}, {0, 2, 0}};

static void write_files(const char *dir, char *glove, char *w2vt, char *w2vb, size_t len)
{
    snprintf(glove, len, "%s/v.glove.txt", dir);
    snprintf(w2vt, len, "%s/v.w2v.txt", dir);
    snprintf(w2vb, len, "%s/v.w2v.bin", dir);
    FILE *g = fopen(glove, "w"), *t = fopen(w2vt, "w"), *b = fopen(w2vb, "wb");
    fprintf(t, "5 3\n");
    fprintf(b, "5 3\n");
    for (int i = 0; i < 5; i++) {
        fprintf(g, "%s %g %g %g\n", words[i], vecs[i][0], vecs[i][1], vecs[i][2]);
        fprintf(t, "%s %g %g %g\n", words[i], vecs[i][0], vecs[i][1], vecs[i][2]);
        fprintf(b, "%s ", words[i]);
        fwrite(vecs[i], sizeof(float), 3, b);
        fputc('\n', b);
    }
    fclose(g), fclose(t), fclose(b);
}

static void check_tokens(void)
{
    char **t;
    int n = avs_labelsim_tokenize("Male speech, man-speaking  (x2)", &t);
    const char *want[] = {"Male", "speech", ",", "man", "-", "speaking", "(", "x2", ")"};
    CHECK(n == 9, "9 tokens, got %d", n);
    for (int i = 0; i < n && i < 9; i++)
        CHECK(!strcmp(t[i], want[i]), "token %d: %s want %s", i, t[i], want[i]);
    avs_labelsim_tokens_free(&t, n);
    CHECK(t == NULL, "freed tokens set to NULL");
    n = avs_labelsim_tokenize("  ", &t);
    CHECK(n == 0, "blank label has no tokens");
    avs_labelsim_tokens_free(&t, n);
}

static void check_rules(const struct avs_wordvec *wv, const char *what)
{
    double v[3];
    CHECK(wv->dim == 3 && wv->n == 5, "%s: dim %d n %lld", what, wv->dim, (long long)wv->n);
    CHECK(avs_wordvec_find(wv, "Dog") == avs_wordvec_find(wv, "dog"), "%s: Dog -> dog", what);
    CHECK(avs_wordvec_find(wv, "meow") == NULL && avs_wordvec_find(wv, "Meow"), "%s: case kept", what);
    CHECK(avs_labelsim_vector(v, wv, "dog xyz") == 1, "%s: one token known", what);
    CHECK_NEAR(v[0], 0.5, 1e-12, 0, "unknown token counts as zero in the mean");
    avs_labelsim_vector(v, wv, "dog, bark");
    CHECK_NEAR(v[0], 2.0 / 3, 1e-12, 0, "mean x");
    CHECK_NEAR(v[1], 1.0 / 3, 1e-12, 0, "mean y");
    CHECK_NEAR(v[2], 1.0 / 3, 1e-12, 0, "mean z (the comma's vector)");

    const char *a[] = {"dog, bark", "Zzz qq", "cat", "qqq"};
    const char *b[] = {"Cat", "zzz  QQ", "dog", "Meow", "bark"};
    float S[4 * 5];
    avs_labelsim_build(S, wv, a, 4, b, 5);
    CHECK_NEAR(S[0 * 5 + 0], 1 / sqrt(6.0), 1e-6, 0, "cos(dog , bark ; cat)");
    CHECK_NEAR(S[0 * 5 + 4], (2.0 / 3 + 1.0 / 3) / sqrt(6.0 / 9) / sqrt(2.0), 1e-6, 0, "cos with bark");
    CHECK(S[1 * 5 + 1] == 1.0f, "identical token strings (case-insensitive) give 1 even unknown: %g", S[6]);
    CHECK(S[1 * 5 + 0] == 0.0f, "zero vector gives 0: %g", S[5]);
    CHECK(S[2 * 5 + 0] == 1.0f, "cat vs Cat: 1");
    CHECK_NEAR(S[2 * 5 + 3], 1.0, 1e-6, 0, "cat vs Meow: parallel vectors");
    CHECK_NEAR(S[2 * 5 + 2], 0.0, 1e-7, 0, "cat vs dog: orthogonal");
    CHECK(S[3 * 5 + 2] == 0.0f, "all-unknown label: 0");
}

static void check_files(void)
{
    char g[512], t[512], b[512];
    const char *dir = check_tmpdir();
    write_files(dir, g, t, b, sizeof g);
    const char *paths[3] = {g, t, b}, *fmt[3] = {"glove-text", "word2vec-text", "word2vec-binary"};
    struct avs_err err;
    for (int i = 0; i < 3; i++) {
        struct avs_wordvec *wv = NULL;
        if (avs_wordvec_load(&wv, paths[i], NULL, &err)) {
            CHECK(0, "%s", err.msg);
            continue;
        }
        CHECK(!strcmp(wv->format, fmt[i]), "format %s want %s", wv->format, fmt[i]);
        check_rules(wv, fmt[i]);
        avs_wordvec_free(&wv);
        CHECK(wv == NULL, "free sets NULL");
    }
    /* keep-filter: only the labels' tokens */
    const char *la[] = {"a cat"}, *lb[] = {"DOG"};
    struct avs_wordset ws;
    avs_wordset_from_labels(&ws, la, 1, lb, 1);
    CHECK(ws.n == 4, "token set a, cat, DOG, dog: %lld", (long long)ws.n);
    struct avs_wordvec *wv = NULL;
    CHECK(avs_wordvec_load(&wv, b, &ws, &err) == 0, "%s", err.msg);
    if (wv) {
        CHECK(wv->n == 2 && wv->n_file == 5, "kept %lld of %lld", (long long)wv->n, (long long)wv->n_file);
        CHECK(avs_wordvec_find(wv, "DOG") && !avs_wordvec_find(wv, "bark"), "filtered lookup");
        avs_wordvec_free(&wv);
    }
    avs_wordset_free(&ws);
    /* errors name the file and line */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.txt", dir);
    FILE *f = fopen(bad, "w");
    fprintf(f, "dog 1 2 3\ncat 1 2\n");
    fclose(f);
    CHECK(avs_wordvec_load(&wv, bad, NULL, &err) == -1 && strstr(err.msg, "bad.txt:2") &&
              strstr(err.msg, "expected 3"), "ragged file: %s", err.msg);
    f = fopen(bad, "wb");
    fprintf(f, "3 4\ndog ");
    fwrite(vecs, 4, 4, f);
    fprintf(f, "cat ");
    fclose(f);
    CHECK(avs_wordvec_load(&wv, bad, NULL, &err) == -1 && strstr(err.msg, "truncated"),
          "truncated binary: %s", err.msg);
    CHECK(avs_wordvec_load(&wv, "/nonexistent/v.txt", NULL, &err) == -1 && strstr(err.msg, "/nonexistent/v.txt"),
          "missing file: %s", err.msg);
}

static void check_class_lists(void)
{
    char **v = NULL, **a = NULL;
    int nv = 0, na = 0;
    struct avs_err err;
    CHECK(avs_labels_read("features/data/imagenet1k_classes.txt", &v, &nv, &err) == 0, "%s", err.msg);
    CHECK(avs_labels_read("features/data/audioset_class_labels_indices.csv", &a, &na, &err) == 0, "%s", err.msg);
    CHECK(nv == 1000 && na == 527, "class counts %d %d", nv, na);
    if (nv == 1000 && na == 527) {
        CHECK(!strcmp(v[0], "tench, Tinca tinca"), "imagenet 0: %s", v[0]);
        CHECK(!strcmp(a[0], "Speech") && !strcmp(a[1], "Male speech, man speaking"), "audioset 1: %s", a[1]);
        CHECK(!strncmp(v[999], "toilet tissue", 13), "imagenet 999: %s", v[999]);
        struct avs_wordset ws;
        avs_wordset_from_labels(&ws, (const char *const *)v, nv, (const char *const *)a, na);
        CHECK(ws.n > 2000 && ws.n < 10000, "token set of the class lists: %lld", (long long)ws.n);
        avs_wordset_free(&ws);
    }
    avs_labels_free(&v, nv);
    avs_labels_free(&a, na);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.csv", check_tmpdir());
    FILE *f = fopen(bad, "w");
    fprintf(f, "index,mid,display_name\n0,/m/a,\"A, \"\"quoted\"\"\"\n2,/m/b,B\n");
    fclose(f);
    CHECK(avs_labels_read(bad, &a, &na, &err) == -1 && strstr(err.msg, "bad.csv:3"), "order: %s", err.msg);
    f = fopen(bad, "w");
    fprintf(f, "index,mid,display_name\n0,/m/a,\"A, \"\"quoted\"\"\"\n1,/m/b,B\n");
    fclose(f);
    CHECK(avs_labels_read(bad, &a, &na, &err) == 0 && na == 2, "csv: %s", err.msg);
    if (na == 2)
        CHECK(!strcmp(a[0], "A, \"quoted\"") && !strcmp(a[1], "B"), "csv fields: [%s] [%s]", a[0], a[1]);
    avs_labels_free(&a, na);
}

static void check_db(void)
{
    char vpath[600], dbp[600];
    snprintf(vpath, sizeof vpath, "%s/vec.txt", check_tmpdir());
    snprintf(dbp, sizeof dbp, "%s/avs.db", check_tmpdir());
    FILE *f = fopen(vpath, "w");
    fprintf(f, "dog 1 0\ncat 0 1\n");
    fclose(f);
    struct avs_err err;
    struct avs_wordvec *wv = NULL;
    sqlite3 *db = NULL;
    if (avs_wordvec_load(&wv, vpath, NULL, &err) || avs_db_open(dbp, &db, &err)) {
        CHECK(0, "%s", err.msg);
        avs_wordvec_free(&wv);
        return;
    }
    const char *a[] = {"dog", "cat", "dog cat"}, *b[] = {"Cat", "dog"};
    float S[6], *L = NULL;
    avs_labelsim_build(S, wv, a, 3, b, 2);
    int64_t id1 = 0, id2 = 0;
    int r = 0, c = 0;
    CHECK(avs_labelsim_store(db, vpath, S, 3, 2, &id1, &err) == 0, "%s", err.msg);
    CHECK(avs_labelsim_load(db, NULL, &L, &r, &c, &err) == 0 && r == 3 && c == 2, "%s", err.msg);
    if (L)
        CHECK(memcmp(L, S, sizeof S) == 0, "S round trip through the index");
    free(L);
    L = NULL;
    char hex[33];
    CHECK(avs_hash_file(vpath, hex, &err) == 0, "%s", err.msg);
    CHECK(avs_labelsim_load(db, hex, &L, &r, &c, &err) == 0, "by hash: %s", err.msg);
    free(L);
    L = NULL;
    S[0] = 0.5f;
    CHECK(avs_labelsim_store(db, vpath, S, 3, 2, &id2, &err) == 0 && id2 == id1, "same vectors: same row");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM label_similarity", -1) == 1, "one row");
    CHECK(avs_db_scalar_int(db, "SELECT count(*) FROM label_similarity WHERE vectors = 'vec.txt'", -1) == 1,
          "base name stored");
    CHECK(avs_labelsim_load(db, "0123", &L, &r, &c, &err) == -1 && strstr(err.msg, "run `avs-model run labelsim"),
          "missing hash: %s", err.msg);
    avs_db_close(&db);
    avs_wordvec_free(&wv);
}

int main(void)
{
    check_tokens();
    check_files();
    check_class_lists();
    check_db();
    return check_summary("test_features_labelsim");
}
