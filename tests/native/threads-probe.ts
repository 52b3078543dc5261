/**
 * Child process of tests/native-threads.test.ts: counts the process's threads after a forward on
 * the CPU executor (its OpenMP team exists then), and again after large element-wise ops on the JS
 * thread, which would make a second OpenMP team if the JS thread were allowed more than one
 * intra-op thread. Prints JSON.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { TorchModule } from "../../lib/module.ts";
import { info, setNumThreads } from "../../lib/runtime.ts";
import { Tensor } from "../../lib/tensor.ts";

const threads = () => readdirSync("/proc/self/task").length;
// What the CLI's --threads and the benchmarks do; it must not give the JS thread a team either.
setNumThreads(2);
const slow = await TorchModule.load(join(process.argv[2]!, "slow.pt"));
// Small enough (4,096 elements, under ATen's grain size) to run serially on the JS thread whatever
// its thread count: the baseline below must not already include a JS-thread team.
const x = Tensor.randn([64, 64]).mul(0.01);
for (let i = 0; i < 3; i++) (await slow.forwardTensor(x, 4)).dispose();
const afterForwards = threads();
// 4 M elements: far above ATen's grain size (32,768), so these would run in parallel regions.
const big = Tensor.randn([4_000_000]);
for (let i = 0; i < 5; i++) big.mul(1.5).round().dispose();
const afterJsOps = threads();
(await slow.forwardTensor(x, 4)).dispose();
console.log(JSON.stringify({ afterForwards, afterJsOps, afterMore: threads(), numThreads: info().numThreads }));
