/* avs-audiohead: train and evaluate the 527-way AudioSet head that avs-features loads with
 * --audio-head (audiohead/audiohead.h), from AudioSet's embedding TFRecords or the store's own
 * VGGish embeddings with a segment CSV. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "backend/backend.h"
#include "model/audioset_head.h"
#include "core/cli.h"
#include "core/common.h"
#include "core/safetensors.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-audiohead train --out HEAD.safetensors (--train SRC... | --set S --labels CSV)\n"
        "                           [--eval SRC... | --eval-labels CSV] [--pca P.safetensors] [options]\n"
        "       avs-audiohead eval --head HEAD.safetensors (--eval SRC... | --set S --eval-labels CSV)\n"
        "       avs-audiohead read FILE.tfrecord       one line per record (id, times, labels, seconds)\n"
        "       avs-audiohead metrics --scores F.safetensors   mAP/AUC of \"scores\" vs \"targets\" [n,K]\n"
        "Train the AudioSet head and report mAP (per-class average precision, mean over classes\n"
        "with positives), mean AUC and d' on the evaluation clips. Two models:\n"
        "  attention  Kong et al.'s FeatureLevelSingleAttention (the md_50000_iters model C3N loads):\n"
        "             three hidden layers per second, attention pooling over time, fc_final; its\n"
        "             file holds the official names and the VGGish PCA (needs --pca)\n"
        "  linear     decision-level single attention without hidden layers, so that its\n"
        "             per-second classifier is the head.weight/head.bias of the file\n"
        "Both load in avs-features --audio-head.\n\n"
        "  --train SRC      AudioSet embedding TFRecords: a .tfrecord file or a folder of them\n"
        "                   (bal_train/); repeatable\n"
        "  --eval SRC       the same for evaluation (eval/); repeatable\n"
        "  --set S          the store's feature set whose audio_emb records are the inputs\n"
        "  --labels CSV     AudioSet segment CSV for training clips from --set (YTID = store uid,\n"
        "                   start/end seconds within the video, quoted /m/ label list)\n"
        "  --eval-labels CSV  the same for evaluation clips from --set\n"
        "  --pca FILE       VGGish PCA parameters (pca_eigen_vectors, pca_means): store embeddings\n"
        "                   are postprocessed as AudioSet's release, and a head trained in that\n"
        "                   space is folded into the raw-embedding head.weight/bias (needed with\n"
        "                   --train, so that the head file loads in avs-features)\n"
        "  --classes F      AudioSet class list (default features/data/audioset_class_labels_indices.csv)\n"
        "  --model M        attention (default) or linear\n"
        "  --hidden N       attention: hidden width (default 1024, Kong's)\n"
        "  --dropout X      attention: dropout rate in training (default 0.5, Kong's)\n"
        "  --out FILE       the head (safetensors, written atomically)\n"
        "  --head FILE      eval: a head written by train\n"
        "  --iters N        Adam steps (default 50000, as md_50000_iters; 0: the initial head)\n"
        "  --batch N        clips per step (default 500)   --lr X  (default 1e-3)\n"
        "  --seed N         initial weights and batch order (default 1)\n"
        "  --no-balance     shuffled epochs instead of class-balanced batches\n"
        "  --eval-every N   log eval metrics every N steps\n"
        "  --trace FILE     write each step's loss and clip indices (tests)\n"
        "  --json           results as one JSON object on stdout\n"
        "  --root DIR --db PATH -j N --quiet --verbose --help --version\n\n"
        "Exit: 0 ok, 1 usage, 3 fatal (a damaged record, a missing file: the message names it).\n");
}

enum {
    OPT_TRAIN = AVS_OPT_FIRST_TOOL, OPT_EVAL, OPT_SET, OPT_LABELS, OPT_EVAL_LABELS, OPT_PCA,
    OPT_CLASSES, OPT_OUT, OPT_HEAD, OPT_ITERS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_NOBAL,
    OPT_EVERY, OPT_TRACE, OPT_SCORES, OPT_MODEL, OPT_HIDDEN, OPT_DROPOUT
};

#define MAXSRC 64

struct args {
    struct avs_cli cli;
    const char *train[MAXSRC], *eval[MAXSRC];
    int ntrain, neval;
    const char *set, *labels, *eval_labels, *pca, *classes, *out, *head, *trace, *scores;
    struct avs_ah_train_opts o;
    int json;
    int linear, hidden; /* --model linear; attention's width */
    float dropout;
};

