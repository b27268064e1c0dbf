/* features/labelsim.c: word vectors, tokens, label vectors and the similarity S (labelsim.h). */
#include "features/labelsim.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a string -> index table (open addressing, FNV-1a) ---- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int64_t table_find(const int64_t *slot, int64_t nslot, char *const *words, const char *w)
{
    if (!nslot)
        return -1;
    for (int64_t i = (int64_t)(fnv(w) & (uint64_t)(nslot - 1));; i = (i + 1) & (nslot - 1)) {
        if (slot[i] < 0)
            return -1;
        if (!strcmp(words[slot[i]], w))
            return slot[i];
    }
}

/* Rebuild the table for words[0..n) with at least 2n slots. */
static void table_build(int64_t **slot, int64_t *nslot, char *const *words, int64_t n)
{
    int64_t ns = 16;
    while (ns < 2 * n)
        ns *= 2;
    free(*slot);
    *slot = avs_malloc((size_t)ns * sizeof(int64_t));
    for (int64_t i = 0; i < ns; i++)
        (*slot)[i] = -1;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = (int64_t)(fnv(words[k]) & (uint64_t)(ns - 1));
        while ((*slot)[i] >= 0 && strcmp(words[(*slot)[i]], words[k]))
            i = (i + 1) & (ns - 1);
        if ((*slot)[i] < 0)
            (*slot)[i] = k; /* first occurrence wins (duplicates in a file are ignored) */
    }
    *nslot = ns;
}

static char *lower_dup(const char *s)
{
    char *l = avs_strdup(s);
    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return l;
}

/* ---- tokens ---- */

static int is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

int avs_labelsim_tokenize(const char *label, char ***tokens)
{
    int n = 0, cap = 8;
    char **t = avs_malloc((size_t)cap * sizeof *t);
    for (const char *p = label; *p;) {
        unsigned char c = (unsigned char)*p;
        if (isspace(c)) {
            p++;
            continue;
        }
        size_t len = 1;
        if (is_word_byte(c))
            while (p[len] && is_word_byte((unsigned char)p[len]))
                len++;
        if (n == cap)
            t = avs_realloc(t, (size_t)(cap *= 2) * sizeof *t);
        t[n] = avs_malloc(len + 1);
        memcpy(t[n], p, len);
        t[n++][len] = 0;
        p += len;
    }
    *tokens = t;
    return n;
}

void avs_labelsim_tokens_free(char ***tokens, int n)
{
    for (int i = 0; *tokens && i < n; i++)
        free((*tokens)[i]);
    avs_freep(tokens);
}

static void set_add(struct avs_wordset *s, int64_t *cap, const char *w)
{
    if (table_find(s->slot, s->nslot, s->words, w) >= 0)
        return;
    if (s->n == *cap)
        s->words = avs_realloc(s->words, (size_t)(*cap = *cap ? 2 * *cap : 64) * sizeof(char *));
    s->words[s->n++] = avs_strdup(w);
    if (2 * s->n > s->nslot)
        table_build(&s->slot, &s->nslot, s->words, s->n);
    else {
        int64_t i = (int64_t)(fnv(w) & (uint64_t)(s->nslot - 1));
        while (s->slot[i] >= 0)
            i = (i + 1) & (s->nslot - 1);
        s->slot[i] = s->n - 1;
    }
}

void avs_wordset_from_labels(struct avs_wordset *set, const char *const *a, int na,
                             const char *const *b, int nb)
{
    memset(set, 0, sizeof *set);
    int64_t cap = 0;
    for (int list = 0; list < 2; list++)
        for (int i = 0; i < (list ? nb : na); i++) {
            char **t;
            int n = avs_labelsim_tokenize(list ? b[i] : a[i], &t);
            for (int k = 0; k < n; k++) {
                char *l = lower_dup(t[k]);
                set_add(set, &cap, t[k]);
                set_add(set, &cap, l);
                free(l);
            }
            avs_labelsim_tokens_free(&t, n);
        }
}

void avs_wordset_free(struct avs_wordset *set)
{
    for (int64_t i = 0; set && i < set->n; i++)
        free(set->words[i]);
    if (set) {
        avs_freep(&set->words);
        avs_freep(&set->slot);
        set->n = set->nslot = 0;
    }
}

