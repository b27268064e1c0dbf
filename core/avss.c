/* core/avss.c: see avss.h. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <math.h>
#include "core/fs.h"
#include "core/avss.h"

void avs_avss_palette(int idx, uint8_t rgb[3])
{
    AVS_ASSERT(idx >= 0 && idx < (1 << 24));
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int i = 0, lab = idx; lab > 0; i++, lab >>= 3) {
        rgb[0] |= (uint8_t)(((lab >> 0) & 1) << (7 - i));
        rgb[1] |= (uint8_t)(((lab >> 1) & 1) << (7 - i));
        rgb[2] |= (uint8_t)(((lab >> 2) & 1) << (7 - i));
    }
}

int avs_avss_colour_index(uint8_t r, uint8_t g, uint8_t b, int n_classes)
{
    int idx = 0;
    for (int i = 0; i < 8; i++) {
        int digit = ((r >> (7 - i)) & 1) | (((g >> (7 - i)) & 1) << 1) | (((b >> (7 - i)) & 1) << 2);
        idx |= digit << (3 * i);
    }
    return idx < n_classes ? idx : AVS_AVSS_UNKNOWN;
}

int avs_avss_map_colours(const struct avs_image *label, int n_classes, struct avs_image *idx,
                         int64_t *unknown)
{
    struct avs_image out = {0};
    if (avs_image_alloc(&out, label->w, label->h, 1))
        return -1;
    size_t n = (size_t)label->w * (size_t)label->h;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = label->data + i * (size_t)label->c;
        uint8_t r = p[0], g = label->c >= 3 ? p[1] : p[0], b = label->c >= 3 ? p[2] : p[0];
        int c = avs_avss_colour_index(r, g, b, n_classes);
        bad += c == AVS_AVSS_UNKNOWN;
        out.data[i] = (uint8_t)c;
    }
    *idx = out;
    *unknown = bad;
    return 0;
}

int avs_avss_colourise(const struct avs_image *idx, struct avs_image *rgb)
{
    struct avs_image out = {0};
    if (avs_image_alloc(&out, idx->w, idx->h, 3))
        return -1;
    for (size_t i = 0; i < (size_t)idx->w * (size_t)idx->h; i++)
        avs_avss_palette(idx->data[i * (size_t)idx->c], out.data + 3 * i);
    *rgb = out;
    return 0;
}

/* Source index of each destination index along one axis, as Pillow's ImagingScaleAffine
 * (Geometry.c; Image.resize with NEAREST goes there): xo = 0.5 * s/n, then xo += s/n per
 * index in double, index = (int)xo. Mathematically floor((d + 0.5) * s / n), but the running
 * sum can land just below an exact integer (e.g. 64 -> 224, d = 3: 0.99999...), and Pillow
 * then takes the pixel before; so do we. tab [n] out. */
static void nearest_table(int src, int dst, int *tab)
{
    double scale = (double)src / (double)dst, xo = scale * 0.5;
    for (int d = 0; d < dst; d++, xo += scale) {
        int v = xo < 0.0 ? 0 : (int)xo;
        tab[d] = v < src ? v : src - 1;
    }
}

void avs_avss_resize_nearest(const struct avs_image *src, struct avs_image *dst)
{
    AVS_ASSERT(src->c == dst->c);
    size_t c = (size_t)src->c;
    int *xs = avs_malloc(sizeof(int) * (size_t)dst->w), *ys = avs_malloc(sizeof(int) * (size_t)dst->h);
    nearest_table(src->w, dst->w, xs);
    nearest_table(src->h, dst->h, ys);
    for (int y = 0; y < dst->h; y++) {
        const uint8_t *row = src->data + (size_t)ys[y] * (size_t)src->w * c;
        uint8_t *o = dst->data + (size_t)y * (size_t)dst->w * c;
        for (int x = 0; x < dst->w; x++)
            memcpy(o + (size_t)x * c, row + (size_t)xs[x] * c, c);
    }
    free(xs);
    free(ys);
}

