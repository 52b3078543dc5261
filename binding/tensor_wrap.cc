// Tensor handles: a JS object owning one at::Tensor. Cheap element-wise and structural ops
// run synchronously (measured: a few microseconds each on small tensors, and GPU ops only
// enqueue kernels); copies between devices and to the host run on the libuv pool.
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "common.h"

namespace torchvid_binding {

using torchvid::Error;

// Handles per storage, and the bytes reported to V8 for it. A process-wide table under a lock
// (not AddonData, which may be gone before the last finalizer runs at exit).
static std::mutex g_storages_mutex;
static auto* g_storages = new std::unordered_map<const void*, std::pair<int64_t, int64_t>>();

// Counts a handle of `storage`; true (report `bytes`) for its first handle.
static bool reportStorage(const void* storage, int64_t bytes) {
  std::lock_guard<std::mutex> lock(g_storages_mutex);
  auto& entry = (*g_storages)[storage];
  if (entry.first++ > 0) return false;
  entry.second = bytes;
  return true;
}

// Uncounts a handle; the bytes to unreport when it was the last one, else 0.
static int64_t unreportStorage(const void* storage) {
  std::lock_guard<std::mutex> lock(g_storages_mutex);
  auto it = g_storages->find(storage);
  if (it == g_storages->end() || --it->second.first > 0) return 0;
  int64_t bytes = it->second.second;
  g_storages->erase(it);
  return bytes;
}

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:

