// A loaded TorchScript module and what the pipelines do with it: run, move between devices
// (CPU offload), read/set attributes at run time (forward chunking), edit parameters (LoRA).
#pragma once

#include "core.h"

#include <mutex>

namespace torchvid {

// Test hook: the next ScriptModule::to fails with an out-of-memory error after moving `tensors`
// tensors (to prove the roll-back; a real out-of-memory cannot be provoked safely on a shared machine).
void failNextMoveAfter(int tensors);

class ScriptModule {
 public:
  // Loads a TorchScript file onto `device`, casting floating parameters to `dtype` if given.
  static std::shared_ptr<ScriptModule> load(const std::string& path, const at::Device& device,
                                            std::optional<at::ScalarType> dtype);

  c10::IValue run(const std::string& method, std::vector<c10::IValue> inputs);
  bool hasMethod(const std::string& name) const;
  void to(const at::Device& device, std::optional<at::ScalarType> dtype);

  c10::IValue getAttr(const std::string& path, const std::string& name) const;
  // Sets an int/float/bool attribute; the value is converted to the attribute's declared type.
  void setAttr(const std::string& path, const std::string& name, double value, bool isBool);
  // Sets `name` on every submodule (and the root) that declares it. Returns how many.
  int setAttrAll(const std::string& name, double value, bool isBool);

  struct ParameterInfo {
    std::string name;
    std::vector<int64_t> shape;
    at::ScalarType dtype;
  };
  std::vector<ParameterInfo> namedParameters() const;
  // The parameter itself (aliases the module's storage).
  at::Tensor parameter(const std::string& name) const;

  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  const std::string& path() const { return path_; }
  int64_t nbytes() const;

 private:
  ScriptModule(torch::jit::Module module, std::string path, at::Device device, at::ScalarType dtype);
  torch::jit::Module submodule(const std::string& path) const;

  torch::jit::Module module_;
  std::string path_;
  at::Device device_;
  at::ScalarType dtype_;
};

}  // namespace torchvid
