// The torchvid CLI as bin/torchvid.js runs it, but with the stand-in pipeline API of
// cli-stand-in-pipeline.mjs injected through main()'s pipelineApi parameter (for
// tests/cli-generate.test.ts: the command plumbing without a model).
import { main } from "../../lib/cli.ts";
import type { PipelineApi } from "../../lib/cli/run-pipeline.ts";

const standInUrl = new URL("./cli-stand-in-pipeline.mjs", import.meta.url).href;
const standIn = async () => (await import(standInUrl)) as PipelineApi;
process.exitCode = await main(process.argv.slice(2), { pipelineApi: standIn });
setTimeout(() => process.exit(), 2000).unref();