  // Every entry point runs inside guarded(): no C++ exception can reach Node and end the process.
  template <Napi::Value (TensorWrap::*M)(const Napi::CallbackInfo&)>
  Napi::Value G(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), ErrorCode::Torch, [&]() { return (this->*M)(info); });
  }
  template <Napi::Value (*F)(const Napi::CallbackInfo&)>
  static Napi::Value GS(const Napi::CallbackInfo& info) {
    return guardedFunction<F>(info);
  }
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tensor",
                       {
                           StaticMethod<&TensorWrap::GS<&TensorWrap::FromArray>>("fromArray"),
                           StaticMethod<&TensorWrap::GS<&TensorWrap::Zeros>>("zeros"),
                           StaticMethod<&TensorWrap::GS<&TensorWrap::Cat>>("cat"),
                           StaticMethod<&TensorWrap::GS<&TensorWrap::Randn>>("randn"),
                           InstanceAccessor<&TensorWrap::G<&TensorWrap::Shape>>("shape"),
                           InstanceAccessor<&TensorWrap::G<&TensorWrap::DType>>("dtype"),
                           InstanceAccessor<&TensorWrap::G<&TensorWrap::Device>>("device"),
                           InstanceAccessor<&TensorWrap::G<&TensorWrap::Disposed>>("disposed"),
                           InstanceAccessor<&TensorWrap::G<&TensorWrap::NBytes>>("nbytes"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Dispose>>("dispose"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Add>>("add"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Sub>>("sub"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Mul>>("mul"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Div>>("div"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Axpby>>("axpby"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Sqrt>>("sqrt"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Abs>>("abs"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Round>>("round"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Clamp>>("clamp"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::ClampTensor>>("clampTensor"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Quantile>>("quantile"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Sum>>("sum"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Matmul>>("matmul"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Chunk>>("chunk"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Slice>>("slice"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Permute>>("permute"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Reshape>>("reshape"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::RepeatInterleave>>("repeatInterleave"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Clone>>("clone"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::Contiguous>>("contiguous"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::To>>("to"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::ToArraySync>>("toArraySync"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::ToArray>>("toArray"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::VideoFrames>>("videoFrames"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::ToDevice>>("toDevice"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::CopyFrom>>("copyFrom"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::AddInPlace>>("addInPlace"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::AxpbyInPlace>>("axpbyInPlace"),
                           InstanceMethod<&TensorWrap::G<&TensorWrap::MulInPlace>>("mulInPlace"),
                       });
  }

  TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
      throw typeError(info.Env(), "Tensor handles are created by torchvid (Tensor.from, Tensor.randn, ...), not with new");
    }
    auto* external = info[0].As<Napi::External<at::Tensor>>().Data();
    tensor_ = std::move(*external);
    aliased_ = info.Length() > 1 && info[1].ToBoolean();
    // Views (chunk, slice, reshape...) share their base's storage: V8 hears of each storage once,
    // when its first handle appears, and is told it is gone when its last handle goes.
    if (!aliased_ && tensor_.has_storage()) {
      storage_ = tensor_.storage().unsafeGetStorageImpl();
      int64_t bytes = static_cast<int64_t>(tensor_.storage().nbytes());
      if (reportStorage(storage_, bytes)) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), bytes);
    }
  }

  ~TensorWrap() override { release(); }

  const at::Tensor& tensor(Napi::Env env) const {
    if (!tensor_.defined()) {
      Napi::Error e = Napi::Error::New(env, "This Tensor was disposed: create a new one instead of reusing it");
      e.Set("code", Napi::String::New(env, "ERR_TORCHVID_DISPOSED"));
      throw e;
    }
    return tensor_;
  }

 private:
  void release() {
    if (storage_ != nullptr) {
      // Safe in finalizers: only adjusts a counter in V8.
      int64_t bytes = unreportStorage(storage_);
      if (bytes != 0) Napi::MemoryManagement::AdjustExternalMemory(Env(), -bytes);
      storage_ = nullptr;
    }
    tensor_ = at::Tensor();
  }

  // ---- factories ----

  static Napi::Value FromArray(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray()) throw typeError(env, "Expected a typed array for data");
    auto array = info[0].As<Napi::TypedArray>();
    auto shape = toShape(info[1], "shape");
    auto dtype = toStringArg(info[2], "dtype");
    auto device = toStringArg(info[3], "device");
    at::ScalarType hostType;
    switch (array.TypedArrayType()) {
      case napi_float32_array: hostType = at::kFloat; break;
      case napi_float64_array: hostType = at::kDouble; break;
      case napi_int32_array: hostType = at::kInt; break;
      case napi_uint8_array: hostType = at::kByte; break;
      case napi_bigint64_array: hostType = at::kLong; break;
      default: throw typeError(env, "Expected a Float32Array, Float64Array, Int32Array, Uint8Array or BigInt64Array for data");
    }
    return guarded(env, ErrorCode::Shape, [&]() {
      auto dims = torchvid::checkedShape(shape);
      int64_t numel = 1;
      for (auto d : dims) numel *= d;
      if (numel != static_cast<int64_t>(array.ElementLength())) {
        throw Error(ErrorCode::Shape, "shape holds " + std::to_string(numel) + " elements but data has " + std::to_string(array.ElementLength()));
      }
      void* bytes = nullptr;
      size_t length = 0;
      napi_typedarray_type kind;
      NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, array, &kind, &length, &bytes, nullptr, nullptr), Napi::Value());
      at::Tensor t = at::empty(dims, at::TensorOptions().dtype(hostType));
      if (numel > 0) std::memcpy(t.data_ptr(), bytes, array.ByteLength());
      auto target = torchvid::parseDType(dtype);
      if (target != hostType) t = t.to(target);
      auto dev = torchvid::parseDevice(device);
      if (!dev.is_cpu()) t = t.to(dev);
      return wrapTensor(env, std::move(t));
    });
  }

  static Napi::Value Zeros(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto shape = toShape(info[0], "shape");
    auto dtype = toStringArg(info[1], "dtype");
    auto device = toStringArg(info[2], "device");
    return guarded(env, ErrorCode::Shape, [&]() {
      auto opts = at::TensorOptions().dtype(torchvid::parseDType(dtype)).device(torchvid::parseDevice(device));
      return wrapTensor(env, at::zeros(torchvid::checkedShape(shape), opts));
    });
  }

  static Napi::Value Cat(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw typeError(env, "Expected an array of Tensors for tensors");
    auto array = info[0].As<Napi::Array>();
    std::vector<at::Tensor> tensors;
    for (uint32_t i = 0; i < array.Length(); i++) tensors.push_back(unwrapTensor(array.Get(i), "tensors[i]"));
    int64_t dim = toIntArg(info[1], "dim");
    return guarded(env, ErrorCode::Shape, [&]() { return wrapTensor(env, at::cat(tensors, dim)); });
  }

  static Napi::Value Randn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto shape = toShape(info[0], "shape");
    at::Generator& generator = unwrapGenerator(info[1], "generator");
    auto dtype = toStringArg(info[2], "dtype");
    auto device = toStringArg(info[3], "device");
    return guarded(env, ErrorCode::Shape, [&]() {
      return wrapTensor(env, torchvid::randn(shape, generator, torchvid::parseDType(dtype), torchvid::parseDevice(device)));
    });
  }

  // ---- properties ----

  Napi::Value Shape(const Napi::CallbackInfo& info) { return fromShape(info.Env(), tensor(info.Env()).sizes()); }
  Napi::Value DType(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), torchvid::dtypeName(tensor(info.Env()).scalar_type()));
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), torchvid::deviceName(tensor(info.Env()).device()));
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }
  Napi::Value NBytes(const Napi::CallbackInfo& info) {
    const auto& t = tensor(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(t.numel() * t.element_size()));
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  // ---- ops ----

  template <typename Fn>
  Napi::Value op(const Napi::CallbackInfo& info, ErrorCode fallback, Fn&& fn) {
    Napi::Env env = info.Env();
    const at::Tensor& self = tensor(env);
    return guarded(env, fallback, [&]() { return wrapTensor(env, fn(self)); });
  }

  // Binary op with a Tensor or a number on the right.
  template <typename TensorFn, typename ScalarFn>
  Napi::Value binary(const Napi::CallbackInfo& info, TensorFn&& onTensor, ScalarFn&& onScalar) {
    if (info[0].IsNumber()) {
      double s = toNumberArg(info[0], "other");
      return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return onScalar(t, s); });
    }
    at::Tensor other = unwrapTensor(info[0], "other");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return onTensor(t, other); });
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    double alpha = info.Length() > 1 && !info[1].IsUndefined() ? toNumberArg(info[1], "alpha") : 1.0;
    return binary(
        info, [&](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b, alpha); },
        [&](const at::Tensor& a, double s) { return at::add(a, s * alpha); });
  }
  Napi::Value Sub(const Napi::CallbackInfo& info) {
    return binary(
        info, [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); },
        [](const at::Tensor& a, double s) { return at::sub(a, s); });
  }
  Napi::Value Mul(const Napi::CallbackInfo& info) {
    return binary(
        info, [](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); },
        [](const at::Tensor& a, double s) { return at::mul(a, s); });
  }
  Napi::Value Div(const Napi::CallbackInfo& info) {
    return binary(
        info, [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); },
        [](const at::Tensor& a, double s) { return at::div(a, s); });
  }
  Napi::Value Axpby(const Napi::CallbackInfo& info) {
    double a = toNumberArg(info[0], "a");
    double b = toNumberArg(info[1], "b");
    at::Tensor y = unwrapTensor(info[2], "y");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& x) { return torchvid::axpby(x, a, b, y); });
  }
  Napi::Value Sqrt(const Napi::CallbackInfo& info) {
    return op(info, ErrorCode::DType, [](const at::Tensor& t) { return at::sqrt(t); });
  }
  Napi::Value Abs(const Napi::CallbackInfo& info) {
    return op(info, ErrorCode::DType, [](const at::Tensor& t) { return at::abs(t); });
  }
  Napi::Value Round(const Napi::CallbackInfo& info) {
    return op(info, ErrorCode::DType, [](const at::Tensor& t) { return at::round(t); });
  }
  Napi::Value Clamp(const Napi::CallbackInfo& info) {
    c10::optional<at::Scalar> lo, hi;
    if (!info[0].IsNull() && !info[0].IsUndefined()) lo = toNumberArg(info[0], "min");
    if (!info[1].IsNull() && !info[1].IsUndefined()) hi = toNumberArg(info[1], "max");
    return op(info, ErrorCode::DType, [&](const at::Tensor& t) { return at::clamp(t, lo, hi); });
  }
  Napi::Value ClampTensor(const Napi::CallbackInfo& info) {
    c10::optional<at::Tensor> lo = unwrapTensor(info[0], "min");
    c10::optional<at::Tensor> hi = unwrapTensor(info[1], "max");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return at::clamp(t, lo, hi); });
  }
  Napi::Value Quantile(const Napi::CallbackInfo& info) {
    double q = toNumberArg(info[0], "q");
    int64_t dim = toIntArg(info[1], "dim");
    bool keepdim = info[2].ToBoolean();
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return at::quantile(t, q, dim, keepdim); });
  }
  Napi::Value Sum(const Napi::CallbackInfo& info) {
    bool all = info[0].IsNull() || info[0].IsUndefined();
    int64_t dim = all ? 0 : toIntArg(info[0], "dim");
    bool keepdim = info[1].ToBoolean();
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) {
      return all ? at::sum(t) : at::sum(t, c10::IntArrayRef{dim}, keepdim);
    });
  }
  Napi::Value Matmul(const Napi::CallbackInfo& info) {
    at::Tensor other = unwrapTensor(info[0], "other");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return at::matmul(t, other); });
  }
  Napi::Value Chunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t chunks = toIntArg(info[0], "chunks");
    int64_t dim = toIntArg(info[1], "dim");
    const at::Tensor& self = tensor(env);
    return guarded(env, ErrorCode::Shape, [&]() {
      auto parts = at::chunk(self, chunks, dim);
      Napi::Array out = Napi::Array::New(env, parts.size());
      for (size_t i = 0; i < parts.size(); i++) out.Set(static_cast<uint32_t>(i), wrapTensor(env, parts[i]));
      return out;
    });
  }
  Napi::Value Slice(const Napi::CallbackInfo& info) {
    int64_t dim = toIntArg(info[0], "dim");
    int64_t start = toIntArg(info[1], "start");
    int64_t end = toIntArg(info[2], "end");
    int64_t step = toIntArg(info[3], "step");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return at::slice(t, dim, start, end, step); });
  }
  Napi::Value Permute(const Napi::CallbackInfo& info) {
    auto dims = toShape(info[0], "dims");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return t.permute(dims); });
  }
  Napi::Value Reshape(const Napi::CallbackInfo& info) {
    auto shape = toShape(info[0], "shape");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return t.reshape(shape); });
  }
  Napi::Value RepeatInterleave(const Napi::CallbackInfo& info) {
    int64_t repeats = toIntArg(info[0], "repeats");
    int64_t dim = toIntArg(info[1], "dim");
    return op(info, ErrorCode::Shape, [&](const at::Tensor& t) { return at::repeat_interleave(t, repeats, dim); });
  }
  Napi::Value Clone(const Napi::CallbackInfo& info) {
    return op(info, ErrorCode::Torch, [](const at::Tensor& t) { return t.clone(); });
  }
  Napi::Value Contiguous(const Napi::CallbackInfo& info) {
    return op(info, ErrorCode::Torch, [](const at::Tensor& t) { return t.contiguous(); });
  }
  Napi::Value To(const Napi::CallbackInfo& info) {
    auto dtype = toStringArg(info[0], "dtype");
    return op(info, ErrorCode::DType, [&](const at::Tensor& t) {
      return t.to(torchvid::parseDType(dtype), /*non_blocking=*/false, /*copy=*/true);
    });
  }

  Napi::Value ToArraySync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const at::Tensor& self = tensor(env);
    return guarded(env, ErrorCode::Device, [&]() {
      if (!self.device().is_cpu()) {
        throw Error(ErrorCode::Device, "dataSync() reads CPU tensors only; this one is on " + torchvid::deviceName(self.device()) + ": use await tensor.data()");
      }
      return tensorToTypedArray(env, hostReadable(self));
    });
  }

  Napi::Value ToArray(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor self = tensor(env);
    auto host = std::make_shared<at::Tensor>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(self.device()), ErrorCode::Device, [self, host]() { *host = hostReadable(self); },
        [host](Napi::Env env) { return tensorToTypedArray(env, *host); });
  }

  // Decoded VAE output [B, 3, F, H, W] in [-1, 1] -> frames [B, F, H, W, 3] on the host:
  // clamp(x * 0.5 + 0.5, 0, 1), then (uint8) x * 255 rounded, with the ops Tensor's methods use
  // (so the same floats as that JS sequence). On the device thread: for a long video these passes
  // take hundreds of milliseconds on a CPU, which must not block the event loop.
  Napi::Value VideoFrames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor self = tensor(env);
    bool uint8 = info[0].ToBoolean();
    if (self.dim() != 5) throw Napi::RangeError::New(env, "Expected a decoded video of shape [B, 3, F, H, W]");
    auto host = std::make_shared<at::Tensor>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(self.device()), ErrorCode::Device,
        [self, uint8, host]() {
          at::Tensor unit = at::clamp(at::add(at::mul(self, 0.5), 0.5), 0, 1).permute({0, 2, 3, 4, 1});
          *host = hostReadable(uint8 ? at::round(at::mul(unit, 255)).to(at::kByte, false, true) : unit.contiguous());
        },
        [host](Napi::Env env) { return tensorToTypedArray(env, *host); });
  }

  Napi::Value ToDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor self = tensor(env);
    auto name = toStringArg(info[0], "device");
    bool nonBlocking = info[1].ToBoolean();
    auto device = guarded(env, ErrorCode::Device, [&]() { return torchvid::parseDevice(name); });
    auto result = std::make_shared<at::Tensor>();
    return PromiseWorker::Queue(
        env, torchvid::deviceName(self.device()), ErrorCode::Device, [self, device, nonBlocking, result]() { *result = self.to(device, nonBlocking); },
        [result](Napi::Env env) { return wrapTensor(env, std::move(*result)); });
  }

  Napi::Value CopyFrom(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor src = unwrapTensor(info[0], "src");
    at::Tensor self = tensor(env);
    guarded(env, ErrorCode::Shape, [&]() {
      if (src.numel() != self.numel()) {
        throw Error(ErrorCode::Shape, "copyFrom: source has " + std::to_string(src.numel()) + " elements, target " + std::to_string(self.numel()));
      }
      self.copy_(src.reshape(self.sizes()));
      return 0;
    });
    return env.Undefined();
  }

  Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    at::Tensor other = unwrapTensor(info[0], "other");
    double alpha = toNumberArg(info[1], "alpha");
    at::Tensor self = tensor(env);
    guarded(env, ErrorCode::Shape, [&]() {
      self.add_(other.to(self.scalar_type()), alpha);
      return 0;
    });
    return env.Undefined();
  }

  // this = a * this + b * y without a new tensor: the same two ops (mul, then add with alpha) as
  // axpby(), so the numbers are bit-identical to the allocating version.
  Napi::Value AxpbyInPlace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double a = toNumberArg(info[0], "a");
    double b = toNumberArg(info[1], "b");
    at::Tensor y = unwrapTensor(info[2], "y");
    at::Tensor self = tensor(env);
    guarded(env, ErrorCode::Shape, [&]() {
      torchvid::axpbyInPlace(self, a, b, y);
      return 0;
    });
    return env.Undefined();
  }

  Napi::Value MulInPlace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double s = toNumberArg(info[0], "s");
    at::Tensor self = tensor(env);
    guarded(env, ErrorCode::DType, [&]() {
      self.mul_(s);
      return 0;
    });
    return env.Undefined();
  }

  at::Tensor tensor_;
  bool aliased_ = false;
  const void* storage_ = nullptr;  // the storage this handle counts in reportStorage()

  friend at::Tensor unwrapTensor(const Napi::Value& value, const char* name);
  friend bool isTensor(const Napi::Value& value);
};

Napi::Object wrapTensor(Napi::Env env, at::Tensor tensor, bool aliased) {
  auto external = Napi::External<at::Tensor>::New(env, &tensor);
  return addonData(env).tensorConstructor.New({external, Napi::Boolean::New(env, aliased)});
}

bool isTensor(const Napi::Value& value) {
  if (!value.IsObject()) return false;
  Napi::Env env = value.Env();
  return value.As<Napi::Object>().InstanceOf(addonData(env).tensorConstructor.Value());
}

at::Tensor unwrapTensor(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!isTensor(value)) throw typeError(env, std::string("Expected a Tensor for ") + name);
  return TensorWrap::Unwrap(value.As<Napi::Object>())->tensor(env);
}

Napi::Object InitTensor(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = TensorWrap::Define(env);
  addonData(env).tensorConstructor = Napi::Persistent(ctor);
  exports.Set("Tensor", ctor);
  return exports;
}

}  // namespace torchvid_binding
