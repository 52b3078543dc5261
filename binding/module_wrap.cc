// TorchScript modules: load, run and move off the JS thread; attributes and parameters on it.
#include <chrono>
#include <cmath>

#include "common.h"
#include "script_module.h"

namespace torchvid_binding {

using torchvid::Error;
using torchvid::ScriptModule;

// JS value -> IValue, on the JS thread (workers never touch JS values).
static c10::IValue toIValue(const Napi::Value& value) {
  if (isTensor(value)) return unwrapTensor(value, "input");
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
    return d;
  }
  if (value.IsNull() || value.IsUndefined()) return c10::IValue();
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    bool allTensors = true;
    std::vector<c10::IValue> items;
    for (uint32_t i = 0; i < array.Length(); i++) {
      items.push_back(toIValue(array.Get(i)));
      allTensors = allTensors && items.back().isTensor();
    }
    if (allTensors && !items.empty()) {
      c10::List<at::Tensor> list;
      for (auto& item : items) list.push_back(item.toTensor());
      return list;
    }
    return c10::ivalue::Tuple::create(std::move(items));
  }
  throw typeError(value.Env(), "Expected module inputs to be Tensors, numbers, booleans, null or arrays of them");
}

// IValue -> JS value, on the JS thread.
static Napi::Value fromIValue(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) return wrapTensor(env, value.toTensor());
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isInt()) return Napi::Number::New(env, static_cast<double>(value.toInt()));
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isNone()) return env.Null();
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  std::vector<c10::IValue> items;
  if (value.isTuple()) {
    for (const auto& item : value.toTupleRef().elements()) items.push_back(item);
  } else if (value.isList()) {
    for (const auto& item : value.toListRef()) items.push_back(item);
  } else if (value.isTensorList()) {
    for (const auto& t : value.toTensorVector()) items.push_back(t);
  } else {
    throw Error(ErrorCode::Forward, "module returned a value of type " + value.tagKind() + " that torchvid cannot hand to JS");
  }
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) out.Set(static_cast<uint32_t>(i), fromIValue(env, items[i]));
  return out;
}

// A JS array of module inputs -> IValues, on the JS thread (run and runGuided).
static std::vector<c10::IValue> toInputs(const Napi::Value& value) {
  if (!value.IsArray()) throw typeError(value.Env(), "Expected an array for inputs");
  auto array = value.As<Napi::Array>();
  std::vector<c10::IValue> inputs;
  for (uint32_t i = 0; i < array.Length(); i++) inputs.push_back(toIValue(array.Get(i)));
  return inputs;
}

static std::optional<at::ScalarType> optionalDType(const Napi::Value& value) {
  if (value.IsNull() || value.IsUndefined()) return std::nullopt;
  return torchvid::parseDType(toStringArg(value, "dtype"));
}

class ModuleWrap : public Napi::ObjectWrap<ModuleWrap> {
 public:

