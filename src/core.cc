#include "core.h"

#include <ATen/ExpandUtils.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <atomic>
#include <new>
#include <thread>

#ifdef TORCHVID_CUDA
// Only what the device facts and memory statistics need. torch/script.h does not bring
// torch/cuda.h (is_available, device_count, synchronize); ATen/cuda/CUDAContext.h is avoided on
// purpose: it pulls the cuBLAS/cuSPARSE/cuSOLVER headers that a bare toolkit may lack.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>
#endif

namespace torchvid {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::ModelLoad: return "ERR_TORCHVID_MODEL_LOAD";
    case ErrorCode::OutOfMemory: return "ERR_TORCHVID_OOM";
    case ErrorCode::Shape: return "ERR_TORCHVID_SHAPE";
    case ErrorCode::Device: return "ERR_TORCHVID_DEVICE";
    case ErrorCode::DType: return "ERR_TORCHVID_DTYPE";
    case ErrorCode::Forward: return "ERR_TORCHVID_FORWARD";
    case ErrorCode::Torch: break;
  }
  return "ERR_TORCHVID_TORCH";
}

static bool mentionsOutOfMemory(const std::string& message) {
  return message.find("out of memory") != std::string::npos ||
         message.find("OutOfMemory") != std::string::npos ||
         message.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos;
}

// libtorch messages end with a C++ backtrace ("Exception raised from ...") that means nothing to
// a Node user; keep the first part.
static std::string trimTorchMessage(const std::string& message) {
  auto cut = message.find("\nException raised from");
  std::string text = cut == std::string::npos ? message : message.substr(0, cut);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

ErrorInfo classifyCurrentException(ErrorCode fallback) {
  try {
    throw;
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const c10::Error& e) {
    std::string message = trimTorchMessage(e.what_without_backtrace());
    if (mentionsOutOfMemory(message)) {
      return {ErrorCode::OutOfMemory,
              message + " (free memory with enableModelCpuOffload(), enableVaeSlicing(), forward chunking, fewer frames or a smaller size)"};
    }
    return {fallback, message};
  } catch (const std::bad_alloc&) {
    return {ErrorCode::OutOfMemory, "out of host memory (std::bad_alloc)"};
  } catch (const std::exception& e) {
    std::string message = trimTorchMessage(e.what());
    return {mentionsOutOfMemory(message) ? ErrorCode::OutOfMemory : fallback, message};
  } catch (...) {
    return {fallback, "unknown native exception"};
  }
}

// ---- dtypes and devices -------------------------------------------------------------------

at::ScalarType parseDType(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float64") return at::kDouble;
  if (name == "int32") return at::kInt;
  if (name == "int64") return at::kLong;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  throw Error(ErrorCode::DType, "unknown dtype \"" + name + "\"");
}

std::string dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(type);
  }
}

at::Device parseDevice(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    int index = 0;
    if (name.size() > 4) {
      if (name[4] != ':') throw Error(ErrorCode::Device, "unknown device \"" + name + "\"");
      index = std::stoi(name.substr(5));
    }
#ifndef TORCHVID_CUDA
    throw Error(ErrorCode::Device,
                "device \"" + name + "\" asked for, but this torchvid binary was built against a CPU-only libtorch; "
                "build against a CUDA libtorch (TORCHVID_LIBTORCH=/path/to/libtorch npm run build:native) or use device \"cpu\"");
#else
    if (!torch::cuda::is_available()) {
      throw Error(ErrorCode::Device, "device \"" + name + "\" asked for, but CUDA is not available on this machine (no GPU or driver); use device \"cpu\"");
    }
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      throw Error(ErrorCode::Device, "device \"" + name + "\" does not exist: " + std::to_string(torch::cuda::device_count()) + " CUDA device(s) present");
    }
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
#endif
  }
  throw Error(ErrorCode::Device, "unknown device \"" + name + "\" (use \"cpu\", \"cuda\" or \"cuda:N\")");
}

std::string deviceName(const at::Device& device) {
  if (device.is_cpu()) return "cpu";
  return device.str();
}

// ---- threads ------------------------------------------------------------------------------

extern "C" void omp_set_num_threads(int) __attribute__((weak));

static std::atomic<int> g_num_threads{0};
static thread_local int t_threads_set = 0;

void setNumThreads(int n) { g_num_threads = n < 1 ? 1 : n; }

int numThreads() {
  if (g_num_threads == 0) {
    unsigned hc = std::thread::hardware_concurrency();
    g_num_threads = hc == 0 ? 1 : static_cast<int>(hc);
  }
  return g_num_threads;
}

void prepareThread() {
  int n = numThreads();
  if (t_threads_set != n) {
    at::set_num_threads(n);
    t_threads_set = n;
  }
}

