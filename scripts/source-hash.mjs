// The source hash lives in lib/source-hash.mjs (the loader and the prebuild writer must agree).
export * from "../lib/source-hash.mjs";