  // Every entry point runs inside guarded(): no C++ exception can reach Node and end the process.
  template <Napi::Value (ModuleWrap::*M)(const Napi::CallbackInfo&)>
  Napi::Value G(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), ErrorCode::Torch, [&]() { return (this->*M)(info); });
  }
  template <Napi::Value (*F)(const Napi::CallbackInfo&)>
  static Napi::Value GS(const Napi::CallbackInfo& info) {
    return guardedFunction<F>(info);
  }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Module",
                       {
                           StaticMethod<&ModuleWrap::GS<&ModuleWrap::Load>>("load"),
                           InstanceAccessor<&ModuleWrap::G<&ModuleWrap::Device>>("device"),
                           InstanceAccessor<&ModuleWrap::G<&ModuleWrap::DType>>("dtype"),
                           InstanceAccessor<&ModuleWrap::G<&ModuleWrap::Path>>("path"),
                           InstanceAccessor<&ModuleWrap::G<&ModuleWrap::Disposed>>("disposed"),
                           InstanceAccessor<&ModuleWrap::G<&ModuleWrap::NBytes>>("nbytes"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::Dispose>>("dispose"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::Run>>("run"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::RunGuided>>("runGuided"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::HasMethod>>("hasMethod"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::To>>("to"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::GetAttr>>("getAttr"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::SetAttr>>("setAttr"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::SetAttrAll>>("setAttrAll"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::NamedParameters>>("namedParameters"),
                           InstanceMethod<&ModuleWrap::G<&ModuleWrap::Parameter>>("parameter"),
                       });
  }

  ModuleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
      throw typeError(info.Env(), "Modules are created with Module.load(path, device, dtype), not with new");
    }
    module_ = *info[0].As<Napi::External<std::shared_ptr<ScriptModule>>>().Data();
    report_ = std::make_shared<Report>();
    report_->env = info.Env();
    report_->update(module_->nbytes());
  }

  ~ModuleWrap() override { report_->update(0); }

 private:
  std::shared_ptr<ScriptModule> module(Napi::Env env) const {
    if (!module_) {
      Napi::Error e = Napi::Error::New(env, "This Module was disposed: load it again");
      e.Set("code", Napi::String::New(env, "ERR_TORCHVID_DISPOSED"));
      throw e;
    }
    return module_;
  }

  static Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto path = toStringArg(info[0], "path");
    auto deviceName = toStringArg(info[1], "device");
    auto [device, dtype] = guarded(env, ErrorCode::ModelLoad, [&]() {
      return std::make_pair(torchvid::parseDevice(deviceName), optionalDType(info[2]));
    });
    auto result = std::make_shared<std::shared_ptr<ScriptModule>>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(device), ErrorCode::ModelLoad, [=]() { *result = ScriptModule::load(path, device, dtype); },
        [result](Napi::Env env) {
          auto external = Napi::External<std::shared_ptr<ScriptModule>>::New(env, result.get());
          return addonData(env).moduleConstructor.New({external});
        });
  }

  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), torchvid::deviceName(module(info.Env())->device())); }
  Napi::Value DType(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), torchvid::dtypeName(module(info.Env())->dtype())); }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), module(info.Env())->path()); }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !module_); }
  Napi::Value NBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(module(info.Env())->nbytes()));
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    module_.reset();  // a running forward keeps its own reference until it finishes
    report_->update(0);
    return info.Env().Undefined();
  }

  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto method = toStringArg(info[0], "method");
    auto inputs = toInputs(info[1]);
    auto output = std::make_shared<c10::IValue>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(m->device()), ErrorCode::Forward, [m, method, inputs = std::move(inputs), output]() mutable { *output = m->run(method, std::move(inputs)); },
        [output](Napi::Env env) { return fromIValue(env, *output); });
  }

  // Classifier-free guidance around one forward, in the same device task (doubled = -1: a plain
  // forward, timed, whose output must be one tensor): input `doubled` goes in
  // twice along the batch (uncond half first, as diffusers' torch.cat([latents] * 2)), and the
  // output's halves come back combined as uncond + g * (text - uncond), written into the output's
  // first half with the ops the JS loop used (text -= uncond; uncond += g * text: the same
  // floats). Done here, right after the forward on the thread that computed it, these ops find
  // the output in that core's cache; on the JS thread, after a 0.2 s forward, the first touch of
  // each tensor cost 25-40 us (bench/NOTES.md, host overhead). Also reports the forward's own
  // time, so a benchmark can tell the model from everything around it.
  Napi::Value RunGuided(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto method = toStringArg(info[0], "method");
    auto inputs = toInputs(info[1]);
    int64_t doubled = toIntArg(info[2], "doubled");
    double scale = toNumberArg(info[3], "guidanceScale");
    if (doubled < -1 || doubled >= static_cast<int64_t>(inputs.size()) || (doubled >= 0 && !inputs[doubled].isTensor())) {
      throw Napi::RangeError::New(env, "Expected doubled to be -1 or the index of a tensor input");
    }
    struct Result {
      at::Tensor prediction;
      double forwardMs = 0;
    };
    auto result = std::make_shared<Result>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(m->device()), ErrorCode::Forward,
        [m, method, inputs = std::move(inputs), doubled, scale, result]() mutable {
          if (doubled >= 0) {
            const at::Tensor x = inputs[doubled].toTensor();
            inputs[doubled] = at::cat({x, x}, 0);
          }
          auto start = std::chrono::steady_clock::now();
          c10::IValue out = m->run(method, std::move(inputs));
          result->forwardMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
          if (!out.isTensor()) throw Error(ErrorCode::Forward, "module returned a " + out.tagKind() + ", expected one tensor");
          result->prediction = out.toTensor();
          if (doubled < 0) return;
          auto halves = result->prediction.chunk(2, 0);
          halves[1].add_(halves[0], -1);
          torchvid::axpbyInPlace(halves[0], 1, scale, halves[1]);
          result->prediction = halves[0];
        },
        [result](Napi::Env env) {
          Napi::Object out = Napi::Object::New(env);
          out.Set("prediction", wrapTensor(env, result->prediction));
          out.Set("forwardMs", result->forwardMs);
          return out;
        });
  }

  Napi::Value HasMethod(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), module(info.Env())->hasMethod(toStringArg(info[0], "name")));
  }

  Napi::Value To(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto deviceName = toStringArg(info[0], "device");
    auto [device, dtype] = guarded(env, ErrorCode::Device, [&]() {
      return std::make_pair(torchvid::parseDevice(deviceName), optionalDType(info[1]));
    });
    return PromiseWorker::Queue(
        env, torchvid::deviceName(device), ErrorCode::Device, [m, device, dtype]() { m->to(device, dtype); },
        [m, report = report_](Napi::Env env) {
          if (report->bytes != 0) report->update(m->nbytes());  // a cast changes the size; a disposed module stays at 0
          return env.Undefined();
        });
  }

  Napi::Value GetAttr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto path = toStringArg(info[0], "path");
    auto name = toStringArg(info[1], "name");
    return guarded(env, ErrorCode::Torch, [&]() { return fromIValue(env, m->getAttr(path, name)); });
  }

  static std::pair<double, bool> attrValue(const Napi::Value& value) {
    if (value.IsBoolean()) return {value.As<Napi::Boolean>().Value() ? 1.0 : 0.0, true};
    return {toNumberArg(value, "value"), false};
  }

  Napi::Value SetAttr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto path = toStringArg(info[0], "path");
    auto name = toStringArg(info[1], "name");
    auto [value, isBool] = attrValue(info[2]);
    guarded(env, ErrorCode::Torch, [&]() {
      m->setAttr(path, name, value, isBool);
      return 0;
    });
    return env.Undefined();
  }

  Napi::Value SetAttrAll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto name = toStringArg(info[0], "name");
    auto [value, isBool] = attrValue(info[1]);
    return guarded(env, ErrorCode::Torch, [&]() { return Napi::Number::New(env, m->setAttrAll(name, value, isBool)); });
  }

  Napi::Value NamedParameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto params = module(env)->namedParameters();
    Napi::Array out = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", params[i].name);
      p.Set("shape", fromShape(env, params[i].shape));
      p.Set("dtype", torchvid::dtypeName(params[i].dtype));
      out.Set(static_cast<uint32_t>(i), p);
    }
    return out;
  }

  Napi::Value Parameter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto m = module(env);
    auto name = toStringArg(info[0], "name");
    return guarded(env, ErrorCode::Torch, [&]() { return wrapTensor(env, m->parameter(name), /*aliased=*/true); });
  }

  // The weights' bytes told to V8 (module weights count toward GC pressure like tensors do).
  // Shared with pending moves, which change the size of a cast module after it settles.
  struct Report {
    Napi::Env env = nullptr;
    int64_t bytes = 0;
    void update(int64_t now) {
      if (now != bytes) Napi::MemoryManagement::AdjustExternalMemory(env, now - bytes);
      bytes = now;
    }
  };

  std::shared_ptr<ScriptModule> module_;
  std::shared_ptr<Report> report_;
};

