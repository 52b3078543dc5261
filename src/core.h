// torchvid C++ core over libtorch. Knows nothing of Node: binding/ wraps it.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace torchvid {

// Stable error codes; the binding copies them onto JS Errors as `code`.
enum class ErrorCode { Torch, ModelLoad, OutOfMemory, Shape, Device, DType, Forward };
const char* errorCodeName(ErrorCode code);

// An error we raise ourselves with a chosen code (libtorch raises c10::Error).
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Maps any exception to (code, message). `fallback` is the code for a generic libtorch failure
// in the caller's context (a failed load is MODEL_LOAD, a failed reshape is SHAPE, ...).
struct ErrorInfo {
  ErrorCode code;
  std::string message;
};
ErrorInfo classifyCurrentException(ErrorCode fallback);

// ---- dtypes and devices -------------------------------------------------------------------
at::ScalarType parseDType(const std::string& name);
std::string dtypeName(at::ScalarType type);
// "cpu", "cuda", "cuda:N"; throws Device error when CUDA is asked for and not available.
at::Device parseDevice(const std::string& name);
std::string deviceName(const at::Device& device);

// ---- runtime set-up -----------------------------------------------------------------------
// Intra-op threads. OpenMP keeps the count per thread, and every thread that opens a parallel
// region gets its own team of workers. Two teams on one machine make libgomp see more threads
// than cores and drop to sleeping at every barrier: after one parallel op on the JS thread (a
// round() of the decoded video), every later UNet forward on the CPU executor took 2x as long on
// one core (bench/NOTES.md). So only the thread that does the heavy CPU work (the CPU executor,
// or a libuv pool thread with TORCHVID_EXECUTOR=pool) gets numThreads(); the JS thread and the
// CUDA executors run ATen's CPU loops serially (their ops are small or on the GPU).
void prepareThread();        // a heavy CPU worker: numThreads() intra-op threads
void prepareSerialThread();  // any other thread that runs torch ops: one
void setNumThreads(int n);   // picked up by prepareThread() before the next task
int numThreads();

// ---- tensors ------------------------------------------------------------------------------
// Shape checks that libtorch would otherwise report with an opaque message.
std::vector<int64_t> checkedShape(const std::vector<int64_t>& shape);
// a * x + b * y
at::Tensor axpby(const at::Tensor& x, double a, double b, const at::Tensor& y);
// x = a * x + b * y in place (y broadcast to x's shape, cast to x's dtype).
void axpbyInPlace(at::Tensor& x, double a, double b, const at::Tensor& y);
// Noise exactly as torch.randn(shape, generator=g) on the CPU, then cast and moved.
at::Tensor randn(const std::vector<int64_t>& shape, at::Generator& generator, at::ScalarType dtype,
                 const at::Device& device);
at::Generator makeCpuGenerator();

// ---- device facts -------------------------------------------------------------------------
struct DeviceInfo {
  int index;
  std::string name;
  int64_t totalMemory;
  std::string computeCapability;
};
struct RuntimeInfo {
  std::string torchVersion;
  bool cudaBuild;
  std::optional<std::string> cudaVersion;
  bool cudaAvailable;
  std::vector<DeviceInfo> devices;
  int numThreads;
};
RuntimeInfo runtimeInfo();
// What this binary was compiled against: no device is touched (cheap at start-up).
struct BuildInfo {
  std::string torchVersion;
  bool cudaBuild;
  std::optional<std::string> cudaVersion;
};
BuildInfo buildInfo();

struct MemoryStats {
  int64_t allocated, reserved, peakAllocated, peakReserved;
};
MemoryStats memoryStats(int device);
void resetPeakMemoryStats(int device);
void emptyCache();
void synchronize(int device);

}  // namespace torchvid