/* ---- loading ---- */

struct loader {
    struct avs_wordvec *wv;
    const struct avs_wordset *keep;
    int64_t cap;
};

static void keep_word(struct loader *L, const char *w, const float *v)
{
    struct avs_wordvec *wv = L->wv;
    wv->n_file++;
    if (L->keep && table_find(L->keep->slot, L->keep->nslot, L->keep->words, w) < 0)
        return;
    if (wv->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 1024;
        wv->words = avs_realloc(wv->words, (size_t)L->cap * sizeof(char *));
        wv->vec = avs_realloc(wv->vec, (size_t)L->cap * wv->dim * sizeof(float));
    }
    wv->words[wv->n] = avs_strdup(w);
    memcpy(wv->vec + wv->n * wv->dim, v, (size_t)wv->dim * sizeof(float));
    wv->n++;
}

/* One text line "word v1 ... vD" (the newline stripped); dim < 0: learn it from this line. */
static int text_line(struct loader *L, char *line, float **v, const char *path, int64_t lineno,
                     struct avs_err *err)
{
    char *sp = strchr(line, ' ');
    if (!sp)
        return avs_err_set(err, "%s:%lld: expected \"word v1 ... vD\"", path, (long long)lineno);
    *sp = 0;
    if (L->wv->dim <= 0) {
        int d = 0;
        for (char *p = sp + 1; *p;) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            d++;
            while (*p && *p != ' ')
                p++;
        }
        if (d < 1)
            return avs_err_set(err, "%s:%lld: a word with no numbers", path, (long long)lineno);
        L->wv->dim = d;
        *v = avs_malloc((size_t)d * sizeof(float));
    }
    char *p = sp + 1, *end;
    for (int k = 0; k < L->wv->dim; k++) {
        errno = 0;
        (*v)[k] = strtof(p, &end);
        if (end == p)
            return avs_err_set(err, "%s:%lld: word \"%s\" has %d numbers, expected %d (vector "
                               "files need one dimension throughout)", path, (long long)lineno,
                               line, k, L->wv->dim);
        p = end;
    }
    while (*p == ' ' || *p == '\r')
        p++;
    if (*p)
        return avs_err_set(err, "%s:%lld: word \"%s\" has more than %d numbers", path,
                           (long long)lineno, line, L->wv->dim);
    keep_word(L, line, *v);
    return 0;
}

static int load_text(struct loader *L, FILE *f, char *line, size_t cap, int64_t lineno,
                     const char *path, struct avs_err *err)
{
    float *v = L->wv->dim > 0 ? avs_malloc((size_t)L->wv->dim * sizeof(float)) : NULL;
    ssize_t len;
    int rc = 0;
    do {
        len = (ssize_t)strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len > 0 && (rc = text_line(L, line, &v, path, lineno, err)))
            break;
        lineno++;
    } while ((len = getline(&line, &cap, f)) >= 0);
    free(line);
    free(v);
    return rc;
}

static int load_binary(struct loader *L, FILE *f, int64_t count, const char *path,
                       struct avs_err *err)
{
    int dim = L->wv->dim, rc = 0;
    float *v = avs_malloc((size_t)dim * sizeof(float));
    char word[4096];
    for (int64_t i = 0; i < count; i++) {
        int c, len = 0;
        while ((c = fgetc(f)) == '\n' || c == '\r')
            ;
        while (c != EOF && c != ' ' && len < (int)sizeof word - 1) {
            word[len++] = (char)c;
            c = fgetc(f);
        }
        word[len] = 0;
        if (c != ' ' || fread(v, sizeof(float), (size_t)dim, f) != (size_t)dim) {
            rc = avs_err_set(err, "%s: word2vec binary file ends inside entry %lld of %lld "
                             "(truncated download?)", path, (long long)i + 1, (long long)count);
            break;
        }
        keep_word(L, word, v);
    }
    free(v);
    return rc;
}

