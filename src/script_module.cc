#include "script_module.h"

#include <atomic>
#include <fstream>
#include <sstream>

namespace torchvid {

ScriptModule::ScriptModule(torch::jit::Module module, std::string path, at::Device device, at::ScalarType dtype)
    : module_(std::move(module)), path_(std::move(path)), device_(device), dtype_(dtype) {}

// The dtype of the first floating parameter (what the module computes in).
static at::ScalarType moduleDType(const torch::jit::Module& module) {
  for (const auto& p : module.parameters()) {
    if (at::isFloatingType(p.scalar_type())) return p.scalar_type();
  }
  return at::kFloat;
}

std::shared_ptr<ScriptModule> ScriptModule::load(const std::string& path, const at::Device& device,
                                                 std::optional<at::ScalarType> dtype) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe.good()) {
      throw Error(ErrorCode::ModelLoad, "model file " + path + " does not exist or cannot be read");
    }
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    if (probe.gcount() < 2 || magic[0] != 'P' || magic[1] != 'K') {
      throw Error(ErrorCode::ModelLoad, "model file " + path +
                                            " is not a TorchScript archive (not a zip file): re-run `torchvid convert` to write it again");
    }
  }
  if (dtype && *dtype == at::kHalf && device.is_cpu()) {
    throw Error(ErrorCode::DType, "float16 cannot run on the CPU with this libtorch; use \"float32\" or \"bfloat16\" on the CPU, float16 on CUDA");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    auto cut = message.find("\nException raised from");
    if (cut != std::string::npos) message = message.substr(0, cut);
    throw Error(ErrorCode::ModelLoad, "cannot load model file " + path + ": " + message +
                                          " (the file may be truncated or written by an incompatible torch; re-run `torchvid convert`)");
  }
  module.eval();
  for (auto p : module.parameters()) p.set_requires_grad(false);
  if (dtype) module.to(*dtype);
  at::ScalarType actual = moduleDType(module);
  if (actual == at::kHalf && device.is_cpu()) {
    throw Error(ErrorCode::DType, "model file " + path +
                                      " holds float16 weights, which cannot run on the CPU with this libtorch; load it with dtype \"float32\" or \"bfloat16\"");
  }
  return std::shared_ptr<ScriptModule>(new ScriptModule(std::move(module), path, device, actual));
}

c10::IValue ScriptModule::run(const std::string& method, std::vector<c10::IValue> inputs) {
  auto m = module_.find_method(method);
  if (!m) throw Error(ErrorCode::Forward, "module " + path_ + " has no method \"" + method + "\"");
  return (*m)(std::move(inputs));
}

bool ScriptModule::hasMethod(const std::string& name) const { return module_.find_method(name).has_value(); }

// Test hook (native().testHooks.failNextMoveAfter): fail the next move after this many tensors.
static std::atomic<int> g_fail_move_after{-1};
void failNextMoveAfter(int tensors) { g_fail_move_after = tensors; }

void ScriptModule::to(const at::Device& device, std::optional<at::ScalarType> dtype) {
  if (dtype && *dtype == at::kHalf && device.is_cpu()) {
    throw Error(ErrorCode::DType, "float16 cannot run on the CPU with this libtorch; use float32 or bfloat16");
  }
  // Tensor by tensor, like torch::jit::Module::to, but keeping each tensor's old data until every
  // one has moved: a failure part way (out of memory on the destination) puts back what moved,
  // so the module is never left half on one device with a stale device(). Only floating-point
  // tensors are cast (integer buffers keep their type, as nn.Module.to does).
  std::vector<std::pair<at::Tensor, at::Tensor>> moved;  // (tensor, its old data)
  int failAfter = g_fail_move_after.exchange(-1);
  auto move = [&](at::Tensor t) {
    if (failAfter >= 0 && static_cast<int>(moved.size()) >= failAfter) {
      throw Error(ErrorCode::OutOfMemory, "out of memory (simulated by the test hook after " + std::to_string(failAfter) + " tensors)");
    }
    at::ScalarType type = dtype && at::isFloatingType(t.scalar_type()) ? *dtype : t.scalar_type();
    if (t.device() == device && t.scalar_type() == type) return;
    at::Tensor old = t.variable_data();
    t.set_data(t.to(device, type, /*non_blocking=*/false, /*copy=*/false));
    moved.emplace_back(t, std::move(old));
  };
  try {
    for (const auto& p : module_.parameters()) move(p);
    for (const auto& b : module_.buffers()) move(b);
  } catch (...) {
    for (auto& [t, old] : moved) t.set_data(old);
    throw;
  }
  device_ = device;
  dtype_ = moduleDType(module_);
}

