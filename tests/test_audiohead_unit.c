/* test_audiohead_unit: audiohead/ pieces without files: CRC32C check values and the TFRecord
 * mask, the protobuf reader on hand-made messages (every truncation of a valid one fails
 * cleanly), AP/AUC/d' on small cases worked by hand, and the head's backward against central
 * finite differences of its loss. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "backend/backend.h"
#include "tests/check.h"

static void test_crc(void)
{
    CHECK(avs_ah_crc32c(0, "123456789", 9) == 0xE3069283u, "CRC-32C check value");
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(avs_ah_crc32c(0, zeros, 32) == 0x8A9136AAu, "RFC 3720 B.4: 32 zero bytes");
    CHECK(avs_ah_crc32c(0, ones, 32) == 0x62A8AB43u, "RFC 3720 B.4: 32 0xff bytes");
    CHECK(avs_ah_crc32c(avs_ah_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u, "chained");
    uint32_t c = 0x12345678u;
    CHECK(avs_ah_crc_mask(c) == (((c >> 15) | (c << 17)) + 0xa282ead8u), "mask");
}

/* append a length-delimited field */
static size_t ld(uint8_t *o, int num, const uint8_t *p, size_t n)
{
    size_t k = 0;
    o[k++] = (uint8_t)(num << 3 | 2);
    AVS_ASSERT(n < 16384);
    if (n < 128)
        o[k++] = (uint8_t)n;
    else
        o[k++] = (uint8_t)(n | 0x80), o[k++] = (uint8_t)(n >> 7);
    memcpy(o + k, p, n);
    return k + n;
}

/* SequenceExample{context{video_id: "vid"; labels: [3, 300]}, feature_lists{audio_embedding: 2 s}} */
static size_t example(uint8_t *out)
{
    uint8_t a[600], b[600], c[1200], e[1200];
    size_t n, m, k = 0, ctx, fl = 0;
    /* video_id entry */
    n = ld(a, 1, (const uint8_t *)"vid", 3);            /* BytesList.value */
    m = ld(b, 1, a, n);                                 /* Feature.bytes_list */
    n = ld(a, 1, (const uint8_t *)"video_id", 8);
    n += ld(a + n, 2, b, m);                            /* map entry */
    k = ld(c, 1, a, n);
    /* labels entry: packed int64 3, 300 */
    const uint8_t packed[3] = {3, 0xac, 0x02};
    n = ld(a, 1, packed, 3);                            /* Int64List.value packed */
    m = ld(b, 3, a, n);                                 /* Feature.int64_list */
    n = ld(a, 1, (const uint8_t *)"labels", 6);
    n += ld(a + n, 2, b, m);
    k += ld(c + k, 1, a, n);
    ctx = ld(out, 1, c, k);                             /* SequenceExample.context */
    /* feature list of 2 seconds */
    uint8_t row[AVS_AH_EMB];
    for (int t = 0; t < 2; t++) {
        memset(row, 100 + t, sizeof row);
        n = ld(a, 1, row, sizeof row);
        m = ld(b, 1, a, n);                             /* Feature{bytes_list{row}} */
        fl += ld(e + fl, 1, b, m);                      /* FeatureList.feature */
    }
    n = ld(a, 1, (const uint8_t *)"audio_embedding", 15);
    uint8_t big[1400];
    memcpy(big, a, n);
    n += ld(big + n, 2, e, fl);
    m = ld(c, 1, big, n);                               /* FeatureLists entry */
    return ctx + ld(out + ctx, 2, c, m);
}

static void test_proto(void)
{
    uint8_t msg[2000];
    size_t n = example(msg);
    struct avs_ah_clip c;
    char why[160];
    int rc = avs_ah_parse_example(msg, n, &c, why, sizeof why);
    CHECK(rc == 0, "parse: %s", why);
    if (!rc) {
        CHECK(!strcmp(c.id, "vid"), "id %s", c.id);
        CHECK(c.n_labels == 2 && c.labels[0] == 3 && c.labels[1] == 300, "labels");
        CHECK(c.T == 2 && c.emb[0] == 100 && c.emb[AVS_AH_EMB] == 101, "embeddings");
        avs_ah_clip_free(&c);
    }
    /* every proper prefix fails or holds less (cut at a field boundary); never reads past it */
    int failed = 0, full = 0;
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = malloc(cut + 1);
        memcpy(p, msg, cut);
        if (avs_ah_parse_example(p, cut, &c, why, sizeof why))
            failed++;
        else {
            full += c.T == 2;
            avs_ah_clip_free(&c);
        }
        free(p);
    }
    printf("truncations: %d of %zu rejected, the rest parse to less\n", failed, n);
    CHECK(full == 0 && failed > (int)n / 2, "%d of %zu truncations rejected, %d complete", failed,
          n, full);
}

