#include "executor.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "core.h"

namespace torchvid {

namespace {

class Executor {
 public:
  explicit Executor(const std::string& key) : thread_([this] { loop(); }) { thread_.detach(); }

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
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      prepareThread();  // cheap unless setNumThreads() changed the count since the last task
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
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