/* Header "N D": word2vec. The rest of the first entry tells text from binary. */
static int is_text_entry(FILE *f)
{
    long pos = ftell(f);
    int c, text = 1, seen_space = 0, n = 0;
    while ((c = fgetc(f)) != EOF && c != '\n' && n++ < 1 << 16) {
        if (c == ' ')
            seen_space = 1;
        else if (seen_space && !(isdigit(c) || strchr("+-.eE \r", c)))
            text = 0;
    }
    fseek(f, pos, SEEK_SET);
    return text && seen_space;
}

int avs_wordvec_load(struct avs_wordvec **out, const char *path, const struct avs_wordset *keep,
                     struct avs_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return avs_err_set(err, "%s: cannot open word vectors: %s", path, strerror(errno));
    struct avs_wordvec *wv = avs_calloc(1, sizeof *wv);
    struct loader L = {wv, keep, 0};
    char *line = NULL;
    size_t cap = 0;
    int rc = -1;
    long long hn, hd;
    char tail;
    if (getline(&line, &cap, f) < 0) {
        avs_err_set(err, "%s: empty word vector file", path);
        goto out;
    }
    if (sscanf(line, "%lld %lld %c", &hn, &hd, &tail) == 2) {
        if (hn < 0 || hd < 1 || hd > 100000) {
            avs_err_set(err, "%s: word2vec header says %lld words of %lld dims", path, hn, hd);
            goto out;
        }
        wv->dim = (int)hd;
        if (is_text_entry(f)) {
            wv->format = "word2vec-text";
            char *first = NULL;
            size_t fcap = 0;
            if (getline(&first, &fcap, f) < 0) {
                free(first);
                rc = 0;
                goto out;
            }
            rc = load_text(&L, f, first, fcap, 2, path, err);
        } else {
            wv->format = "word2vec-binary";
            rc = load_binary(&L, f, hn, path, err);
        }
    } else {
        wv->format = "glove-text";
        rc = load_text(&L, f, line, cap, 1, path, err);
        line = NULL;
    }
    if (!rc && wv->n_file == 0)
        rc = avs_err_set(err, "%s: no word vectors in the file", path);
out:
    free(line);
    fclose(f);
    if (rc) {
        avs_wordvec_free(&wv);
        return -1;
    }
    table_build(&wv->slot, &wv->nslot, wv->words, wv->n);
    *out = wv;
    return 0;
}

void avs_wordvec_free(struct avs_wordvec **pwv)
{
    struct avs_wordvec *wv = *pwv;
    if (!wv)
        return;
    for (int64_t i = 0; i < wv->n; i++)
        free(wv->words[i]);
    free(wv->words);
    free(wv->vec);
    free(wv->slot);
    free(wv);
    *pwv = NULL;
}

const float *avs_wordvec_find(const struct avs_wordvec *wv, const char *word)
{
    int64_t i = table_find(wv->slot, wv->nslot, wv->words, word);
    if (i < 0) {
        char *l = lower_dup(word);
        i = table_find(wv->slot, wv->nslot, wv->words, l);
        free(l);
    }
    return i < 0 ? NULL : wv->vec + i * wv->dim;
}

/* ---- similarity ---- */

int avs_labelsim_vector(double *out, const struct avs_wordvec *wv, const char *label)
{
    char **t;
    int n = avs_labelsim_tokenize(label, &t), found = 0;
    for (int d = 0; d < wv->dim; d++)
        out[d] = 0;
    for (int k = 0; k < n; k++) {
        const float *v = avs_wordvec_find(wv, t[k]);
        if (!v)
            continue;
        found++;
        for (int d = 0; d < wv->dim; d++)
            out[d] += v[d];
    }
    for (int d = 0; n && d < wv->dim; d++)
        out[d] /= n;
    avs_labelsim_tokens_free(&t, n);
    return found;
}

/* Lower-cased tokens joined by single spaces: the "token string" compared for identity. */
static char *token_key(const char *label)
{
    char **t;
    int n = avs_labelsim_tokenize(label, &t);
    size_t len = 1;
    for (int k = 0; k < n; k++)
        len += strlen(t[k]) + 1;
    char *s = avs_malloc(len), *p = s;
    *p = 0;
    for (int k = 0; k < n; k++)
        p += sprintf(p, k ? " %s" : "%s", t[k]);
    avs_labelsim_tokens_free(&t, n);
    char *l = lower_dup(s);
    free(s);
    return l;
}

