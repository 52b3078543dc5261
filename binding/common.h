// Node-API glue shared by the wrappers: errors with codes, argument conversion, and a Promise
// worker that runs a C++ lambda on the libuv pool. No model logic here.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "core.h"

namespace torchvid_binding {

using torchvid::ErrorCode;

// Per-addon-instance data: constructors needed to create wrapped objects from C++.
struct AddonData {
  Napi::FunctionReference tensorConstructor;
  Napi::FunctionReference moduleConstructor;
  Napi::FunctionReference generatorConstructor;
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

// Work for the libuv pool: `execute` runs off the JS thread (no JS values inside!), `resolve`
// builds the JS result on the JS thread. Errors become rejections with a code.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Resolve = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Queue(Napi::Env env, ErrorCode fallback, Work execute, Resolve resolve) {
    auto* worker = new PromiseWorker(env, fallback, std::move(execute), std::move(resolve));
    auto promise = worker->deferred_.Promise();
    worker->Napi::AsyncWorker::Queue();
    return promise;
  }

  void Execute() override {
    try {
      torchvid::prepareThread();
      c10::InferenceMode guard;
      execute_();
    } catch (...) {
      error_ = torchvid::classifyCurrentException(fallback_);
      SetError(error_.message);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(resolve_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(makeError(env, torchvid::classifyCurrentException(fallback_)).Value());
    }
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(makeError(Env(), error_).Value()); }

 private:
  PromiseWorker(Napi::Env env, ErrorCode fallback, Work execute, Resolve resolve)
      : Napi::AsyncWorker(env, "torchvid"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fallback_(fallback),
        execute_(std::move(execute)),
        resolve_(std::move(resolve)) {}

  Napi::Promise::Deferred deferred_;
  ErrorCode fallback_;
  torchvid::ErrorInfo error_{ErrorCode::Torch, ""};
  Work execute_;
  Resolve resolve_;
};

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