static void test_metrics(void)
{
    /* scores 0.9 0.8 0.8 0.3 with labels 1 0 1 0: thresholds 0.9 (P 1, R .5), 0.8 (P 2/3, R 1)
     * AP = .5*1 + .5*(2/3); AUC: pairs (pos, neg) = (0.9,0.8) 1, (0.9,0.3) 1, (0.8,0.8) .5,
     * (0.8,0.3) 1 -> 3.5/4 */
    const float s[4] = {0.9f, 0.8f, 0.8f, 0.3f};
    const uint8_t y[4] = {1, 0, 1, 0};
    CHECK_NEAR(avs_ah_ap(s, y, 4, 1), 0.5 + 0.5 * 2.0 / 3.0, 1e-12, 0, "AP with a tie");
    CHECK_NEAR(avs_ah_auc(s, y, 4, 1), 3.5 / 4, 1e-12, 0, "AUC with a tie");
    const uint8_t none[4] = {0};
    CHECK(isnan(avs_ah_ap(s, none, 4, 1)), "AP without positives is undefined");
    CHECK_NEAR(avs_ah_dprime(0.5), 0, 1e-12, 0, "d'(0.5)");
    CHECK_NEAR(avs_ah_dprime(0.5 * erfc(-1 / sqrt(2.0))), sqrt(2.0), 1e-9, 0, "d'(Phi(1))");
}

static double loss_of(struct avs_ah_head *h, struct avs_ah_data *d, const int *idx, int B,
                      struct avs_ah_ws *w, float *g)
{
    avs_ah_head_fwd(h, d, idx, B, w);
    return avs_ah_head_bwd(h, d, idx, B, w, g);
}

static void test_gradient(void)
{
    enum { D = 6, K = 4, B = 3 };
    struct avs_ah_data d = {.D = D, .K = K, .space = "raw"};
    float x[10 * D];
    uint64_t s = 99;
    for (int i = 0; i < 10 * D; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2 - 1);
    }
    const int64_t l0[] = {0, 2}, l1[] = {1}, l2[] = {3, 0};
    avs_ah_data_push(&d, "a", x, 4, l0, 2);
    avs_ah_data_push(&d, "b", x + 4 * D, 1, l1, 1);
    avs_ah_data_push(&d, "c", x + 5 * D, 5, l2, 2);
    struct avs_ah_head h;
    avs_ah_head_init(&h, D, K, 5);
    for (int k = 0; k < K; k++)
        h.b[k] = 0.1f * (float)k, h.c[k] = -0.2f * (float)k;
    struct avs_ah_ws w;
    avs_ah_ws_init(&w, 10, B, K, D);
    int idx[B] = {0, 1, 2};
    float *g = malloc(h.n * sizeof *g), *g2 = malloc(h.n * sizeof *g2);
    loss_of(&h, &d, idx, B, &w, g);
    double worst = 0;
    for (size_t i = 0; i < h.n; i++) {
        float keep = h.p[i], e = 1e-2f;
        h.p[i] = keep + e;
        double lp = loss_of(&h, &d, idx, B, &w, g2);
        h.p[i] = keep - e;
        double lm = loss_of(&h, &d, idx, B, &w, g2);
        h.p[i] = keep;
        double fd = (lp - lm) / (2.0 * e), err = fabs(fd - g[i]) / (1e-3 + fabs(fd));
        worst = err > worst ? err : worst;
    }
    printf("backward vs central differences: worst relative error %.3g over %zu parameters\n",
           worst, h.n);
    CHECK(worst < 2e-2, "backward vs central differences: worst relative error %.3g", worst);
    free(g), free(g2);
    avs_ah_ws_free(&w);
    avs_ah_head_free(&h);
    avs_ah_data_free(&d);
}

int main(void)
{
    struct avs_err err;
    if (avs_backend_use("cpu", &err))
        SKIP("%s", err.msg);
    test_crc();
    test_proto();
    test_metrics();
    test_gradient();
    return check_summary("test_audiohead_unit");
}
