/* bench/fuzz/fuzz_jpeg.c: JPEG stills through libav* (core/jpeg.c), as ingest reads the AVSS
 * release's frames and synth its background photos. */
#include "bench/fuzz/fuzz.h"
#include "core/image.h"

int avs_fuzz_jpeg(const uint8_t *data, size_t size, struct avs_err *err);
int avs_fuzz_jpeg(const uint8_t *data, size_t size, struct avs_err *err)
{
    const char *path = avs_fuzz_file("in.jpg", data, size);
    struct avs_image img = {0};
    if (avs_jpeg_read(path, &img, err))
        return -1;
    AVS_ASSERT(img.c == 3 && img.w > 0 && img.h > 0);
    avs_image_free(&img);
    return 0;
}
AVS_FUZZ_ENTRY(avs_fuzz_jpeg)
