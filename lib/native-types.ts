/**
 * The typed contract of the native addon (`torchvid.node`). Only `lib/native.ts` loads the
 * binary; everything else sees it through these types. Keep in step with `binding/*.cc`.
 */

/** Element types a tensor handle can hold. */
export type DType = "float32" | "float16" | "bfloat16" | "float64" | "int32" | "int64" | "uint8" | "bool";

/** Typed arrays that cross the boundary (copied, never shared). */
export type HostArray = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

/** A libtorch tensor that lives where it was put (CPU or GPU). Opaque: no pointer reaches JS. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: string;
  readonly disposed: boolean;
  /** Frees the storage now (otherwise the GC finalizer does). Idempotent. */
  dispose(): void;

  add(other: NativeTensor | number, alpha: number): NativeTensor;
  sub(other: NativeTensor | number): NativeTensor;
  mul(other: NativeTensor | number): NativeTensor;
  div(other: NativeTensor | number): NativeTensor;
  /** a * this + b * y in one call. */
  axpby(a: number, b: number, y: NativeTensor): NativeTensor;
  sqrt(): NativeTensor;
  abs(): NativeTensor;
  round(): NativeTensor;
  clamp(min: number | null, max: number | null): NativeTensor;
  clampTensor(min: NativeTensor, max: NativeTensor): NativeTensor;
  quantile(q: number, dim: number, keepdim: boolean): NativeTensor;
  sum(dim: number | null, keepdim: boolean): NativeTensor;
  matmul(other: NativeTensor): NativeTensor;
  chunk(chunks: number, dim: number): NativeTensor[];
  slice(dim: number, start: number, end: number, step: number): NativeTensor;
  permute(dims: number[]): NativeTensor;
  reshape(shape: number[]): NativeTensor;
  repeatInterleave(repeats: number, dim: number): NativeTensor;
  clone(): NativeTensor;
  contiguous(): NativeTensor;
  to(dtype: DType): NativeTensor;
  /** Copies to host memory synchronously (CPU tensors; small reads). */
  toArraySync(): HostArray;
  /** Copies to host memory off the JS thread (any device). */
  toArray(): Promise<HostArray>;
  /** Decoded video [B, 3, F, H, W] in [-1, 1] -> host frames [B, F, H, W, 3] (uint8, or float in [0, 1]), on the device thread. */
  videoFrames(uint8: boolean): Promise<Uint8Array | Float32Array>;
  /** Copies to another device off the JS thread. */
  toDevice(device: string, nonBlocking: boolean): Promise<NativeTensor>;
  /** Copies the values of `src` into this tensor in place (same shape). */
  copyFrom(src: NativeTensor): void;
  /** this += alpha * other, in place. */
  addInPlace(other: NativeTensor, alpha: number): void;
  axpbyInPlace(a: number, b: number, y: NativeTensor): void;
  mulInPlace(s: number): void;
  /** Bytes of storage held by this tensor. */
  readonly nbytes: number;
}

export interface NativeTensorStatic {
  fromArray(data: HostArray, shape: number[], dtype: DType, device: string): NativeTensor;
  zeros(shape: number[], dtype: DType, device: string): NativeTensor;
  cat(tensors: NativeTensor[], dim: number): NativeTensor;
  randn(shape: number[], generator: NativeGenerator, dtype: DType, device: string): NativeTensor;
}

/** A CPU random generator, bit-compatible with torch.Generator("cpu"). */
export interface NativeGenerator {
  manualSeed(seed: bigint): void;
  readonly initialSeed: bigint;
  getState(): Uint8Array;
  setState(state: Uint8Array): void;
}

export interface NativeGeneratorStatic {
  new (): NativeGenerator;
}

export interface NativeParameterInfo {
  name: string;
  shape: number[];
  dtype: DType;
}

