export * from "../lib/source-hash.mjs";