/* ---- the release's label2idx.json and metadata.csv ---------------------------------------- */

#define CLASSES_FIX "expected one JSON object {\"background\": 0, \"<class>\": <index>, ...} " \
                    "with each index 0..n-1 exactly once (n <= 255): use the release's own file"

static int check_class(const cJSON *e, char **names, int *seen, const char *path, struct avs_err *err)
{
    double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
    if (!cJSON_IsNumber(e) || v != floor(v) || v < 0 || v >= AVS_AVSS_MAX_CLASSES)
        return avs_err_set(err, "%s: class \"%s\" has index %s, not an integer 0..254; " CLASSES_FIX,
                           path, e->string, cJSON_IsNumber(e) ? "out of range" : "of another type");
    int idx = (int)v;
    if (seen[idx])
        return avs_err_set(err, "%s: index %d is given to both \"%s\" and \"%s\"; " CLASSES_FIX, path,
                           idx, names[idx], e->string);
    seen[idx] = 1;
    names[idx] = avs_strdup(e->string);
    return 0;
}

static int parse_classes(const cJSON *root, const char *path, char **names, int *n, struct avs_err *err)
{
    int seen[AVS_AVSS_MAX_CLASSES] = {0}, count = cJSON_GetArraySize(root);
    if (!cJSON_IsObject(root) || count < 1)
        return avs_err_set(err, "%s: not a non-empty JSON object; " CLASSES_FIX, path);
    if (count > AVS_AVSS_MAX_CLASSES)
        return avs_err_set(err, "%s: %d classes, at most %d fit 8-bit masks; " CLASSES_FIX, path,
                           count, AVS_AVSS_MAX_CLASSES);
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
        if (check_class(e, names, seen, path, err))
            return -1;
    for (int i = 0; i < count; i++)
        if (!seen[i])
            return avs_err_set(err, "%s: %d classes but no class has index %d; " CLASSES_FIX, path,
                               count, i);
    for (int i = 0; i < count; i++)
        for (int k = i + 1; k < count; k++)
            if (!strcmp(names[i], names[k]))
                return avs_err_set(err, "%s: class \"%s\" appears twice; " CLASSES_FIX, path, names[i]);
    *n = count;
    return 0;
}

int avs_avss_read_classes(const char *path, char ***names_out, int *n_out, struct avs_err *err)
{
    char *text;
    size_t len;
    if (avs_fs_read_all(path, &text, &len, err))
        return avs_err_wrap(err, "AVSS class table missing (the release has label2idx.json next "
                                 "to metadata.csv)");
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    char **names = avs_calloc(AVS_AVSS_MAX_CLASSES, sizeof *names);
    int n = 0, rc = root ? parse_classes(root, path, names, &n, err)
                         : avs_err_set(err, "%s: not valid JSON; " CLASSES_FIX, path);
    cJSON_Delete(root);
    if (rc) {
        for (int i = 0; i < AVS_AVSS_MAX_CLASSES; i++)
            free(names[i]);
        free(names);
        return -1;
    }
    *names_out = names;
    *n_out = n;
    return 0;
}


int avs_avss_meta_columns(const struct avs_csv *t, const char *csv, int *uid, int *split,
                          int *label, struct avs_err *err)
{
    *uid = avs_csv_column(t, (const char *const[]){"uid", NULL});
    *split = avs_csv_column(t, (const char *const[]){"split", NULL});
    *label = avs_csv_column(t, (const char *const[]){"label", "set", NULL});
    if (t->n_cols >= 7) { /* the release's positions: vid,uid,s_min,s_sec,a_obj,split,label */
        *uid = *uid < 0 ? 1 : *uid;
        *split = *split < 0 ? 5 : *split;
        *label = *label < 0 ? 6 : *label;
    }
    if (*uid < 0 || *label < 0)
        return avs_err_set(err, "%s: no 'uid' and 'label' columns and fewer than the release's 7 "
                                "(vid,uid,s_min,s_sec,a_obj,split,label): is this the AVSS "
                                "metadata.csv?", csv);
    return 0;
}