static double *unit_vectors(const struct avs_wordvec *wv, const char *const *lab, int n)
{
    int D = wv->dim;
    double *u = avs_malloc((size_t)n * D * sizeof(double));
    for (int i = 0; i < n; i++) {
        double *v = u + (size_t)i * D, nn = 0;
        avs_labelsim_vector(v, wv, lab[i]);
        for (int d = 0; d < D; d++)
            nn += v[d] * v[d];
        nn = sqrt(nn);
        for (int d = 0; d < D; d++)
            v[d] = nn > 0 ? v[d] / nn : 0.0; /* a zero vector stays zero: cosine 0 */
    }
    return u;
}

void avs_labelsim_build(float *S, const struct avs_wordvec *wv, const char *const *a, int na,
                        const char *const *b, int nb)
{
    int D = wv->dim;
    double *ua = unit_vectors(wv, a, na), *ub = unit_vectors(wv, b, nb);
    char **ka = avs_malloc((size_t)(na ? na : 1) * sizeof *ka), **kb = avs_malloc((size_t)(nb ? nb : 1) * sizeof *kb);
    for (int i = 0; i < na; i++)
        ka[i] = token_key(a[i]);
    for (int j = 0; j < nb; j++)
        kb[j] = token_key(b[j]);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            double s = 0;
            for (int d = 0; d < D; d++)
                s += ua[(size_t)i * D + d] * ub[(size_t)j * D + d];
            S[(size_t)i * nb + j] = (ka[i][0] && !strcmp(ka[i], kb[j])) ? 1.0f : (float)s;
        }
    for (int i = 0; i < na; i++)
        free(ka[i]);
    for (int j = 0; j < nb; j++)
        free(kb[j]);
    free(ka), free(kb), free(ua), free(ub);
}

/* ---- class lists ---- */

/* One CSV field starting at *p (quoted with "" escapes, or bare); advances past the comma. */
static char *csv_field(const char **p)
{
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = avs_malloc(cap);
    if (*s == '"') {
        for (s++; *s; s++) {
            if (*s == '"' && s[1] == '"')
                out[n++] = '"', s++;
            else if (*s == '"') {
                s++;
                break;
            } else
                out[n++] = *s;
        }
    } else
        while (*s && *s != ',' && *s != '\n' && *s != '\r')
            out[n++] = *s++;
    out[n] = 0;
    while (*s && *s != ',')
        s++;
    *p = *s == ',' ? s + 1 : s;
    return out;
}

int avs_labels_read(const char *path, char ***labels, int *n, struct avs_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return avs_err_set(err, "%s: cannot open class list: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int cnt = 0, cap_l = 0, csv = -1, lineno = 0, rc = 0;
    char **l = NULL;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (csv < 0) {
            csv = !strncmp(line, "index,mid,display_name", 22);
            if (csv)
                continue;
        }
        if (!len && !csv)
            continue;
        char *name;
        if (csv) {
            const char *p = line;
            char *idx = csv_field(&p), *mid = csv_field(&p), *end;
            long k = strtol(idx, &end, 10);
            int bad = end == idx || k != cnt;
            free(idx), free(mid);
            if (bad) {
                rc = avs_err_set(err, "%s:%d: expected row index %d (rows must be in index order)",
                                 path, lineno, cnt);
                break;
            }
            name = csv_field(&p);
        } else
            name = avs_strdup(line);
        if (cnt == cap_l)
            l = avs_realloc(l, (size_t)(cap_l = cap_l ? 2 * cap_l : 64) * sizeof *l);
        l[cnt++] = name;
    }
    free(line);
    fclose(f);
    if (!rc && !cnt)
        rc = avs_err_set(err, "%s: no class names", path);
    if (rc) {
        avs_labels_free(&l, cnt);
        return -1;
    }
    *labels = l;
    *n = cnt;
    return 0;
}

void avs_labels_free(char ***labels, int n)
{
    for (int i = 0; *labels && i < n; i++)
        free((*labels)[i]);
    avs_freep(labels);
}
