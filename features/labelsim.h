/* features/labelsim.h: word vectors and the label similarity S of C3N (DESIGN §5).
 *
 *   struct avs_wordvec *wv;
 *   char **vis, **aud; int nv, na;
 *   avs_labels_read("features/data/imagenet1k_classes.txt", &vis, &nv, &err);
 *   avs_labels_read("features/data/audioset_class_labels_indices.csv", &aud, &na, &err);
 *   avs_wordvec_load(&wv, "glove.6B.300d.txt", &filter, &err);   filter: NULL = every word
 *   float *S = malloc(nv * na * sizeof(float));                   [nv, na], row-major
 *   avs_labelsim_build(S, wv, vis, nv, aud, na);
 *
 * Word vector files (format detected from the content):
 *   GloVe text      "word v1 ... vD\n" per line, D from the first line
 *   word2vec text   "N D\n" header, then lines as GloVe
 *   word2vec binary "N D\n" header, then per word: "word " + D little-endian float32 (+ '\n')
 * Tokens: maximal runs of letters/digits (bytes >= 0x80 count as letters, so UTF-8 words stay
 * whole), and every other non-space byte alone (punctuation: "Male speech, man speaking" ->
 * Male|speech|,|man|speaking). A token is looked up as written, then lower-cased.
 * Label vector = sum of its tokens' vectors / number of tokens (unknown tokens count as zero
 * vectors). S[i][j] = 1 when the two labels' lower-cased token strings are identical, else the
 * cosine of their label vectors, 0 when either vector is zero. Computed in double, stored float.
 */
#ifndef AVS_FEATURES_LABELSIM_H
#define AVS_FEATURES_LABELSIM_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"

struct avs_wordvec {
    int dim;
    int64_t n;       /* words kept */
    char **words;    /* [n] */
    float *vec;      /* [n, dim] */
    int64_t *slot;   /* [nslot] open-addressing table of word indices, -1 empty */
    int64_t nslot;   /* power of two */
    int64_t n_file;  /* words in the file (kept or not) */
    const char *format; /* "glove-text", "word2vec-text" or "word2vec-binary" */
};

/* Words to keep while loading (NULL: all): e.g. every token of the class lists, so that a
 * 1 GB vector file costs only the few thousand vectors the labels use. */
struct avs_wordset {
    char **words;    /* [n] owned */
    int64_t n;
    int64_t *slot;
    int64_t nslot;
};

int avs_wordvec_load(struct avs_wordvec **out, const char *path, const struct avs_wordset *keep,
                     struct avs_err *err);
void avs_wordvec_free(struct avs_wordvec **wv);
/* Vector [dim] of a word as written, else lower-cased; NULL if unknown. */
const float *avs_wordvec_find(const struct avs_wordvec *wv, const char *word);

/* Tokens of a label (see above): *tokens malloc'd array of malloc'd strings; returns count. */
int avs_labelsim_tokenize(const char *label, char ***tokens);
void avs_labelsim_tokens_free(char ***tokens, int n);
/* The set of all tokens of the given label lists, as written and lower-cased. */
void avs_wordset_from_labels(struct avs_wordset *set, const char *const *a, int na,
                             const char *const *b, int nb);
void avs_wordset_free(struct avs_wordset *set);

/* Label vector [dim] (double); returns the number of tokens found in wv. */
int avs_labelsim_vector(double *out, const struct avs_wordvec *wv, const char *label);
/* S [na, nb] row-major. */
void avs_labelsim_build(float *S, const struct avs_wordvec *wv, const char *const *a, int na,
                        const char *const *b, int nb);

/* S in the index (table label_similarity): keyed by the vector file's content hash (murmur3-128,
 * as ingest hashes clips), with its base name; storing again for the same hash replaces the row.
 * *id (may be NULL) gets the row id. */
int avs_labelsim_store(sqlite3 *db, const char *vectors_path, const float *S, int rows, int cols,
                       int64_t *id, struct avs_err *err);
/* Load S [rows, cols] (malloc'd) for a vector-file hash, or the newest when hash is NULL. */
int avs_labelsim_load(sqlite3 *db, const char *hash, float **S, int *rows, int *cols,
                      struct avs_err *err);

/* Class names, one per entry: an AudioSet class_labels_indices.csv (header
 * "index,mid,display_name", quoted names; rows must be in index order) or any other text file
 * with one label per line (ImageNet's classes.txt). */
int avs_labels_read(const char *path, char ***labels, int *n, struct avs_err *err);
void avs_labels_free(char ***labels, int n);

#endif
