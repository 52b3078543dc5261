/** An in-memory safetensors writer for tests (LoRA files and the like). */
import assert from "node:assert/strict";
import { parseSafetensors, type SafetensorsFile } from "../../lib/safetensors.ts";

export interface TensorSpec {
  shape: number[];
  dtype?: "F32" | "F16" | "I64";
  /** Defaults to 0.5, 1.5, 2.5, ... */
  values?: number[];
}

function toHalf(value: number): number {
  // Enough for the small exact values these tests use (normal numbers, no rounding needed).
  if (value === 0) return 0;
  const sign = value < 0 ? 0x8000 : 0;
  const abs = Math.abs(value);
  const exp = Math.floor(Math.log2(abs));
  const frac = Math.round((abs / 2 ** exp - 1) * 1024);
  return sign | ((exp + 15) << 10) | frac;
}

export function makeFile(specs: Record<string, TensorSpec>, metadata?: Record<string, string>): SafetensorsFile {
  return parseSafetensors(makeBuffer(specs, metadata), "test LoRA");
}

export function makeBuffer(specs: Record<string, TensorSpec>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, spec] of Object.entries(specs)) {
    const dtype = spec.dtype ?? "F32";
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const values = spec.values ?? Array.from({ length: n }, (_, i) => i + 0.5);
    assert.equal(values.length, n, `values of ${name}`);
    const bytes =
      dtype === "F32"
        ? new Uint8Array(Float32Array.from(values).buffer)
        : dtype === "F16"
          ? new Uint8Array(Uint16Array.from(values, toHalf).buffer)
          : new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    header[name] = { dtype, shape: spec.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const buffer = new Uint8Array(8 + json.byteLength + offset);
  new DataView(buffer.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  buffer.set(json, 8);
  let at = 8 + json.byteLength;
  for (const chunk of chunks) {
    buffer.set(chunk, at);
    at += chunk.byteLength;
  }
  return buffer;
}

