/* tools/avs-model.c: developer tool that makes the model's blocks checkable from outside.
 *
 *   avs-model run c3n_head --weights W.safetensors --inputs IN.safetensors --out OUT.safetensors
 *                 [--grad-out DOUT.safetensors] [--train]
 *   avs-model run c3n_ref  (the same files, through the reference C3N, model/c3n_ref.h)
 *   avs-model bench c3n_head [--videos V] [--steps S] [--size 224] [--json] [--profile]
 *   avs-model bench sgemm [--size 2048]
 *   avs-model bench pvt_v2_b0..b5 --weights W.safetensors [--size 224] [--steps S] [--json]
 *   avs-model bench logmel [--steps S] [--json]
 *   avs-model run logmel --inputs IN.safetensors --out OUT.safetensors [--policy stream|second]
 *                 [--examples N]
 *   avs-model run c3im --inputs IN.safetensors --out OUT.safetensors [--alpha A] [--beta B]
 *   avs-model run ccam --inputs IN.safetensors --out OUT.safetensors
 *   avs-model run vggish --weights W.safetensors [--head H.safetensors] --inputs IN --out OUT
 *   avs-model run pvt_v2_b0..b5 --weights W.safetensors --inputs IN --out OUT [--target T]
 *                 [--grad-out DOUT.safetensors]
 *   avs-model run labelsim --vectors V [--classes-visual F] [--classes-audio F] --out S.safetensors
 *
 * The head's configuration comes from the files: stage channels and sizes from x1..x4, frames
 * and audio width from audio [N,T,A], widths and TPAVI stages from the weights' names/shapes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/nn.h" /* before cblas.h: its complex.h defines I, a parameter name in nn.h */
#include <cblas.h>

#include "backend/backend.h"
#include "core/cli.h"
#include "core/common.h"
#include "core/db.h"
#include "core/safetensors.h"
#include "model/c3im.h"
#include "features/labelsim.h"
#include "features/logmel.h"
#include "model/pvt.h"
#include "model/swin.h"
#include "model/resnet.h"
#include "model/vggish.h"
#include "model/c3n_head.h"
#include "model/c3n_ref.h"
#include "backend/ops.h"

void openblas_set_num_threads(int n);
char *openblas_get_corename(void);

enum { OPT_WEIGHTS = AVS_OPT_FIRST_TOOL, OPT_INPUTS, OPT_OUT, OPT_GRAD_OUT, OPT_TRAIN,
       OPT_VIDEOS, OPT_STEPS, OPT_SIZE, OPT_SEED, OPT_POLICY, OPT_EXAMPLES,
       OPT_VECTORS, OPT_CLS_V, OPT_CLS_A, OPT_HEAD, OPT_TARGET, OPT_RANDOM_INIT,
       OPT_PROFILE, OPT_BATCH, OPT_ALPHA, OPT_BETA, OPT_AV_MATCH };

struct opts {
    const char *weights, *inputs, *out, *grad_out;
    int train, videos, steps, size, json, profile;
    int batch; /* bench pvt_v2_bX: images per pass */
    unsigned long long seed;
    const char *policy; /* run logmel */
    const char *vectors, *cls_v, *cls_a; /* run labelsim */
    const char *db;                      /* run labelsim: also store S in this index */
    const char *head;                    /* run vggish */
    const char *target;                  /* run pvt_v2_*: Grad-CAM targets */
    int random_init;                     /* pvt/vggish: --random-init SEED instead of --weights */
    unsigned long long init_seed;
    int examples;
    double alpha, beta;                  /* run c3im: the exponents (default 0.1) */
    double av_match;                     /* run c3n_head: lambda of the matching loss (0: off) */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: avs-model run c3n_head --weights W.safetensors --inputs IN.safetensors\n"
            "                  --out OUT.safetensors [--grad-out DOUT.safetensors] [--train]\n"
            "                  [--av-match LAMBDA]\n"
            "       avs-model run c3n_ref (the options of run c3n_head)\n"
            "       avs-model bench c3n_head [--videos V] [--steps S] [--size 224] [--json] [--profile]\n"
            "       avs-model bench sgemm [--size 2048]\n"
            "       avs-model bench pvt_v2_b0..b5 --weights W.safetensors [--size 224] [--steps S]\n"
            "                  [--batch N]\n"
            "       avs-model bench logmel [--steps S]\n"
            "       avs-model run logmel --inputs IN.safetensors --out OUT.safetensors\n"
            "                  [--policy stream|second] [--examples N]\n"
            "       avs-model run c3im --inputs IN.safetensors --out OUT.safetensors\n"
            "                  [--alpha A] [--beta B]\n"
            "       avs-model run ccam --inputs IN.safetensors --out OUT.safetensors\n"
            "       avs-model run vggish --weights W.safetensors [--head H.safetensors]\n"
            "                  --inputs IN.safetensors --out OUT.safetensors\n"
            "       avs-model run pvt_v2_b0..b5 --weights W.safetensors --inputs IN.safetensors\n"
            "                  --out OUT.safetensors\n"
            "       avs-model run swin_t|swin_s|swin_b|swin_b_w12 --weights W.safetensors\n"
            "                  --inputs IN.safetensors --out OUT.safetensors [--target T]\n"
            "       avs-model run resnet50 --weights W.safetensors --inputs IN.safetensors\n"
            "                  --out OUT.safetensors   (torchvision names; IN: image [N,3,H,W],\n"
            "                  optional target [N] for gradcam1..4; writes stage1..4, logits)\n"
            "       avs-model run labelsim --vectors V [--classes-visual F] [--classes-audio F]\n"
            "                  --out S.safetensors\n"
            "\n"
            "run: the C3N head (ASPP, TPAVI, decoder) on x1..x4 [N*T,C_s,H_s,W_s] and audio\n"
            "  [N,T,A]; writes logits [N*T,1,4H_1,4W_1]. With --grad-out (a tensor named logits,\n"
            "  the upstream gradient) also grad.<param> for every parameter, grad.x1..x4 and\n"
            "  grad.audio; with --train BatchNorm uses batch statistics (PyTorch train mode) and\n"
            "  the updated running statistics are written as buf.<name>. Default: eval mode.\n"
            "  --av-match L (AVSBench baseline weights, with --grad-out): AVSBench's MS3\n"
            "  audio-visual matching loss too; the gradients are those of sum(logits * DOUT) +\n"
            "  L * the loss, whose value is written as av_match [1].\n"
            "  c3n_ref: the same through the reference C3N (plain official structure on basic\n"
            "  primitives, the oracle of the fast path; slower, more memory).\n"
            "bench: S full training steps (forward, BCE+Dice, backward, Adam) on random data;\n"
            "  prints step_seconds=<median>, gflops=<effective rate>, peak_rss_mb=; --profile\n"
            "  also writes the time per primitive and geometry (steps 2..S) to stderr.\n"
            "  sgemm: the cblas_sgemm peak of this machine (size^3).\n"
            "  pvt_v2_bX: --batch N images (default 1), forward alone and forward + Grad-CAM\n"
            "  backward; prints the fastest of S runs (fwd_seconds=, gradcam_seconds=).\n"
            "  logmel: stream examples of 60 s of noise, fastest of S runs (logmel_seconds=).\n"
            "run logmel: VGGish log-mel examples [N,96,64] (tensor \"examples\") of the 16 kHz\n"
            "  wave [S] (tensor \"wave\", samples in [-1,1]); --policy stream (default: 96-frame\n"
            "  examples at 0.96 s hop) or second (one per whole second); --examples N pads by\n"
            "  repeating the last example (or keeps the first N).\n"
            "run c3im: consensus class per frame from vlogits [N,V], alogits [N,A], sim [V,A]:\n"
            "  target [N] (CC) and target_v [N] (top visual class, CC-V) as int64, wmax [N];\n"
            "  --alpha/--beta: the exponents of softmax(vlogits) and softmax(alogits) (0.1).\n"
            "run ccam: CCAM (DESIGN 6) of a stage map x [N,C,H,W] with Grad-CAM weights\n"
            "  weights [N,C] -> out [N,C,H,W].\n"
            "run vggish: VGGish (torchvggish names) on examples [N,96,64] -> embedding [N,128],\n"
            "  and logits [N,K] when an AudioSet head (head.weight [K,128], head.bias) is given.\n"
            "run pvt_v2_bX: PVTv2 (official pvt_v2.py names) on image [N,3,H,W] (H, W multiples\n"
            "  of 32) -> stage1..4 (after the stage norms) and logits [N,1000]; with --target\n"
            "  (tensor \"target\" [N], class indices) also gradcam1..4 [N,C_s] (Grad-CAM weights);\n"
            "  with --grad-out (dstage1..4 and/or dlogits: upstream gradients) also grad.<param>.\n"
            "run swin_*: Swin (official Swin-Transformer names) on image [N,3,H,W] (sides multiples\n"
            "  of 32 x window: 224 for window 7) -> stage1..4 (each stage's last block output) and\n"
            "  logits; with --target also gradcam1..4 [N,C_s] (Grad-CAM weights).\n"
            "run labelsim: label similarity sim [V,A] from word vectors (GloVe text or word2vec\n"
            "  text/binary) over the class lists (default features/data/imagenet1k_classes.txt\n"
            "  and features/data/audioset_class_labels_indices.csv); with --db PATH also\n"
            "  stored in the index's label_similarity table, keyed by the vector file's hash.\n"
            "\n"
            "pvt_v2_bX, swin_*, vggish: --random-init SEED instead of --weights: deterministic random\n"
            "  parameters (tests and demos; vggish then has a 527-way head).\n"
            "options: -j N threads (default: all cores), --seed S, --json, --help, --version\n"
            AVS_CLI_DEVICE_USAGE);
}

