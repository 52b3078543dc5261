/** Makes the `fp16` variant of a safetensors weight file, as `pipe.save_pretrained(variant="fp16")` would. */
import { parseSafetensors } from "../../lib/safetensors.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE float32 -> float16 bits, rounding to nearest (enough for weights: no NaNs here). */
function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    return sign | ((mant >> shift) + ((mant >> (shift - 1)) & 1));
  }
  return (sign | (exp << 10) | (mant >> 13)) + ((mant >> 12) & 1);
}

export function fp16Variant(file: Uint8Array): Buffer {
  const parsed = parseSafetensors(file, "fp16 source");
  const header: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, entry] of parsed.tensors) {
    let bytes: Buffer;
    if (entry.dtype === "F32") {
      const src = new Float32Array(new Uint8Array(entry.bytes).buffer); // a copy: aligned, and only this tensor
      bytes = Buffer.from(Uint16Array.from(src, toHalfBits).buffer);
    } else {
      bytes = Buffer.from(entry.bytes);
    }
    header[name] = { dtype: entry.dtype === "F32" ? "F16" : entry.dtype, shape: entry.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...chunks]);
}