static int number(const char *opt, const char *arg, double lo, double hi, double *v)
{
    char *end;
    *v = strtod(arg, &end);
    if (*end || !(*v >= lo && *v <= hi)) {
        fprintf(stderr, "avs-audiohead: %s %s: expected a number in [%g, %g]\n", opt, arg, lo, hi);
        return -1;
    }
    return 0;
}

static int tool_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    double v;
    switch (c) {
    case OPT_TRAIN:
    case OPT_EVAL: {
        int *n = c == OPT_TRAIN ? &a->ntrain : &a->neval;
        if (*n == MAXSRC) {
            fprintf(stderr, "avs-audiohead: at most %d sources each (give folders)\n", MAXSRC);
            return -1;
        }
        (c == OPT_TRAIN ? a->train : a->eval)[(*n)++] = arg;
        return 0;
    }
    case OPT_SET: a->set = arg; return 0;
    case OPT_LABELS: a->labels = arg; return 0;
    case OPT_EVAL_LABELS: a->eval_labels = arg; return 0;
    case OPT_PCA: a->pca = arg; return 0;
    case OPT_CLASSES: a->classes = arg; return 0;
    case OPT_OUT: a->out = arg; return 0;
    case OPT_HEAD: a->head = arg; return 0;
    case OPT_TRACE: a->o.trace = arg; return 0;
    case OPT_SCORES: a->scores = arg; return 0;
    case OPT_MODEL:
        if (strcmp(arg, "attention") && strcmp(arg, "linear")) {
            fprintf(stderr, "avs-audiohead: --model %s: attention or linear\n", arg);
            return -1;
        }
        a->linear = !strcmp(arg, "linear");
        return 0;
    case OPT_HIDDEN: if (number("--hidden", arg, 1, 65536, &v)) return -1; a->hidden = (int)v; return 0;
    case OPT_DROPOUT: if (number("--dropout", arg, 0, 0.99, &v)) return -1; a->dropout = (float)v; return 0;
    case OPT_NOBAL: a->o.balanced = 0; return 0;
    case AVS_OPT_JSON: a->json = 1; return 0;
    case OPT_ITERS: if (number("--iters", arg, 0, 1e9, &v)) return -1; a->o.iters = (int)v; return 0;
    case OPT_BATCH: if (number("--batch", arg, 1, 1e6, &v)) return -1; a->o.batch = (int)v; return 0;
    case OPT_LR: if (number("--lr", arg, 1e-12, 10, &v)) return -1; a->o.lr = (float)v; return 0;
    case OPT_SEED: if (number("--seed", arg, 0, 1.8e19, &v)) return -1; a->o.seed = (uint64_t)v; return 0;
    case OPT_EVERY: if (number("--eval-every", arg, 0, 1e9, &v)) return -1; a->o.eval_every = (int)v; return 0;
    default: usage(stderr); return -1;
    }
}

