/**
 * Progress output: a cli-progress bar on a TTY, plain lines otherwise, JSON lines with --json.
 * Human progress goes to stderr; stdout carries only the result (or JSON events).
 */

import cliProgress from "cli-progress";

export interface StepEvent {
  /** Completed steps, from 1. */
  step: number;
  numSteps: number;
  timestep?: number;
  elapsedMs?: number;
}

export type Phase = "load" | "read" | "steps" | "decode" | "encode";

export interface Reporter {
  /** A phase starts (`total` units when known). */
  phase(phase: Phase, detail?: { total?: number; message?: string }): void;
  step(event: StepEvent): void;
  encode(frame: number, numFrames: number): void;
  /** A status line for people (not shown with --json). */
  note(message: string): void;
  /** The final result: one JSON object with --json, a summary line otherwise. */
  result(result: Record<string, unknown>, summary: string): void;
  close(): void;
}

function fmtRate(perSec: number): string {
  if (!Number.isFinite(perSec) || perSec <= 0) return "-";
  return perSec >= 1 ? `${perSec.toFixed(2)} it/s` : `${(1 / perSec).toFixed(2)} s/it`;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** Measures steps per second from wall-clock time between steps. */
class StepClock {
  private start = 0;
  private first = 0;
  begin(): void {
    this.start = Date.now();
  }
  rate(step: number): { perSec: number } {
    const now = Date.now();
    if (step <= 1) this.first = now;
    // The first step carries warm-up: measure from it once there are more.
    const perSec = step > 1 ? ((step - 1) * 1000) / Math.max(1, now - this.first) : 1000 / Math.max(1, now - this.start);
    return { perSec };
  }
}

export class JsonReporter implements Reporter {
  private clock = new StepClock();
  private write(obj: Record<string, unknown>): void {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
  }
  phase(phase: Phase, detail: { total?: number; message?: string } = {}): void {
    if (phase === "steps") this.clock.begin();
    this.write({ event: "phase", phase, ...detail });
  }
  step(e: StepEvent): void {
    const { perSec } = this.clock.rate(e.step);
    this.write({ event: "step", ...e, itPerSec: Number(perSec.toFixed(4)), etaS: Number(((e.numSteps - e.step) / perSec).toFixed(2)) });
  }
  encode(frame: number, numFrames: number): void {
    this.write({ event: "encode", frame, numFrames });
  }
  note(): void {}
  result(result: Record<string, unknown>): void {
    this.write({ event: "result", ...result });
  }
  close(): void {}
}

export class LineReporter implements Reporter {
  private clock = new StepClock();
  private lastEncode = 0;
  phase(phase: Phase, detail: { total?: number; message?: string } = {}): void {
    if (phase === "steps") this.clock.begin();
    if (detail.message) process.stderr.write(`${detail.message}\n`);
  }
  step(e: StepEvent): void {
    const { perSec } = this.clock.rate(e.step);
    const t = e.timestep !== undefined ? ` t=${Math.round(e.timestep * 100) / 100}` : "";
    process.stderr.write(`step ${e.step}/${e.numSteps}${t}  ${fmtRate(perSec)}  ETA ${fmtDuration((e.numSteps - e.step) / perSec)}\n`);
  }
  encode(frame: number, numFrames: number): void {
    // A line per quarter is enough when nobody watches a bar.
    const quarter = Math.ceil(numFrames / 4);
    if (frame === numFrames || frame - this.lastEncode >= quarter) {
      this.lastEncode = frame;
      process.stderr.write(`encode ${frame}/${numFrames} frames\n`);
    }
  }
  note(message: string): void {
    process.stderr.write(`${message}\n`);
  }
  result(_result: Record<string, unknown>, summary: string): void {
    process.stdout.write(`${summary}\n`);
  }
  close(): void {}
}

export class BarReporter implements Reporter {
  private bar = new cliProgress.SingleBar(
    {
      format: (options, params, payload: { phase?: string; unit?: string; rate?: string }) => {
        const bar = cliProgress.Format.BarFormat(params.progress, options);
        const elapsed = fmtDuration((Date.now() - params.startTime) / 1000);
        if (payload.phase === "decode") return `decode |${bar}| VAE decoding, ${elapsed}`;
        const eta = params.value >= params.total ? `done in ${elapsed}` : params.value === 0 ? "ETA -" : `ETA ${fmtDuration(params.eta)}`;
        return `${payload.phase} |${bar}| ${params.value}/${params.total} ${payload.unit} | ${payload.rate} | ${eta}`;
      },
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 8,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  private active = false;
  private clock = new StepClock();

  private restart(total: number, payload: Record<string, string>): void {
    if (this.active) this.bar.stop();
    this.bar.start(total, 0, payload);
    this.active = true;
  }
  phase(phase: Phase, detail: { total?: number; message?: string } = {}): void {
    if (phase === "steps") {
      this.clock.begin();
      this.restart(detail.total ?? 1, { phase: "steps ", unit: "steps", rate: "-" });
    } else if (phase === "decode") {
      this.restart(1, { phase: "decode", unit: "", rate: "VAE" });
    } else if (phase === "encode") {
      if (this.active) this.bar.update(this.bar.getTotal());
      this.restart(detail.total ?? 1, { phase: "encode", unit: "frames", rate: "-" });
    } else {
      if (this.active) {
        this.bar.stop();
        this.active = false;
      }
      if (detail.message) process.stderr.write(`${detail.message}\n`);
    }
  }
  step(e: StepEvent): void {
    if (!this.active) this.restart(e.numSteps, { phase: "steps ", unit: "steps", rate: "-" });
    if (this.bar.getTotal() !== e.numSteps) this.bar.setTotal(e.numSteps);
    this.bar.update(e.step, { rate: fmtRate(this.clock.rate(e.step).perSec) });
  }
  encode(frame: number, numFrames: number): void {
    if (!this.active) this.restart(numFrames, { phase: "encode", unit: "frames", rate: "-" });
    this.bar.update(frame);
  }
  note(message: string): void {
    if (this.active) {
      this.bar.stop();
      this.active = false;
    }
    process.stderr.write(`${message}\n`);
  }
  result(_result: Record<string, unknown>, summary: string): void {
    this.close();
    process.stdout.write(`${summary}\n`);
  }
  close(): void {
    if (this.active) {
      this.bar.stop();
      this.active = false;
    }
  }
}

/** The reporter for this run: JSON lines, a bar on a TTY, or plain lines. */
export function createReporter(json: boolean | undefined): Reporter {
  if (json) return new JsonReporter();
  return process.stderr.isTTY ? new BarReporter() : new LineReporter();
}
