/** Reads a LoRA file from disk and maps it (parse.ts), with a clear word for pickled files. */
import { readFile } from "node:fs/promises";
import { ModelFormatError } from "../errors.ts";
import { parseSafetensors } from "../safetensors.ts";
import { expectString } from "../validate.ts";
import { analyzeLora } from "./parse.ts";
import type { LoraAnalysis, LoraParameterNames, ParseLoraOptions } from "./types.ts";

// torch.save writes a zip ("PK\x03\x04") since torch 1.6, a bare pickle (protocol byte 0x80) before.
const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
const isPickle = (b: Uint8Array) => b.length >= 2 && b[0] === 0x80 && b[1] >= 2 && b[1] <= 5;

/**
 * Reads `path` (a .safetensors LoRA) and maps it onto the given parameter names; see
 * `analyzeLora` for the formats and the `strict` option. Messages name the file.
 */
export async function readLora(path: string, parameterNames: LoraParameterNames, options: ParseLoraOptions = {}): Promise<LoraAnalysis> {
  expectString(path, "path");
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (err) {
    throw new ModelFormatError(`Cannot read LoRA file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (isZip(buffer) || isPickle(buffer)) {
    throw new ModelFormatError(
      `LoRA file ${path} is a PyTorch pickle (.pt/.bin); torchvid reads LoRA weights from .safetensors only, because ` +
        `loading a pickle can run code from the file. Convert it once (the state dict is read with torch.load(weights_only=True), ` +
        `so no code in it runs): torchvid convert --lora ${JSON.stringify(path)} ${JSON.stringify(path.replace(/\.(pt|pth|bin|ckpt)$/i, "") + ".safetensors")}`,
    );
  }
  return analyzeLora(parseSafetensors(buffer, path), parameterNames, { source: `LoRA file ${path}`, ...options });
}