/* The clips of the TFRecord sources, or of the store set with a CSV. */
static int load(struct args *a, const char *const *src, int nsrc, const char *csv,
                const struct avs_ah_pca *pca, struct avs_ah_data *d, struct avs_err *err)
{
    int skipped = 0;
    d->K = AVS_AH_CLASSES;
    for (int i = 0; i < nsrc; i++)
        if (avs_ah_data_add_path(d, src[i], &skipped, err))
            return -1;
    if (skipped)
        avs_log_warn("%d clips without embeddings skipped", skipped);
    if (csv) {
        struct avs_ah_store_src s = {a->cli.root, a->cli.db, a->set, csv, a->classes, 0};
        if (avs_ah_data_add_store(d, &s, pca, err))
            return -1;
        if (s.unmatched)
            avs_log_warn("%s: %d rows name no second of feature set %s (skipped)", csv,
                         s.unmatched, a->set);
    }
    if (!d->n)
        return avs_err_set(err, "no clips with embeddings in the %s data", csv ? csv : src[0]);
    return 0;
}

/* a number, or null when it is not finite */
static void num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static void put_metrics(cJSON *o, const struct avs_ah_metrics *m, int clips)
{
    cJSON_AddNumberToObject(o, "eval_clips", clips);
    cJSON_AddNumberToObject(o, "classes_with_positives", m->classes_with_pos);
    num(o, "map", m->map);
    num(o, "mauc", m->mauc);
    num(o, "dprime", m->dprime); /* null when every AUC is 1 (d' infinite) */
}

static void print_metrics(const struct avs_ah_metrics *m, int clips)
{
    printf("eval: %d clips, mAP %.4f over %d classes with positives (AudioSet convention: "
           "per-class AP, mean over those classes), mean AUC %.4f, d' %.3f\n", clips, m->map,
           m->classes_with_pos, m->mauc, m->dprime);
}

static void emit(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static int cmd_train(struct args *a, struct avs_err *err)
{
    struct avs_ah_pca pca = {0};
    struct avs_ah_data tr = {0}, ev = {0};
    struct avs_ah_head h = {0};
    struct avs_ash ash = {0};
    struct avs_ah_metrics m = {0};
    int rc = -1, have_eval = a->neval || a->eval_labels;
    double t0 = avs_now(), loss;
    if (a->pca && avs_ah_pca_load(&pca, a->pca, err))
        goto out;
    if (load(a, a->train, a->ntrain, a->labels, &pca, &tr, err) ||
        (have_eval && load(a, a->eval, a->neval, a->eval_labels, &pca, &ev, err)))
        goto out;
    if (have_eval && (ev.D != tr.D || strcmp(ev.space, tr.space)))
        goto mismatch;
    if (!a->linear && (strcmp(tr.space, "audioset-pca-uint8") || !pca.have)) {
        avs_err_set(err, "--model attention takes AudioSet's postprocessed embeddings and keeps "
                    "the VGGish PCA in its file (avs-features applies it): give --pca FILE");
        goto out;
    }
    if (a->linear)
        avs_ah_head_init(&h, tr.D, tr.K, a->o.seed);
    else {
        avs_ash_init(&ash, tr.D, a->hidden, tr.K, a->dropout, a->o.seed);
        avs_ash_set_pca(&ash, pca.E, pca.mu);
    }
    a->o.eval = have_eval ? &ev : NULL;
    a->o.progress = !a->cli.quiet && !a->json;
    if (a->o.progress)
        printf("training the %s head on %d clips (%lld seconds, %s inputs of %d), %d steps of "
               "%d\n", a->linear ? "linear" : "attention", tr.n, (long long)tr.rows, tr.space,
               tr.D, a->o.iters, a->o.batch);
    if (a->linear ? avs_ah_train(&h, &tr, &a->o, &loss, err)
                  : avs_ah_attn_train(&ash, &tr, &a->o, &loss, err))
        goto out;
    char it[32], bt[32], lr[32], sd[32], ls[32], nc[32], mp[32] = "";
    snprintf(it, sizeof it, "%d", a->o.iters), snprintf(bt, sizeof bt, "%d", a->o.batch);
    snprintf(lr, sizeof lr, "%g", a->o.lr), snprintf(sd, sizeof sd, "%llu", (unsigned long long)a->o.seed);
    snprintf(ls, sizeof ls, "%.6f", loss), snprintf(nc, sizeof nc, "%d", tr.n);
    if (have_eval) {
        if (a->linear)
            avs_ah_eval(&h, &ev, &m);
        else
            avs_ah_attn_eval(&ash, &ev, &m);
        snprintf(mp, sizeof mp, "%.6f", m.map);
    }
    const char *meta[] = {"iters", it, "batch", bt, "lr", lr, "seed", sd, "final_loss", ls,
                          "train_clips", nc, "balanced", a->o.balanced ? "1" : "0",
                          "eval_map", have_eval ? mp : "none", "space", tr.space, NULL};
    if (a->linear ? avs_ah_save(&h, tr.space, &pca, a->out, meta, err)
                  : avs_ash_save(&ash, a->out, meta, err))
        goto out;
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "out", a->out);
        cJSON_AddStringToObject(o, "space", tr.space);
        cJSON_AddStringToObject(o, "model", a->linear ? "linear" : "attention");
        cJSON_AddNumberToObject(o, "train_clips", tr.n);
        cJSON_AddNumberToObject(o, "iters", a->o.iters);
        cJSON_AddNumberToObject(o, "loss", loss);
        if (have_eval)
            put_metrics(o, &m, ev.n);
        cJSON_AddNumberToObject(o, "seconds", avs_now() - t0);
        emit(o);
    } else if (!a->cli.quiet) {
        printf("trained %d steps on %d clips: final loss %.5f; head written to %s (%s)\n",
               a->o.iters, tr.n, loss, a->out,
               !a->linear ? "attention network + the VGGish PCA"
               : strcmp(tr.space, "raw") ? "folded through the PCA" : "raw embeddings");
        if (have_eval)
            print_metrics(&m, ev.n);
    }
    rc = 0;
    goto out;
