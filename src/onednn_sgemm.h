// Float32 matrix products through oneDNN instead of the system BLAS.
//
// Debian's libtorch (and any libtorch built with BLAS_INFO=generic) sends every float32 matrix
// product (nn.Linear, attention's bmm, im2col convolutions) to `sgemm_` in libblas.so.3, which
// is the netlib reference BLAS unless the machine installed an optimized one: one core, about 6
// GFLOP/s on the benchmark VM, and most of a UNet forward's time (bench/NOTES.md, issue 10).
// The same libtorch already loads oneDNN (USE_MKLDNN) for its convolutions, and oneDNN exports a
// JIT-compiled, OpenMP-parallel `dnnl_sgemm` (about 45x faster there). The addon defines
// `sgemm_` itself: libtorch_cpu is loaded as the addon's dependency, so the dynamic linker
// resolves libtorch's `sgemm_` to this definition before libblas's, and it forwards to
// dnnl_sgemm. Where oneDNN is not a separate library (PyTorch's wheels link it and MKL inside
// libtorch_cpu) or TORCHVID_BLAS=system is set, every call goes on to the next `sgemm_` in
// the search order, i.e. exactly what libtorch would have called without the addon.
#pragma once

#include <cstdint>
#include <string>

namespace torchvid {

struct SgemmRouting {
  std::string backend;  // "onednn" or "system"
  int64_t calls;        // sgemm_ calls that came through the addon (either backend)
};

SgemmRouting sgemmRouting();

}  // namespace torchvid
