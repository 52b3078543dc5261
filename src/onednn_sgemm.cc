// See onednn_sgemm.h for why the addon defines the Fortran BLAS `sgemm_`.
#include "onednn_sgemm.h"

#include <c10/util/Exception.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

// oneDNN's row-major sgemm (dnnl.h), declared weak: the addon neither links nor requires
// libdnnl; the symbol is non-null only when libtorch's own oneDNN is a loaded shared library.
extern "C" int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc)
    __attribute__((weak));

namespace {

using FortranSgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                              const float*, const int*, const float*, const int*, const float*, float*, const int*);

struct Route {
  bool onednn = false;
  FortranSgemm next = nullptr;  // the sgemm_ libtorch would have called without the addon
};

std::atomic<int64_t> callCount{0};

const Route& route() {
  static const Route chosen = [] {
    Route r;
    r.next = reinterpret_cast<FortranSgemm>(dlsym(RTLD_NEXT, "sgemm_"));
    const char* choice = std::getenv("TORCHVID_BLAS");
    bool systemAsked = choice != nullptr && std::strcmp(choice, "system") == 0;
    r.onednn = dnnl_sgemm != nullptr && !systemAsked;
    return r;
  }();
  return chosen;
}

}  // namespace

// The Fortran interface libtorch calls (column-major, arguments by pointer). A column-major
// C = op(A)·op(B) is the row-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so the operands swap places (and m, n)
// on the way to oneDNN's row-major interface; the memory does not move. BLAS semantics are kept:
// with beta = 0, C is written without being read (oneDNN's contract too).
extern "C" __attribute__((visibility("default"))) void sgemm_(const char* transa, const char* transb, const int* m,
                                                              const int* n, const int* k, const float* alpha,
                                                              const float* a, const int* lda, const float* b,
                                                              const int* ldb, const float* beta, float* c,
                                                              const int* ldc) {
  callCount.fetch_add(1, std::memory_order_relaxed);
  const Route& r = route();
  if (r.onednn && dnnl_sgemm(*transb, *transa, *n, *m, *k, *alpha, b, *ldb, a, *lda, *beta, c, *ldc) == 0) return;
  // oneDNN refused (a status other than success: only for arguments BLAS would also reject) or
  // is not there: the system BLAS answers, with its own error reporting (xerbla).
  // Neither can happen when libtorch reached this function through its own sgemm_ import; if it
  // ever does, the forward fails with this message instead of returning unwritten memory.
  TORCH_CHECK(r.next != nullptr, "torchvid: no sgemm_ to forward a float32 matrix product to (oneDNN ",
              r.onednn ? "refused the arguments" : "is not loaded", " and no system BLAS was found); unset TORCHVID_BLAS");
  r.next(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace torchvid {

SgemmRouting sgemmRouting() {
  const Route& r = route();
  return {r.onednn ? "onednn" : "system", callCount.load(std::memory_order_relaxed)};
}

}  // namespace torchvid
