// Argument conversion between JS values and C++ types.
#include "common.h"

#include <cmath>

namespace torchvid_binding {

std::vector<int64_t> toShape(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throw typeError(env, std::string("Expected an array of integers for ") + name);
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  shape.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value v = array.Get(i);
    if (!v.IsNumber()) throw typeError(env, std::string("Expected an array of integers for ") + name);
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isnan(d) || d != std::floor(d)) throw Napi::RangeError::New(env, std::string("Expected integers in ") + name);
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

std::string toStringArg(const Napi::Value& value, const char* name) {
  if (!value.IsString()) throw typeError(value.Env(), std::string("Expected a string for ") + name);
  return value.As<Napi::String>().Utf8Value();
}

double toNumberArg(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw typeError(value.Env(), std::string("Expected a number for ") + name);
  double d = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) throw Napi::RangeError::New(value.Env(), std::string("Expected a number for ") + name + " but received NaN");
  return d;
}

int64_t toIntArg(const Napi::Value& value, const char* name) {
  double d = toNumberArg(value, name);
  if (d != std::floor(d)) throw Napi::RangeError::New(value.Env(), std::string("Expected an integer for ") + name);
  return static_cast<int64_t>(d);
}

Napi::Array fromShape(Napi::Env env, c10::IntArrayRef shape) {
  Napi::Array out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return out;
}

at::Tensor hostReadable(const at::Tensor& tensor) {
  at::Tensor t = tensor;
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  return t.contiguous();
}

template <typename ArrayT>
static Napi::Value copyOut(Napi::Env env, const at::Tensor& t) {
  auto out = ArrayT::New(env, static_cast<size_t>(t.numel()));
  if (t.numel() > 0) std::memcpy(out.Data(), t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  return out;
}

Napi::Value tensorToTypedArray(Napi::Env env, const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return copyOut<Napi::Float32Array>(env, t);
    case at::kDouble: return copyOut<Napi::Float64Array>(env, t);
    case at::kInt: return copyOut<Napi::Int32Array>(env, t);
    case at::kLong: return copyOut<Napi::TypedArrayOf<int64_t>>(env, t);
    case at::kByte:
    case at::kBool: return copyOut<Napi::Uint8Array>(env, t);
    default:
      throw torchvid::Error(ErrorCode::DType, "cannot read a " + torchvid::dtypeName(t.scalar_type()) + " tensor into a typed array");
  }
}

}  // namespace torchvid_binding
