/**
 * CLIP's BPE tokenizer, id for id the same as transformers' slow `CLIPTokenizer` without ftfy
 * (the reference setup). Per text:
 * 1. split out special-token strings typed verbatim (case-sensitive), which become their ids —
 *    with ms-1.7b's folder that includes the pad token "!";
 * 2. normalise each remaining piece (normalize.ts);
 * 3. cut it with CLIP's regex, write each piece's UTF-8 bytes in the byte alphabet, BPE it;
 * 4. add bos/eos, truncate, pad.
 */
import { invalidParameter } from "../validate.ts";
import { expectText, wrongType } from "./checks.ts";
import { BytePairEncoder, END_OF_WORD } from "./bpe.ts";
import { fromByteAlphabet, toByteAlphabet } from "./byte-encoder.ts";
import { readTokenizerFiles, type TokenizerFiles } from "./files.ts";
import { normalizeText } from "./normalize.ts";
import { resolveEncodeOptions, type EncodeOptions, type Encoding, type ResolvedEncodeOptions } from "./options.ts";

// CLIP's pre-tokenizer (case-insensitive like the Python one): the two special strings, English
// contractions, runs of letters, single digits, runs of anything else that is not a space.
const WORD_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
// U+0345 (combining ypogegrammeni) is the one character, left after cleaning, that the two regex
// engines treat differently: V8's case-insensitive \p{L} takes it as a letter (it case-folds to
// iota), Python's `regex` matches it with no alternative, so findall steps over it. Turning it
// into a space reproduces that: it ends the current word and yields no token.
const YPOGEGRAMMENI = /\u0345/g;
// Bounds the word cache in a long-running server fed with arbitrary prompts.
const MAX_CACHED_WORDS = 100_000;

/** Options of `decode`. */
export interface DecodeOptions {
  /** Leave out bos, eos, unk and pad ids (note: ms-1.7b pads with "!"). Defaults to `false`. */
  skipSpecialTokens?: boolean;
  /** Remove the space transformers leaves before punctuation and contractions. Defaults to `true`. */
  cleanUpTokenizationSpaces?: boolean;
}

export class CLIPTokenizer {
  /** Longest sequence the text encoder takes, bos and eos included (77 for CLIP). */
  readonly modelMaxLength: number;
  /** Starts every sequence (`<|startoftext|>`, 49406 for CLIP). */
  readonly bosTokenId: number;
  /** Ends every sequence, also a truncated one (`<|endoftext|>`, 49407). */
  readonly eosTokenId: number;
  /** Fills padding. The folder decides: 0 ("!") for ms-1.7b / SD 2, 49407 for SD 1.x folders. */
  readonly padTokenId: number;
  /** Stands for BPE symbols missing from the vocab (cannot happen with CLIP's full byte alphabet). */
  readonly unkTokenId: number;
  readonly #files: TokenizerFiles;
  readonly #bpe: BytePairEncoder;
  readonly #specialSplit: RegExp | undefined;
  readonly #specialIds: Set<number>;
  readonly #idToToken: Map<number, string>;
  readonly #wordCache = new Map<string, number[]>();

  /**
   * Reads a tokenizer folder: vocab.json, merges.txt and tokenizer_config.json, plus
   * special_tokens_map.json and added_tokens.json when present. A missing or broken file is a
   * ModelFormatError naming it.
   */
  static async fromPretrained(dir: string): Promise<CLIPTokenizer> {
    return new CLIPTokenizer(await readTokenizerFiles(expectText(dir, "dir")));
  }

  /** @internal use `fromPretrained`. */
  constructor(files: TokenizerFiles) {
    this.#files = files;
    this.#bpe = new BytePairEncoder(files.merges);
    const idOf = (token: string) => files.specialTokens.get(token) ?? files.vocab.get(token) ?? 0;
    this.unkTokenId = idOf(files.unkToken);
    this.bosTokenId = idOf(files.bosToken);
    this.eosTokenId = idOf(files.eosToken);
    this.padTokenId = idOf(files.padToken);
    this.modelMaxLength = files.modelMaxLength;
    this.#specialIds = new Set(files.namedSpecialTokens.map(idOf));
    this.#idToToken = new Map([...files.vocab].map(([token, id]) => [id, token]));
    for (const [token, id] of files.specialTokens) this.#idToToken.set(id, token);
    // Longest first, so a special token that contains another one wins at the same position.
    const specials = [...files.specialTokens.keys()].filter((t) => t !== "").sort((a, b) => b.length - a.length);
    this.#specialSplit = specials.length ? new RegExp(specials.map(escapeRegExp).join("|"), "g") : undefined;
    this.#seedCache();
  }

  /** Entries in vocab.json (added tokens not counted, as in transformers). */
  get vocabSize(): number {
    return this.#files.vocab.size;
  }

  /** Tokenizes one text: bos + ids + eos, truncated and padded as `options` say. */
  encode(text: string, options?: EncodeOptions): Encoding {
    const resolved = resolveEncodeOptions(options, this.modelMaxLength);
    const ids = this.#textIds(expectText(text, "text"));
    const raw = this.#truncate(ids, resolved);
    const length = resolved.padding === "max_length" ? resolved.maxLength : 0;
    return this.#pad(raw, length);
  }

