/**
 * Errors with stable codes. Native failures arrive as Errors whose `code` the addon set
 * (ERR_TORCHVID_*); `wrapNative` keeps that code, or assigns the caller's default, and points the
 * stack at the caller's line rather than at the addon.
 */

export type TorchvidErrorCode =
  | "ERR_TORCHVID_NATIVE_LOAD"
  | "ERR_TORCHVID_MODEL_LOAD"
  | "ERR_TORCHVID_MODEL_FORMAT"
  | "ERR_TORCHVID_OOM"
  | "ERR_TORCHVID_SHAPE"
  | "ERR_TORCHVID_DEVICE"
  | "ERR_TORCHVID_QUEUE"
  | "ERR_TORCHVID_DTYPE"
  | "ERR_TORCHVID_FORWARD"
  | "ERR_TORCHVID_DISPOSED"
  | "ERR_TORCHVID_ABORTED"
  | "ERR_TORCHVID_TORCH"
  | "ERR_TORCHVID_VIDEO"
  | "ERR_TORCHVID_CONVERT"
  | "ERR_TORCHVID_HUB"
  /** A method called out of order (a scheduler stepped before setTimesteps). */
  | "ERR_TORCHVID_STATE";

export class TorchvidError extends Error {
  readonly code: TorchvidErrorCode;
  constructor(code: TorchvidErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TorchvidError";
    this.code = code;
  }
}

/** The addon could not be loaded (no binary, or libtorch missing / of another version). */
export class NativeLoadError extends TorchvidError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_TORCHVID_NATIVE_LOAD", message, options);
    this.name = "NativeLoadError";
  }
}

/** A model folder or weight file is missing, corrupt, or not what torchvid expects. */
export class ModelFormatError extends TorchvidError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_TORCHVID_MODEL_FORMAT", message, options);
    this.name = "ModelFormatError";
  }
}

/** A run stopped because its AbortSignal fired. */
export class AbortError extends TorchvidError {
  constructor(message = "The operation was aborted", options?: { cause?: unknown }) {
    super("ERR_TORCHVID_ABORTED", message, options);
    this.name = "AbortError";
  }
}

/** Turns an Error thrown by the addon into a TorchvidError with a code. */
export function fromNativeError(err: unknown, fallback: TorchvidErrorCode = "ERR_TORCHVID_TORCH"): unknown {
  if (!(err instanceof Error) || err instanceof TorchvidError) return err;
  if (err instanceof TypeError || err instanceof RangeError) return err;
  const nativeCode = (err as { code?: unknown }).code;
  let code: TorchvidErrorCode = typeof nativeCode === "string" && nativeCode.startsWith("ERR_TORCHVID_") ? (nativeCode as TorchvidErrorCode) : fallback;
  // The addon classifies too, but an op's caller knows better what a generic failure means.
  if (code === "ERR_TORCHVID_TORCH" && fallback !== "ERR_TORCHVID_TORCH") code = fallback;
  return new TorchvidError(code, err.message, { cause: err });
}

/**
 * Runs a native call, rethrowing its failure as a TorchvidError whose stack starts at the caller.
 * Works for sync results and Promises alike. The caller's stack is captured only when it is
 * needed (a sync failure is still on it; an async call keeps it for later): a stack trace costs
 * microseconds, more than many tensor ops, and most calls succeed.
 */
export function wrapNative<T>(fn: () => T, fallback?: TorchvidErrorCode): T {
  let result: T;
  try {
    result = fn();
  } catch (err) {
    throw restack(fromNativeError(err, fallback), new Error());
  }
  if (result instanceof Promise) {
    const site = new Error();
    return result.catch((err: unknown) => {
      throw restack(fromNativeError(err, fallback), site);
    }) as T;
  }
  return result;
}

/** Points a TorchvidError's stack at the frames of `site` below wrapNative. */
function restack(e: unknown, site: Error): unknown {
  if (e instanceof TorchvidError && site.stack) e.stack = `${e.name}: ${e.message}\n${site.stack.split("\n").slice(2).join("\n")}`;
  return e;
}
