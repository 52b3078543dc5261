/**
 * Reads a Hugging Face CLIP tokenizer folder (what `torchvid convert` writes to
 * `<model>/tokenizer/`) and resolves its settings the way transformers' `from_pretrained` does:
 * `special_tokens_map.json` (when present) overrides the special tokens of
 * `tokenizer_config.json`. That override matters: ms-1.7b pads with "!" (id 0) only because of it.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ModelFormatError } from "../errors.ts";

/** Everything the tokenizer needs from its folder, already validated. */
export interface TokenizerFiles {
  vocab: Map<string, number>;
  merges: [string, string][];
  modelMaxLength: number;
  bosToken: string;
  eosToken: string;
  unkToken: string;
  padToken: string;
  /** Every token matched verbatim in a prompt before normalisation, with its id. */
  specialTokens: Map<string, number>;
  /** bos, eos, unk, pad and additional_special_tokens: what `skip_special_tokens` drops. */
  namedSpecialTokens: string[];
  paddingSide: "left" | "right";
  truncationSide: "left" | "right";
}

const FILES = ["vocab.json", "merges.txt", "tokenizer_config.json"] as const;
// Optional as in transformers (newer folders keep everything in tokenizer_config.json), but when
// present it wins: that is where ms-1.7b's pad "!" comes from.
const SPECIAL_TOKENS_MAP = "special_tokens_map.json";
// Legacy {token: id} list of tokens added after training; they are split out like special tokens.
const ADDED_TOKENS = "added_tokens.json";
const CONVERT_HINT = `torchvid convert writes ${[...FILES, SPECIAL_TOKENS_MAP].join(", ")} into <model folder>/tokenizer/`;
// transformers keeps at most this many merges (CLIP's 49152-token vocab minus 256 bytes and 2 specials).
const MAX_MERGES = 49152 - 256 - 2;
// Used when tokenizer_config.json has no model_max_length: CLIP's position-embedding count.
const DEFAULT_MAX_LENGTH = 77;

export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ModelFormatError(`Tokenizer folder ${dir} does not exist or is not a folder (${CONVERT_HINT})`);
  }
  const [vocabText, mergesText, configText] = await Promise.all(FILES.map((name) => readText(join(dir, name))));
  const [mapText, addedText] = await Promise.all([SPECIAL_TOKENS_MAP, ADDED_TOKENS].map((name) => readOptionalText(join(dir, name))));
  const vocab = parseVocab(vocabText, join(dir, "vocab.json"));
  const merges = parseMerges(mergesText, join(dir, "merges.txt"));
  const config = parseJsonObject(configText, join(dir, "tokenizer_config.json"));
  const map = mapText === undefined ? {} : parseJsonObject(mapText, join(dir, SPECIAL_TOKENS_MAP));
  const added = addedText === undefined ? new Map<string, number>() : parseVocab(addedText, join(dir, ADDED_TOKENS));
  const settings = { ...config, ...definedEntries(map) };

  const tokenOf = (key: string, fallback: string): string => tokenContent(settings[key], key) ?? fallback;
  const bosToken = tokenOf("bos_token", "<|startoftext|>");
  const eosToken = tokenOf("eos_token", "<|endoftext|>");
  const unkToken = tokenOf("unk_token", "<|endoftext|>");
  const padToken = tokenOf("pad_token", "<|endoftext|>");

  const specialTokens = new Map<string, number>();
  // Tokens with an explicit id (newer tokenizer_config.json files list them all).
  const decoder = config.added_tokens_decoder;
  if (decoder && typeof decoder === "object") {
    for (const [id, token] of Object.entries(decoder as Record<string, unknown>)) {
      const content = tokenContent(token, `added_tokens_decoder.${id}`);
      if (content !== undefined) specialTokens.set(content, Number(id));
    }
  }
  for (const [token, id] of added) if (!specialTokens.has(token)) specialTokens.set(token, id);
  const extra = Array.isArray(settings.additional_special_tokens) ? settings.additional_special_tokens : [];
  const extraTokens = extra.map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`)).filter((t): t is string => t !== undefined);
  const named = [bosToken, eosToken, unkToken, padToken, ...extraTokens];
  let nextId = Math.max(-1, ...vocab.values(), ...specialTokens.values()) + 1;
  for (const token of named) {
    if (specialTokens.has(token)) continue;
    // A special token missing from the vocab is appended after it, as transformers' add_tokens does.
    specialTokens.set(token, vocab.get(token) ?? nextId++);
  }

  return {
    vocab,
    merges,
    modelMaxLength: maxLengthOf(config.model_max_length),
    bosToken,
    eosToken,
    unkToken,
    padToken,
    specialTokens,
    namedSpecialTokens: [...new Set(named)],
    paddingSide: config.padding_side === "left" ? "left" : "right",
    truncationSide: config.truncation_side === "left" ? "left" : "right",
  };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new ModelFormatError(`Tokenizer file ${path} cannot be read (${(err as Error).message}); ${CONVERT_HINT}`, { cause: err });
  }
}

async function readOptionalText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ModelFormatError(`Tokenizer file ${path} cannot be read (${(err as Error).message})`, { cause: err });
  }
}

function parseJsonObject(text: string, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`Tokenizer file ${path} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ModelFormatError(`Tokenizer file ${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

function parseVocab(text: string, path: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(parseJsonObject(text, path))) {
    if (!Number.isInteger(id)) throw new ModelFormatError(`Tokenizer file ${path} maps ${JSON.stringify(token)} to ${JSON.stringify(id)}, not an integer id`);
    vocab.set(token, id as number);
  }
  return vocab;
}

function parseMerges(text: string, path: string): [string, string][] {
  // Like transformers: the first line is always the "#version" header and is skipped unread.
  const lines = text.trim().split("\n").slice(1, 1 + MAX_MERGES);
  return lines.map((line, i) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) throw new ModelFormatError(`Tokenizer file ${path} line ${i + 2} is not a merge of two symbols: ${JSON.stringify(line)}`);
    return [parts[0], parts[1]];
  });
}

/** A special token is written either as a string or as an AddedToken object with `content`. */
function tokenContent(value: unknown, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  throw new ModelFormatError(`Tokenizer setting ${key} must be a string or an object with a "content" string, not ${JSON.stringify(value)}`);
}

function definedEntries(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== null));
}

function maxLengthOf(value: unknown): number {
  // transformers writes a huge sentinel (1e30) when a checkpoint sets no limit.
  return typeof value === "number" && Number.isInteger(value) && value > 0 && value < 1e9 ? value : DEFAULT_MAX_LENGTH;
}
