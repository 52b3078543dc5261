// PromiseWorker: device work on the executor thread of its device, settled on the JS thread.
#include <cstdlib>

#include "common.h"
#include "executor.h"

namespace torchvid_binding {

// Runs the work; never throws (a failure is recorded for the JS thread).
static void executeCompletion(Completion* c) {
  try {
    c->execute();
  } catch (...) {
    c->failed = true;
    c->error = torchvid::classifyCurrentException(c->fallback);
  }
}

// On the JS thread: resolve or reject, then free the record.
static void settle(napi_env rawEnv, Completion* c) {
  std::unique_ptr<Completion> owned(c);
  if (rawEnv == nullptr) return;  // the environment is being torn down
  Napi::Env env(rawEnv);
  Napi::HandleScope scope(env);
  auto& data = addonData(env);
  if (--data.inFlight == 0 && !data.usePool) napi_unref_threadsafe_function(env, data.completions);
  napi_value value = nullptr;
  bool ok = !c->failed;
  if (ok) {
    try {
      value = c->resolve(env);
    } catch (const Napi::Error& e) {
      ok = false;
      value = e.Value();
    } catch (...) {
      ok = false;
      value = makeError(env, torchvid::classifyCurrentException(c->fallback)).Value();
    }
  } else {
    value = makeError(env, c->error).Value();
  }
  if (ok) napi_resolve_deferred(env, c->deferred, value);
  else napi_reject_deferred(env, c->deferred, value);
}

static void callCompletion(napi_env env, napi_value, void*, void* data) { settle(env, static_cast<Completion*>(data)); }

void initCompletions(Napi::Env env) {
  auto& data = addonData(env);
  const char* mode = std::getenv("TORCHVID_EXECUTOR");
  data.usePool = mode != nullptr && std::string(mode) == "pool";
  napi_value name = Napi::String::New(env, "torchvid device work");
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                                                 callCompletion, &data.completions));
  napi_unref_threadsafe_function(env, data.completions);
}

// The libuv-pool variant (TORCHVID_EXECUTOR=pool).
class PoolWork : public Napi::AsyncWorker {
 public:
  PoolWork(Napi::Env env, Completion* c) : Napi::AsyncWorker(env, "torchvid"), c_(c) {}
  void Execute() override {
    torchvid::prepareThread();
    c10::InferenceMode guard;
    executeCompletion(c_);
  }
  void OnOK() override { settle(Env(), c_); }
  void OnError(const Napi::Error&) override { settle(Env(), c_); }

 private:
  Completion* c_;
};

Napi::Promise PromiseWorker::Queue(Napi::Env env, const std::string& deviceKey, ErrorCode fallback, Work execute, Resolve resolve) {
  auto* c = new Completion{nullptr, fallback, std::move(execute), std::move(resolve)};
  napi_value promise;
  napi_status status = napi_create_promise(env, &c->deferred, &promise);
  if (status != napi_ok) {
    delete c;
    NAPI_THROW_IF_FAILED(env, status, Napi::Promise(env, nullptr));
  }
  auto& data = addonData(env);
  if (data.inFlight++ == 0 && !data.usePool) napi_ref_threadsafe_function(env, data.completions);
  if (data.usePool) {
    (new PoolWork(env, c))->Queue();
  } else {
    napi_threadsafe_function tsfn = data.completions;
    torchvid::postToDevice(deviceKey, [c, tsfn]() {
      executeCompletion(c);
      // A closing environment cannot take the result any more: nothing left to settle.
      if (napi_call_threadsafe_function(tsfn, c, napi_tsfn_nonblocking) != napi_ok) delete c;
    });
  }
  return Napi::Promise(env, promise);
}

}  // namespace torchvid_binding
