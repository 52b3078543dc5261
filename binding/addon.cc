// The addon's one entry point: registers the wrapped classes and the runtime functions.
#include "common.h"
#include "cpu_allocator.h"
#include "onednn_sgemm.h"
#include "script_module.h"

namespace torchvid_binding {

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, ErrorCode::Device, [&]() {
    auto runtime = torchvid::runtimeInfo();
    Napi::Object out = Napi::Object::New(env);
    out.Set("addonVersion", TORCHVID_ADDON_VERSION);
    out.Set("torchVersion", runtime.torchVersion);
    out.Set("cudaBuild", runtime.cudaBuild);
    out.Set("cudaVersion", runtime.cudaVersion ? Napi::Value(Napi::String::New(env, *runtime.cudaVersion)) : env.Null());
    out.Set("cudaAvailable", runtime.cudaAvailable);
    out.Set("numThreads", runtime.numThreads);
    auto sgemm = torchvid::sgemmRouting();
    Napi::Object matmul = Napi::Object::New(env);
    matmul.Set("backend", sgemm.backend);
    matmul.Set("calls", static_cast<double>(sgemm.calls));
    out.Set("float32Matmul", matmul);
    Napi::Array devices = Napi::Array::New(env, runtime.devices.size());
    for (size_t i = 0; i < runtime.devices.size(); i++) {
      const auto& d = runtime.devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("totalMemory", static_cast<double>(d.totalMemory));
      o.Set("computeCapability", d.computeCapability);
      devices.Set(static_cast<uint32_t>(i), o);
    }
    out.Set("devices", devices);
    return out;
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = toIntArg(info[0], "n");
  if (n < 1) throw Napi::RangeError::New(info.Env(), "Expected an integer >= 1 for n");
  // The executor threads pick the new count up before their next task (torchvid::prepareThread).
  torchvid::setNumThreads(static_cast<int>(n));
  return info.Env().Undefined();
}

static Napi::Value CpuAllocatorStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto stats = torchvid::cpuCacheStats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("enabled", stats.enabled);
  out.Set("cachedBytes", static_cast<double>(stats.cachedBytes));
  out.Set("liveBytes", static_cast<double>(stats.liveBytes));
  out.Set("hits", static_cast<double>(stats.hits));
  out.Set("misses", static_cast<double>(stats.misses));
  out.Set("limitBytes", static_cast<double>(stats.limitBytes));
  return out;
}

// V8's running total of external memory (what the addon and others reported): process.memoryUsage()
// does not show it (its `external` counts ArrayBuffers only).
static Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

static Napi::Value FailNextMoveAfter(const Napi::CallbackInfo& info) {
  int64_t n = toIntArg(info[0], "tensors");
  if (n < 0) throw Napi::RangeError::New(info.Env(), "Expected an integer >= 0 for tensors");
  torchvid::failNextMoveAfter(static_cast<int>(n));
  return info.Env().Undefined();
}

static Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = static_cast<int>(toIntArg(info[0], "device"));
  return guarded(env, ErrorCode::Device, [&]() {
    auto stats = torchvid::memoryStats(device);
    Napi::Object out = Napi::Object::New(env);
    out.Set("allocated", static_cast<double>(stats.allocated));
    out.Set("reserved", static_cast<double>(stats.reserved));
    out.Set("peakAllocated", static_cast<double>(stats.peakAllocated));
    out.Set("peakReserved", static_cast<double>(stats.peakReserved));
    return out;
  });
}

static Napi::Value ResetPeakMemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = static_cast<int>(toIntArg(info[0], "device"));
  guarded(env, ErrorCode::Device, [&]() {
    torchvid::resetPeakMemoryStats(device);
    return 0;
  });
  return env.Undefined();
}

static Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  // Runs on error paths too, exactly when a sticky CUDA error would make it throw: guarded.
  return guarded(info.Env(), ErrorCode::Device, [&]() {
    torchvid::emptyCpuCache();
    torchvid::emptyCache();
    return info.Env().Undefined();
  });
}

static Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = static_cast<int>(toIntArg(info[0], "device"));
  return PromiseWorker::Queue(
      env, "cuda:" + std::to_string(device), ErrorCode::Device, [device]() { torchvid::synchronize(device); }, [](Napi::Env env) { return env.Undefined(); });
}

static Napi::Object InitGuarded(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  // Before any tensor exists: every CPU allocation from here on goes through the cache.
  torchvid::installCpuAllocator();
  initCompletions(env);
  // Autograd is never wanted here; InferenceMode is per thread, so the JS thread gets a guard that
  // lives as long as the process (executor threads hold their own, src/executor.cc).
  static thread_local c10::InferenceMode* jsThreadGuard = new c10::InferenceMode();
  (void)jsThreadGuard;
  torchvid::prepareSerialThread();

  InitTensor(env, exports);
  InitModule(env, exports);
  InitGenerator(env, exports);
  exports.Set("info", Napi::Function::New<guardedFunction<Info>>(env, "info"));
  exports.Set("setNumThreads", Napi::Function::New<guardedFunction<SetNumThreads>>(env, "setNumThreads"));
  exports.Set("memoryStats", Napi::Function::New<guardedFunction<MemoryStats>>(env, "memoryStats"));
  exports.Set("resetPeakMemoryStats", Napi::Function::New<guardedFunction<ResetPeakMemoryStats>>(env, "resetPeakMemoryStats"));
  exports.Set("emptyCache", Napi::Function::New<guardedFunction<EmptyCache>>(env, "emptyCache"));
  exports.Set("synchronize", Napi::Function::New<guardedFunction<Synchronize>>(env, "synchronize"));
  exports.Set("cpuAllocatorStats", Napi::Function::New<guardedFunction<CpuAllocatorStats>>(env, "cpuAllocatorStats"));
  Napi::Object testHooks = Napi::Object::New(env);
  testHooks.Set("failNextMoveAfter", Napi::Function::New<guardedFunction<FailNextMoveAfter>>(env, "failNextMoveAfter"));
  testHooks.Set("externalMemory", Napi::Function::New<guardedFunction<ExternalMemory>>(env, "externalMemory"));
  exports.Set("testHooks", testHooks);

  Napi::Object builtWith = Napi::Object::New(env);
  auto build = torchvid::buildInfo();
  builtWith.Set("torchVersion", build.torchVersion);
  builtWith.Set("cuda", build.cudaBuild);
  builtWith.Set("cudaVersion", build.cudaVersion ? Napi::Value(Napi::String::New(env, *build.cudaVersion)) : env.Null());
  exports.Set("builtWith", builtWith);
  return exports;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  return guarded(env, ErrorCode::Torch, [&]() { return InitGuarded(env, exports); });
}

NODE_API_MODULE(torchvid, Init)

}  // namespace torchvid_binding