// ---- Generator ------------------------------------------------------------------------------

class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:

  // Every entry point runs inside guarded(): no C++ exception can reach Node and end the process.
  template <Napi::Value (GeneratorWrap::*M)(const Napi::CallbackInfo&)>
  Napi::Value G(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), ErrorCode::Torch, [&]() { return (this->*M)(info); });
  }
  template <Napi::Value (*F)(const Napi::CallbackInfo&)>
  static Napi::Value GS(const Napi::CallbackInfo& info) {
    return guardedFunction<F>(info);
  }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Generator",
                       {
                           InstanceMethod<&GeneratorWrap::G<&GeneratorWrap::ManualSeed>>("manualSeed"),
                           InstanceAccessor<&GeneratorWrap::G<&GeneratorWrap::InitialSeed>>("initialSeed"),
                           InstanceMethod<&GeneratorWrap::G<&GeneratorWrap::GetState>>("getState"),
                           InstanceMethod<&GeneratorWrap::G<&GeneratorWrap::SetState>>("setState"),
                       });
  }

  GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info), generator_(torchvid::makeCpuGenerator()) {}

  at::Generator& generator() { return generator_; }

 private:
  Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsBigInt()) throw typeError(env, "Expected a BigInt for seed");
    bool lossless = false;
    uint64_t seed = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_current_seed(seed);
    return env.Undefined();
  }

  Napi::Value InitialSeed(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(generator_.current_seed()));
  }

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      state = generator_.get_state();
    }
    return tensorToTypedArray(env, state.contiguous());
  }

  Napi::Value SetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw typeError(env, "Expected a Uint8Array from getState() for state");
    }
    auto array = info[0].As<Napi::Uint8Array>();
    guarded(env, ErrorCode::Torch, [&]() {
      at::Tensor state = at::empty({static_cast<int64_t>(array.ElementLength())}, at::kByte);
      std::memcpy(state.data_ptr(), array.Data(), array.ElementLength());
      std::lock_guard<std::mutex> lock(generator_.mutex());
      generator_.set_state(state);
      return 0;
    });
    return env.Undefined();
  }

  at::Generator generator_;
};

at::Generator& unwrapGenerator(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addonData(env).generatorConstructor.Value())) {
    throw typeError(env, std::string("Expected a Generator for ") + name);
  }
  return GeneratorWrap::Unwrap(value.As<Napi::Object>())->generator();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ModuleWrap::Define(env);
  addonData(env).moduleConstructor = Napi::Persistent(ctor);
  exports.Set("Module", ctor);
  return exports;
}

Napi::Object InitGenerator(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = GeneratorWrap::Define(env);
  addonData(env).generatorConstructor = Napi::Persistent(ctor);
  exports.Set("Generator", ctor);
  return exports;
}

}  // namespace torchvid_binding