void prepareSerialThread() {
  // ATen sets each thread's OpenMP count lazily, at the thread's first parallel op, to the last
  // at::set_num_threads() value: let it do that now (get_num_threads runs the lazy set-up inside
  // libtorch), then lower this thread's count. Only this thread's: at::set_num_threads(1) would
  // also set process-wide pools (MKL's count in PyTorch's builds) that the CPU executor relies on.
  // Weak, so a libtorch whose OpenMP runtime is not a separate library just skips it.
  (void)at::get_num_threads();
  if (omp_set_num_threads != nullptr) omp_set_num_threads(1);
}

// ---- tensors ------------------------------------------------------------------------------

std::vector<int64_t> checkedShape(const std::vector<int64_t>& shape) {
  for (auto d : shape) {
    if (d < 0) throw Error(ErrorCode::Shape, "negative dimension in shape");
  }
  return shape;
}

at::Tensor axpby(const at::Tensor& x, double a, double b, const at::Tensor& y) {
  // One allocation: out = a*x, then out += b*y in place.
  at::Tensor out = at::mul(x, a);
  if (!x.sizes().equals(y.sizes()) || x.scalar_type() != y.scalar_type()) return at::add(out, y, b);
  out.add_(y, b);
  return out;
}

void axpbyInPlace(at::Tensor& x, double a, double b, const at::Tensor& y) {
  if (y.dim() > x.dim() || !at::is_expandable_to(y.sizes(), x.sizes())) {
    throw Error(ErrorCode::Shape, "axpbyInPlace: y of shape " + c10::str(y.sizes()) + " does not broadcast to this tensor's shape " +
                                      c10::str(x.sizes()) + " (an in-place update cannot grow the tensor)");
  }
  x.mul_(a);
  x.add_(y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type()), b);
}

at::Generator makeCpuGenerator() {
  return at::make_generator<at::CPUGeneratorImpl>(c10::detail::getNonDeterministicRandom());
}

at::Tensor randn(const std::vector<int64_t>& shape, at::Generator& generator, at::ScalarType dtype,
                 const at::Device& device) {
  // at::randn takes the generator's mutex itself, so draws never interleave.
  at::Tensor noise = at::randn(checkedShape(shape), generator, at::TensorOptions().dtype(at::kFloat));
  if (dtype != at::kFloat) noise = noise.to(dtype);
  if (!device.is_cpu()) noise = noise.to(device);
  return noise;
}

// ---- device facts -------------------------------------------------------------------------

BuildInfo buildInfo() {
#ifdef TORCHVID_CUDA
  return {TORCH_VERSION, true, std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10)};
#else
  return {TORCH_VERSION, false, std::nullopt};
#endif
}

RuntimeInfo runtimeInfo() {
  RuntimeInfo info;
  BuildInfo build = buildInfo();
  info.torchVersion = build.torchVersion;
  info.cudaBuild = build.cudaBuild;
  info.cudaAvailable = false;
  info.numThreads = numThreads();
#ifdef TORCHVID_CUDA
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    info.cudaVersion = std::to_string(runtime / 1000) + "." + std::to_string((runtime % 1000) / 10);
  }
  info.cudaAvailable = torch::cuda::is_available();
  if (info.cudaAvailable) {
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); i++) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      info.devices.push_back({i, prop.name, static_cast<int64_t>(prop.totalGlobalMem),
                              std::to_string(prop.major) + "." + std::to_string(prop.minor)});
    }
  }
#endif
  return info;
}

#ifdef TORCHVID_CUDA
static void checkCudaIndex(int device) {
  if (!torch::cuda::is_available()) throw Error(ErrorCode::Device, "CUDA is not available on this machine");
  if (device < 0 || device >= static_cast<int>(torch::cuda::device_count())) {
    throw Error(ErrorCode::Device, "no CUDA device " + std::to_string(device));
  }
}
#endif

MemoryStats memoryStats(int device) {
#ifdef TORCHVID_CUDA
  checkCudaIndex(device);
  using c10::cuda::CUDACachingAllocator::getDeviceStats;
  auto stats = getDeviceStats(static_cast<c10::DeviceIndex>(device));
  // StatType::AGGREGATE is entry 0 in every torch version; the enum itself moved (torch 2.6 put it
  // in c10/core/CachingDeviceAllocator.h, c10::CachingAllocator), so it is not named here.
  const size_t all = 0;
  return {stats.allocated_bytes[all].current, stats.reserved_bytes[all].current,
          stats.allocated_bytes[all].peak, stats.reserved_bytes[all].peak};
#else
  throw Error(ErrorCode::Device, "memory statistics need a CUDA build of torchvid; this binary is CPU-only");
#endif
}

void resetPeakMemoryStats(int device) {
#ifdef TORCHVID_CUDA
  checkCudaIndex(device);
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
#else
  throw Error(ErrorCode::Device, "memory statistics need a CUDA build of torchvid; this binary is CPU-only");
#endif
}

void emptyCache() {
#ifdef TORCHVID_CUDA
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

void synchronize(int device) {
#ifdef TORCHVID_CUDA
  if (torch::cuda::is_available()) torch::cuda::synchronize(device);
#endif
}

}  // namespace torchvid
