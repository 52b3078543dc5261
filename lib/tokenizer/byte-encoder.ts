/**
 * GPT-2 / CLIP byte-level alphabet: every byte 0-255 maps to one printable Unicode character,
 * so BPE can run on strings without ever seeing whitespace or control characters. The vocab and
 * merges are written in this alphabet, so the mapping must be exactly the one OpenAI used.
 */

/** The character standing for each byte value (index = byte). */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** The byte value of each alphabet character (the inverse of BYTE_TO_CHAR). */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((ch, byte) => [ch, byte]));

function buildByteToChar(): string[] {
  const table: string[] = new Array(256);
  // Printable Latin-1 bytes stand for themselves...
  const isPrintable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    // ...the rest (space, controls, NBSP, soft hyphen) are shifted to U+0100 onwards, in byte order.
    table[b] = String.fromCharCode(isPrintable(b) ? b : next++);
  }
  return table;
}

const utf8 = new TextEncoder();

/** The UTF-8 bytes of `text`, written in the byte alphabet. */
export function toByteAlphabet(text: string): string {
  let out = "";
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    out += BYTE_TO_CHAR[c];
  }
  if (ascii) return out;
  // Rare path (non-ASCII): go through real UTF-8 bytes.
  out = "";
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/**
 * Turns byte-alphabet text back into bytes. Characters outside the alphabet (added tokens that
 * were never byte-encoded) are written as their own UTF-8 bytes.
 */
export function fromByteAlphabet(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) bytes.push(b);
    else bytes.push(...utf8.encode(ch));
  }
  return Uint8Array.from(bytes);
}