/* ---- run ---- */

static int need4(const struct avs_st_file *f, const char *name, const struct avs_st_tensor **t,
                 int ndim, struct avs_err *err)
{
    *t = avs_st_find(f, name);
    if (!*t)
        return avs_err_set(err, "%s: missing tensor \"%s\"", f->path, name);
    if ((*t)->ndim != ndim)
        return avs_err_set(err, "%s: tensor \"%s\" has %d dims, expected %d", f->path, name,
                           (*t)->ndim, ndim);
    return 0;
}

static int weight_dim(const struct avs_st_file *w, const char *name, int d, int *out,
                      struct avs_err *err)
{
    const struct avs_st_tensor *t = avs_st_find(w, name);
    if (!t) {
        char alt[200];
        snprintf(alt, sizeof alt, "module.%s", name);
        t = avs_st_find(w, alt);
    }
    if (!t || t->ndim <= d)
        return avs_err_set(err, "%s: missing tensor \"%s\"", w->path, name);
    *out = (int)t->shape[d];
    return 0;
}

/* Configuration of the head from the inputs and the weights. */
static int cfg_from_files(struct avs_c3n_cfg *cfg, int *n_videos, const struct avs_st_file *in,
                          const struct avs_st_file *w, struct avs_err *err)
{
    avs_c3n_cfg_default(cfg, 224);
    const struct avs_st_tensor *a, *x[4];
    if (need4(in, "audio", &a, 3, err))
        return -1;
    *n_videos = (int)a->shape[0];
    cfg->T = (int)a->shape[1];
    cfg->A = (int)a->shape[2];
    for (int s = 0; s < 4; s++) {
        char nm[8];
        snprintf(nm, sizeof nm, "x%d", s + 1);
        if (need4(in, nm, &x[s], 4, err))
            return -1;
        if (x[s]->shape[0] != (int64_t)*n_videos * cfg->T)
            return avs_err_set(err, "%s: tensor \"%s\" has %lld frames, audio says N*T = %d", in->path,
                               nm, (long long)x[s]->shape[0], *n_videos * cfg->T);
        cfg->C[s] = (int)x[s]->shape[1];
        cfg->H[s] = (int)x[s]->shape[2];
        cfg->W[s] = (int)x[s]->shape[3];
        if (s && (cfg->H[s - 1] != 2 * cfg->H[s] || cfg->W[s - 1] != 2 * cfg->W[s]))
            return avs_err_set(err, "%s: tensor \"%s\" is %dx%d; each stage must be half the size "
                               "of the one before (%dx%d)", in->path, nm, cfg->H[s], cfg->W[s],
                               cfg->H[s - 1], cfg->W[s - 1]);
    }
    for (int i = 0; i < in->n; i++) {
        const char *n = in->t[i].name;
        if (strcmp(n, "audio") && strcmp(n, "x1") && strcmp(n, "x2") && strcmp(n, "x3") && strcmp(n, "x4"))
            return avs_err_set(err, "%s: unknown tensor \"%s\" (inputs are x1..x4 and audio)",
                               in->path, n);
    }
    cfg->avsbench = avs_st_find(w, "conv1.conv2d_list.0.weight") != NULL;
    if (weight_dim(w, cfg->avsbench ? "conv1.conv2d_list.0.weight" : "conv1.conv.weight", 0, &cfg->D, err) ||
        weight_dim(w, "output_conv.0.weight", 0, &cfg->O1, err) ||
        weight_dim(w, "output_conv.2.weight", 0, &cfg->O2, err))
        return -1;
    cfg->tpavi = 0;
    for (int s = 0; s < 4; s++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s%d.theta.weight", avs_c3n_tpavi_prefix(cfg), s + 1);
        struct avs_err e2;
        if (weight_dim(w, nm, 0, &cfg->Ci, &e2) == 0)
            cfg->tpavi |= 1 << s;
    }
    return 0;
}

static int read_into(const struct avs_st_file *f, const char *name, float *dst, size_t n,
                     struct avs_err *err)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    if (!t)
        return avs_err_set(err, "%s: missing tensor \"%s\"", f->path, name);
    if (t->numel != n)
        return avs_err_set(err, "%s: tensor \"%s\" has %zu elements, expected %zu", f->path, name,
                           t->numel, n);
    return avs_st_read_f32(t, dst, n, err) ? avs_err_wrap(err, "%s", f->path) : 0;
}

/* Host copies of a tensor set's tensors: one block (avs_tensor_set_to_host), added to the
 * writer as prefix + name (names kept in *names until the save). */
static float *add_set_host(struct avs_st_writer *wr, const struct avs_tensor_set *set,
                           const char *prefix, char **names, int *n_names)
{
    float *host = avs_tensor_set_to_host(set);
    for (int i = 0; i < set->n; i++) {
        names[*n_names] = avs_sprintf("%s%s", prefix, set->spec[i].name);
        avs_st_writer_add_f32(wr, names[(*n_names)++], set->t[i].ndim, set->t[i].shape,
                              host + (set->t[i].data - set->arena.base));
    }
    return host;
}

