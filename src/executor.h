// One persistent native thread per device: every piece of libtorch work for that device (loads,
// forwards, host copies, moves) runs on it, in the order it was posted. The thread is set up once
// (intra-op thread count, InferenceMode) and is always the same thread, so its allocator arena,
// OpenMP team and thread-local caches stay warm between calls (bench/NOTES.md: measured against
// the libuv pool it replaced). Knows nothing of Node: binding/common.h hands results back to JS.
#pragma once

#include <functional>
#include <string>

namespace torchvid {

// Queues `task` on the executor thread of `key` ("cpu", "cuda:0", ...), creating the thread on
// first use. `task` must not throw (wrap it); it runs with InferenceMode on.
void postToDevice(const std::string& key, std::function<void()> task);

// The executor key of a device ("cuda" and "cuda:0" are one key).
std::string executorKey(const std::string& deviceName);

}  // namespace torchvid