  /** Tokenizes several texts; with `padding: "longest"` they are padded to the longest one. */
  encodeBatch(texts: readonly string[], options?: EncodeOptions): Encoding[] {
    if (!Array.isArray(texts)) throw wrongType("texts", "an array of strings", texts);
    const resolved = resolveEncodeOptions(options, this.modelMaxLength);
    const raws = texts.map((text, i) => this.#truncate(this.#textIds(expectText(text, `texts[${i}]`)), resolved));
    const length =
      resolved.padding === "max_length" ? resolved.maxLength : resolved.padding === "longest" ? Math.max(0, ...raws.map((r) => r.ids.length)) : 0;
    return raws.map((raw) => this.#pad(raw, length));
  }

  /** The BPE tokens of a text, without bos/eos (e.g. "surfing</w>"), for inspection. */
  tokenize(text: string): string[] {
    return this.#textIds(expectText(text, "text")).map((id) => this.#idToToken.get(id) ?? "");
  }

  /** Turns ids back into text the way transformers' `decode` does. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (!Array.isArray(ids)) throw wrongType("ids", "an array of token ids", ids);
    const { skipSpecialTokens = false, cleanUpTokenizationSpaces = true } = options;
    let joined = "";
    ids.forEach((id, i) => {
      if (!Number.isInteger(id)) throw invalidParameter(`ids[${i}]`, "an integer token id", id, typeof id === "number" ? "range" : "type");
      if (skipSpecialTokens && this.#specialIds.has(id)) return;
      joined += this.#idToToken.get(id) ?? "";
    });
    // Invalid UTF-8 (a cut multi-byte character) becomes U+FFFD, like Python's errors="replace".
    const text = new TextDecoder().decode(fromByteAlphabet(joined)).replaceAll(END_OF_WORD, " ").trim();
    return cleanUpTokenizationSpaces ? cleanUpSpaces(text) : text;
  }

  #textIds(text: string): number[] {
    const ids: number[] = [];
    let start = 0;
    if (this.#specialSplit) {
      this.#specialSplit.lastIndex = 0;
      for (const match of text.matchAll(this.#specialSplit)) {
        this.#pushPieceIds(text.slice(start, match.index), ids);
        ids.push(this.#files.specialTokens.get(match[0])!);
        start = match.index + match[0].length;
      }
    }
    this.#pushPieceIds(start === 0 ? text : text.slice(start), ids);
    return ids;
  }

  #pushPieceIds(piece: string, out: number[]): void {
    if (piece === "") return;
    let text = normalizeText(piece);
    if (text.includes("\u0345")) text = text.replace(YPOGEGRAMMENI, " ");
    for (const [word] of text.matchAll(WORD_PATTERN)) {
      let wordIds = this.#wordCache.get(word);
      if (wordIds === undefined) {
        wordIds = this.#bpe.encode(toByteAlphabet(word)).map((symbol) => this.#files.vocab.get(symbol) ?? this.unkTokenId);
        if (this.#wordCache.size >= MAX_CACHED_WORDS) this.#seedCache();
        this.#wordCache.set(word, wordIds);
      }
      for (const id of wordIds) out.push(id);
    }
  }

  /** Empties the word cache but for the two CLIP specials, which BPE must never split. */
  #seedCache(): void {
    this.#wordCache.clear();
    // The lowercased regex can produce them from e.g. "<|ENDOFTEXT|>"; Python's cache maps them whole.
    for (const token of ["<|startoftext|>", "<|endoftext|>"]) {
      this.#wordCache.set(token, [this.#files.vocab.get(token) ?? this.unkTokenId]);
    }
  }

  #truncate(ids: number[], { truncation, maxLength }: ResolvedEncodeOptions): { ids: number[]; overflow: number[] } {
    const keep = maxLength - 2;
    if (!truncation || ids.length <= keep) return { ids: [this.bosTokenId, ...ids, this.eosTokenId], overflow: [] };
    const left = this.#files.truncationSide === "left";
    const kept = left ? ids.slice(ids.length - keep) : ids.slice(0, keep);
    const overflow = left ? ids.slice(0, ids.length - keep) : ids.slice(keep);
    return { ids: [this.bosTokenId, ...kept, this.eosTokenId], overflow };
  }

  #pad({ ids, overflow }: { ids: number[]; overflow: number[] }, length: number): Encoding {
    const padCount = Math.max(0, length - ids.length);
    const pads = new Array<number>(padCount).fill(this.padTokenId);
    const ones = new Array<number>(ids.length).fill(1);
    const zeros = new Array<number>(padCount).fill(0);
    const left = this.#files.paddingSide === "left";
    return {
      inputIds: left ? [...pads, ...ids] : [...ids, ...pads],
      attentionMask: left ? [...zeros, ...ones] : [...ones, ...zeros],
      truncated: overflow.length > 0,
      overflowIds: overflow,
      overflowText: overflow.length > 0 ? this.decode(overflow) : "",
    };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** transformers' clean_up_tokenization: no space before punctuation and English contractions. */
function cleanUpSpaces(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
