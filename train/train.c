/* train/train.c: the avs-train loop (see train.h). */
#include "train/train.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "core/progress.h"
#include "dist/ranks.h"
#include "dist/session.h"
#include "eval/eval.h"
#include "backend/ops.h"
#include "model/c3n.h"
#include "train/ckpt.h"
#include "train/data.h"
#include "train/finetune.h"
#include "train/runs.h"
#include "train/semantic.h"
#include "train/syncbn.h"

static volatile sig_atomic_t stop_signal;

void avs_train_request_stop(int signo)
{
    stop_signal = signo ? signo : -1;
}

int avs_train_stop_signal(void)
{
    return stop_signal > 0 ? stop_signal : 0;
}

void avs_train_opts_default(struct avs_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->root = "avsdata";
    o->subset = "s4";
    o->mode = "frozen";
    o->sw = (struct avs_switches){1, 1, 0};
    o->epochs = 15;
    o->batch = 4;
    o->lr = 1e-4;
    o->seed = 1;
    o->width = 256;
}

double avs_train_lr(const char *subset, double lr, int e, int E)
{
    if (strcmp(subset, "s4") || E <= 5)
        return lr;
    int span = E - 5;
    double f = e < span ? (double)e / span : 1.0;
    return lr - (lr - lr / 10) * f;
}

