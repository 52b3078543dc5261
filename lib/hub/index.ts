/** Hub model ids: the Hugging Face cache, @huggingface/hub downloads, torchvid's converted-model cache. */
export { resolveModel, resolveModelFolder, convertedDType, type HubOptions, type HubEvent, type ResolvedModel } from "./resolve.ts";
export { parseModelId, isModelId, formatModelId, type ModelId } from "./model-id.ts";
export { downloadCheckpoint, cachedSnapshot, type DownloadOptions, type DownloadProgress, type Snapshot } from "./download.ts";
export { ensureConverted, listConverted, torchvidCacheDir, convertedDir, type ConvertedKey, type ConvertedEntry } from "./model-cache.ts";
export { hfHubCacheDir, repoCacheDir } from "./hf-cache.ts";
export { HubError } from "./errors.ts";
