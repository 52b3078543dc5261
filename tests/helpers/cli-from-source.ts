/**
 * Runs the CLI from lib/ (never dist/), for tests that patch lib/ modules with a `--import`
 * preload: bin/torchvid.js prefers the compiled dist/ when it exists (as after `npm run setup`),
 * and a patch of lib/index.ts would then never be seen.
 */
import { main } from "../../lib/cli.ts";

process.exitCode = await main(process.argv.slice(2));
// As bin/torchvid.js: let stdout drain, then go even if a native thread keeps the loop alive.
setTimeout(() => process.exit(), 2000).unref();