torch::jit::Module ScriptModule::submodule(const std::string& path) const {
  torch::jit::Module current = module_;
  if (path.empty()) return current;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (!current.hasattr(part)) throw Error(ErrorCode::Torch, "module has no submodule \"" + path + "\" (missing \"" + part + "\")");
    auto value = current.attr(part);
    if (!value.isModule()) throw Error(ErrorCode::Torch, "\"" + part + "\" in \"" + path + "\" is not a submodule");
    current = value.toModule();
  }
  return current;
}

c10::IValue ScriptModule::getAttr(const std::string& path, const std::string& name) const {
  auto m = submodule(path);
  if (!m.hasattr(name)) throw Error(ErrorCode::Torch, "module \"" + path + "\" has no attribute \"" + name + "\"");
  return m.attr(name);
}

static c10::IValue valueForType(const c10::TypePtr& type, double value, bool isBool, const std::string& name) {
  switch (type->kind()) {
    case c10::TypeKind::IntType:
      if (isBool || value != static_cast<double>(static_cast<int64_t>(value))) {
        throw Error(ErrorCode::Torch, "attribute \"" + name + "\" is an int: pass an integer");
      }
      return c10::IValue(static_cast<int64_t>(value));
    case c10::TypeKind::FloatType:
      if (isBool) throw Error(ErrorCode::Torch, "attribute \"" + name + "\" is a float: pass a number");
      return c10::IValue(value);
    case c10::TypeKind::BoolType:
      if (!isBool) throw Error(ErrorCode::Torch, "attribute \"" + name + "\" is a bool: pass true or false");
      return c10::IValue(value != 0);
    default:
      throw Error(ErrorCode::Torch, "attribute \"" + name + "\" has type " + type->str() + ", which cannot be set from JS");
  }
}

static bool setIfDeclared(torch::jit::Module& m, const std::string& name, double value, bool isBool) {
  auto type = m.type();
  auto slot = type->findAttributeSlot(name);
  if (!slot) return false;
  m.setattr(name, valueForType(type->getAttribute(*slot), value, isBool, name));
  return true;
}

void ScriptModule::setAttr(const std::string& path, const std::string& name, double value, bool isBool) {
  auto m = submodule(path);
  if (!setIfDeclared(m, name, value, isBool)) {
    throw Error(ErrorCode::Torch, "module \"" + path + "\" has no attribute \"" + name + "\"");
  }
}

int ScriptModule::setAttrAll(const std::string& name, double value, bool isBool) {
  int count = 0;
  for (auto m : module_.modules()) {
    if (setIfDeclared(m, name, value, isBool)) count++;
  }
  return count;
}

std::vector<ScriptModule::ParameterInfo> ScriptModule::namedParameters() const {
  std::vector<ParameterInfo> out;
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    out.push_back({p.name, p.value.sizes().vec(), p.value.scalar_type()});
  }
  return out;
}

at::Tensor ScriptModule::parameter(const std::string& name) const {
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    if (p.name == name) return p.value;
  }
  throw Error(ErrorCode::Torch, "module " + path_ + " has no parameter \"" + name + "\"");
}

int64_t ScriptModule::nbytes() const {
  int64_t total = 0;
  for (const auto& p : module_.parameters()) total += p.numel() * p.element_size();
  for (const auto& b : module_.buffers()) total += b.numel() * b.element_size();
  return total;
}

}  // namespace torchvid
