#!/usr/bin/env node
// torchvid command line launcher: the compiled CLI (dist/cli.js) when built, else the TypeScript
// source through tsx (a development checkout).
import { existsSync } from "node:fs";

const dist = new URL("../dist/cli.js", import.meta.url);
let cli;
if (existsSync(dist)) {
  cli = await import(dist.href);
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write("torchvid: dist/cli.js is missing and tsx is not installed: run `npm run build:ts` (or `npm install` in a checkout)\n");
    process.exit(1);
  }
  register();
  cli = await import(new URL("../lib/cli.ts", import.meta.url).href);
}
process.exitCode = await cli.main(process.argv.slice(2));
// Let stdout drain and exit by itself; if a native thread pool keeps the process alive, go anyway.
setTimeout(() => process.exit(), 2000).unref();
