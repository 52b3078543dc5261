/** From final latents to videos: the VAE decode (diffusers' decode_latents) and postprocessing. */
import { disposeAll, type Tensor } from "../tensor.ts";
import type { AutoencoderKL } from "../models/vae.ts";
import type { Video } from "../video/types.ts";
import type { OutputType } from "./options.ts";

/** latents [B, 4, F, h, w] -> decoded video [B, 3, F, H, W] in ~[-1, 1], float32. The VAE must be on its device. */
export async function decodeLatents(vae: AutoencoderKL, latents: Tensor, slicing: boolean): Promise<Tensor> {
  const [b, c, f, h, w] = latents.shape;
  const scaled = latents.mul(1 / vae.scalingFactor);
  const frames = scaled.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
  const images = await vae.decode(frames, { slicing });
  const [, ch, H, W] = images.shape;
  const video = images.reshape([b, f, ch, H, W]).permute([0, 2, 1, 3, 4]);
  const out = video.dtype === "float32" ? video.contiguous() : video.to("float32");
  disposeAll(scaled, frames, images, video);
  return out;
}

/** Decoded video [B, 3, F, H, W] -> one Video per batch row (clamp((x + 1) / 2), [frame, row, col, RGB]). */
export async function postprocess(decoded: Tensor, outputType: OutputType): Promise<Video[]> {
  const [b, , f, H, W] = decoded.shape;
  // On the device thread (a long video's passes would block the event loop here).
  const data = await decoded.videoFrames(outputType === "uint8" ? "uint8" : "float");
  const per = f * H * W * 3;
  return Array.from({ length: b }, (_, i) => ({ numFrames: f, height: H, width: W, data: data.slice(i * per, (i + 1) * per) }));
}
