/**
 * Live preview of a running job: the step's latents [B, 4, F, h, w] mapped to RGB by a fixed
 * 4 -> 3 linear map on the device (no VAE), as ComfyUI and A1111 preview SD latents. Only the
 * small uint8 result [h, F' * w, 3] comes to the host, where sharp writes it as a PNG strip of
 * F' frames side by side.
 */
import sharp from "sharp";
import { Tensor, disposeAll } from "../index.ts";

/**
 * Rows: latent channels 0..3; columns: R, G, B. The SD 1.x VAE latent factors of ComfyUI
 * (comfy/latent_formats.py, class SD15, `latent_rgb_factors`), used by its Latent2RGB previewer
 * as `rgb = latent @ factors`, then ((rgb + 1) / 2) clamped to [0, 1] (latent_preview.py). A1111's
 * "Approx cheap" preview (modules/sd_vae_approx.py, cheap_approximation) uses a close variant.
 * ModelScope / zeroscope use the SD 1.x VAE, so the same map holds.
 */
export const LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** Most frames in a preview strip: longer videos show every k-th frame. */
export const MAX_PREVIEW_FRAMES = 16;

const factorsByDevice = new Map<string, Tensor>();

function factorsOn(device: string): Tensor {
  let t = factorsByDevice.get(device);
  if (!t) {
    t = Tensor.from(Float32Array.from(LATENT_RGB_FACTORS.flat()), [4, 3], { device: device as "cpu" });
    factorsByDevice.set(device, t);
  }
  return t;
}

/** The strip as a uint8 tensor [h, F' * w, 3] on the latents' device; the caller disposes it. */
export function latentPreviewTensor(latents: Tensor, maxFrames = MAX_PREVIEW_FRAMES): { strip: Tensor; frames: number; width: number; height: number } {
  const [, c, f, h, w] = latents.shape;
  if (c !== 4) throw new RangeError(`The latent preview expects 4 latent channels but the latents have ${c}`);
  const every = Math.ceil(f / maxFrames);
  const temps: Tensor[] = [];
  const keep = (t: Tensor) => (temps.push(t), t);
  try {
    const first = keep(latents.slice(0, 0, 1)); // [1, 4, F, h, w]: the first video of a batch
    const picked = keep(first.slice(2, 0, f, every)); // [1, 4, F', h, w]
    const frames = picked.shape[2];
    const asFloat = keep(picked.to("float32"));
    const pixels = keep(keep(asFloat.permute([0, 2, 3, 4, 1])).reshape([frames * h * w, 4]));
    const rgb = keep(pixels.matmul(factorsOn(latents.device)));
    const unit = keep(keep(keep(rgb.add(1)).mul(0.5)).clamp(0, 1));
    const bytes = keep(keep(keep(unit.mul(255)).round()).to("uint8"));
    // [F', h, w, 3] -> [h, F', w, 3]: frames side by side in one image row band.
    const side = keep(keep(bytes.reshape([frames, h, w, 3])).permute([1, 0, 2, 3]));
    const strip = keep(side.contiguous()).reshape([h, frames * w, 3]);
    return { strip, frames, width: w, height: h };
  } finally {
    disposeAll(temps);
  }
}

export interface Preview {
  step: number;
  frames: number;
  /** One frame's size in pixels (the latent size). */
  width: number;
  height: number;
  /** The strip: `frames` frames side by side, as a PNG data URL. */
  image: string;
}

/** Copies a strip to the host (small), disposes it and encodes it as a PNG data URL. */
export async function encodePreview(step: number, preview: ReturnType<typeof latentPreviewTensor>): Promise<Preview> {
  let data: Uint8Array;
  try {
    data = (await preview.strip.data()) as Uint8Array;
  } finally {
    preview.strip.dispose();
  }
  const png = await sharp(data, { raw: { width: preview.frames * preview.width, height: preview.height, channels: 3 } }).png().toBuffer();
  return { step, frames: preview.frames, width: preview.width, height: preview.height, image: `data:image/png;base64,${png.toString("base64")}` };
}