/* The head's inputs: host copies read from the file, then uploaded to the active backend. */
struct run_io {
    float *x[4], *audio, *dl;         /* host */
    float *dx_[4], *audio_, *dl_;     /* device */
    float *gdx[4], *gaudio;           /* device gradients */
    float *out[8];                    /* host copies of results, freed after the save */
    int nout;
    float avm;                        /* --av-match: the matching loss (kept until the save) */
};

static void run_io_free(struct run_io *r)
{
    for (int s = 0; s < 4; s++) {
        free(r->x[s]);
        avs_dev_free(&r->dx_[s]);
        avs_dev_free(&r->gdx[s]);
    }
    free(r->audio), free(r->dl);
    avs_dev_free(&r->audio_), avs_dev_free(&r->dl_), avs_dev_free(&r->gaudio);
    for (int i = 0; i < r->nout; i++)
        free(r->out[i]);
}

/* A host copy of device tensor d [n] that lives until run_io_free. */
static float *run_host(struct run_io *r, const float *d, size_t n)
{
    AVS_ASSERT(r->nout < 8);
    return r->out[r->nout++] = avs_host_from_dev(d, n);
}

/* dlogits from --grad-out, checked against the output's shape; uploaded. */
static int read_grad_out(const struct opts *o, const int *ls, size_t nl, struct run_io *r,
                         struct avs_err *err)
{
    struct avs_st_file *df = NULL;
    int rc = -1;
    if (avs_st_open(o->grad_out, &df, err))
        return -1;
    const struct avs_st_tensor *t = avs_st_find(df, "logits");
    if (!t) {
        avs_err_set(err, "%s: missing tensor \"logits\" (the gradient of the output)", o->grad_out);
        goto out;
    }
    int sh[AVS_ST_MAXDIM];
    for (int d = 0; d < t->ndim; d++)
        sh[d] = (int)t->shape[d];
    if (!avs_tensor_same_shape(t->ndim, sh, 4, ls)) {
        char a[64], b[64];
        avs_err_set(err, "%s: tensor \"logits\" has shape %s, the output is %s", o->grad_out,
                    avs_tensor_shape_str(t->ndim, sh, a, sizeof a), avs_tensor_shape_str(4, ls, b, sizeof b));
        goto out;
    }
    r->dl = avs_malloc(nl * sizeof(float));
    if (avs_st_read_f32(t, r->dl, nl, err))
        goto out;
    r->dl_ = avs_dev_from_host(r->dl, nl);
    rc = 0;
out:
    avs_st_close(&df);
    return rc;
}

static int cmd_run(const struct opts *o, struct avs_err *err)
{
    int rc = -1, N = 0;
    struct avs_st_file *in = NULL, *wf = NULL;
    struct avs_st_writer *wr = NULL;
    struct avs_c3n_head h;
    int have_head = 0;
    struct run_io r = {0};
    char **names = NULL;
    int n_names = 0;
    if (!o->weights || !o->inputs || !o->out) {
        avs_err_set(err, "run needs --weights, --inputs and --out (see --help)");
        return 1;
    }
    if (avs_st_open(o->inputs, &in, err) || avs_st_open(o->weights, &wf, err))
        goto out;
    struct avs_c3n_cfg cfg;
    if (cfg_from_files(&cfg, &N, in, wf, err))
        goto out;
    avs_st_close(&wf);
    if (o->av_match && (!cfg.avsbench || !o->grad_out)) {
        avs_err_set(err, "--av-match needs AVSBench baseline weights and --grad-out");
        goto out;
    }
    cfg.av_match = o->av_match != 0;
    avs_c3n_head_init(&h, &cfg, N);
    have_head = 1;
    if (avs_c3n_head_load(&h, o->weights, err))
        goto out;
    int B = h.B;
    size_t xn[4], nl = (size_t)B * 16 * cfg.H[0] * cfg.W[0], na = (size_t)B * cfg.A;
    for (int s = 0; s < 4; s++) {
        char nm[8];
        snprintf(nm, sizeof nm, "x%d", s + 1);
        xn[s] = (size_t)B * cfg.C[s] * cfg.H[s] * cfg.W[s];
        r.x[s] = avs_malloc(xn[s] * sizeof(float));
        if (read_into(in, nm, r.x[s], xn[s], err))
            goto out;
        r.dx_[s] = avs_dev_from_host(r.x[s], xn[s]);
    }
    r.audio = avs_malloc(na * sizeof(float));
    if (read_into(in, "audio", r.audio, na, err))
        goto out;
    r.audio_ = avs_dev_from_host(r.audio, na);
    avs_c3n_head_fwd(&h, (const float *const *)r.dx_, r.audio_, o->train);
    wr = avs_st_writer_new();
    int ls[4] = {B, 1, 4 * cfg.H[0], 4 * cfg.W[0]};
    avs_st_writer_add_f32(wr, "logits", 4, ls, run_host(&r, h.logits, nl));
    names = avs_calloc((size_t)(h.np + h.nb + 8), sizeof *names);
    if (o->grad_out) {
        if (read_grad_out(o, ls, nl, &r, err))
            goto out;
        for (int s = 0; s < 4; s++)
            r.gdx[s] = avs_dev_alloc(xn[s], "the input gradients");
        r.gaudio = avs_dev_alloc(na, "the audio gradient");
        avs_c3n_head_zero_grad(&h);
        if (o->av_match) {
            int one = 1;
            r.avm = (float)avs_c3n_head_avmatch(&h, (float)o->av_match, r.dl_);
            avs_st_writer_add_f32(wr, "av_match", 1, &one, &r.avm);
        }
        avs_c3n_head_bwd(&h, r.dl_, r.gdx, r.gaudio);
        r.out[r.nout++] = add_set_host(wr, &h.grads, "grad.", names, &n_names);
        for (int s = 0; s < 4; s++) {
            int xs[4] = {B, cfg.C[s], cfg.H[s], cfg.W[s]};
            names[n_names] = avs_sprintf("grad.x%d", s + 1);
            avs_st_writer_add_f32(wr, names[n_names++], 4, xs, run_host(&r, r.gdx[s], xn[s]));
        }
        int as[3] = {N, cfg.T, cfg.A};
        avs_st_writer_add_f32(wr, "grad.audio", 3, as, run_host(&r, r.gaudio, na));
    }
    if (o->train)
        r.out[r.nout++] = add_set_host(wr, &h.bufs, "buf.", names, &n_names);
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    rc = 0;
out:
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    avs_st_writer_free(&wr);
    run_io_free(&r);
    avs_st_close(&in);
    avs_st_close(&wf);
    if (have_head)
        avs_c3n_head_free(&h);
    return rc ? 3 : 0;
}

/* run c3n_ref: cmd_run's files through the reference C3N (model/c3n_ref.h) on the active
 * backend; the head is made for its tables and its loader only. */
