// Node-API glue shared by the wrappers: errors with codes, argument conversion, and a Promise
// worker that runs a C++ lambda on the libuv pool. No model logic here.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core.h"

namespace torchvid_binding {

using torchvid::ErrorCode;

// Per-addon-instance data: constructors needed to create wrapped objects from C++.
struct Completion;
struct AddonData {
  Napi::FunctionReference tensorConstructor;
  Napi::FunctionReference moduleConstructor;
  Napi::FunctionReference generatorConstructor;
  // Settles device work on the JS thread (see PromiseWorker); JS-thread state below.
  napi_threadsafe_function completions = nullptr;
  int64_t inFlight = 0;
  bool usePool = false;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// A JS Error carrying `code` (ERR_TORCHVID_*) and the native message.
inline Napi::Error makeError(Napi::Env env, const torchvid::ErrorInfo& info) {
  Napi::Error error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, torchvid::errorCodeName(info.code)));
  return error;
}

// Runs `fn`, turning any C++ exception into a thrown JS Error with a code.
template <typename Fn>
auto guarded(Napi::Env env, ErrorCode fallback, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw makeError(env, torchvid::classifyCurrentException(fallback));
  }
}

inline Napi::TypeError typeError(Napi::Env env, const std::string& message) { return Napi::TypeError::New(env, message); }

std::vector<int64_t> toShape(const Napi::Value& value, const char* name);
std::string toStringArg(const Napi::Value& value, const char* name);
double toNumberArg(const Napi::Value& value, const char* name);
int64_t toIntArg(const Napi::Value& value, const char* name);
Napi::Array fromShape(Napi::Env env, c10::IntArrayRef shape);

// Work for a device: `execute` runs off the JS thread (no JS values inside!) on the device's
// executor thread (src/executor.h), `resolve` builds the JS result on the JS thread. Errors become
// rejections with a code. The result comes back through one thread-safe function per addon
// instance (AddonData::completions), referenced only while work is in flight so that an idle
// addon never keeps the process alive.
//
// TORCHVID_EXECUTOR=pool runs the work on the libuv pool instead (how torchvid ran before; kept
// for the A/B benchmark in bench/unet-forward.ts).
class PromiseWorker {
 public:
  using Work = std::function<void()>;
  using Resolve = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Queue(Napi::Env env, const std::string& deviceKey, ErrorCode fallback, Work execute, Resolve resolve);
};

// Per-call record carried from the JS thread to the executor and back.
struct Completion {
  napi_deferred deferred;
  ErrorCode fallback;
  PromiseWorker::Work execute;
  PromiseWorker::Resolve resolve;
  bool failed = false;
  torchvid::ErrorInfo error{ErrorCode::Torch, ""};
};
// Creates AddonData::completions (at addon load).
void initCompletions(Napi::Env env);

// Runs `fn(info)` with every C++ exception turned into a JS Error with a code: the outer guard of
// every binding entry point (inner guards choose more specific codes, which pass through).
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value guardedFunction(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), ErrorCode::Torch, [&]() { return Fn(info); });
}

// Wrapped-object factories (defined in tensor_wrap.cc / module_wrap.cc).
Napi::Object wrapTensor(Napi::Env env, at::Tensor tensor, bool aliased = false);
at::Tensor unwrapTensor(const Napi::Value& value, const char* name);
bool isTensor(const Napi::Value& value);
// Host copy of a CPU tensor into a new typed array (float16/bfloat16 -> Float32Array).
Napi::Value tensorToTypedArray(Napi::Env env, const at::Tensor& cpuContiguous);
at::Tensor hostReadable(const at::Tensor& tensor);
at::Generator& unwrapGenerator(const Napi::Value& value, const char* name);

Napi::Object InitTensor(Napi::Env env, Napi::Object exports);
Napi::Object InitModule(Napi::Env env, Napi::Object exports);
Napi::Object InitGenerator(Napi::Env env, Napi::Object exports);

}  // namespace torchvid_binding
