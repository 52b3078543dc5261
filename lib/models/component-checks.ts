/**
 * Checks that a model folder's configs and weights belong together, run when the folder is opened
 * (config values) and right after each TorchScript file loads (its parameters). Without them a
 * hand-edited config or swapped file shows up much later as a wrong output size, a `height` the
 * user never passed, or a raw TorchScript traceback from the middle of a forward.
 */
import { join } from "node:path";
import { ModelFormatError } from "../errors.ts";
import type { NativeParameterInfo } from "../native-types.ts";
import type { ComponentName } from "./model-folder.ts";

const RECONVERT = "convert the model again (`torchvid convert <diffusers checkpoint> <model folder>`)";

export interface FolderConfigs {
  dir: string;
  unet: Record<string, unknown>;
  vae: Record<string, unknown>;
  textEncoder: Record<string, unknown>;
}

function describeValue(v: unknown): string {
  return v === undefined ? "missing" : JSON.stringify(v);
}

/** One config key: a positive integer (or, with `list`, a non-empty array of them), when present. */
function positiveInt(config: Record<string, unknown>, key: string, file: string, options: { list?: boolean; required?: boolean } = {}): void {
  const v = config[key];
  if (v === undefined && !options.required) return;
  const ok = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x > 0;
  const good = options.list ? Array.isArray(v) && v.length > 0 && v.every(ok) : ok(v);
  if (!good) {
    const want = options.list ? "a non-empty array of positive integers" : "a positive integer";
    throw new ModelFormatError(`${file}: ${key} must be ${want} but is ${describeValue(v)}: the file was edited or damaged; fix the value or ${RECONVERT}`);
  }
}

/** The config values torchvid computes sizes and shapes from (checked before any weights load). */
export function checkConfigValues(c: FolderConfigs): void {
  const unet = join(c.dir, "configs", "unet.json");
  const vae = join(c.dir, "configs", "vae.json");
  const te = join(c.dir, "configs", "text_encoder.json");
  // sample_size may be one number or [height, width] in diffusers configs.
  const ss = c.unet.sample_size;
  if (ss !== undefined && !Array.isArray(ss)) positiveInt(c.unet, "sample_size", unet);
  else if (Array.isArray(ss)) positiveInt(c.unet, "sample_size", unet, { list: true });
  positiveInt(c.unet, "in_channels", unet);
  positiveInt(c.unet, "cross_attention_dim", unet);
  positiveInt(c.unet, "block_out_channels", unet, { list: true });
  positiveInt(c.vae, "block_out_channels", vae, { list: true, required: true });
  positiveInt(c.vae, "latent_channels", vae);
  const sf = c.vae.scaling_factor;
  if (sf !== undefined && !(typeof sf === "number" && Number.isFinite(sf) && sf > 0)) {
    throw new ModelFormatError(`${vae}: scaling_factor must be a positive number but is ${describeValue(sf)}: the file was edited or damaged; fix the value or ${RECONVERT}`);
  }
  positiveInt(c.textEncoder, "hidden_size", te);
  positiveInt(c.textEncoder, "num_hidden_layers", te);
}

/** Parameters that only the given component has: how a loaded file shows what it really is. */
const SIGNATURES: Record<ComponentName, (names: Set<string>) => boolean> = {
  text_encoder: (n) => n.has("text_model.embeddings.token_embedding.weight"),
  unet: (n) => n.has("conv_in.weight") && n.has("time_embedding.linear_1.weight"),
  vae_encoder: (n) => n.has("encoder.conv_in.weight") && !n.has("post_quant_conv.weight"),
  vae_decoder: (n) => n.has("post_quant_conv.weight") && n.has("decoder.conv_in.weight"),
};

/**
 * Checks one loaded file: it is the component the manifest says (not a swapped file) and its
 * weights fit the config (block count, channels, embedding width).
 */
export function checkComponentWeights(component: ComponentName, file: string, params: readonly NativeParameterInfo[], c: FolderConfigs): void {
  const names = new Set(params.map((p) => p.name));
  if (!SIGNATURES[component](names)) {
    const actual = (Object.keys(SIGNATURES) as ComponentName[]).find((k) => SIGNATURES[k](names));
    throw new ModelFormatError(
      `Model file ${file} is listed as the ${component} in manifest.json but holds ${actual ? `the ${actual}` : "no torchvid component"}: the model files were swapped or renamed; ${RECONVERT}`,
    );
  }
  const shape = (name: string) => params.find((p) => p.name === name)?.shape;
  const mismatch = (configFile: string, what: string, configValue: unknown, weightValue: unknown) =>
    new ModelFormatError(
      `${join(c.dir, "configs", configFile)} says ${what} ${JSON.stringify(configValue)} but ${file} has ${JSON.stringify(weightValue)}: the config and the weights come from different models; ${RECONVERT}`,
    );
  if (component === "vae_decoder") {
    const ups = new Set(params.map((p) => /^decoder\.up_blocks\.(\d+)\.upsamplers\./.exec(p.name)?.[1]).filter((x) => x !== undefined));
    const blocks = (c.vae.block_out_channels as number[]).length;
    if (ups.size !== blocks - 1) {
      throw mismatch("vae.json", "block_out_channels (one block per entry, upscaling 2x between blocks)", c.vae.block_out_channels, `${ups.size + 1} blocks (${2 ** ups.size}x upscaling)`);
    }
    const latent = shape("post_quant_conv.weight")?.[1];
    if (c.vae.latent_channels !== undefined && latent !== undefined && latent !== c.vae.latent_channels) throw mismatch("vae.json", "latent_channels", c.vae.latent_channels, latent);
  }
  if (component === "unet") {
    const inCh = shape("conv_in.weight")?.[1];
    if (c.unet.in_channels !== undefined && inCh !== undefined && inCh !== c.unet.in_channels) throw mismatch("unet.json", "in_channels", c.unet.in_channels, inCh);
    const toK = params.find((p) => /\.attn2\.to_k\.weight$/.test(p.name))?.shape[1];
    if (c.unet.cross_attention_dim !== undefined && toK !== undefined && toK !== c.unet.cross_attention_dim) {
      throw mismatch("unet.json", "cross_attention_dim", c.unet.cross_attention_dim, `cross-attention inputs of width ${toK}`);
    }
  }
  if (component === "text_encoder") {
    const width = shape("text_model.embeddings.token_embedding.weight")?.[1];
    if (c.textEncoder.hidden_size !== undefined && width !== undefined && width !== c.textEncoder.hidden_size) throw mismatch("text_encoder.json", "hidden_size", c.textEncoder.hidden_size, width);
  }
}
