// Finds libtorch, in the documented order, for the build (CMake's Torch_DIR) and at run time
// (which lib folder to load from). Plain JS so it runs at install time, before TypeScript exists.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** Debian/Ubuntu's libtorch-dev (multiarch). */
const SYSTEM_TORCH_DIRS = ["/usr/lib/x86_64-linux-gnu/cmake/Torch", "/usr/lib/aarch64-linux-gnu/cmake/Torch", "/usr/lib/cmake/Torch", "/usr/local/share/cmake/Torch"];

function readCmakeVersion(torchDir) {
  try {
    const text = readFileSync(join(torchDir, "TorchConfigVersion.cmake"), "utf8");
    return /PACKAGE_VERSION "([^"]+)"/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The lib folder holding libtorch_cpu next to a Torch cmake dir (root/share/cmake/Torch -> root/lib). */
function libDirOf(torchDir) {
  const root = resolve(torchDir, "../../..");
  for (const candidate of [join(root, "lib")]) {
    if (existsSync(join(candidate, "libtorch_cpu.so")) || existsSync(join(candidate, "libtorch_cpu.dylib"))) return candidate;
  }
  // Debian: <multiarch>/cmake/Torch -> <multiarch>
  const multiarch = resolve(torchDir, "../..");
  if (existsSync(join(multiarch, "libtorch_cpu.so"))) return multiarch;
  return null;
}

function pythonTorch(python) {
  try {
    const out = execFileSync(
      python,
      ["-c", "import torch, os; print(torch.__version__); print(torch.utils.cmake_prefix_path); print(os.path.join(os.path.dirname(torch.__file__), 'lib')); print(torch.version.cuda or '')"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60_000 },
    );
    const [version, prefix, libDir, cuda] = out.trim().split("\n");
    return { version, torchDir: join(prefix, "Torch"), libDir, cuda: cuda || null };
  } catch {
    return null;
  }
}

/**
 * @typedef {{ source: "TORCHVID_LIBTORCH" | "Torch_DIR" | "python3" | "system", torchDir: string, libDir: string | null, version: string | null, cuda: string | null }} LibtorchLocation
 */

/**
 * Every libtorch found, in priority order: TORCHVID_LIBTORCH (a libtorch root) or Torch_DIR,
 * then the torch package of `python3` on PATH, then the system (Debian libtorch-dev).
 * @param {{ env?: NodeJS.ProcessEnv, python?: string | false }} [options]
 * @returns {LibtorchLocation[]}
 */
export function findLibtorchCandidates(options = {}) {
  const env = options.env ?? process.env;
  const found = [];
  if (env.TORCHVID_LIBTORCH) {
    const torchDir = join(env.TORCHVID_LIBTORCH, "share/cmake/Torch");
    found.push({ source: "TORCHVID_LIBTORCH", torchDir, libDir: libDirOf(torchDir) ?? join(env.TORCHVID_LIBTORCH, "lib"), version: readCmakeVersion(torchDir), cuda: null });
  }
  if (env.Torch_DIR) {
    found.push({ source: "Torch_DIR", torchDir: env.Torch_DIR, libDir: libDirOf(env.Torch_DIR), version: readCmakeVersion(env.Torch_DIR), cuda: null });
  }
  if (options.python !== false) {
    const py = pythonTorch(options.python ?? "python3");
    if (py && existsSync(join(py.torchDir, "TorchConfig.cmake"))) {
      found.push({ source: "python3", torchDir: py.torchDir, libDir: py.libDir, version: py.version.split("+")[0], cuda: py.cuda });
    }
  }
  for (const dir of SYSTEM_TORCH_DIRS) {
    if (existsSync(join(dir, "TorchConfig.cmake"))) {
      found.push({ source: "system", torchDir: dir, libDir: libDirOf(dir), version: readCmakeVersion(dir), cuda: null });
      break;
    }
  }
  return found;
}

/** The first libtorch found, or null. */
export function findLibtorch(options = {}) {
  return findLibtorchCandidates(options)[0] ?? null;
}

export const LIBTORCH_HELP =
  "Install one of: Debian/Ubuntu `apt-get install -y libtorch-dev python3-torch` (what `npm run setup` does); " +
  "a libtorch download with TORCHVID_LIBTORCH=/path/to/libtorch; or `pip install torch` for the python3 on PATH.";