/* ---- randomness: pure functions of (seed, epoch, index) ---- */

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t z = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL) * 0xbf58476d1ce4e5b9ULL ^
                 (c + 0x1b873593ULL) * 0x94d049bb133111ebULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void epoch_order(int *order, int n, uint64_t seed, int epoch)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(mix(seed, (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

/* ---- the trainer ---- */

struct trainer {
    const struct avs_train_opts *o;
    sqlite3 *db;
    int64_t run_id;
    char *config, *dir, *last, *best;
    struct avs_tset tr, va;
    struct avs_c3n m;
    struct avs_tbatch b;
    float *dl, *sl, *sm; /* loss buffers (device) */
    float *vlog;         /* host: one batch's logits, for validation */
    struct avs_finetune *ft; /* finetune mode: the backbone being trained, else NULL */
    float *dstage[4];        /* finetune: [B,C_s,H_s,W_s] gradients of the stage maps */
    int use_ccv;             /* avs_finetune_batch's: 1 CC-V, 0 CC, -1 no CCAM */
    long saved_step;         /* adam step named by last.safetensors on disk, -1: none yet */
    struct avs_train_state st;
    double last_loss;
    int steps_per_epoch;
    struct avs_progress prog;
    int rank, ranks, nloc;   /* this rank, the world size, videos per rank (batch / ranks) */
    struct avs_syncbn *sbn;  /* SyncBN across ranks (ranks > 1), else NULL */
    double step_s;           /* seconds inside training steps (this process) */
    int inserted;            /* rank 0 inserted the run's row in this call (a new run) */
};

static int open_data(struct trainer *t, struct avs_err *err)
{
    const struct avs_train_opts *o = t->o;
    if (avs_tset_open_cache(&t->tr, t->db, o->root, o->features, err) ||
        avs_tset_open_cache(&t->va, t->db, o->root, t->tr.set_name, err))
        return -1;
    /* S4: frame 1 only; MS3 and AVSS: every frame with a mask row (AVSS v1s train: frame 1) */
    enum avs_tset_loss l = !strcmp(o->subset, "s4") ? AVS_TSET_LOSS_FIRST : AVS_TSET_LOSS_ALL;
    if (avs_tset_load(&t->tr, t->db, o->root, o->subset, "train", l, err) ||
        avs_tset_load(&t->va, t->db, o->root, o->subset, "val", AVS_TSET_LOSS_ALL, err))
        return -1;
    int masked = 0;
    for (int i = 0; i < t->tr.n; i++)
        for (int k = 0; k < t->tr.T; k++)
            masked += t->tr.v[i].mask[k] != NULL;
    if (!t->tr.n || !masked)
        return avs_err_set(err, "no %s training videos with %s and ground-truth masks in feature set "
                           "\"%s\" (%d without features, %d shorter than %d s): ingest the dataset "
                           "with its masks (avs-ingest --avsbench) and run avs-features",
                           o->subset, t->tr.n ? "features" : "5 seconds of features",
                           t->tr.set_name, t->tr.n_nofeat, t->tr.n_short, t->tr.T);
    if (!strcmp(o->mode, "finetune") &&
        avs_finetune_open(&t->ft, t->db, o->root, &t->tr, &o->files, err))
        return avs_err_wrap(err, "finetune mode: the backbone of feature set \"%s\"", t->tr.set_name);
    if (t->tr.n_nofeat || t->tr.n_short)
        avs_log_warn("%d train videos skipped (%d without features in \"%s\", %d shorter than %d s)",
                     t->tr.n_nofeat + t->tr.n_short, t->tr.n_nofeat, t->tr.set_name, t->tr.n_short, t->tr.T);
    return 0;
}

static void alloc_model(struct trainer *t)
{
    struct avs_c3n_cfg cfg;
    avs_tset_cfg(&t->tr, t->o->width, &cfg);
    cfg.avsbench = t->o->avsbench;
    cfg.av_match = t->o->av_match > 0;
    avs_c3n_init(&t->m, &cfg, &t->o->sw, t->nloc);
    avs_tbatch_init(&t->b, &t->tr, t->nloc);
    if (t->ranks > 1)
        t->sbn = avs_syncbn_new(&t->m.head);
    size_t nl = (size_t)t->m.head.B * t->tr.H * t->tr.W, K = (size_t)cfg.K;
    t->dl = avs_dev_alloc(K * nl, "the loss gradient");
    t->sl = avs_dev_alloc(2 * K * nl, "the loss scratch");
    t->sm = avs_dev_alloc(nl, "the loss scratch");
    t->vlog = avs_malloc(K * nl * sizeof(float));
    t->use_ccv = t->o->sw.cc || t->o->sw.ccv ? t->o->sw.ccv : -1;
    for (int s = 0; t->ft && s < 4; s++)
        t->dstage[s] = avs_dev_alloc((size_t)t->m.head.B * cfg.C[s] * cfg.H[s] * cfg.W[s], "dstage");
}

static void free_trainer(struct trainer *t)
{
    avs_syncbn_free(&t->sbn);
    if (t->m.head.np)
        avs_c3n_free(&t->m);
    avs_tbatch_free(&t->b);
    avs_tset_free(&t->tr);
    avs_tset_free(&t->va);
    avs_dev_free(&t->dl), avs_dev_free(&t->sl), avs_dev_free(&t->sm);
    free(t->vlog);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&t->dstage[s]);
    avs_finetune_close(&t->ft);
    free(t->config), free(t->dir), free(t->last), free(t->best);
}

/* A NaN/Inf loss (x NULL) or device tensor x[n] (its mean, one reduction: any NaN/Inf makes it
 * non-finite) stops training before the update: the model in memory is never saved, the last
 * checkpoint on disk stays the last good one. */
static int diverged(struct trainer *t, const char *what, const float *x, size_t n, double loss,
                    struct avs_err *err)
{
    float m = 0;
    if (x) {
        AVS_ASSERT(n > 0 && n < (size_t)INT32_MAX);
        avs_ops()->mean_fwd(t->sm, x, 1, (int)n);
        avs_dev_download(&m, t->sm, 1);
    }
    if (!avs_ranks_any(!(isfinite(loss) && isfinite(m))))
        return 0;
    return avs_err_set(err, "training diverged at epoch %d step %d (optimiser step %ld): %s is "
                       "NaN/Inf (loss %g); stopped before the update. The last good checkpoint "
                       "%s (optimiser step %ld) is kept: start a new --run with a lower --lr (this "
                       "one: %g), or check the feature set", t->st.epoch + 1, t->st.step + 1,
                       t->m.head.adam_step + 1, what, loss, t->last, t->saved_step, t->o->lr);
}

/* The step's loss over the global batch: each rank's mean over its counted frames (those with
 * a mask the loss uses) weighted by its share of the counted frames; this rank's loss gradient
 * is scaled by the same share, so that the gradients summed over the ranks are the gradient
 * of the global batch's loss. One rank: unchanged. */
static double global_loss(struct trainer *t, double loss)
{
    if (t->ranks == 1)
        return loss;
    double c[2] = {0, 0};
    for (int j = 0; j < t->m.head.B; j++)
        c[1] += t->b.frame_mask[j] != 0;
    c[0] = loss * c[1];
    double mine = c[1];
    avs_ranks_sum_f64(c, 2);
    size_t n = (size_t)t->m.head.B * t->m.head.cfg.K * t->tr.H * t->tr.W;
    float share = c[1] > 0 ? (float)(mine / c[1]) : 0.0f;
    if (mine == 0)
        avs_ops()->zero(t->dl, n);
    else if (share != 1.0f)
        avs_ops()->axpy(t->dl, share - 1.0f, t->dl, n); /* dl *= share */
    return c[1] > 0 ? c[0] / c[1] : 0;
}

/* One optimisation step over the global batch starting at position `step` of the epoch's
 * order: this rank takes videos rank*nloc .. rank*nloc+nloc-1 of it. */
static int train_step(struct trainer *t, const int *order, int epoch, int step, double lr,
                      double *loss, struct avs_err *err)
{
    int nb = t->o->batch, n = t->tr.n, idx[64], flip[64];
    for (int j = 0; j < t->nloc; j++) {
        idx[j] = order[(step * nb + t->rank * t->nloc + j) % n];
        flip[j] = (int)(mix(t->o->seed ^ 0xf11bULL, (uint64_t)epoch, (uint64_t)idx[j]) & 1);
    }
    int rc = t->ft ? avs_finetune_batch(t->ft, &t->tr, idx, flip, mix(t->o->seed ^ 0xc01ULL, (uint64_t)epoch, 0),
                                        1, t->use_ccv, &t->b, err)
                   : avs_tset_batch(&t->tr, idx, flip, &t->b, t->o->sw.ccv, err);
    if (avs_ranks_failed(rc, err))
        return -1;
    avs_c3n_head_zero_grad(&t->m.head);
    avs_c3n_fwd(&t->m, (const float *const *)t->b.stage, (const float *const *)t->b.gc, t->b.audio, 1);
    *loss = t->tr.avss ? avs_c3n_head_loss_ce(&t->m.head, t->b.mask, t->b.frame_mask, t->dl, t->sl, t->sm)
                       : avs_c3n_head_loss(&t->m.head, t->b.mask, t->b.frame_mask, t->dl, t->sl, t->sm);
    *loss = global_loss(t, *loss);
    if (t->o->av_match > 0) { /* a sum over frames: the ranks' sums add up, as do their gradients */
        double avm = avs_c3n_head_avmatch(&t->m.head, (float)t->o->av_match, t->dl);
        if (t->ranks > 1)
            avs_ranks_sum_f64(&avm, 1);
        *loss += t->o->av_match * avm;
    }
    if (t->ft)
        for (int s = 0; s < 4; s++)
            avs_ops()->zero(t->dstage[s], (size_t)t->m.head.B * t->tr.C[s] * t->tr.Hs[s] * t->tr.Ws[s]);
    if (diverged(t, "loss", NULL, 0, *loss, err))
        return -1;
    /* finetune: dstage = d loss / d stage maps, through CCAM (C3N) or straight from the head's
     * inputs (no CCAM: the baseline's neck, model/c3n_neck.c, or C3N's ASPP) */
    avs_c3n_bwd(&t->m, t->dl, t->ft ? t->dstage : NULL);
    const struct avs_c3n_head *h = &t->m.head;
    avs_ranks_sum_dev(h->grads.arena.base, h->grads.arena.used); /* the gradient average */
    if (diverged(t, "gradient of the head", h->grads.arena.base, h->grads.arena.used, *loss, err))
        return -1;
    for (int s = 0; t->ft && s < 4; s++)
        if (diverged(t, "gradient into the backbone", t->dstage[s],
                     (size_t)h->B * t->tr.C[s] * t->tr.Hs[s] * t->tr.Ws[s], *loss, err))
            return -1;
    avs_c3n_head_adam(&t->m.head, lr);
    if (t->ft) {
        avs_finetune_grads(t->ft, t->dstage);
        struct avs_tensor_set *g = avs_finetune_grad_set(t->ft);
        avs_ranks_sum_dev(g->arena.base, g->arena.used);
        avs_finetune_adam(t->ft, lr);
    }
    return 0;
}

/* The model on validation videos v0.. (a batch; the last repeated to fill it): logits in
 * t->vlog [B,K,H*W]. */
static int val_batch(struct trainer *t, int v0, struct avs_err *err)
{
    const struct avs_tset *va = &t->va;
    int vi[64];
    for (int j = 0; j < t->nloc; j++)
        vi[j] = v0 + j < va->n ? v0 + j : va->n - 1;
    if (t->ft ? avs_finetune_batch(t->ft, va, vi, NULL, 0, 0, t->use_ccv, &t->b, err)
              : avs_tset_batch(va, vi, NULL, &t->b, t->o->sw.ccv, err))
        return -1;
    avs_c3n_fwd(&t->m, (const float *const *)t->b.stage, (const float *const *)t->b.gc, t->b.audio, 0);
    avs_dev_download(t->vlog, t->m.head.logits,
                     (size_t)t->m.head.B * t->m.head.cfg.K * va->H * va->W);
    return 0;
}

/* AVSS: the official mIoU and F (train/semantic.h) over the labelled real frames. */
static int validate_avss(struct trainer *t, double *miou, double *f, struct avs_err *err)
{
    const struct avs_tset *va = &t->va;
    size_t HW = (size_t)va->H * va->W, fr = (size_t)va->K * HW;
    struct avs_semantic_acc a;
    avs_semantic_acc_init(&a, va->K);
    int rc = 0;
    for (int v0 = 0; v0 < va->n && rc == 0; v0 += t->nloc) {
        rc = val_batch(t, v0, err);
        for (int j = 0; j < t->nloc && v0 + j < va->n && rc == 0; j++)
            for (int k = 0; k < va->v[v0 + j].n; k++)
                if (va->v[v0 + j].mask[k])
                    avs_semantic_frame(&a, t->vlog + ((size_t)j * va->T + k) * fr,
                                       va->v[v0 + j].mask[k], HW);
    }
    avs_semantic_result(&a, miou, f);
    if (!a.frames)
        *miou = -1;
    avs_semantic_acc_free(&a);
    return rc;
}

/* Validation mIoU and F (evaluator's code: per-frame counts, then its aggregation). */
static int validate(struct trainer *t, double *miou, double *f, struct avs_err *err)
{
    if (t->va.avss)
        return validate_avss(t, miou, f, err);
    const struct avs_tset *va = &t->va;
    int nb = t->nloc, nf = 0;
    size_t HW = (size_t)va->H * va->W;
    struct avs_eval_set es = {0};
    es.frames = avs_calloc((size_t)va->n * AVS_T + 1, sizeof *es.frames);
    struct avs_eval_counts *c = avs_calloc((size_t)va->n * AVS_T + 1, sizeof *c);
    int *idx = avs_calloc((size_t)va->n * AVS_T + 1, sizeof *idx), rc = -1;
    for (int v0 = 0; v0 < va->n; v0 += nb) {
        if (val_batch(t, v0, err))
            goto out;
        for (int j = 0; j < nb && v0 + j < va->n; j++)
            for (int k = 0; k < AVS_T; k++) {
                const uint8_t *gt = va->v[v0 + j].mask[k];
                if (!gt)
                    continue;
                avs_eval_score_logits(gt, t->vlog + ((size_t)j * AVS_T + k) * HW,
                                      (int64_t)HW, &c[nf]);
                es.frames[nf].video = v0 + j;
                es.frames[nf].k = k + 1;
                idx[nf] = nf;
                nf++;
            }
    }
    es.n_frames = nf;
    struct avs_eval_summary s;
    avs_eval_aggregate(&es, c, idx, nf, 0, &s);
    *miou = nf ? s.miou : -1, *f = s.fscore;
    rc = 0;
out:
    free(es.frames), free(c), free(idx);
    return rc;
}

static char *backbone_path(const struct trainer *t, long step)
{
    char *nm = avs_sprintf("backbone-%ld.safetensors", step), *p = avs_fs_join(t->dir, nm);
    free(nm);
    return p;
}

/* finetune: backbone-<step> first, then last (naming the step), then older backbone files go. */
static int save_last(struct trainer *t, struct avs_err *err)
{
    long step = t->m.head.adam_step, prev = t->saved_step;
    if (t->rank != 0) { /* rank 0 writes; the others hold the same model */
        t->saved_step = step;
        return 0;
    }
    if (t->ft) {
        char *p = backbone_path(t, step), *nm = avs_sprintf("backbone-%ld.safetensors", step);
        int rc = avs_run_check_file(t->o->root, t->o->run, nm, err) ||
                 avs_finetune_save(t->ft, p, 1, err);
        free(nm);
        free(p);
        if (rc)
            return -1;
    }
    if (avs_run_check_file(t->o->root, t->o->run, "last.safetensors", err) ||
        avs_ckpt_save(t->last, &t->m.head, t->config, &t->st, err))
        return -1;
    t->saved_step = step;
    if (t->ft && prev >= 0 && prev != step) {
        char *p = backbone_path(t, prev);
        remove(p);
        free(p);
    }
    return 0;
}

/* Rank 0 validates, records and writes; the others wait for its outcome and its state. */
static int end_epoch_rank0(struct trainer *t, double t_train, struct avs_err *err);

static int end_epoch(struct trainer *t, double t_train, struct avs_err *err)
{
    int rc = 0;
    if (t->rank == 0)
        rc = end_epoch_rank0(t, t_train, err);
    else
        t->st.epoch++, t->st.step = 0, t->st.loss_sum = 0, t->st.loss_n = 0, t->st.seconds = 0;
    if (avs_ranks_failed(rc, err))
        return -1;
    avs_ranks_bcast(&t->st, sizeof t->st, 0);
    avs_ranks_bcast(&t->last_loss, sizeof t->last_loss, 0);
    return 0;
}

static int end_epoch_rank0(struct trainer *t, double t_train, struct avs_err *err)
{
    double t0 = avs_now(), miou = -1, f = 0;
    int e = t->st.epoch;
    if (t->va.n && validate(t, &miou, &f, err))
        return -1;
    double loss = t->st.loss_n ? t->st.loss_sum / t->st.loss_n : 0;
    t->last_loss = loss;
    double secs = t_train + (avs_now() - t0);
    double fps = t_train > 0 ? (double)t->steps_per_epoch * t->o->batch * t->tr.T / t_train : 0;
    int best = miou >= 0 && miou > t->st.best_miou;
    if (avs_run_record_epoch(t->db, t->run_id, e + 1, loss, miou, f, secs, fps, err))
        return -1;
    if (best) {
        t->st.best_miou = miou, t->st.best_epoch = e + 1;
        char *bb = avs_fs_join(t->dir, "backbone_best.safetensors");
        int rc = avs_run_check_file(t->o->root, t->o->run, "backbone_best.safetensors", err) ||
                 avs_run_check_file(t->o->root, t->o->run, "best.safetensors", err);
        if (rc == 0 && t->ft)
            rc = avs_finetune_save(t->ft, bb, 0, err);
        free(bb);
        if (rc || avs_ckpt_save(t->best, &t->m.head, t->config, NULL, err))
            return -1;
    }
    if (t->o->verbose) {
        printf("epoch %d/%d: loss %.4f  val mIoU %.4f  F %.4f%s  %.1f s  %.1f frames/s\n", e + 1,
               t->o->epochs, loss, miou, f, best ? "  (best)" : "", secs, fps);
        fflush(stdout);
    }
    t->st.epoch++, t->st.step = 0, t->st.loss_sum = 0, t->st.loss_n = 0, t->st.seconds = 0;
    return save_last(t, err);
}

/* --alpha/--beta must be the feature set's exponents (its targets CC were made with them):
 * checked before the run's folder and lock are made. A set that does not open is left to
 * open_data's message. */
static int check_c3im(const struct avs_train_opts *o, sqlite3 *db, struct avs_err *err)
{
    if (!(o->given & (AVS_TRAIN_GIVEN_ALPHA | AVS_TRAIN_GIVEN_BETA)))
        return 0;
    struct avs_tset t;
    struct avs_err e2;
    if (avs_tset_open_cache(&t, db, o->root, o->features, &e2)) {
        avs_tset_free(&t);
        return 0;
    }
    int rc = avs_feat_c3im_check(t.set_name, t.set_config, !!(o->given & AVS_TRAIN_GIVEN_ALPHA),
                                 o->alpha, !!(o->given & AVS_TRAIN_GIVEN_BETA), o->beta,
                                 "avs-train", err);
    avs_tset_free(&t);
    return rc;
}

/* --av-match: AVSBench's MS3 baseline alone has the matching loss (its S4 script trains with
 * BCE alone; C3N's loss is BCE + Dice). */
static int check_av_match(const struct avs_train_opts *o, struct avs_err *err)
{
    if (!(o->av_match >= 0 && isfinite(o->av_match)))
        return avs_err_set(err, "--av-match %g: need a number >= 0", o->av_match);
    if ((o->given & AVS_TRAIN_GIVEN_AV_MATCH) && !o->avsbench)
        return avs_err_set(err, "--av-match is the audio-visual matching loss of AVSBench's "
                           "baseline (--model tpavi); C3N trains with BCE + Dice: leave "
                           "--av-match out");
    if (o->av_match > 0 && strcmp(o->subset, "ms3"))
        return avs_err_set(err, "--av-match %g: AVSBench turns its audio-visual matching loss "
                           "on for MS3 only (its %s training is BCE alone): leave --av-match out",
                           o->av_match, o->subset);
    return 0;
}

static int check_opts(const struct avs_train_opts *o, struct avs_err *err)
{
    if (!o->run || !*o->run)
        return avs_err_set(err, "--run NAME is required (a plain name: letters, digits, - _ .)");
    if (avs_name_check(o->run, "--run", err)) /* it names the folder runs/<run> */
        return -1;
    if (strcmp(o->subset, "s4") && strcmp(o->subset, "ms3") && strcmp(o->subset, "avss"))
        return avs_err_set(err, "--subset %s: use s4, ms3 or avss", o->subset);
    if (!strcmp(o->subset, "avss") && strcmp(o->mode, "frozen"))
        return avs_err_set(err, "--subset avss trains the frozen mode only (finetune on AVSS is not "
                           "implemented): leave out --mode");
    if (strcmp(o->mode, "frozen") && strcmp(o->mode, "finetune"))
        return avs_err_set(err, "--mode %s: use frozen or finetune", o->mode);
    if (o->epochs < 1 || o->batch < 1 || o->batch > 64 || !(o->lr > 0) || o->width < 2)
        return avs_err_set(err, "need --epochs >= 1, 1 <= --batch <= 64, --lr > 0, --width >= 2");
    return check_av_match(o, err);
}

/* Run row and starting state: a new run, or the recorded one with its last checkpoint. */
static int start_run(struct trainer *t, const struct avs_train_opts *given, struct avs_err *err)
{
    if (t->rank == 0 && avs_fs_mkdirs(t->dir, err))
        return -1;
    if (!given->resume) {
        avs_c3n_head_init_random(&t->m.head, t->o->seed);
        t->st.best_miou = -1;
        if (t->rank == 0 && avs_run_insert(t->db, t->o->run, t->config, &t->run_id, err))
            return -1;
        t->inserted = t->rank == 0;
        return save_last(t, err);
    }
    if (!avs_fs_exists(t->last)) {
        /* killed before the first checkpoint: start from the same initial state */
        avs_c3n_head_init_random(&t->m.head, t->o->seed);
        t->st.best_miou = -1;
        return 0;
    }
    if (avs_ckpt_load(t->last, &t->m.head, NULL, &t->st, err))
        return -1;
    t->saved_step = t->st.adam_step;
    if (t->ft) {
        char *p = backbone_path(t, t->st.adam_step);
        int rc = avs_finetune_load(t->ft, p, 1, err);
        if (rc == 0 && avs_finetune_adam_step(t->ft) != t->st.adam_step)
            rc = avs_err_set(err, "%s: backbone at step %ld, the head at %ld: the run's files are "
                             "inconsistent; start a new --run", p, avs_finetune_adam_step(t->ft),
                             t->st.adam_step);
        free(p);
        if (rc)
            return -1;
    }
    if (t->o->verbose && t->rank == 0)
        printf("resuming %s at epoch %d, step %d%s\n", t->o->run, t->st.epoch + 1, t->st.step,
               t->ranks > 1 ? " (global batch position; every rank takes its slice)" : "");
    return 0;
}

static int epochs_loop(struct trainer *t, struct avs_err *err)
{
    const struct avs_train_opts *o = t->o;
    int *order = avs_malloc((size_t)t->tr.n * sizeof *order), steps_done = 0, rc = -1;
    char note[96];
    avs_progress_init(&t->prog, o->run, "steps",
                      (int64_t)(o->epochs - t->st.epoch) * t->steps_per_epoch - t->st.step);
    t->prog.enabled = t->prog.enabled && o->progress && t->rank == 0;
    while (t->st.epoch < o->epochs) {
        epoch_order(order, t->tr.n, o->seed, t->st.epoch);
        double lr = avs_train_lr(o->subset, o->lr, t->st.epoch, o->epochs), t0 = avs_now();
        while (t->st.step < t->steps_per_epoch) {
            if (avs_ranks_any(stop_signal)) { /* every rank stops at the same step */
                if (!stop_signal)
                    stop_signal = -1;
                t->st.seconds += avs_now() - t0;
                rc = save_last(t, err) ? -1 : AVS_TRAIN_INTERRUPTED;
                goto out;
            }
            double loss, ts = avs_now();
            if (train_step(t, order, t->st.epoch, t->st.step, lr, &loss, err))
                goto out;
            t->step_s += avs_now() - ts;
            t->st.loss_sum += loss, t->st.loss_n++, t->st.step++;
            t->st.adam_step = t->m.head.adam_step;
            snprintf(note, sizeof note, "epoch %d/%d loss %.4f", t->st.epoch + 1, o->epochs,
                     t->st.loss_sum / t->st.loss_n);
            avs_progress_note(&t->prog, note);
            avs_progress_add(&t->prog, 1);
            if (o->max_steps && ++steps_done >= o->max_steps && !stop_signal)
                stop_signal = -1;
        }
        t->st.seconds += avs_now() - t0;
        if (end_epoch(t, t->st.seconds, err))
            goto out;
    }
    rc = 0;
out:
    avs_progress_end(&t->prog);
    free(order);
    return rc;
}

/* The session row (dist/session.h: every rank's device, the world size; a collective), then
 * rank 0 marks the run running. */
static int record_session(struct trainer *t, struct avs_err *err)
{
    int rc = avs_session_record(t->db, "avs-train", t->run_id, 0, err);
    if (rc == 0 && t->rank == 0)
        rc = avs_run_set_status(t->db, t->run_id, "running", err) ? -1 : 0;
    return rc;
}

/* The run's row and lock, the data and the model, on every rank (rank 0 alone writes). */
static int setup(struct trainer *t, const struct avs_train_opts *given, struct avs_train_opts *o,
                 const char *dbp, struct avs_fs_lock **lock, struct avs_err *err)
{
    char *rec = NULL, *status = NULL;
    int found = -1, rc = avs_db_open(dbp, &t->db, err);
    if (rc == 0)
        found = avs_run_find(t->db, given->run ? given->run : "", &t->run_id, &rec, &status, err);
    if (found < 0)
        rc = -1;
    else if (found == 0 && !given->resume)
        rc = avs_err_set(err, "run \"%s\" exists (status %s): continue it with --resume, or choose "
                         "another --run name", given->run, status);
    else if (found == 1 && given->resume)
        rc = avs_err_set(err, "no run \"%s\" to resume in %s (list: sqlite3 %s 'SELECT name FROM "
                         "runs')", given->run, dbp, dbp);
    if (rc == 0 && found == 0)
        rc = avs_run_config_apply(rec, given, o, err);
    if (rc == 0 && found == 1 && !(given->given & AVS_TRAIN_GIVEN_AV_MATCH))
        o->av_match = o->avsbench && !strcmp(o->subset, "ms3") ? 0.5 : 0; /* official MS3 */
    if (rc == 0)
        rc = check_opts(o, err) || check_c3im(o, t->db, err) ? -1 : 0;
    if (rc == 0 && o->batch % t->ranks)
        rc = avs_err_set(err, "--batch %d (the global batch) must be a multiple of the %d ranks: "
                         "each rank takes batch/ranks videos of every step", o->batch, t->ranks);
    /* every rank has looked the run up before rank 0 may insert it */
    if (avs_ranks_failed(rc, err))
        goto out;
    t->nloc = o->batch / t->ranks;
    t->dir = avs_run_dir(o->root, o->run);
    t->last = avs_fs_join(t->dir, "last.safetensors");
    t->best = avs_fs_join(t->dir, "best.safetensors");
    if (t->rank == 0) {
        char *lockp = avs_fs_join(t->dir, ".lock");
        int lr = avs_run_check_file(o->root, o->run, ".lock", err) ? -2 : avs_fs_lock_try(lockp, lock, err);
        free(lockp);
        if (lr != 0 && lr != -2)
            avs_err_wrap(err, "run %s is being trained by another process", o->run);
        if (lr == 0) /* checkpoint temp files of a killed run: ours alone, under the lock */
            avs_fs_sweep_tmp(t->dir);
        rc = lr ? -1 : 0;
    }
    if (avs_ranks_failed(rc, err))
        goto out;
    rc = open_data(t, err);
    if (rc == 0 && found == 0) {
        char *what = avs_sprintf("run \"%s\"", o->run);
        rc = avs_run_check_features(rec, &t->tr, what, err);
        free(what);
    }
    if (avs_ranks_failed(rc, err))
        goto out;
    alloc_model(t);
    t->config = found == 0 ? avs_strdup(rec) : avs_run_config(o, &t->tr);
    t->steps_per_epoch = (t->tr.n + o->batch - 1) / o->batch;
    rc = start_run(t, given, err);
    if (avs_ranks_failed(rc, err))
        goto out;
    rc = record_session(t, err);
    rc = avs_ranks_failed(rc, err);
out:
    free(rec), free(status);
    return rc ? -1 : 0;
}

int avs_train_run(const struct avs_train_opts *given, struct avs_train_result *res,
                  struct avs_err *err)
{
    struct avs_train_opts o = *given;
    struct trainer t;
    memset(&t, 0, sizeof t);
    t.o = &o;
    t.saved_step = -1;
    t.rank = avs_ranks_rank(), t.ranks = avs_ranks_size();
    if (t.rank != 0)
        o.verbose = 0;
    char *dbp = given->db_path ? avs_strdup(given->db_path) : avs_db_path_for_root(given->root);
    struct avs_fs_lock *lock = NULL;
    int rc = -1;
    stop_signal = 0;
    struct avs_err e2;
    if (setup(&t, given, &o, dbp, &lock, err)) {
        /* a new run's row, inserted 'running', whose first checkpoint failed (a full disk):
         * it says why; a failed --resume leaves the row as the last real attempt left it */
        if (t.inserted)
            avs_run_set_failed(t.db, t.run_id, err->msg, &e2);
        goto out;
    }
    rc = epochs_loop(&t, err);
    if (t.rank == 0 && rc < 0)
        avs_run_set_failed(t.db, t.run_id, err->msg, &e2);
    else if (t.rank == 0)
        avs_run_set_status(t.db, t.run_id, rc == 0 ? "done" : "interrupted", &e2);
    if (rc >= 0 && o.verbose && t.ranks > 1)
        printf("ranks: %d (%d per node), %s: communication %.3f s of %.3f s in training steps "
               "(%.1f%%)\n", t.ranks, avs_ranks_local_size(), avs_ranks_comm(),
               avs_ranks_comm_seconds(), t.step_s,
               t.step_s > 0 ? 100 * avs_ranks_comm_seconds() / t.step_s : 0.0);
    if (rc == 0 && o.verbose)
        printf("run %s done: best val mIoU %.4f at epoch %d; checkpoints in %s\n", o.run,
               t.st.best_miou, t.st.best_epoch, t.dir);
    if (res) {
        res->epochs_done = t.st.epoch;
        res->best_epoch = t.st.best_epoch;
        res->best_miou = t.st.best_miou;
        res->last_loss = t.last_loss;
        snprintf(res->dir, sizeof res->dir, "%s", t.dir);
    }
out:
    free_trainer(&t);
    avs_fs_unlock(&lock);
    avs_db_close(&t.db);
    free(dbp);
    return rc;
}
