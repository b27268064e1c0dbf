/* bench/panns_full.c: our PANNs front end + CNN14 on a wave file of 1-second chunks, for
 * bench/panns_official.sh (the official code at full width is the reference there).
 *   panns_full W.safetensors IO.safetensors OUT.safetensors
 * IO holds "wave" [n,16000]; OUT gets "logmel" [n,101,64], "embedding" [n,E], "clipwise" [n,K]
 * and the seconds the forward took ("seconds" [1]). */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/safetensors.h"
#include "features/panns_mel.h"
#include "model/panns.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: panns_full W.safetensors IO.safetensors OUT.safetensors\n");
        return 1;
    }
    struct avs_err err;
    struct avs_st_file *io = NULL;
    struct avs_panns m;
    struct avs_panns_mel fe;
    if (avs_st_open(argv[2], &io, &err) || avs_panns_load(&m, argv[1], &err) ||
        avs_panns_mel_init(&fe, &err)) {
        fprintf(stderr, "panns_full: %s\n", err.msg);
        return 3;
    }
    const struct avs_st_tensor *t = avs_st_find(io, "wave");
    if (!t || t->ndim != 2 || t->shape[1] != 16000) {
        fprintf(stderr, "panns_full: %s: need \"wave\" [n,16000]\n", argv[2]);
        return 3;
    }
    int n = (int)t->shape[0], T = AVS_PANNS_MEL_FRAMES;
    float *wave = malloc((size_t)n * 16000 * sizeof(float));
    float *lm = malloc((size_t)n * AVS_PANNS_MEL_EXAMPLE * sizeof(float));
    if (avs_st_read_f32(t, wave, (size_t)n * 16000, &err)) {
        fprintf(stderr, "panns_full: %s\n", err.msg);
        return 3;
    }
    avs_panns_mel_seconds(&fe, lm, wave, n);
    float *xd = avs_dev_from_host(lm, (size_t)n * AVS_PANNS_MEL_EXAMPLE);
    float *ws = avs_dev_alloc(avs_panns_ws(&m, n, T), "ws");
    float *ed = avs_dev_alloc((size_t)n * m.emb, "emb"), *cd = avs_dev_alloc((size_t)n * m.classes, "clip");
    double t0 = avs_now();
    avs_panns_fwd(&m, ed, cd, xd, n, T, ws);
    float *e = avs_host_from_dev(ed, (size_t)n * m.emb), *c = avs_host_from_dev(cd, (size_t)n * m.classes);
    float sec = (float)(avs_now() - t0);
    struct avs_st_writer *w = avs_st_writer_new();
    int ls[3] = {n, T, 64}, es[2] = {n, m.emb}, cs[2] = {n, m.classes}, ss[1] = {1};
    avs_st_writer_add_f32(w, "logmel", 3, ls, lm);
    avs_st_writer_add_f32(w, "embedding", 2, es, e);
    avs_st_writer_add_f32(w, "clipwise", 2, cs, c);
    avs_st_writer_add_f32(w, "seconds", 1, ss, &sec);
    int rc = avs_st_writer_save(w, argv[3], &err);
    if (rc)
        fprintf(stderr, "panns_full: %s\n", err.msg);
    avs_st_writer_free(&w);
    avs_dev_free(&xd), avs_dev_free(&ws), avs_dev_free(&ed), avs_dev_free(&cd);
    free(wave), free(lm), free(e), free(c);
    avs_panns_mel_free(&fe);
    avs_panns_free(&m);
    avs_st_close(&io);
    return rc ? 3 : 0;
}
