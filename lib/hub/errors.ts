/**
 * Hub failures as TorchvidErrors (code ERR_TORCHVID_HUB) whose message names the repo, the file
 * when there is one, and the fix. @huggingface/hub reports HTTP failures as HubApiError with the
 * status; fetch reports network failures as a TypeError with the socket error as its cause.
 */
import { HubApiError } from "@huggingface/hub";
import { TorchvidError } from "../errors.ts";

export class HubError extends TorchvidError {
  constructor(
    message: string,
    readonly repo: string,
    readonly file?: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super("ERR_TORCHVID_HUB", message, options);
    this.name = "HubError";
  }
}

function networkCause(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const cause = err.cause as { code?: string; message?: string } | undefined;
  if (err instanceof TypeError && /fetch failed|terminated|network/i.test(err.message)) return cause?.code ?? cause?.message ?? err.message;
  const code = (err as { code?: string }).code;
  if (code && /^(ECONN|ENOTFOUND|EAI_|ETIMEDOUT|EPIPE|UND_ERR)/.test(code)) return code;
  return null;
}

/** Turns what @huggingface/hub or fetch threw into a HubError that says what to do. */
export function toHubError(err: unknown, ctx: { repo: string; revision?: string; file?: string; endpoint: string; hasToken: boolean }): unknown {
  if (err instanceof HubError || (err as { name?: string })?.name === "AbortError" || (err as { code?: string })?.code === "ERR_TORCHVID_ABORTED") return err;
  const where = `${ctx.repo}${ctx.revision ? `@${ctx.revision}` : ""}${ctx.file ? `, file ${ctx.file}` : ""}`;
  const page = `${ctx.endpoint}/${ctx.repo}`;
  if (err instanceof HubApiError) {
    const status = err.statusCode;
    let msg: string;
    if (status === 401) {
      msg = ctx.hasToken
        ? `${where}: the Hub refused the token (401 Unauthorized): set HF_TOKEN to a valid token with read access (${ctx.endpoint}/settings/tokens)`
        : `${where}: this repo needs a login (401 Unauthorized; it is private or gated): create a token at ${ctx.endpoint}/settings/tokens and set HF_TOKEN=hf_...`;
    } else if (status === 403) {
      msg = `${where}: access refused (403 Forbidden; a gated repo whose terms this token's account has not accepted): accept them on ${page}, or use a token with access to it in HF_TOKEN`;
    } else if (status === 404) {
      msg = ctx.file
        ? `${where}: not found (404) at this revision: the repo does not have this file; check the revision, or pick a repo in diffusers format`
        : `${where}: not found on ${ctx.endpoint} (404): check the id (org/name)${ctx.revision ? " and the revision" : ""}${ctx.hasToken ? "" : ", or set HF_TOKEN if the repo is private"}`;
    } else {
      msg = `${where}: the Hub answered ${status} (${err.message.split(". URL:")[0]}): try again later, or set HF_HUB_OFFLINE=1 to use only what is already cached`;
    }
    return new HubError(msg, ctx.repo, ctx.file, status, { cause: err });
  }
  const net = networkCause(err);
  if (net) {
    return new HubError(
      `${where}: cannot reach ${ctx.endpoint} (${net}): check the network connection (or HF_ENDPOINT); to use only models already in the cache, set HF_HUB_OFFLINE=1`,
      ctx.repo,
      ctx.file,
      undefined,
      { cause: err },
    );
  }
  return err;
}
