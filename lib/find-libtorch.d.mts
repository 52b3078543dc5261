export interface LibtorchLocation {
  source: "TORCHVID_LIBTORCH" | "Torch_DIR" | "python3" | "system";
  torchDir: string;
  libDir: string | null;
  version: string | null;
  cuda: string | null;
}
export function findLibtorchCandidates(options?: { env?: NodeJS.ProcessEnv; python?: string | false }): LibtorchLocation[];
export function findLibtorch(options?: { env?: NodeJS.ProcessEnv; python?: string | false }): LibtorchLocation | null;
export const LIBTORCH_HELP: string;
