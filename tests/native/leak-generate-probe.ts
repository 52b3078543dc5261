// Run by tests/leak.test.ts in a child process (with --expose-gc): N generate() calls on the tiny
// model, RSS sampled every N/10 calls after the warm-up. Live memory only: the GC runs and the
// caching CPU allocator hands its free blocks back before each sample. Prints one JSON line.
import { TextToVideoSDPipeline } from "../../lib/index.ts";
import { native } from "../../lib/native.ts";

const [model, callsArg] = process.argv.slice(2);
const calls = Number(callsArg ?? 1000);
const gc = (globalThis as { gc?: () => void }).gc!;
const rssMiB = () => {
  gc();
  native().emptyCache();
  return process.memoryUsage().rss / 2 ** 20;
};

const pipe = await TextToVideoSDPipeline.fromPretrained(model!, { device: "cpu" });
// The cheapest call that still runs every stage (text encoder, one UNet step, VAE decode, frames).
const options = { prompt: "a corgi", numFrames: 1, height: 16, width: 16, numInferenceSteps: 1, guidanceScale: 1, outputType: "float" as const };
let bytes = 0;
const started = performance.now();
for (let i = 0; i < 50; i++) await pipe.generate({ ...options, seed: i });
const samples: [number, number][] = [];
for (let i = 0; i < calls; i++) {
  if (i % (calls / 10) === 0) samples.push([i, rssMiB()]);
  const { frames } = await pipe.generate({ ...options, seed: i });
  bytes = (frames[0] as unknown as { data?: ArrayLike<number> }).data?.length ?? bytes;
}
samples.push([calls, rssMiB()]);
// Least-squares slope of RSS over calls, from the second sample on (the first still holds the
// warm-up's garbage).
samples.shift();
const n = samples.length;
const mx = samples.reduce((a, [x]) => a + x, 0) / n;
const my = samples.reduce((a, [, y]) => a + y, 0) / n;
const slope = samples.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / samples.reduce((a, [x]) => a + (x - mx) ** 2, 0);
console.log(JSON.stringify({ calls, seconds: (performance.now() - started) / 1000, slopeKiBPerCall: (slope * 1024), samples: samples.map(([x, y]) => [x, Math.round(y * 10) / 10]) }));