static int run_ref_save(const struct opts *o, struct avs_c3n_head *h, const struct avs_st_file *in,
                        struct avs_err *err)
{
    const struct avs_c3n_cfg *c = &h->cfg;
    int rc = -1, B = h->B, ls[4] = {B, 1, 4 * c->H[0], 4 * c->W[0]}, as[3] = {h->N, c->T, c->A};
    size_t nl = (size_t)B * 16 * c->H[0] * c->W[0], na = (size_t)B * c->A, xn[4];
    float *x[4] = {0}, *dx[4] = {0}, *hx[4] = {0}, *audio = NULL, *daudio = NULL, *dl = NULL;
    float *hl = NULL, *hg = NULL, *hb = NULL, *hda = NULL, *tmp = NULL;
    char nm[256];
    struct avs_st_file *df = NULL;
    struct avs_st_writer *wr = avs_st_writer_new();
    struct avs_tensor_set grads;
    avs_tensor_set_init(&grads, h->pspec, h->np);
    struct avs_c3n_ref r;
    avs_c3n_ref_init(&r, c, h->N, 0, &h->params, &grads, &h->bufs);
    for (int s = 0; s < 4; s++) {
        snprintf(nm, sizeof nm, "x%d", s + 1);
        xn[s] = (size_t)B * c->C[s] * c->H[s] * c->W[s];
        tmp = avs_malloc(xn[s] * sizeof(float));
        if (read_into(in, nm, tmp, xn[s], err))
            goto out;
        x[s] = avs_dev_from_host(tmp, xn[s]);
        free(tmp), tmp = NULL;
    }
    tmp = avs_malloc(na * sizeof(float));
    if (read_into(in, "audio", tmp, na, err))
        goto out;
    audio = avs_dev_from_host(tmp, na);
    avs_c3n_ref_fwd(&r, (const float *const *)x, NULL, c->tpavi ? audio : NULL, o->train);
    hl = avs_host_from_dev(r.act.logits, nl);
    avs_st_writer_add_f32(wr, "logits", 4, ls, hl);
    if (o->grad_out) {
        tmp = avs_realloc(tmp, nl * sizeof(float));
        if (avs_st_open(o->grad_out, &df, err) || read_into(df, "logits", tmp, nl, err))
            goto out;
        dl = avs_dev_from_host(tmp, nl);
        for (int s = 0; s < 4; s++)
            dx[s] = avs_dev_alloc(xn[s], "dx");
        daudio = avs_dev_alloc(na, "daudio");
        avs_c3n_ref_bwd(&r, dl, dx, daudio);
        hg = avs_tensor_set_to_host(&grads); /* arena order: offsets as on the device */
        for (int i = 0; i < h->np; i++) {
            snprintf(nm, sizeof nm, "grad.%s", h->pspec[i].name);
            avs_st_writer_add_f32(wr, nm, grads.t[i].ndim, grads.t[i].shape,
                                  hg + (grads.t[i].data - grads.arena.base));
        }
        for (int s = 0; s < 4; s++) {
            int sh[4] = {B, c->C[s], c->H[s], c->W[s]};
            hx[s] = avs_host_from_dev(dx[s], xn[s]);
            snprintf(nm, sizeof nm, "grad.x%d", s + 1);
            avs_st_writer_add_f32(wr, nm, 4, sh, hx[s]);
        }
        hda = avs_host_from_dev(daudio, na);
        avs_st_writer_add_f32(wr, "grad.audio", 3, as, hda);
    }
    hb = avs_tensor_set_to_host(&h->bufs);
    for (int i = 0; o->train && i < h->nb; i++) {
        snprintf(nm, sizeof nm, "buf.%s", h->bspec[i].name);
        avs_st_writer_add_f32(wr, nm, h->bufs.t[i].ndim, h->bufs.t[i].shape,
                              hb + (h->bufs.t[i].data - h->bufs.arena.base));
    }
    rc = avs_st_writer_save(wr, o->out, err);
out:
    avs_st_writer_free(&wr);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&x[s]), avs_dev_free(&dx[s]), free(hx[s]);
    avs_dev_free(&audio), avs_dev_free(&daudio), avs_dev_free(&dl);
    free(tmp), free(hl), free(hg), free(hb), free(hda);
    avs_st_close(&df);
    avs_c3n_ref_free(&r);
    avs_tensor_set_free(&grads);
    return rc;
}

static int cmd_run_ref(const struct opts *o, struct avs_err *err)
{
    if (!o->weights || !o->inputs || !o->out) {
        avs_err_set(err, "run c3n_ref needs --weights, --inputs and --out (see --help)");
        return 1;
    }
    int rc = -1, N = 0;
    struct avs_st_file *in = NULL, *wf = NULL;
    struct avs_c3n_cfg cfg;
    struct avs_c3n_head h;
    if (avs_st_open(o->inputs, &in, err) || avs_st_open(o->weights, &wf, err) ||
        cfg_from_files(&cfg, &N, in, wf, err)) {
        avs_st_close(&in), avs_st_close(&wf);
        return 3;
    }
    avs_st_close(&wf);
    if (cfg.avsbench) {
        avs_st_close(&in);
        avs_err_set(err, "%s: weights of the AVSBench baseline (conv1.conv2d_list): the reference "
                    "model is C3N's; run them with `avs-model run c3n_head`", o->weights);
        return 3;
    }
    avs_c3n_head_init(&h, &cfg, N);
    if (avs_c3n_head_load(&h, o->weights, err) == 0)
        rc = run_ref_save(o, &h, in, err);
    avs_c3n_head_free(&h);
    avs_st_close(&in);
    return rc ? 3 : 0;
}

/* ---- bench ---- */

static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double mb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            mb = atof(line + 6) / 1024.0;
    if (f)
        fclose(f);
    return mb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(float *p, size_t n, unsigned long long *s, float scale)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = scale * ((float)(*s >> 40) / 8388608.0f - 1.0f);
    }
}

static int cmd_bench_sgemm(const struct opts *o)
{
    int n = o->size ? o->size : 2048;
    openblas_set_num_threads(avs_ops_threads()); /* OpenBLAS's own threading, for the peak */
    float *a = avs_malloc((size_t)n * n * 4), *b = avs_malloc((size_t)n * n * 4), *c = avs_malloc((size_t)n * n * 4);
    unsigned long long s = 1;
    fill(a, (size_t)n * n, &s, 1), fill(b, (size_t)n * n, &s, 1);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = avs_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = avs_now() - t0;
        if (t < best)
            best = t;
    }
    double gf = 2.0 * n * n * n / best / 1e9;
    /* blas_core: the OpenBLAS kernels this process runs (bench scripts give a peer the same) */
    const char *core = openblas_get_corename();
    if (o->json)
        printf("{\"sgemm_gflops\": %.1f, \"size\": %d, \"threads\": %d, \"blas_core\": \"%s\"}\n", gf, n,
               avs_ops_threads(), core);
    else
        printf("sgemm_gflops=%.1f size=%d threads=%d blas_core=%s\n", gf, n, avs_ops_threads(), core);
    free(a), free(b), free(c);
    return 0;
}

