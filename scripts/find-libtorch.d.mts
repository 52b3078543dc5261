export * from "../lib/find-libtorch.mjs";
