/**
 * Plays a preview strip (frames side by side in one PNG) as a small looping animation on a
 * canvas, pixelated so the latent-sized frames stay crisp when scaled up.
 */
export class PreviewPlayer {
  readonly canvas: HTMLCanvasElement;
  #image = new Image();
  #frames = 0;
  #frameWidth = 0;
  #index = 0;
  #timer: number | undefined;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
  }

  show(image: string, frames: number, width: number, height: number, fps = 8): void {
    const img = new Image();
    img.onload = () => {
      this.#image = img;
      this.#frames = frames;
      this.#frameWidth = width;
      this.canvas.width = width;
      this.canvas.height = height;
      this.#draw();
      if (this.#timer === undefined) this.#timer = window.setInterval(() => this.#draw(), 1000 / fps);
    };
    img.src = image;
  }

  clear(): void {
    if (this.#timer !== undefined) window.clearInterval(this.#timer);
    this.#timer = undefined;
    this.#frames = 0;
    this.canvas.getContext("2d")?.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  #draw(): void {
    const ctx = this.canvas.getContext("2d");
    if (!ctx || this.#frames === 0) return;
    this.#index = (this.#index + 1) % this.#frames;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.#image, this.#index * this.#frameWidth, 0, this.#frameWidth, this.canvas.height, 0, 0, this.canvas.width, this.canvas.height);
  }
}