static int cmd_bench_head(const struct opts *o)
{
    struct avs_c3n_cfg cfg;
    avs_c3n_cfg_default(&cfg, o->size ? o->size : 224);
    struct avs_c3n_head h;
    int N = o->videos > 0 ? o->videos : 1, S = o->steps > 0 ? o->steps : 5;
    avs_c3n_head_init(&h, &cfg, N);
    avs_c3n_head_init_random(&h, o->seed);
    unsigned long long s = o->seed + 7;
    float *x[4]; /* inputs made on the host, uploaded; all else is device memory */
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)h.B * cfg.C[i] * cfg.H[i] * cfg.W[i];
        float *hx = avs_malloc(n * sizeof(float));
        fill(hx, n, &s, 1.0f);
        x[i] = avs_dev_from_host(hx, n);
        free(hx);
    }
    size_t nl = (size_t)h.B * 16 * cfg.H[0] * cfg.W[0], na = (size_t)h.B * cfg.A;
    float *ha = avs_malloc(na * sizeof(float)), *hm = avs_malloc(nl * 4);
    fill(ha, na, &s, 1.0f);
    for (size_t i = 0; i < nl; i++)
        hm[i] = (i / 97) % 3 == 0 ? 1.0f : 0.0f;
    float *audio = avs_dev_from_host(ha, na), *mask = avs_dev_from_host(hm, nl);
    free(ha), free(hm);
    float *dl = avs_dev_alloc(nl, "dlogits"), *sl = avs_dev_alloc(2 * nl, "loss scratch");
    float *sm = avs_dev_alloc(nl, "loss scratch");
    double *t = avs_malloc((size_t)S * sizeof(double)), flops = 0, loss = 0;
    for (int k = 0; k < S; k++) {
        if (o->profile && k == 1) /* the first step (page faults, plans) is not a steady one */
            avs_ops_profile(1);
        avs_ops_flops(1);
        double t0 = avs_now();
        avs_c3n_head_zero_grad(&h);
        avs_c3n_head_fwd(&h, (const float *const *)x, audio, 1);
        loss = avs_c3n_head_loss(&h, mask, NULL, dl, sl, sm);
        avs_c3n_head_bwd(&h, dl, NULL, NULL);
        avs_c3n_head_adam(&h, 1e-4);
        t[k] = avs_now() - t0;
        flops = avs_ops_flops(1);
    }
    if (o->profile && S > 1) {
        avs_ops_profile_print(stderr, S - 1);
        avs_ops_profile(0);
    }
    qsort(t, (size_t)S, sizeof *t, cmp_double);
    double med = t[S / 2], gf = flops / med / 1e9, mb = peak_rss_mb();
    if (o->json)
        printf("{\"step_seconds\": %.4f, \"gflops\": %.1f, \"step_gflop\": %.1f, \"peak_rss_mb\": %.0f, "
               "\"loss\": %.6f, \"videos\": %d, \"threads\": %d}\n", med, gf, flops / 1e9, mb, loss, N,
               avs_ops_threads());
    else
        printf("step_seconds=%.4f gflops=%.1f step_gflop=%.1f peak_rss_mb=%.0f loss=%.6f videos=%d "
               "threads=%d\n", med, gf, flops / 1e9, mb, loss, N, avs_ops_threads());
    for (int i = 0; i < 4; i++)
        avs_dev_free(&x[i]);
    avs_dev_free(&audio), avs_dev_free(&mask), avs_dev_free(&dl), avs_dev_free(&sl);
    avs_dev_free(&sm), free(t);
    avs_c3n_head_free(&h);
    return 0;
}

/* ---- run logmel / features ---- */

/* Tensor `name` of f as a malloc'd float array of *n elements, its shape in shape[ndim]. */
static float *read_alloc(const struct avs_st_file *f, const char *name, size_t *n, int *ndim,
                         int64_t *shape, struct avs_err *err)
{
    const struct avs_st_tensor *t = avs_st_find(f, name);
    if (!t) {
        avs_err_set(err, "%s: missing tensor \"%s\"", f->path, name);
        return NULL;
    }
    float *p = avs_malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (avs_st_read_f32(t, p, t->numel, err)) {
        avs_err_wrap(err, "%s", f->path);
        free(p);
        return NULL;
    }
    *n = t->numel;
    if (ndim)
        *ndim = t->ndim;
    for (int d = 0; shape && d < t->ndim; d++)
        shape[d] = t->shape[d];
    return p;
}

static int cmd_run_logmel(const struct opts *o, struct avs_err *err)
{
    int rc = 3, ndim = 0, have_m = 0;
    int64_t shape[AVS_ST_MAXDIM];
    size_t S = 0;
    struct avs_st_file *in = NULL;
    struct avs_st_writer *wr = NULL;
    struct avs_logmel m;
    float *wave = NULL, *ex = NULL;
    int pol = o->policy ? avs_logmel_policy_parse(o->policy) : AVS_LOGMEL_STREAM;
    if (!o->inputs || !o->out || pol < 0 || o->examples < 0) {
        avs_err_set(err, "run logmel needs --inputs and --out; --policy is stream or second, "
                    "--examples N >= 1 (see --help)");
        return 1;
    }
    if (avs_st_open(o->inputs, &in, err) || !(wave = read_alloc(in, "wave", &S, &ndim, shape, err)))
        goto out;
    if (ndim != 1) {
        avs_err_set(err, "%s: tensor \"wave\" has %d dims; expected one (mono samples [S] at 16 kHz)",
                    o->inputs, ndim);
        goto out;
    }
    int64_t n = o->examples ? o->examples : avs_logmel_count((int64_t)S, (enum avs_logmel_policy)pol);
    if (n < 1)
        n = 1; /* let avs_logmel_examples say why there is none */
    if (avs_logmel_init(&m, err))
        goto out;
    have_m = 1;
    ex = avs_malloc((size_t)n * AVS_LOGMEL_EXAMPLE * sizeof(float));
    if (avs_logmel_examples(&m, ex, n, wave, (int64_t)S, (enum avs_logmel_policy)pol, err)) {
        avs_err_wrap(err, "%s", o->inputs);
        goto out;
    }
    wr = avs_st_writer_new();
    int es[3] = {(int)n, AVS_LOGMEL_FRAMES, AVS_LOGMEL_MELS};
    avs_st_writer_add_f32(wr, "examples", 3, es, ex);
    avs_st_writer_meta(wr, "policy", avs_logmel_policy_name((enum avs_logmel_policy)pol));
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    rc = 0;
out:
    if (have_m)
        avs_logmel_free(&m);
    avs_st_writer_free(&wr);
    avs_st_close(&in);
    free(wave);
    free(ex);
    return rc;
}

static int cmd_run_c3im(const struct opts *o, struct avs_err *err)
{
    int rc = 3, nd[3];
    int64_t sh[3][AVS_ST_MAXDIM];
    size_t n[3];
    float *x[3] = {0}, *wmax = NULL;
    int *t = NULL, *tv = NULL;
    int64_t *t64 = NULL;
    struct avs_st_file *in = NULL;
    struct avs_st_writer *wr = NULL;
    const char *names[3] = {"vlogits", "alogits", "sim"};
    if (!o->inputs || !o->out) {
        avs_err_set(err, "run c3im needs --inputs and --out (see --help)");
        return 1;
    }
    if (avs_st_open(o->inputs, &in, err))
        goto out;
    for (int i = 0; i < 3; i++)
        if (!(x[i] = read_alloc(in, names[i], &n[i], &nd[i], sh[i], err)))
            goto out;
    if (nd[0] != 2 || nd[1] != 2 || nd[2] != 2 || sh[0][0] != sh[1][0] || sh[2][0] != sh[0][1] ||
        sh[2][1] != sh[1][1] || sh[0][1] < 1 || sh[1][1] < 1) {
        avs_err_set(err, "%s: expected vlogits [N,V], alogits [N,A] and sim [V,A] with matching N, "
                    "V and A", o->inputs);
        goto out;
    }
    int N = (int)sh[0][0], V = (int)sh[0][1], A = (int)sh[1][1];
    t = avs_malloc((size_t)(N + 1) * sizeof(int));
    tv = avs_malloc((size_t)(N + 1) * sizeof(int));
    wmax = avs_malloc((size_t)(N + 1) * sizeof(float));
    t64 = avs_malloc((size_t)(2 * N + 1) * sizeof(int64_t));
    avs_c3im(t, tv, wmax, x[0], x[1], x[2], N, V, A, (float)o->alpha, (float)o->beta);
    for (int i = 0; i < N; i++)
        t64[i] = t[i], t64[N + i] = tv[i];
    wr = avs_st_writer_new();
    int64_t s1[1] = {N};
    int s1i[1] = {N};
    avs_st_writer_add(wr, "target", AVS_ST_I64, 1, s1, t64);
    avs_st_writer_add(wr, "target_v", AVS_ST_I64, 1, s1, t64 + N);
    avs_st_writer_add_f32(wr, "wmax", 1, s1i, wmax);
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    rc = 0;
out:
    avs_st_writer_free(&wr);
    avs_st_close(&in);
    for (int i = 0; i < 3; i++)
        free(x[i]);
    free(t), free(tv), free(wmax), free(t64);
    return rc;
}

