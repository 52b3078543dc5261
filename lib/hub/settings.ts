/**
 * The Hub settings huggingface_hub reads from the environment, read the same way here so one
 * shell setup serves Python and torchvid: HF_ENDPOINT, HF_TOKEN (or the token file that
 * `huggingface-cli login` writes), HF_HUB_OFFLINE.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** The Hub's base URL: `HF_ENDPOINT` (a mirror, or a test server), else huggingface.co. */
export function hubEndpoint(explicit?: string): string {
  return (explicit || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

/** huggingface_hub's truthy env values ("1", "ON", "YES", "TRUE", any case). */
function envFlag(name: string): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((process.env[name] ?? "").trim().toUpperCase());
}

/** `HF_HUB_OFFLINE=1`: use the local cache only, never the network. */
export function hubOffline(explicit?: boolean): boolean {
  return explicit ?? envFlag("HF_HUB_OFFLINE");
}

/**
 * The access token for private and gated repos: the explicit one, `HF_TOKEN`, then the file
 * `huggingface-cli login` saved (`HF_TOKEN_PATH`, or `$HF_HOME/token`, or ~/.cache/huggingface/token).
 */
export function hubToken(explicit?: string): string | undefined {
  if (explicit) return explicit;
  const env = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  if (env) return env.trim();
  const home = process.env.HF_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  try {
    const saved = readFileSync(process.env.HF_TOKEN_PATH || join(home, "token"), "utf8").trim();
    return saved || undefined;
  } catch {
    return undefined;
  }
}
