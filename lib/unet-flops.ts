/**
 * FLOPs of one UNet3DConditionModel forward, counted from the diffusers `config.json` by walking
 * the same architecture the converter exports (tools/convert/models/unet3d.py): shapes only, no
 * model needed.
 *
 * Counted (1 multiply-add = 2 FLOPs): every convolution (2D 3x3 / 1x1, the temporal Conv3d
 * (3,1,1) stages, the stride-2 downsamplers), every linear layer (attention projections,
 * GEGLU feed-forward, proj_in/out, time embeddings), and the two attention matmuls (Q K^T and
 * softmax(..) V) of every self-, cross- and temporal attention.
 *
 * Not counted (each well under 1% of the total for the ms-1.7b shapes): GroupNorm / LayerNorm,
 * SiLU / GELU, softmax (about 5 FLOPs per score against 4·head_dim for the two matmuls, i.e. ~2%
 * of the attention matmuls at head_dim 64), residual adds, the sinusoidal timestep embedding,
 * nearest upsampling, concatenations and bias adds.
 */

export interface UNetFlopsOptions {
  /** UNet batch: 2 x videos with classifier-free guidance. Defaults to 1. */
  batch?: number;
  /** Frames. Defaults to 16. */
  frames?: number;
  /** Latent height (pixels / VAE scale factor, 8 for the real models). */
  height: number;
  /** Latent width. */
  width: number;
  /** Tokens of the text embedding (CLIP: 77). Defaults to 77. */
  encoderSeqLen?: number;
}

export interface UNetFlops {
  total: number;
  /** 2D + temporal 3D convolutions. */
  conv: number;
  /** Linear layers (attention projections, feed-forwards, proj_in/out, time embeddings). */
  linear: number;
  /** Q K^T and softmax(..) V matmuls. */
  attention: number;
  /** The same total split by where it happens (conv_in, transformer_in, down_blocks.0, mid_block, ...). */
  byBlock: Record<string, number>;
}

interface Cfg {
  boc: number[];
  layers: number;
  inCh: number;
  outCh: number;
  cross: number;
  headDim: number;
  down: string[];
  up: string[];
  pad: number;
}

function readConfig(config: Readonly<Record<string, unknown>>): Cfg {
  const num = (key: string, dflt: number): number => {
    const v = config[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`unet config: ${key} must be a number (got ${JSON.stringify(v)})`);
    return v;
  };
  if (config.num_attention_heads !== undefined && config.num_attention_heads !== null) {
    throw new TypeError("unet config: num_attention_heads is not supported by UNet3DConditionModel; use attention_head_dim");
  }
  if (Array.isArray(config.attention_head_dim)) throw new TypeError("unet config: a per-block attention_head_dim list is not supported");
  const boc = (config.block_out_channels as number[] | undefined) ?? [320, 640, 1280, 1280];
  const down = (config.down_block_types as string[] | undefined) ?? ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"];
  const up = (config.up_block_types as string[] | undefined) ?? ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"];
  if (down.length !== boc.length || up.length !== boc.length) {
    throw new TypeError("unet config: down_block_types, up_block_types and block_out_channels must have the same length");
  }
  return {
    boc,
    layers: num("layers_per_block", 2),
    inCh: num("in_channels", 4),
    outCh: num("out_channels", 4),
    cross: num("cross_attention_dim", 1024),
    headDim: num("attention_head_dim", 64),
    down,
    up,
    pad: num("downsample_padding", 1),
  };
}

