#include "executor.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

// setGraphExecutorOptimize is defined in libtorch_cpu (graph_executor.cpp) in 1.13 and 2.x; its
// header sits under jit/python/, which a trimmed libtorch may not ship: declare it if absent.
#if __has_include(<torch/csrc/jit/python/update_graph_executor_opt.h>)
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#else
#include <c10/macros/Export.h>
namespace torch::jit {
TORCH_API void setGraphExecutorOptimize(bool o);
}
#endif

#include "core.h"

namespace torchvid {

namespace {

class Executor {
 public:
  explicit Executor(const std::string& key) : cpu_(key == "cpu"), thread_([this] { loop(); }) { thread_.detach(); }

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

 private:
  void loop() {
    // Set up once for the life of the thread: what PromiseWorker did on every call.
    c10::InferenceMode inference;
    // TorchScript's profiling executor runs a module's first forward instrumented and its second
    // through the optimizer, then the optimized graph; on CPU the optimized graph is no faster
    // (libtorch does not fuse on CPU by default) and the two warm-up forwards cost ~2x a plain
    // one each: on models/tiny the first two UNet steps took 0.5 s instead of 0.2-0.3 s, and the
    // text encoder and VAE, which run once per call, always ran instrumented. The setting is
    // per thread: CUDA executors keep the optimizer, whose fusions do pay off there.
    if (cpu_) {
      torch::jit::setGraphExecutorOptimize(false);
    } else {
      prepareSerialThread();  // one OpenMP team per process: the CPU executor's (core.h)
    }
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      // cheap unless setNumThreads() changed the count since the last task
      if (cpu_) prepareThread();
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  const bool cpu_;  // before thread_: the thread reads it as soon as it starts
  std::thread thread_;
};

std::mutex g_executors_mutex;
// Never destroyed: the threads outlive static destruction at exit and must not find their queue gone.
std::map<std::string, Executor*>* g_executors = new std::map<std::string, Executor*>();

}  // namespace

std::string executorKey(const std::string& deviceName) { return deviceName == "cuda" ? "cuda:0" : deviceName; }

void postToDevice(const std::string& key, std::function<void()> task) {
  Executor* executor;
  {
    std::lock_guard<std::mutex> lock(g_executors_mutex);
    auto& slot = (*g_executors)[executorKey(key)];
    if (slot == nullptr) slot = new Executor(key);
    executor = slot;
  }
  executor->post(std::move(task));
}

}  // namespace torchvid
