// Run by tests/native-leak.test.ts in a child process with MALLOC_MMAP_THRESHOLD_ set, so that
// glibc returns freed tensor memory at once and RSS measures live memory, not malloc's caches.
// Prints one JSON line: RSS growth in MiB per scenario.
import { join } from "node:path";
import { TorchModule } from "../../lib/module.ts";
import { native } from "../../lib/native.ts";
import { Tensor } from "../../lib/tensor.ts";

const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc!;
const rss = () => {
  gc();
  // The caching CPU allocator keeps freed blocks for reuse: hand them back so RSS is live memory.
  native().emptyCache();
  return process.memoryUsage().rss;
};

async function main(fixtureDir: string) {
  const result: Record<string, number> = {};
  const data = new Float32Array(16384); // 64 KiB per tensor
  const cycle = () => {
    const t = Tensor.from(data, [16384]);
    const u = t.axpby(0.5, 0.5, t);
    t.dispose();
    u.dispose();
  };
  for (let i = 0; i < 1000; i++) cycle();
  let before = rss();
  for (let i = 0; i < 10_000; i++) cycle();
  result.createDispose = (rss() - before) / MiB;

  before = rss();
  const big = new Float32Array(262144); // 1 MiB each, never disposed: finalizers must free them
  for (let i = 0; i < 2000; i++) Tensor.from(big, [262144]).add(1);
  await new Promise((r) => setTimeout(r, 50));
  result.finalizers = (rss() - before) / MiB;

  // Forwards whose outputs are 1.5 MiB each ([131072, 3] float32): a leaked output per forward
  // would be 300 MiB over 200 forwards.
  const m = await TorchModule.load(join(fixtureDir, "affine.pt"));
  const x = Tensor.randn([131072, 4], { seed: 1 });
  for (let i = 0; i < 20; i++) (await m.forwardTensor(x)).dispose();
  before = rss();
  for (let i = 0; i < 200; i++) {
    const out = await m.forwardTensor(x);
    result.outputMiB = out.nbytes / MiB;
    out.dispose();
  }
  // And outputs nobody disposes: the GC must free them (their storage is reported to V8).
  for (let i = 0; i < 200; i++) await m.forwardTensor(x);
  gc();
  await new Promise((r) => setTimeout(r, 50)); // Node-API finalizers run after the GC pass
  result.forwards = (rss() - before) / MiB;
  console.log(JSON.stringify(result));
}

await main(process.argv[2]);
