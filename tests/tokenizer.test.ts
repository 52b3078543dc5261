/**
 * CLIPTokenizer against the real transformers slow CLIPTokenizer (tokenizer_cases.json, made
 * without ftfy), plus truncation, padding and bad-input behaviour.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIPTokenizer } from "../lib/tokenizer/index.ts";
import { ModelFormatError } from "../lib/errors.ts";

const REFERENCE = join(import.meta.dirname, "fixtures/reference");
const TOKENIZER_DIR = join(REFERENCE, "tokenizer");
const PIPELINE_TOKENIZER_DIR = join(REFERENCE, "models/pipeline/tokenizer");

interface ReferenceCase {
  prompt: string;
  input_ids: number[];
  attention_mask: number[];
  tokens: string[];
  num_tokens_untruncated: number;
  truncated: boolean;
}
const reference = JSON.parse(readFileSync(join(REFERENCE, "tokenizer_cases.json"), "utf8")) as {
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  model_max_length: number;
  cases: ReferenceCase[];
};

const tok = await CLIPTokenizer.fromPretrained(TOKENIZER_DIR);

test("special ids and length come from the folder (pad '!' overrides tokenizer_config)", () => {
  assert.equal(tok.padTokenId, reference.pad_token_id);
  assert.equal(tok.bosTokenId, reference.bos_token_id);
  assert.equal(tok.eosTokenId, reference.eos_token_id);
  assert.equal(tok.modelMaxLength, reference.model_max_length);
  assert.equal(tok.vocabSize, 49408);
});

for (const [folder, dir] of [["tokenizer", TOKENIZER_DIR], ["models/pipeline/tokenizer", PIPELINE_TOKENIZER_DIR]] as const) {
  test(`every reference case gives transformers' ids and mask (${folder})`, async () => {
    const t = dir === TOKENIZER_DIR ? tok : await CLIPTokenizer.fromPretrained(dir);
    for (const c of reference.cases) {
      const label = JSON.stringify(c.prompt);
      const e = t.encode(c.prompt, { padding: "max_length", maxLength: 77, truncation: true });
      assert.deepEqual(e.inputIds, c.input_ids, `input_ids of ${label}`);
      assert.deepEqual(e.attentionMask, c.attention_mask, `attention_mask of ${label}`);
      assert.equal(e.truncated, c.truncated, `truncated of ${label}`);
    }
  });
}

test("defaults are diffusers' call: max_length padding to 77 with truncation", () => {
  for (const c of reference.cases) assert.deepEqual(tok.encode(c.prompt).inputIds, c.input_ids);
});

test("BPE tokens and untruncated lengths match the reference", () => {
  for (const c of reference.cases) {
    const tokens = tok.tokenize(c.prompt);
    assert.equal(tokens.length + 2, c.num_tokens_untruncated, `length of ${JSON.stringify(c.prompt)}`);
    assert.deepEqual(tokens.slice(0, 75), c.tokens.slice(1, -1), `tokens of ${JSON.stringify(c.prompt)}`);
  }
});

test("truncation keeps bos + 75 tokens + eos and reports what it removed", () => {
  const prompt = `${"a ".repeat(75)}red fox`;
  const e = tok.encode(prompt);
  assert.equal(e.inputIds.length, 77);
  assert.equal(e.inputIds[0], tok.bosTokenId);
  assert.equal(e.inputIds[76], tok.eosTokenId);
  assert.ok(e.attentionMask.every((m) => m === 1));
  assert.equal(e.truncated, true);
  assert.equal(e.overflowIds.length, 2);
  assert.equal(e.overflowText, "red fox");

  const exact = tok.encode("a ".repeat(75));
  assert.equal(exact.truncated, false);
  assert.equal(exact.overflowText, "");
  assert.deepEqual(exact.overflowIds, []);

  const untruncated = tok.encode(prompt, { truncation: false });
  assert.equal(untruncated.inputIds.length, 79);
  assert.equal(untruncated.truncated, false);

  const short = tok.encode(prompt, { maxLength: 10, padding: false });
  assert.equal(short.inputIds.length, 10);
  assert.equal(short.inputIds[9], tok.eosTokenId);
  assert.equal(short.overflowIds.length, 69);
});

test("padding modes: false, longest and max_length", () => {
  const noPad = tok.encode("Spiderman is surfing", { padding: false });
  assert.deepEqual(noPad.inputIds, [49406, 18427, 533, 15762, 49407]);
  assert.deepEqual(noPad.attentionMask, [1, 1, 1, 1, 1]);
  assert.deepEqual(tok.encode("Spiderman is surfing", { padding: "longest" }).inputIds, noPad.inputIds);

  const batch = tok.encodeBatch(["a cat", "Spiderman is surfing", ""], { padding: "longest" });
  assert.deepEqual(
    batch.map((e) => e.inputIds),
    [
      [49406, 320, 2368, 49407, 0],
      [49406, 18427, 533, 15762, 49407],
      [49406, 49407, 0, 0, 0],
    ],
  );
  assert.deepEqual(batch[2].attentionMask, [1, 1, 0, 0, 0]);

  const unpadded = tok.encodeBatch(["a cat", "Spiderman is surfing"], { padding: false });
  assert.deepEqual(unpadded.map((e) => e.inputIds.length), [4, 5]);

  const fixed = tok.encodeBatch(["a cat", "Spiderman is surfing"], { padding: "max_length", maxLength: 8 });
  assert.deepEqual(fixed.map((e) => e.inputIds.length), [8, 8]);
  assert.deepEqual(fixed[0].attentionMask, [1, 1, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual(tok.encodeBatch([]), []);

  const byReference = tok.encodeBatch(reference.cases.map((c) => c.prompt));
  assert.deepEqual(byReference.map((e) => e.inputIds), reference.cases.map((c) => c.input_ids));
});

test("special-token strings typed in a prompt become their ids, '!' included", () => {
  assert.deepEqual(tok.encode("wow!", { padding: false }).inputIds, [49406, 2781, 0, 49407]);
  // Case-insensitive spellings reach CLIP's regex after lowercasing and still map whole.
  assert.deepEqual(tok.encode("<|ENDOFTEXT|>", { padding: false }).inputIds, [49406, 49407, 49407]);
});

test("characters unassigned in the reference Python's Unicode 14.0 are dropped like controls", () => {
  // U+1FA77 (pink heart) and U+1FAE8 (shaking face) arrived in Unicode 15.0; U+1F970 is older.
  assert.deepEqual(tok.encode("a cat \u{1FA77}\u{1FAE8}", { padding: false }).inputIds, tok.encode("a cat", { padding: false }).inputIds);
  assert.notDeepEqual(tok.encode("a cat \u{1F970}", { padding: false }).inputIds, tok.encode("a cat", { padding: false }).inputIds);
});

test("U+0345 separates words without a token of its own, as Python's regex leaves it unmatched", () => {
  // Expected ids from Python 3.11's `regex` running CLIP's pattern (V8 alone would call it a letter).
  assert.deepEqual(tok.encode("a\u0345b", { padding: false }).inputIds, [49406, 320, 321, 49407]);
  assert.deepEqual(tok.encode("\u0345", { padding: false }).inputIds, [49406, 49407]);
  assert.deepEqual(tok.encode("o\u0302\u0345", { padding: false }).inputIds, [49406, 127, 368, 49407]);
});

test("decode inverts encode the way transformers does", () => {
  const ids = tok.encode("An astronaut riding a horse.").inputIds;
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "an astronaut riding a horse.");
  assert.equal(tok.decode(tok.encode("café", { padding: false }).inputIds), "<|startoftext|>café <|endoftext|>");
  assert.equal(tok.decode([]), "");
});

test("non-string text is a TypeError naming the argument", () => {
  assert.throws(() => tok.encode(42 as unknown as string), { name: "TypeError", message: "Expected a string for text but received 42 of type number" });
  assert.throws(() => tok.encode(undefined as unknown as string), TypeError);
  assert.throws(() => tok.encodeBatch("a cat" as unknown as string[]), { name: "TypeError", message: /Expected an array of strings for texts/ });
  assert.throws(() => tok.encodeBatch(["a", null as unknown as string]), { name: "TypeError", message: /for texts\[1\]/ });
  assert.throws(() => tok.tokenize({} as unknown as string), TypeError);
  assert.throws(() => tok.decode("12" as unknown as number[]), TypeError);
});

test("bad options are RangeErrors/TypeErrors naming the option", () => {
  assert.throws(() => tok.encode("a", { padding: "longestt" as "longest" }), { name: "RangeError", message: /options\.padding/ });
  assert.throws(() => tok.encode("a", { maxLength: 1 }), { name: "RangeError", message: /options\.maxLength/ });
  assert.throws(() => tok.encode("a", { maxLength: 7.5 }), { name: "RangeError", message: /an integer for options\.maxLength/ });
  assert.throws(() => tok.encode("a", { truncation: "yes" as unknown as boolean }), { name: "TypeError", message: /options\.truncation/ });
  assert.throws(() => tok.encode("a", 5 as unknown as object), { name: "TypeError", message: /for options/ });
});

test("a missing folder or file is a ModelFormatError naming it and `torchvid convert`", async (t) => {
  await assert.rejects(CLIPTokenizer.fromPretrained(join(REFERENCE, "no-such-tokenizer")), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.equal(err.code, "ERR_TORCHVID_MODEL_FORMAT");
    assert.match(err.message, /no-such-tokenizer/);
    assert.match(err.message, /torchvid convert/);
    return true;
  });
  await assert.rejects(CLIPTokenizer.fromPretrained(7 as unknown as string), TypeError);

  const dir = await mkdtemp(join(tmpdir(), "torchvid-tokenizer-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of ["vocab.json", "tokenizer_config.json", "special_tokens_map.json"]) await cp(join(TOKENIZER_DIR, name), join(dir, name));
  await assert.rejects(CLIPTokenizer.fromPretrained(dir), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.match(err.message, /merges\.txt/);
    assert.match(err.message, /torchvid convert writes/);
    return true;
  });
  await cp(join(TOKENIZER_DIR, "merges.txt"), join(dir, "merges.txt"));
  await rm(join(dir, "vocab.json"));
  await assert.rejects(CLIPTokenizer.fromPretrained(dir), { name: "ModelFormatError", message: /vocab\.json.*torchvid convert writes/ });
  await writeFile(join(dir, "vocab.json"), "{ not json");
  await assert.rejects(CLIPTokenizer.fromPretrained(dir), { name: "ModelFormatError", message: /vocab\.json is not valid JSON/ });
});

test("without special_tokens_map.json the tokenizer_config.json tokens apply, as in transformers", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "torchvid-tokenizer-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of ["vocab.json", "merges.txt", "tokenizer_config.json"]) await cp(join(TOKENIZER_DIR, name), join(dir, name));
  const plain = await CLIPTokenizer.fromPretrained(dir);
  // tokenizer_config.json pads with <|endoftext|>, and "!" is ordinary text again.
  assert.equal(plain.padTokenId, 49407);
  assert.deepEqual(plain.encode("wow!", { padding: "max_length", maxLength: 6 }).inputIds, [49406, 2781, 256, 49407, 49407, 49407]);
});
