// The libtorch search lives in lib/find-libtorch.mjs (plain JS, so it runs before TypeScript is
// built); scripts and scripts/setup.sh keep importing it from here.
export * from "../lib/find-libtorch.mjs";
