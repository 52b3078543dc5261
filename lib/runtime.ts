/**
 * Facts about the native runtime: versions, devices, memory. `info()` is what `torchvid info`
 * prints.
 */
import { loadedBinary, native } from "./native.ts";
import type { NativeDeviceInfo, NativeMatmulRouting, NativeMemoryStats } from "./native-types.ts";
import { wrapNative } from "./errors.ts";
import { checkDevice, type Device } from "./tensor.ts";
import { expectInt } from "./validate.ts";

export interface TorchvidInfo {
  /** Version of the native addon (= the package version it was built from). */
  addonVersion: string;
  /** libtorch version the addon was compiled against. */
  libtorchVersion: string;
  /** Whether this binary was built against a CUDA libtorch. */
  cudaBuild: boolean;
  cudaVersion: string | null;
  /** Whether a CUDA device can be used now. */
  cudaAvailable: boolean;
  devices: NativeDeviceInfo[];
  /** Intra-op CPU threads of the CPU executor (setNumThreads; the JS thread's own ops use one). */
  numThreads: number;
  /**
   * Where float32 matrix products go: libtorch builds with a generic BLAS (Debian's) would send
   * them to the reference BLAS, so the addon routes them to oneDNN's sgemm (TORCHVID_BLAS=system
   * opts out). `calls` counts the products routed so far.
   */
  float32Matmul: NativeMatmulRouting;
  /** The .node file loaded and how it was chosen. */
  binary: { path: string; origin: string; variant: string | null };
  /** Where libtorch was found ("system", "python3", "TORCHVID_LIBTORCH", "Torch_DIR") and its lib folder. */
  libtorch: { source: string; libDir: string | null; version: string | null } | null;
}

export function info(): TorchvidInfo {
  const n = native().info();
  const b = loadedBinary();
  return {
    addonVersion: n.addonVersion,
    libtorchVersion: n.torchVersion,
    cudaBuild: n.cudaBuild,
    cudaVersion: n.cudaVersion,
    cudaAvailable: n.cudaAvailable,
    devices: n.devices,
    numThreads: n.numThreads,
    float32Matmul: n.float32Matmul,
    binary: { path: b.path, origin: b.origin, variant: b.manifest?.variant ?? null },
    libtorch: b.libtorch ? { source: b.libtorch.source, libDir: b.libtorch.libDir, version: b.libtorch.version } : null,
  };
}

/** "cuda" when a CUDA device is usable, else "cpu". */
export function defaultDevice(): Device {
  return native().info().cudaAvailable ? "cuda" : "cpu";
}

function deviceIndex(device: Device | number): number {
  if (typeof device === "number") return expectInt(device, "device", { min: 0 });
  const d = checkDevice(device);
  return d === "cpu" || d === "cuda" ? 0 : Number(d.split(":")[1]);
}

/** CUDA caching-allocator statistics in bytes (throws ERR_TORCHVID_DEVICE on CPU-only builds). */
export function memoryStats(device: Device | number = 0): NativeMemoryStats {
  const index = deviceIndex(device);
  return wrapNative(() => native().memoryStats(index), "ERR_TORCHVID_DEVICE");
}

export function resetPeakMemoryStats(device: Device | number = 0): void {
  const index = deviceIndex(device);
  wrapNative(() => native().resetPeakMemoryStats(index), "ERR_TORCHVID_DEVICE");
}

/** Returns cached, unused GPU memory to the driver. */
export function emptyCache(): void {
  native().emptyCache();
}

/** Waits until all queued GPU work finished (for timing). */
export async function synchronize(device: Device | number = 0): Promise<void> {
  const index = deviceIndex(device);
  if (typeof device === "string" && device === "cpu") return;
  await wrapNative(() => native().synchronize(index), "ERR_TORCHVID_DEVICE");
}

/**
 * Sets the intra-op CPU threads of the CPU executor (forwards, loads, host copies), from its next
 * task on. Tensor ops called on the JS thread always run on one thread: a second OpenMP team
 * would slow every later forward (README, "One OpenMP team").
 */
export function setNumThreads(n: number): void {
  native().setNumThreads(expectInt(n, "n", { min: 1 }));
}