mismatch:
    avs_err_set(err, "the evaluation data (%s, %d inputs) and the training data (%s, %d) differ: "
                "give --pca to put store embeddings into AudioSet's space", ev.space, ev.D,
                tr.space, tr.D);
out:
    avs_ah_metrics_free(&m);
    avs_ah_head_free(&h);
    avs_ash_free(&ash);
    avs_ah_data_free(&tr);
    avs_ah_data_free(&ev);
    return rc;
}

/* The head of a->head, either model: widths and input space; an attention head's PCA serves
 * store embeddings when --pca is not given. */
static int load_head(struct args *a, struct avs_ah_head *h, struct avs_ash *ash,
                     struct avs_ah_pca *pca, char *space, size_t len, int *D, int *K,
                     struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    if (avs_st_open(a->head, &f, err))
        return -1;
    int att = avs_ash_is_head(f);
    avs_st_close(&f);
    if (!att) {
        if (avs_ah_load(h, a->head, space, len, err))
            return -1;
        *D = h->D, *K = h->K;
        return 0;
    }
    if (avs_ash_load(ash, a->head, NULL, err))
        return -1;
    snprintf(space, len, "audioset-pca-uint8");
    *D = ash->D, *K = ash->K;
    if (!pca->have && ash->have_pca) {
        avs_dev_download(pca->E, ash->pca_E, (size_t)AVS_AH_EMB * AVS_AH_EMB);
        avs_dev_download(pca->mu, ash->pca_mu, AVS_AH_EMB);
        pca->have = 1;
    }
    return 1;
}

