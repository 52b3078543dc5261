/**
 * Reader for the safetensors format (an 8-byte little-endian header length, a JSON header,
 * then raw little-endian tensor bytes). Used for LoRA files and for reference data in tests.
 * Every offset is checked against the file size, so a truncated file is a clear error.
 */
import { readFile } from "node:fs/promises";
import { ModelFormatError } from "./errors.ts";

export type SafetensorsDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** The raw bytes (a view into the file buffer). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
}

const ELEMENT_SIZE: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function parseSafetensors(buffer: Uint8Array, source = "safetensors data"): SafetensorsFile {
  const fail = (why: string): never => {
    throw new ModelFormatError(`${source} is not a valid safetensors file: ${why}`);
  };
  if (buffer.byteLength < 8) fail("shorter than its 8-byte header length");
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > buffer.byteLength - 8) fail(`header of ${headerLength} bytes runs past the end of the file (${buffer.byteLength} bytes): the file is truncated`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buffer.subarray(8, 8 + headerLength)));
  } catch (err) {
    return fail(`its JSON header does not parse (${(err as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype: SafetensorsDType; shape: number[]; data_offsets: [number, number] };
    const size = ELEMENT_SIZE[info.dtype];
    if (size === undefined) fail(`tensor ${name} has unknown dtype ${String(info.dtype)}`);
    const [begin, end] = info.data_offsets;
    const numel = info.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== numel * size) fail(`tensor ${name} declares ${end - begin} bytes for shape [${info.shape}] of ${info.dtype}`);
    if (dataStart + end > buffer.byteLength) fail(`tensor ${name} runs past the end of the file: the file is truncated`);
    tensors.set(name, { dtype: info.dtype, shape: info.shape, bytes: buffer.subarray(dataStart + begin, dataStart + end) });
  }
  return { metadata, tensors };
}

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (err) {
    throw new ModelFormatError(`Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseSafetensors(buffer, path);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Decodes a floating-point entry (F32/F16/BF16/F64) to float32 values. */
export function toFloat32(entry: SafetensorsEntry): Float32Array {
  const { bytes, dtype } = entry;
  // new Uint8Array(view) copies (Buffer#slice would not), giving an aligned buffer at offset 0.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
  const n = entry.shape.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case "F32":
      return new Float32Array(aligned.buffer, aligned.byteOffset, n).slice();
    case "F64":
      return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, n));
    case "F16": {
      const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
      return Float32Array.from(u16, halfToFloat);
    }
    case "BF16": {
      const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
      const u32 = new Uint32Array(n);
      for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
      return new Float32Array(u32.buffer);
    }
    default:
      throw new ModelFormatError(`Expected a floating-point tensor but found ${dtype}`);
  }
}

/** Decodes an integer entry (I64/I32/U8/...) to JS numbers. */
export function toNumbers(entry: SafetensorsEntry): number[] {
  const aligned = new Uint8Array(entry.bytes);
  const n = entry.shape.reduce((a, b) => a * b, 1);
  switch (entry.dtype) {
    case "I64":
      return Array.from(new BigInt64Array(aligned.buffer, 0, n), Number);
    case "I32":
      return Array.from(new Int32Array(aligned.buffer, 0, n));
    case "I16":
      return Array.from(new Int16Array(aligned.buffer, 0, n));
    case "I8":
      return Array.from(new Int8Array(aligned.buffer, 0, n));
    case "U8":
    case "BOOL":
      return Array.from(aligned);
    default:
      return Array.from(toFloat32(entry));
  }
}
