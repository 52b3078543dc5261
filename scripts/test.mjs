#!/usr/bin/env node
// `npm test`: the converter's Python tests (python3 with torch), then every Node test file.
// Set TORCHVID_TEST_SKIP_PYTHON=1 to run only the Node tests.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args, env = {}) => spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } }).status ?? 1;

function pythonWithTorch() {
  for (const py of [process.env.TORCHVID_PYTHON, "/usr/bin/python3", "python3"]) {
    if (py && spawnSync(py, ["-c", "import torch"], { stdio: "ignore" }).status === 0) return py;
  }
  return null;
}

let failed = 0;
if (!process.env.TORCHVID_TEST_SKIP_PYTHON) {
  const python = pythonWithTorch();
  if (!python) {
    console.error("torchvid tests: no python3 with torch (run `npm run setup`)");
    process.exit(1);
  }
  console.log(`# converter tests (${python} -m unittest)`);
  failed |= run(python, ["-m", "unittest", "discover", "-s", "tests/convert", "-t", "."]);
}
const files = readdirSync(join(root, "tests")).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join("tests", f));
const only = process.argv.slice(2);
failed |= run(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...(only.length ? only : files)]);
process.exit(failed ? 1 : 0);
