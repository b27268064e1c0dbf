/* bench/fuzz/fuzz_jpeg.c: JPEG stills through libav* (core/jpeg.c), as ingest reads the AVSS
 * release's frames and synth its background photos, and avs-eval's reading of a release
 * frame's size from its SOF marker (eval/avss_read.c), against a fixed 8x8 label. */
#include "bench/fuzz/fuzz.h"
#include "core/image.h"
#include "eval/avss.h"

/* avs-eval --semantic checks a release label's size against its frame JPEG's. */
static int label_against_frame(const char *jpeg, struct avs_err *err)
{
    static uint8_t gray[8 * 8];
    struct avs_image label = {8, 8, 1, gray};
    char *png = avs_fs_join(avs_fuzz_tmpdir(), "label.png");
    int rc = avs_fs_exists(png) ? 0 : avs_png_write(png, &label, 1, err);
    struct avs_avss_frame fr = {0};
    fr.gt = png, fr.image = (char *)jpeg, fr.gt_kind = AVS_AVSS_GT_COLOUR;
    uint8_t *out = avs_malloc(AVS_AVSS_SIZE * AVS_AVSS_SIZE);
    int64_t unknown;
    if (rc == 0)
        rc = avs_avss_read_label(&fr, AVS_AVSS_CLASSES, out, &unknown, err);
    free(out);
    free(png);
    return rc;
}

int avs_fuzz_jpeg(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_jpeg(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.jpg", data, size);
    struct avs_image img = {0};
    struct avs_err second = {{0}};
    int rc = avs_jpeg_read(path, &img, err);
    if (rc == 0)
        AVS_ASSERT(img.c == 3 && img.w > 0 && img.h > 0);
    avs_image_free(&img);
    if (label_against_frame(path, rc ? &second : err))
        rc = -1;
    return rc;
}
AVS_FUZZ_ENTRY(avs_fuzz_jpeg)
