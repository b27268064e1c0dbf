/* audiohead/pca.c: the release's embedding postprocessing (audiohead.h; ref: torchvggish
 * vggish.Postprocessor.postprocess and the TF vggish_postprocess.py):
 *   pca = E (x - mu); clip to [-2, 2]; byte = round((pca + 2) * 255 / 4); q = (byte - 128) / 128 */
#include <math.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "core/safetensors.h"

static const struct avs_st_tensor *find_any(const struct avs_st_file *f, const char *a,
                                            const char *b)
{
    const struct avs_st_tensor *t = avs_st_find(f, a);
    return t ? t : avs_st_find(f, b);
}

int avs_ah_pca_load(struct avs_ah_pca *p, const char *path, struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    int rc = -1;
    memset(p, 0, sizeof *p);
    if (avs_st_open(path, &f, err))
        return -1;
    const struct avs_st_tensor *e = find_any(f, "pca_eigen_vectors", "pproc._pca_matrix");
    const struct avs_st_tensor *m = find_any(f, "pca_means", "pproc._pca_means");
    if (!e || !m) {
        avs_err_set(err, "%s: no VGGish PCA parameters (pca_eigen_vectors [128,128] + pca_means "
                    "[128], or pproc._pca_matrix + pproc._pca_means): convert torchvggish's "
                    "vggish_pca_params .pth with tools/convert_checkpoint.py", path);
        goto out;
    }
    if (e->numel != AVS_AH_EMB * AVS_AH_EMB || m->numel != AVS_AH_EMB) {
        avs_err_set(err, "%s: PCA tensors of %zu and %zu values, need 128x128 and 128", path,
                    e->numel, m->numel);
        goto out;
    }
    if (avs_st_read_f32(e, p->E, e->numel, err) || avs_st_read_f32(m, p->mu, m->numel, err))
        goto out;
    p->have = 1;
    rc = 0;
out:
    avs_st_close(&f);
    return rc;
}

void avs_ah_pca_apply(const struct avs_ah_pca *p, const float *x, float *q)
{
    double c[AVS_AH_EMB];
    for (int j = 0; j < AVS_AH_EMB; j++)
        c[j] = (double)x[j] - p->mu[j];
    for (int i = 0; i < AVS_AH_EMB; i++) {
        double s = 0;
        for (int j = 0; j < AVS_AH_EMB; j++)
            s += (double)p->E[i * AVS_AH_EMB + j] * c[j];
        s = s < -2 ? -2 : s > 2 ? 2 : s;
        double byte = nearbyint((s + 2) * (255.0 / 4.0)); /* half to even, as torch.round */
        q[i] = (float)((byte - 128.0) / 128.0);
    }
}