/** Counts the FLOPs of one UNet forward (see the module comment for what is counted). */
export function unetFlops(config: Readonly<Record<string, unknown>>, options: UNetFlopsOptions): UNetFlops {
  const c = readConfig(config);
  const B = options.batch ?? 1;
  const F = options.frames ?? 16;
  const S = options.encoderSeqLen ?? 77;
  const H0 = options.height;
  const W0 = options.width;
  for (const [k, v] of Object.entries({ batch: B, frames: F, height: H0, width: W0, encoderSeqLen: S })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`Expected a positive integer for ${k} but received ${v}`);
  }
  const BF = B * F;
  const temb = c.boc[0] * 4;
  const out: UNetFlops = { total: 0, conv: 0, linear: 0, attention: 0, byBlock: {} };
  let where = "";
  const add = (kind: "conv" | "linear" | "attention", flops: number) => {
    out[kind] += flops;
    out.byBlock[where] = (out.byBlock[where] ?? 0) + flops;
    out.total += flops;
  };
  const linear = (rows: number, cin: number, cout: number) => add("linear", 2 * rows * cin * cout);
  // conv over n images of (h x w) output pixels, kernel area k
  const conv = (n: number, hOut: number, wOut: number, cin: number, cout: number, k: number) => add("conv", 2 * n * hOut * wOut * cin * cout * k);
  /** Attention over `batches` sequences: n queries, m keys, `inner` = heads x head_dim channels. */
  const attention = (batches: number, n: number, m: number, qDim: number, kvDim: number, inner: number) => {
    linear(batches * n, qDim, inner); // to_q
    linear(batches * m, kvDim, inner); // to_k
    linear(batches * m, kvDim, inner); // to_v
    add("attention", 2 * 2 * batches * n * m * inner); // Q K^T and P V
    linear(batches * n, inner, qDim); // to_out.0
  };
  /** BasicTransformerBlock on [batches, n, dim]; cross = (encoder tokens, their dim) or null (2nd self-attention). */
  const block = (batches: number, n: number, dim: number, heads: number, dHead: number, crossTo: { m: number; dim: number } | null) => {
    const inner = heads * dHead;
    attention(batches, n, n, dim, dim, inner);
    if (crossTo) attention(batches, n, crossTo.m, dim, crossTo.dim, inner);
    else attention(batches, n, n, dim, dim, inner);
    linear(batches * n, dim, dim * 4 * 2); // GEGLU proj
    linear(batches * n, dim * 4, dim); // ff.net.2
  };
  const spatial = (ch: number, h: number, w: number) => {
    const heads = Math.floor(ch / c.headDim);
    const inner = heads * c.headDim;
    linear(BF * h * w, ch, inner);
    block(BF, h * w, inner, heads, c.headDim, { m: S, dim: c.cross });
    linear(BF * h * w, inner, ch);
  };
  const temporal = (ch: number, h: number, w: number, heads: number) => {
    const inner = heads * c.headDim;
    linear(BF * h * w, ch, inner);
    block(B * h * w, F, inner, heads, c.headDim, null);
    linear(BF * h * w, inner, ch);
  };
  const resnet = (cin: number, cout: number, h: number, w: number) => {
    conv(BF, h, w, cin, cout, 9);
    linear(BF, temb, cout); // time_emb_proj (the embedding is repeated per frame)
    conv(BF, h, w, cout, cout, 9);
    if (cin !== cout) conv(BF, h, w, cin, cout, 1);
  };
  const tempConv = (ch: number, h: number, w: number) => {
    for (let i = 0; i < 4; i++) conv(BF, h, w, ch, ch, 3); // Conv3d (3,1,1), padding keeps F
  };

  let h = H0;
  let w = W0;
  where = "conv_in";
  conv(BF, h, w, c.inCh, c.boc[0], 9);
  where = "time_embedding";
  linear(B, c.boc[0], temb);
  linear(B, temb, temb);
  where = "transformer_in";
  temporal(c.boc[0], h, w, 8);

  const res: { ch: number; h: number; w: number }[] = [{ ch: c.boc[0], h, w }];
  let ch = c.boc[0];
  c.down.forEach((type, i) => {
    where = `down_blocks.${i}`;
    const cout = c.boc[i];
    for (let l = 0; l < c.layers; l++) {
      resnet(l === 0 ? ch : cout, cout, h, w);
      tempConv(cout, h, w);
      if (type === "CrossAttnDownBlock3D") {
        spatial(cout, h, w);
        temporal(cout, h, w, Math.floor(cout / c.headDim));
      } else if (type !== "DownBlock3D") throw new TypeError(`unet config: unsupported down block type ${type}`);
      res.push({ ch: cout, h, w });
    }
    ch = cout;
    if (i < c.boc.length - 1) {
      // 3x3 stride 2; padding 0 pads right/bottom by one first (as the converter)
      const size = (x: number) => (c.pad === 0 ? Math.floor((x + 1 - 3) / 2) + 1 : Math.floor((x + 2 * c.pad - 3) / 2) + 1);
      h = size(h);
      w = size(w);
      conv(BF, h, w, ch, ch, 9);
      res.push({ ch, h, w });
    }
  });

  where = "mid_block";
  const last = c.boc[c.boc.length - 1];
  resnet(ch, last, h, w);
  tempConv(last, h, w);
  spatial(last, h, w);
  temporal(last, h, w, Math.floor(last / c.headDim));
  resnet(last, last, h, w);
  tempConv(last, h, w);

  const upFactor = 2 ** (c.boc.length - 1);
  const forwardUpsampleSize = H0 % upFactor !== 0 || W0 % upFactor !== 0;
  const rev = [...c.boc].reverse();
  c.up.forEach((type, i) => {
    where = `up_blocks.${i}`;
    const cout = rev[i];
    const n = c.layers + 1;
    const skips = res.splice(res.length - n, n);
    for (let l = 0; l < n; l++) {
      const skip = skips[skips.length - 1 - l];
      resnet(ch + skip.ch, cout, h, w);
      ch = cout;
      tempConv(cout, h, w);
      if (type === "CrossAttnUpBlock3D") {
        spatial(cout, h, w);
        temporal(cout, h, w, Math.floor(cout / c.headDim));
      } else if (type !== "UpBlock3D") throw new TypeError(`unet config: unsupported up block type ${type}`);
    }
    if (i < c.up.length - 1) {
      if (forwardUpsampleSize) {
        h = res[res.length - 1].h;
        w = res[res.length - 1].w;
      } else {
        h *= 2;
        w *= 2;
      }
      conv(BF, h, w, ch, ch, 9);
    }
  });

  where = "conv_out";
  conv(BF, h, w, c.boc[0], c.outCh, 9);
  return out;
}

/** 1.23e12 -> "1.23 TFLOP" (and G/M), for tables. */
export function formatFlops(flops: number): string {
  const units: [number, string][] = [[1e15, "PFLOP"], [1e12, "TFLOP"], [1e9, "GFLOP"], [1e6, "MFLOP"]];
  for (const [scale, unit] of units) if (flops >= scale) return `${(flops / scale).toFixed(2)} ${unit}`;
  return `${flops} FLOP`;
}