static int cmd_eval(struct args *a, struct avs_err *err)
{
    struct avs_ah_pca pca = {0};
    struct avs_ah_data ev = {0};
    struct avs_ah_head h = {0};
    struct avs_ash ash = {0};
    struct avs_ah_metrics m = {0};
    char space[64];
    int rc = -1, att, D, K;
    if ((a->pca && avs_ah_pca_load(&pca, a->pca, err)) ||
        (att = load_head(a, &h, &ash, &pca, space, sizeof space, &D, &K, err)) < 0 ||
        load(a, a->eval, a->neval, a->eval_labels, &pca, &ev, err))
        goto out;
    if (ev.D != D || ev.K != K || strcmp(ev.space, space)) {
        avs_err_set(err, "%s: a head on %s inputs of %d (%d classes); the data gives %s inputs of "
                    "%d (%d classes)%s", a->head, space, D, K, ev.space, ev.D, ev.K,
                    strcmp(space, "audioset-pca-uint8") ? "" : ": give --pca for store embeddings");
        goto out;
    }
    if (att)
        avs_ah_attn_eval(&ash, &ev, &m);
    else
        avs_ah_eval(&h, &ev, &m);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        put_metrics(o, &m, ev.n);
        emit(o);
    } else
        print_metrics(&m, ev.n);
    rc = 0;
out:
    avs_ah_metrics_free(&m);
    avs_ah_head_free(&h);
    avs_ash_free(&ash);
    avs_ah_data_free(&ev);
    return rc;
}

static int cmd_read(const char *path, struct avs_err *err)
{
    struct avs_ah_tfr r;
    const uint8_t *rec;
    size_t len;
    int got, rc = 0;
    if (avs_ah_tfr_open(&r, path, err))
        return -1;
    while ((got = avs_ah_tfr_next(&r, &rec, &len, err)) == 1) {
        struct avs_ah_clip c;
        char why[160];
        if (avs_ah_parse_example(rec, len, &c, why, sizeof why)) {
            rc = avs_err_set(err, "%s: record %lld: %s", path, (long long)r.index - 1, why);
            break;
        }
        printf("%lld %s %.3f %.3f %d", (long long)r.index - 1, c.id, c.start, c.end, c.T);
        for (int i = 0; i < c.n_labels; i++)
            printf("%s%lld", i ? "," : " ", (long long)c.labels[i]);
        printf("\n");
        avs_ah_clip_free(&c);
    }
    avs_ah_tfr_close(&r);
    return got < 0 ? -1 : rc;
}

