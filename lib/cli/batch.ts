/**
 * `torchvid generate --prompts FILE` and `--num-videos N`: the prompt file (one prompt per line,
 * or JSONL with per-line options checked by checkGenerateRequest, the same checker as the studio
 * and the job queue) and the numbered output names.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { checkGenerateRequest, type GenerateRequest } from "../requests.ts";
import { UsageError } from "./common.ts";

/** The lines of a prompt file as requests; a bad line is a usage error naming the file, the line and the field. */
export function readPromptsFile(path: string): GenerateRequest[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--prompts ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): pass a text file with one prompt per line, or JSONL`);
  }
  const out: GenerateRequest[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${path} line ${i + 1}`;
    if (!line.startsWith("{")) {
      out.push({ prompt: line });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(line);
    } catch (err) {
      throw new UsageError(`${where} is not valid JSON (${(err as Error).message}): write {"prompt": "...", ...} or a plain prompt`);
    }
    let request: GenerateRequest;
    try {
      request = checkGenerateRequest(body);
    } catch (err) {
      throw new UsageError(`${where}: ${(err as Error).message}`);
    }
    // One pipeline serves the whole file: a line cannot switch models or samplers.
    if (request.model !== undefined) throw new UsageError(`${where}: "model" cannot change per line (the file runs on --model); split the file per model`);
    if (request.scheduler !== undefined) throw new UsageError(`${where}: "scheduler" cannot change per line (the file runs with --scheduler); split the file per scheduler`);
    out.push(request);
  });
  if (out.length === 0) throw new UsageError(`--prompts ${path} has no prompts: write one prompt per line (or JSONL)`);
  return out;
}

/**
 * The output of one video of a batch: `out.mp4` -> `out-002.mp4` (prompt 2), `out-002-3.mp4`
 * (its third video); a frame pattern `frames/%04d.png` numbers its folder instead.
 */
export function numberedOutput(output: string, prompt: number | null, video: number | null): string {
  const suffix = `${prompt !== null ? `-${String(prompt).padStart(3, "0")}` : ""}${video !== null ? `-${video}` : ""}`;
  if (!suffix) return output;
  const name = basename(output);
  if (name.includes("%")) return join(`${dirname(output)}${suffix}`, name);
  const ext = extname(name);
  if (!ext) return `${output.replace(/[\\/]+$/, "")}${suffix}`; // a folder of PNG frames
  return join(dirname(output), `${name.slice(0, -ext.length)}${suffix}${ext}`);
}