/** A loaded TorchScript module. */
export interface NativeModule {
  readonly device: string;
  readonly dtype: DType;
  readonly path: string;
  readonly disposed: boolean;
  dispose(): void;
  /** Runs `method` (usually "forward") off the JS thread. */
  run(method: string, inputs: NativeValue[]): Promise<NativeValue>;
  /**
   * One forward with classifier-free guidance around it, in one device task: `inputs[doubled]` goes
   * in twice along the batch, and the output's halves come back as uncond + g * (text - uncond)
   * (doubled = -1: a plain forward returning one tensor).
   * `forwardMs` is the forward's own time on the device thread.
   */
  runGuided(method: string, inputs: NativeValue[], doubled: number, guidanceScale: number): Promise<{ prediction: NativeTensor; forwardMs: number }>;
  hasMethod(name: string): boolean;
  /** Moves parameters and buffers to another device (and dtype) off the JS thread. */
  to(device: string, dtype: DType | null): Promise<void>;
  /** Reads an attribute; `path` is "" for the root or a dotted submodule path. */
  getAttr(path: string, name: string): NativeValue;
  setAttr(path: string, name: string, value: number | boolean): void;
  /** Sets `name` on every submodule that has it; returns how many were changed. */
  setAttrAll(name: string, value: number | boolean): number;
  namedParameters(): NativeParameterInfo[];
  /** A handle that aliases the parameter's storage (edits change the module). */
  parameter(name: string): NativeTensor;
  /** Bytes of parameters and buffers. */
  readonly nbytes: number;
}

export type NativeValue = NativeTensor | number | boolean | null | NativeValue[];

export interface NativeModuleStatic {
  load(path: string, device: string, dtype: DType | null): Promise<NativeModule>;
}

export interface NativeDeviceInfo {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
}

export interface NativeInfo {
  addonVersion: string;
  torchVersion: string;
  cudaBuild: boolean;
  cudaVersion: string | null;
  cudaAvailable: boolean;
  devices: NativeDeviceInfo[];
  numThreads: number;
  float32Matmul: NativeMatmulRouting;
}

/** Where libtorch's float32 `sgemm_` calls go (src/onednn_sgemm.h). */
export interface NativeMatmulRouting {
  /** "onednn": oneDNN's sgemm; "system": the BLAS libtorch links (TORCHVID_BLAS=system, or no separate oneDNN). */
  backend: "onednn" | "system";
  /** sgemm_ calls that came through the addon so far; stays 0 where libtorch keeps its BLAS inside (PyTorch wheels). */
  calls: number;
}

export interface NativeMemoryStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  peakReserved: number;
}

export interface NativeCpuAllocatorStats {
  /** false when TORCHVID_CPU_ALLOCATOR=system turned the cache off. */
  enabled: boolean;
  cachedBytes: number;
  liveBytes: number;
  hits: number;
  misses: number;
  limitBytes: number;
}

export interface NativeBinding {
  Tensor: NativeTensorStatic;
  Generator: NativeGeneratorStatic;
  Module: NativeModuleStatic;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  /** CUDA caching-allocator statistics; throws ERR_TORCHVID_DEVICE on a CPU build. */
  memoryStats(device: number): NativeMemoryStats;
  resetPeakMemoryStats(device: number): void;
  /** Frees the CPU allocator's cached blocks and (CUDA builds) the CUDA caching allocator's. */
  emptyCache(): void;
  /** The caching CPU allocator (src/cpu_allocator.h): bytes cached and live, hits and misses. */
  cpuAllocatorStats(): NativeCpuAllocatorStats;
  /** Fault injection for tests only. */
  readonly testHooks: { failNextMoveAfter(tensors: number): void; externalMemory(): number };
  /** Waits for all queued GPU work (timing); no-op on CPU. */
  synchronize(device: number): Promise<void>;
  /** Compile-time facts: what libtorch this binary was built against. */
  readonly builtWith: { torchVersion: string; cuda: boolean; cudaVersion: string | null };
}