static int cmd_run_ccam(const struct opts *o, struct avs_err *err)
{
    int rc = 3, nd[2];
    int64_t sh[2][AVS_ST_MAXDIM];
    size_t n[2];
    float *x = NULL, *cw = NULL, *out = NULL;
    struct avs_st_file *in = NULL;
    struct avs_st_writer *wr = NULL;
    if (!o->inputs || !o->out) {
        avs_err_set(err, "run ccam needs --inputs and --out (see --help)");
        return 1;
    }
    if (avs_st_open(o->inputs, &in, err) || !(x = read_alloc(in, "x", &n[0], &nd[0], sh[0], err)) ||
        !(cw = read_alloc(in, "weights", &n[1], &nd[1], sh[1], err)))
        goto out;
    if (nd[0] != 4 || nd[1] != 2 || sh[1][0] != sh[0][0] || sh[1][1] != sh[0][1] || !n[0]) {
        avs_err_set(err, "%s: expected x [N,C,H,W] and weights [N,C] with matching N and C", o->inputs);
        goto out;
    }
    int N = (int)sh[0][0], C = (int)sh[0][1], HW = (int)(sh[0][2] * sh[0][3]);
    /* device: the inputs uploaded, the outputs and saved state; out comes back to the host */
    float *dxx = avs_dev_from_host(x, n[0]), *dcw = avs_dev_from_host(cw, n[1]);
    float *dout = avs_dev_alloc(n[0], "ccam out"), *dx1 = avs_dev_alloc(n[0], "ccam x1");
    float *ds = avs_dev_alloc((size_t)N * C, "ccam s"), *dsm = avs_dev_alloc((size_t)N * HW, "ccam sm");
    avs_ccam_fwd(dout, ds, dx1, dsm, dxx, dcw, N, C, HW);
    out = avs_host_from_dev(dout, n[0]);
    avs_dev_free(&dxx), avs_dev_free(&dcw), avs_dev_free(&dout), avs_dev_free(&dx1);
    avs_dev_free(&ds), avs_dev_free(&dsm);
    wr = avs_st_writer_new();
    int os[4] = {N, C, (int)sh[0][2], (int)sh[0][3]};
    avs_st_writer_add_f32(wr, "out", 4, os, out);
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    rc = 0;
out:
    avs_st_writer_free(&wr);
    avs_st_close(&in);
    free(x), free(cw), free(out);
    return rc;
}

static int cmd_run_labelsim(const struct opts *o, struct avs_err *err)
{
    int rc = 3, nv = 0, na = 0;
    char **cv = NULL, **ca = NULL;
    struct avs_wordset ws = {0};
    struct avs_wordvec *wv = NULL;
    struct avs_st_writer *wr = NULL;
    float *S = NULL;
    const char *fv = o->cls_v ? o->cls_v : "features/data/imagenet1k_classes.txt";
    const char *fa = o->cls_a ? o->cls_a : "features/data/audioset_class_labels_indices.csv";
    if (!o->vectors || !o->out) {
        avs_err_set(err, "run labelsim needs --vectors and --out (see --help)");
        return 1;
    }
    if (avs_labels_read(fv, &cv, &nv, err) || avs_labels_read(fa, &ca, &na, err))
        goto out;
    avs_wordset_from_labels(&ws, (const char *const *)cv, nv, (const char *const *)ca, na);
    if (avs_wordvec_load(&wv, o->vectors, &ws, err))
        goto out;
    S = avs_malloc((size_t)nv * na * sizeof(float));
    avs_labelsim_build(S, wv, (const char *const *)cv, nv, (const char *const *)ca, na);
    wr = avs_st_writer_new();
    int shp[2] = {nv, na};
    avs_st_writer_add_f32(wr, "sim", 2, shp, S);
    avs_st_writer_meta(wr, "vectors", o->vectors);
    avs_st_writer_meta(wr, "vectors_format", wv->format);
    avs_st_writer_meta(wr, "classes_visual", fv);
    avs_st_writer_meta(wr, "classes_audio", fa);
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    if (o->db) {
        sqlite3 *db = NULL;
        int64_t id = 0;
        if (avs_db_open(o->db, &db, err) || avs_labelsim_store(db, o->vectors, S, nv, na, &id, err)) {
            avs_db_close(&db);
            goto out;
        }
        avs_db_close(&db);
        avs_log_info("labelsim: stored in %s (label_similarity id %lld)", o->db, (long long)id);
    }
    avs_log_info("labelsim: %lld of %lld words used, dim %d", (long long)wv->n,
                 (long long)wv->n_file, wv->dim);
    rc = 0;
out:
    avs_st_writer_free(&wr);
    free(S);
    avs_wordvec_free(&wv);
    avs_wordset_free(&ws);
    avs_labels_free(&cv, nv);
    avs_labels_free(&ca, na);
    return rc;
}

static int cmd_run_vggish(const struct opts *o, struct avs_err *err)
{
    int rc = 3, nd = 0, have_m = 0;
    int64_t sh[AVS_ST_MAXDIM];
    size_t nx = 0;
    float *x = NULL, *emb = NULL, *lg = NULL;            /* host */
    float *xd = NULL, *ws = NULL, *embd = NULL, *lgd = NULL; /* device */
    struct avs_st_file *in = NULL;
    struct avs_st_writer *wr = NULL;
    struct avs_vggish m;
    if ((!o->weights && !o->random_init) || !o->inputs || !o->out) {
        avs_err_set(err, "run vggish needs --weights (or --random-init), --inputs and --out (see --help)");
        return 1;
    }
    if (avs_st_open(o->inputs, &in, err) || !(x = read_alloc(in, "examples", &nx, &nd, sh, err)))
        goto out;
    if (nd != 3 || sh[1] != 96 || sh[2] != 64 || sh[0] < 1 || sh[0] > 1 << 20) {
        avs_err_set(err, "%s: tensor \"examples\" must be [N,96,64] log-mel examples (avs-model run "
                    "logmel makes them)", o->inputs);
        goto out;
    }
    if (o->random_init)
        avs_vggish_init_random(&m, 527, o->init_seed);
    else if (avs_vggish_load(&m, o->weights, o->head, err))
        goto out;
    have_m = 1;
    int N = (int)sh[0], E = m.fc[2], K = m.classes;
    /* on the backend: the examples up, the embeddings and logits back */
    xd = avs_dev_from_host(x, nx);
    ws = avs_dev_alloc(avs_vggish_ws(&m, N), "VGGish scratch");
    embd = avs_dev_alloc((size_t)N * E, "VGGish embeddings");
    lgd = K ? avs_dev_alloc((size_t)N * K, "VGGish logits") : NULL;
    avs_vggish_fwd(&m, embd, lgd, xd, N, ws);
    emb = avs_host_from_dev(embd, (size_t)N * E);
    lg = K ? avs_host_from_dev(lgd, (size_t)N * K) : NULL;
    wr = avs_st_writer_new();
    int es[2] = {N, E}, ls[2] = {N, K};
    avs_st_writer_add_f32(wr, "embedding", 2, es, emb);
    if (K)
        avs_st_writer_add_f32(wr, "logits", 2, ls, lg);
    if (avs_st_writer_save(wr, o->out, err))
        goto out;
    rc = 0;
out:
    if (have_m)
        avs_vggish_free(&m);
    avs_st_writer_free(&wr);
    avs_st_close(&in);
    free(x), free(emb), free(lg);
    avs_dev_free(&xd), avs_dev_free(&ws), avs_dev_free(&embd), avs_dev_free(&lgd);
    return rc;
}

