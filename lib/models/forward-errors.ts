/**
 * What a failed forward of a model component says: which model (and its file), the shapes it
 * was given and what it takes, the torch error in one line (not the TorchScript traceback, which
 * stays in `cause`), and the fix. Out of memory names the memory options.
 */
import { TorchvidError } from "../errors.ts";

/** The library's advice when a forward runs out of memory (the CLI swaps in its flags). */
export const OOM_HINT = "To fit it: pipe.enableModelCpuOffload(), pipe.enableVaeSlicing(), pipe.unet.enableForwardChunking(), fewer frames or a smaller size";

/** The torch error of a TorchScript failure, without the interpreter's traceback. */
export function torchErrorLine(message: string): string {
  const lines = message.split("\n").map((l) => l.trim()).filter(Boolean);
  // TorchScript puts the real error last ("RuntimeError: ..."); libtorch's own messages come first.
  const typed = [...lines].reverse().find((l) => /^[A-Za-z.]*(Error|Exception):/.test(l));
  const line = typed ?? lines[0] ?? message;
  // The native layer's own memory advice names library calls (ours follows); the allocator's
  // "[enforce fail at alloc_cpu.cpp:75] err == 0." is noise; bytes read better as GiB.
  return line
    .replace(/\s*\(free memory with [^)]*\)\s*$/, "")
    .replace(/\[enforce fail at [^\]]*\]\s*(err == 0\.\s*)?/, "")
    .replace(/allocate (\d+) bytes/, (_m, n: string) => `allocate ${n} bytes (${(Number(n) / 2 ** 30).toFixed(1)} GiB)`);
}

export interface ForwardContext {
  /** "The UNet", "The VAE decoder", ... */
  model: string;
  file: string;
  /** Input names and shapes, e.g. { sample: [1, 4, 16, 32, 32] }. */
  inputs: Record<string, readonly number[]>;
  /** What the model takes, in words, e.g. "encoder_hidden_states [B, 77, 1024]". */
  expects: string;
}

/** Rewrites a forward failure as a TorchvidError that names the model, the file, the shapes and the fix. */
export function explainForwardFailure(err: unknown, ctx: ForwardContext): unknown {
  if (!(err instanceof TorchvidError) || err.code === "ERR_TORCHVID_ABORTED" || err.code === "ERR_TORCHVID_DISPOSED") return err;
  const given = Object.entries(ctx.inputs)
    .map(([k, s]) => `${k} [${s.join(", ")}]`)
    .join(", ");
  const line = torchErrorLine(err.message);
  if (err.code === "ERR_TORCHVID_OOM") {
    return new TorchvidError("ERR_TORCHVID_OOM", `${ctx.model} (${ctx.file}) ran out of memory on ${given}: ${line}. ${OOM_HINT}`, { cause: err });
  }
  return new TorchvidError(
    err.code,
    `${ctx.model} (${ctx.file}) failed on ${given}: ${line}. It takes ${ctx.expects}: check the shapes of what you passed (promptEmbeds, latents), or that the model folder is one model (torchvid convert it again if files were mixed)`,
    { cause: err },
  );
}
