/* bench/fuzz/fuzz_logits.c: avs-predict's ".logits" files as avs-eval reads them
 * (eval/logits.c; eval/avss_read.c for AVSS class logits -> 224x224 class map). */
#include "bench/fuzz/fuzz.h"
#include "eval/avss.h"
#include "eval/eval.h"

int avs_fuzz_logits(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_logits(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.logits", data, size);
    float *x = NULL;
    int c = 0, w = 0, h = 0;
    if (avs_logits_read_c(path, &x, &c, &w, &h, err))
        return -1;
    free(x);
    AVS_ASSERT(c >= 1 && w >= 1 && h >= 1);
    int rc;
    if (c == 1) {
        rc = avs_logits_read(path, &x, &w, &h, err);
        free(x);
    } else {
        uint8_t *out = avs_malloc(224 * 224);
        rc = avs_avss_read_pred(path, c, out, err);
        free(out);
    }
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_logits)