/* metrics of scores [n,K] against targets [n,K] (non-zero = positive) */
static int cmd_metrics(struct args *a, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    float *s = NULL, *t = NULL;
    uint8_t *y = NULL;
    struct avs_ah_metrics m = {0};
    int rc = -1;
    if (avs_st_open(a->scores, &f, err))
        return -1;
    const struct avs_st_tensor *ts = avs_st_find(f, "scores"), *tt = avs_st_find(f, "targets");
    if (!ts || !tt || ts->ndim != 2 || tt->numel != ts->numel) {
        avs_err_set(err, "%s: need tensors scores and targets of one shape [n,K]", a->scores);
        goto out;
    }
    int n = (int)ts->shape[0], K = (int)ts->shape[1];
    s = avs_malloc(ts->numel * sizeof *s + 1), t = avs_malloc(ts->numel * sizeof *t + 1);
    y = avs_malloc(ts->numel + 1);
    if (avs_st_read_f32(ts, s, ts->numel, err) || avs_st_read_f32(tt, t, tt->numel, err))
        goto out;
    for (size_t i = 0; i < ts->numel; i++)
        y[i] = t[i] != 0;
    avs_ah_metrics_compute(s, y, n, K, &m);
    cJSON *o = cJSON_CreateObject();
    put_metrics(o, &m, n);
    cJSON *ap = cJSON_AddArrayToObject(o, "ap"), *auc = cJSON_AddArrayToObject(o, "auc");
    for (int k = 0; k < K; k++) {
        cJSON_AddItemToArray(ap, isnan(m.ap[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(m.ap[k]));
        cJSON_AddItemToArray(auc, isnan(m.auc[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(m.auc[k]));
    }
    emit(o);
    rc = 0;
out:
    avs_ah_metrics_free(&m);
    free(s), free(t), free(y);
    avs_st_close(&f);
    return rc;
}

static int check_args(struct args *a, const char *cmd)
{
    const char *need = NULL;
    if (!strcmp(cmd, "train") && !a->out)
        need = "--out FILE";
    else if (!strcmp(cmd, "train") && !a->ntrain && !a->labels)
        need = "--train SRC (TFRecords) or --set S --labels CSV";
    else if (!strcmp(cmd, "eval") && !a->head)
        need = "--head FILE";
    else if (!strcmp(cmd, "eval") && !a->neval && !a->eval_labels)
        need = "--eval SRC (TFRecords) or --set S --eval-labels CSV";
    else if ((a->labels || a->eval_labels) && !a->set)
        need = "--set S (the feature set the CSV's clips come from)";
    else if (!strcmp(cmd, "metrics") && !a->scores)
        need = "--scores FILE";
    if (need)
        fprintf(stderr, "avs-audiohead %s: %s is required\n", cmd, need);
    return need ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        AVS_CLI_LONG_OPTIONS,
        {"train", required_argument, 0, OPT_TRAIN}, {"eval", required_argument, 0, OPT_EVAL},
        {"set", required_argument, 0, OPT_SET}, {"labels", required_argument, 0, OPT_LABELS},
        {"eval-labels", required_argument, 0, OPT_EVAL_LABELS},
        {"pca", required_argument, 0, OPT_PCA}, {"classes", required_argument, 0, OPT_CLASSES},
        {"out", required_argument, 0, OPT_OUT}, {"head", required_argument, 0, OPT_HEAD},
        {"iters", required_argument, 0, OPT_ITERS}, {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR}, {"seed", required_argument, 0, OPT_SEED},
        {"no-balance", no_argument, 0, OPT_NOBAL}, {"eval-every", required_argument, 0, OPT_EVERY},
        {"trace", required_argument, 0, OPT_TRACE}, {"scores", required_argument, 0, OPT_SCORES},
        {"model", required_argument, 0, OPT_MODEL}, {"hidden", required_argument, 0, OPT_HIDDEN},
        {"dropout", required_argument, 0, OPT_DROPOUT},
        {"json", no_argument, 0, AVS_OPT_JSON}, {0, 0, 0, 0},
    };
    avs_ops_tune_process(argv);
    struct args a;
    memset(&a, 0, sizeof a);
    a.o = (struct avs_ah_train_opts){.iters = 50000, .batch = 500, .lr = 1e-3f, .seed = 1,
                                     .balanced = 1};
    a.hidden = 1024, a.dropout = 0.5f; /* Kong's hidden_units, drop_rate */
    a.classes = "features/data/audioset_class_labels_indices.csv";
    avs_cli_defaults(&a.cli);
    int rc = avs_cli_parse(&a.cli, argc, argv, "j:hq", lo, tool_option, &a, usage, "avs-audiohead");
    if (rc >= 0)
        return rc;
    const char *cmd = optind < argc ? argv[optind] : NULL;
    int known = cmd && (!strcmp(cmd, "train") || !strcmp(cmd, "eval") || !strcmp(cmd, "read") ||
                        !strcmp(cmd, "metrics"));
    if (!known || optind + (strcmp(cmd, "read") ? 1 : 2) != argc) {
        usage(stderr);
        return AVS_EXIT_USAGE;
    }
    if (check_args(&a, cmd))
        return AVS_EXIT_USAGE;
    struct avs_err err = {0};
    if (avs_backend_setup("avs-audiohead", "cpu", NULL, a.cli.jobs, 1, &err)) {
        fprintf(stderr, "avs-audiohead: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (!strcmp(cmd, "train"))
        rc = cmd_train(&a, &err);
    else if (!strcmp(cmd, "eval"))
        rc = cmd_eval(&a, &err);
    else if (!strcmp(cmd, "read"))
        rc = cmd_read(argv[optind + 1], &err);
    else
        rc = cmd_metrics(&a, &err);
    if (rc) {
        fprintf(stderr, "avs-audiohead: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    return AVS_EXIT_OK;
}
