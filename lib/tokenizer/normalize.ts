/**
 * Text clean-up before CLIP's regex, reproducing what transformers' CLIPTokenizer does when ftfy
 * is NOT installed (the reference setup): its fallback BasicTokenizer(do_lower_case=True,
 * strip_accents=False, do_split_on_punc=False, tokenize_chinese_chars=True). With ftfy the
 * Python side would also unescape HTML and fix mojibake; we deliberately do not, because the
 * ids must equal the reference, not an idealised tokenizer.
 */

import { ASSIGNED_AFTER_UNICODE_14 } from "./unicode14.ts";

// Unicode "C*" categories (control, format, unassigned, private use, surrogates) are dropped,
// except \t \n \r which count as whitespace. U+FFFD (a "So" symbol) is dropped explicitly, and
// so is what was still unassigned in the reference Python's Unicode 14.0.
const DROPPED = new RegExp(String.raw`(?![\t\n\r])\p{C}|\uFFFD|[${ASSIGNED_AFTER_UNICODE_14}]`, "gu");
// \t \n \r and every space separator (Zs) become a plain space.
const WHITESPACE = /[\t\n\r\p{Zs}]/gu;
// BERT's "Chinese character" blocks: CJK Unified Ideographs + extensions A-E + compatibility.
// Kana and Hangul are not in them, so they stay glued to their neighbours (as in Python).
const CJK = /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu;
// What Python's str.split() still treats as whitespace once the above has run: the space, plus
// the line and paragraph separators (Zl/Zp are neither "C" nor "Zs", so they survive cleaning).
const SPLIT = /[ \u2028\u2029]+/;
// Fast path: printable ASCII needs no cleaning, no CJK spacing and no NFC.
const PLAIN_ASCII = /^[\x20-\x7e]*$/;

/** Cleans, NFC-normalises and lowercases `text`; words come back joined by single spaces. */
export function normalizeText(text: string): string {
  let s = text;
  if (!PLAIN_ASCII.test(s)) {
    s = s.replace(DROPPED, "").replace(WHITESPACE, " ").replace(CJK, " $& ").normalize("NFC");
  }
  // Lowercase word by word, as Python does: the final-sigma rule looks at word boundaries.
  const words = s.split(SPLIT);
  let out = "";
  for (const word of words) {
    if (word === "") continue;
    out += out === "" ? word.toLowerCase() : ` ${word.toLowerCase()}`;
  }
  return out;
}