static int cmd_bench_logmel(const struct opts *o)
{
    int S = 60 * AVS_LOGMEL_RATE, R = o->steps > 0 ? o->steps : 5;
    unsigned long long seed = o->seed;
    struct avs_logmel m;
    struct avs_err err;
    if (avs_logmel_init(&m, &err)) {
        fprintf(stderr, "avs-model: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    float *w = avs_malloc((size_t)S * sizeof(float));
    fill(w, (size_t)S, &seed, 0.3f);
    int64_t n = avs_logmel_count(S, AVS_LOGMEL_STREAM);
    float *ex = avs_malloc((size_t)n * AVS_LOGMEL_EXAMPLE * sizeof(float));
    double best = 1e30;
    for (int r = 0; r < R + 1; r++) {
        double t0 = avs_now();
        avs_logmel_examples(&m, ex, n, w, S, AVS_LOGMEL_STREAM, &err);
        double t = avs_now() - t0;
        if (r && t < best)
            best = t;
    }
    if (o->json)
        printf("{\"logmel_seconds\": %.5f, \"audio_seconds\": 60, \"threads\": %d}\n", best,
               avs_ops_threads());
    else
        printf("logmel_seconds=%.5f audio_seconds=60 threads=%d\n", best, avs_ops_threads());
    free(w), free(ex);
    avs_logmel_free(&m);
    return 0;
}

static int cmd_bench_pvt(const struct opts *o, const char *variant)
{
    struct avs_pvt_cfg cfg;
    struct avs_pvt m;
    struct avs_err err;
    if ((!o->weights && !o->random_init) || avs_pvt_cfg_variant(&cfg, variant)) {
        fprintf(stderr, "avs-model: bench %s needs --weights or --random-init (variants "
                "pvt_v2_b0..b5)\n", variant);
        return AVS_EXIT_USAGE;
    }
    if (o->random_init)
        avs_pvt_init_random(&m, &cfg, o->init_seed);
    else if (avs_pvt_load(&m, &cfg, o->weights, &err)) {
        fprintf(stderr, "avs-model: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    int S = o->size ? o->size : 224, R = o->steps > 0 ? o->steps : 5, N = o->batch;
    if (N < 0) {
        fprintf(stderr, "avs-model: --batch: expected a number of images >= 1\n");
        return AVS_EXIT_USAGE;
    }
    N = N ? N : 1;
    int *target = avs_malloc((size_t)N * sizeof(int));
    for (int i = 0; i < N; i++)
        target[i] = i % m.cfg.classes;
    unsigned long long seed = o->seed;
    /* device buffers and the workspace, made once: the timed passes allocate nothing */
    size_t img = (size_t)N * 3 * S * S;
    float *xh = avs_malloc(img * sizeof(float)), *st[4], *gc[4];
    fill(xh, img, &seed, 1.0f);
    float *x = avs_dev_from_host(xh, img);
    float *lg = avs_dev_alloc((size_t)N * m.cfg.classes + 1, "logits");
    for (int s = 0; s < 4; s++) {
        int side = avs_pvt_side(S, s);
        st[s] = avs_dev_alloc((size_t)N * m.cfg.dims[s] * side * side, "stage maps");
        gc[s] = avs_dev_alloc((size_t)N * m.cfg.dims[s], "Grad-CAM weights");
    }
    struct avs_pvt_ws ws;
    avs_pvt_ws_init(&ws, &m, N, S, S, AVS_PVT_GRADCAM);
    double tf = 1e30, tg = 1e30;
    for (int r = 0; r < R + 1; r++) { /* the first run warms up */
        double t0 = avs_now();
        avs_pvt_fwd(&m, &ws, st, lg, x, N);
        avs_ops()->sync();
        double t1 = avs_now();
        avs_pvt_gradcam(&m, &ws, gc, st, lg, x, target, N);
        avs_ops()->sync();
        double t2 = avs_now();
        if (r && t1 - t0 < tf)
            tf = t1 - t0;
        if (r && t2 - t1 < tg)
            tg = t2 - t1;
    }
    if (o->json)
        printf("{\"fwd_seconds\": %.4f, \"gradcam_seconds\": %.4f, \"size\": %d, \"batch\": %d, "
               "\"threads\": %d, \"device\": \"%s\"}\n", tf, tg, S, N, avs_ops_threads(), avs_ops_device());
    else
        printf("fwd_seconds=%.4f gradcam_seconds=%.4f size=%d batch=%d threads=%d\n", tf, tg, S, N,
               avs_ops_threads());
    for (int s = 0; s < 4; s++)
        avs_dev_free(&st[s]), avs_dev_free(&gc[s]);
    avs_dev_free(&x), avs_dev_free(&lg);
    free(xh), free(target);
    avs_pvt_ws_free(&ws);
    avs_pvt_free(&m);
    return 0;
}

static int cmd_run_pvt(const struct opts *o, const char *variant, struct avs_err *err)
{
    struct avs_pvt_cfg cfg;
    if ((!o->weights && !o->random_init) || !o->inputs || !o->out || avs_pvt_cfg_variant(&cfg, variant)) {
        avs_err_set(err, "run %s needs --weights (or --random-init), --inputs and --out; variants "
                    "are pvt_v2_b0..pvt_v2_b5 (see --help)", variant);
        return 1;
    }
    struct avs_pvt_files f = {variant, o->weights, o->inputs, o->target, o->grad_out, o->out,
                              o->random_init, o->init_seed};
    return avs_pvt_run_files(&f, err) ? 3 : 0;
}

static int cmd_run_swin(const struct opts *o, const char *variant, struct avs_err *err)
{
    struct avs_swin_files f = {variant, o->weights, o->inputs, o->target, o->out, o->random_init,
                               o->init_seed};
    return avs_swin_run_files(&f, err) ? 3 : 0;
}

/* One tool option into the struct opts at ctx (avs_cli_parse). */
static int tool_option(void *ctx, int c, const char *arg)
{
    struct opts *o = ctx;
    switch (c) {
    case OPT_WEIGHTS: o->weights = arg; break;
    case OPT_INPUTS: o->inputs = arg; break;
    case OPT_OUT: o->out = arg; break;
    case OPT_GRAD_OUT: o->grad_out = arg; break;
    case OPT_TRAIN: o->train = 1; break;
    case OPT_AV_MATCH: o->av_match = strtod(arg, NULL); break;
    case OPT_VIDEOS: o->videos = atoi(arg); break;
    case OPT_STEPS: o->steps = atoi(arg); break;
    case OPT_SIZE: o->size = atoi(arg); break;
    case OPT_SEED: o->seed = strtoull(arg, NULL, 10); break;
    case OPT_POLICY: o->policy = arg; break;
    case OPT_EXAMPLES: o->examples = atoi(arg); if (o->examples < 1) o->examples = -1; break;
    case OPT_VECTORS: o->vectors = arg; break;
    case OPT_HEAD: o->head = arg; break;
    case OPT_TARGET: o->target = arg; break;
    case OPT_RANDOM_INIT: o->random_init = 1; o->init_seed = strtoull(arg, NULL, 10); break;
    case OPT_CLS_V: o->cls_v = arg; break;
    case OPT_CLS_A: o->cls_a = arg; break;
    case AVS_OPT_JSON: o->json = 1; break;
    case OPT_PROFILE: o->profile = 1; break;
    case OPT_BATCH: o->batch = atoi(arg); if (o->batch < 1) o->batch = -1; break;
    case OPT_ALPHA:
    case OPT_BETA: {
        struct avs_err e;
        if (avs_c3im_parse(c == OPT_ALPHA ? "--alpha" : "--beta", arg,
                           c == OPT_ALPHA ? &o->alpha : &o->beta, &e)) {
            fprintf(stderr, "avs-model: %s\n", e.msg);
            return 1;
        }
        break;
    }
    default: usage(stderr); return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        AVS_CLI_LONG_OPTIONS,
        AVS_CLI_DEVICE_OPTION,
        {"weights", required_argument, 0, OPT_WEIGHTS},
        {"inputs", required_argument, 0, OPT_INPUTS},
        {"out", required_argument, 0, OPT_OUT},
        {"grad-out", required_argument, 0, OPT_GRAD_OUT},
        {"train", no_argument, 0, OPT_TRAIN},
        {"av-match", required_argument, 0, OPT_AV_MATCH},
        {"videos", required_argument, 0, OPT_VIDEOS},
        {"steps", required_argument, 0, OPT_STEPS},
        {"size", required_argument, 0, OPT_SIZE},
        {"seed", required_argument, 0, OPT_SEED},
        {"policy", required_argument, 0, OPT_POLICY},
        {"examples", required_argument, 0, OPT_EXAMPLES},
        {"vectors", required_argument, 0, OPT_VECTORS},
        {"head", required_argument, 0, OPT_HEAD},
        {"target", required_argument, 0, OPT_TARGET},
        {"random-init", required_argument, 0, OPT_RANDOM_INIT},
        {"classes-visual", required_argument, 0, OPT_CLS_V},
        {"classes-audio", required_argument, 0, OPT_CLS_A},
        {"json", no_argument, 0, AVS_OPT_JSON},
        {"profile", no_argument, 0, OPT_PROFILE},
        {"batch", required_argument, 0, OPT_BATCH},
        {"alpha", required_argument, 0, OPT_ALPHA},
        {"beta", required_argument, 0, OPT_BETA},
        {0, 0, 0, 0},
    };
    avs_ops_tune_process(argv);
    struct avs_cli cli;
    struct opts o = {0};
    o.seed = 1;
    o.alpha = AVS_C3IM_ALPHA, o.beta = AVS_C3IM_BETA;
    avs_cli_defaults(&cli);
    int parsed = avs_cli_parse(&cli, argc, argv, "j:hq", lo, tool_option, &o, usage, "avs-model");
    if (parsed >= 0)
        return parsed;
    if (optind + 2 != argc) {
        usage(stderr);
        return AVS_EXIT_USAGE;
    }
    const char *cmd = argv[optind], *what = argv[optind + 1];
    if (o.size && (o.size < 32 || o.size % 32 || o.size > 4096)) {
        fprintf(stderr, "avs-model: --size %d: expected a multiple of 32 from 32 to 4096\n", o.size);
        return AVS_EXIT_USAGE;
    }
    {
        struct avs_err derr;
        if (avs_backend_setup("avs-model", cli.device, cli.precision, cli.jobs, cli.quiet,
                              &derr)) {
            fprintf(stderr, "avs-model: %s\n", derr.msg);
            return AVS_EXIT_USAGE;
        }
    }
    o.db = cli.db;
    struct avs_err err = {0};
    if (!strcmp(cmd, "run") && (!strcmp(what, "c3n_head") || !strcmp(what, "c3n_ref"))) {
        int rc = !strcmp(what, "c3n_head") ? cmd_run(&o, &err) : cmd_run_ref(&o, &err);
        if (rc)
            fprintf(stderr, "avs-model: %s\n", err.msg);
        return rc;
    }
    if (!strcmp(cmd, "run") && (!strcmp(what, "logmel") || !strcmp(what, "c3im") ||
                                !strcmp(what, "labelsim") || !strcmp(what, "vggish") ||
                                !strcmp(what, "ccam"))) {
        int rc = !strcmp(what, "logmel") ? cmd_run_logmel(&o, &err)
                 : !strcmp(what, "c3im") ? cmd_run_c3im(&o, &err)
                 : !strcmp(what, "vggish") ? cmd_run_vggish(&o, &err)
                 : !strcmp(what, "ccam")   ? cmd_run_ccam(&o, &err)
                                         : cmd_run_labelsim(&o, &err);
        if (rc)
            fprintf(stderr, "avs-model: %s\n", err.msg);
        return rc;
    }
    if (!strcmp(cmd, "run") && !strncmp(what, "swin_", 5)) {
        int rc = cmd_run_swin(&o, what, &err);
        if (rc)
            fprintf(stderr, "avs-model: %s\n", err.msg);
        return rc;
    }
    if (!strcmp(cmd, "run") && !strcmp(what, "resnet50")) {
        if (!o.weights || !o.inputs || !o.out) {
            fprintf(stderr, "avs-model: run resnet50 needs --weights, --inputs and --out\n");
            return AVS_EXIT_USAGE;
        }
        int rc = avs_resnet_run_files(o.weights, o.inputs, o.out, &err) ? 3 : 0;
        if (rc)
            fprintf(stderr, "avs-model: %s\n", err.msg);
        return rc;
    }
    if (!strcmp(cmd, "run") && !strncmp(what, "pvt_v2_", 7)) {
        int rc = cmd_run_pvt(&o, what, &err);
        if (rc)
            fprintf(stderr, "avs-model: %s\n", err.msg);
        return rc;
    }
    if (!strcmp(cmd, "bench") && !strcmp(what, "logmel"))
        return cmd_bench_logmel(&o);
    if (!strcmp(cmd, "bench") && !strncmp(what, "pvt_v2_", 7))
        return cmd_bench_pvt(&o, what);
    if (!strcmp(cmd, "bench") && !strcmp(what, "c3n_head"))
        return cmd_bench_head(&o);
    if (!strcmp(cmd, "bench") && !strcmp(what, "sgemm"))
        return cmd_bench_sgemm(&o);
    fprintf(stderr, "avs-model: unknown command \"%s %s\" (run c3n_head|c3n_ref|logmel|vggish|pvt_v2_b0..b5|swin_t|swin_s|swin_b|swin_b_w12|resnet50|c3im|ccam|labelsim, bench c3n_head|sgemm)\n",
            cmd, what);
    return AVS_EXIT_USAGE;
}
