/**
 * Progress of a model id load (download, conversion, waiting for another process) on the
 * terminal: a cli-progress bar on a TTY, a line per file otherwise, JSON lines with --json
 * (`{"event":"download",...}`, `{"event":"convert",...}`, `{"event":"wait",...}`). Human output
 * goes to stderr so stdout keeps only results.
 */
import cliProgress from "cli-progress";
import type { HubEvent } from "../hub/resolve.ts";

export interface HubProgressPrinter {
  onHubProgress: (event: HubEvent) => void;
  close(): void;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function hubProgressPrinter(json: boolean | undefined): HubProgressPrinter {
  if (json) {
    return {
      onHubProgress: (e) => process.stdout.write(`${JSON.stringify({ event: e.kind, ...e, kind: undefined })}\n`),
      close() {},
    };
  }
  let bar: cliProgress.SingleBar | null = null;
  let lastFile = "";
  const stopBar = () => {
    bar?.stop();
    bar = null;
  };
  return {
    onHubProgress(e) {
      if (e.kind === "download") {
        if (process.stderr.isTTY) {
          if (!bar) {
            bar = new cliProgress.SingleBar(
              { stream: process.stderr, format: "download |{bar}| {percentage}% {done}/{all} | {file}", hideCursor: true, barsize: 30 },
              cliProgress.Presets.shades_classic,
            );
            bar.start(Math.max(1, e.totalBytes), 0, { done: mb(0), all: mb(e.totalBytes), file: e.file });
          }
          bar.setTotal(Math.max(1, e.totalBytes));
          bar.update(e.bytes, { done: mb(e.bytes), all: mb(e.totalBytes), file: e.file });
          if (e.bytes >= e.totalBytes && e.files >= e.totalFiles) stopBar();
        } else if (e.file !== lastFile || e.fileBytes === e.fileTotal) {
          if (e.fileBytes === e.fileTotal && e.file !== "") process.stderr.write(`downloaded ${e.file} (${mb(e.fileTotal)}; ${mb(e.bytes)} of ${mb(e.totalBytes)})\n`);
          lastFile = e.file;
        }
      } else {
        stopBar();
        process.stderr.write(`${e.kind === "convert" ? "convert: " : ""}${e.message}\n`);
      }
    },
    close: stopBar,
  };
}
