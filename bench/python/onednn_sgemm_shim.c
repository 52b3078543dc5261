/* For the "same kernels" baseline row of bench/NOTES.md: gives Python torch the float32 matmul
 * route torchvid's addon takes (src/onednn_sgemm.h), so the comparison can also be made at equal
 * BLAS. Build and use:
 *   gcc -O2 -shared -fPIC bench/python/onednn_sgemm_shim.c -o /tmp/sgemm-shim.so /usr/lib/x86_64-linux-gnu/libdnnl.so.2
 *   npx tsx bench/unet-forward.ts /tmp/mid-model --sides "python-tuned:LD_PRELOAD=/tmp/sgemm-shim.so"
 */
#include <stdint.h>

extern int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Column-major C = op(A) op(B) is row-major C' = op(B)' op(A)': swap the operands. */
void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha, const float *a,
            const int *lda, const float *b, const int *ldb, const float *beta, float *c, const int *ldc) {
  dnnl_sgemm(*tb, *ta, *n, *m, *k, *alpha, b, *ldb, a, *lda, *beta, c, *ldc);
}
