/**
 * Rendering: the "now" panel (progress, preview, result), the queue and the gallery, from the
 * jobs in state.ts. Queue items and gallery cards are keyed by job id and kept, so a click never
 * lands on a replaced button and a loaded video is never reloaded.
 */
import { FINAL, type Job, type PreviewData, type Settings, type StepData } from "./api.js";
import { $, formatDuration, formatRate, h } from "./dom.js";
import { showError } from "./form.js";
import { PreviewPlayer } from "./preview-strip.js";
import { jobs, view } from "./state.js";

const preview = new PreviewPlayer($<HTMLCanvasElement>("#preview canvas"));
const galleryCards = new Map<string, HTMLElement>();
let shownResult: string | null = null;

/** Shows a step's preview strip when the job is the one in the "now" panel. */
export function showPreview(job: Job, p: PreviewData): void {
  if (view.currentId !== job.id) return;
  $("#preview").hidden = false;
  preview.show(p.image, p.frames, p.width, p.height, job.settings.fps);
  $<HTMLImageElement>("#preview img").src = p.image;
}

function describe(s: Settings, job?: Job): string {
  const size = job?.result ? `${job.result.width}×${job.result.height}` : `${s.width ?? "?"}×${s.height ?? "?"}`;
  const frames = job?.result?.numFrames ?? s.numFrames;
  return [size, frames !== undefined ? `${frames} frames` : null, `${s.numInferenceSteps ?? 50} steps`, s.scheduler ?? null, `cfg ${s.guidanceScale ?? 9}`, `seed ${s.seed}`, s.strength !== undefined ? `strength ${s.strength}` : null]
    .filter(Boolean)
    .join(" · ");
}

export function showProgress(job: Job, s?: StepData): void {
  const bar = $<HTMLProgressElement>("#progress-bar");
  const text = $("#progress");
  if (job.state === "queued") {
    bar.removeAttribute("value");
    text.textContent = job.position !== null ? `queued · position ${job.position}` : "queued";
    return;
  }
  if (job.state === "running" && job.step === 0) {
    bar.removeAttribute("value");
    text.textContent = "starting…";
    return;
  }
  bar.max = job.numSteps;
  bar.value = job.step;
  text.textContent = s
    ? `step ${s.step}/${s.numSteps} · ${formatRate(s.secondsPerStep)} · ETA ${formatDuration(s.etaSeconds)}`
    : `step ${job.step}/${job.numSteps}`;
}

function renderCurrent(): void {
  const running = [...jobs.values()].find((j) => j.state === "running");
  const nextId = running?.id ?? view.lastSubmitted ?? view.currentId;
  if (nextId !== view.currentId) {
    view.currentId = nextId;
    preview.clear();
    $("#preview").hidden = true;
  }
  const panel = $("#current");
  const job = view.currentId ? jobs.get(view.currentId) : undefined;
  panel.hidden = !job;
  if (!job) return;
  panel.dataset.state = job.state;
  panel.dataset.job = job.id;
  $("#current-title").textContent = job.kind === "upscale" ? `Upscale · ${job.state}` : `Now · ${job.state}`;
  $("#current-prompt").textContent = job.settings.prompt ?? "";
  $("#current-cancel").hidden = FINAL.includes(job.state);
  showError($("#current-error"), job.state === "failed" ? job.error : null);
  if (job.state === "done" && job.video) {
    $("#progress-bar").setAttribute("value", "1");
    ($("#progress-bar") as HTMLProgressElement).max = 1;
    $("#progress").textContent = job.result ? `done in ${formatDuration(job.result.seconds)}` : "done";
    if (shownResult !== job.id) {
      shownResult = job.id;
      const video = $<HTMLVideoElement>("#result video");
      video.src = job.video;
      $("#result").hidden = false;
      preview.clear();
      $("#preview").hidden = true;
    }
  } else {
    if (shownResult !== null && shownResult !== job.id) {
      $("#result").hidden = true;
      shownResult = null;
    }
    if (FINAL.includes(job.state)) $("#progress").textContent = job.state;
    else showProgress(job);
  }
}

const queueItems = new Map<string, HTMLElement>();

/** Keyed: an item stays the same element while its job waits or runs, so a click on Cancel never lands on a replaced button. */
export function renderQueue(): void {
  const active = [...jobs.values()].filter((j) => !FINAL.includes(j.state)).sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9));
  const list = $("#queue");
  const items = active.map((j) => {
    let item = queueItems.get(j.id);
    if (!item) {
      item = h(
        "li",
        { class: "queue-item", "data-job": j.id },
        h("span", { class: "badge" }),
        h("span", { class: "queue-prompt" }, `${j.kind === "upscale" ? "⤢ " : ""}${j.settings.prompt ?? ""}`),
        h("button", { type: "button", class: "ghost small", "data-cancel": j.id }, "Cancel"),
      );
      queueItems.set(j.id, item);
    }
    item.className = `queue-item ${j.state}`;
    $(".badge", item).textContent = j.state === "running" ? `${j.step}/${j.numSteps}` : `#${j.position ?? "?"}`;
    return item;
  });
  for (const id of queueItems.keys()) if (!active.some((j) => j.id === id)) queueItems.delete(id);
  const same = items.length === list.children.length && items.every((el, i) => list.children[i] === el);
  if (!same) list.replaceChildren(...items);
  $("#queue-count").textContent = String(active.length);
  $("#queue-empty").hidden = active.length > 0;
}

function galleryCard(job: Job): HTMLElement {
  const s = job.settings;
  const base = job.video!.replace(/\.mp4$/, "");
  const downloads = ["mp4", "webm", "gif"].map((ext) => h("a", { href: `${base}.${ext}?download=1`, download: `${job.id}.${ext}`, class: "chip" }, ext));
  const video = h("video", { src: job.video!, controls: true, loop: true, muted: true, playsinline: true, preload: "metadata" });
  (video as HTMLVideoElement).muted = true;
  return h(
    "article",
    { class: "card", "data-job": job.id },
    video,
    h("p", { class: "card-prompt", title: s.prompt ?? "" }, `${job.kind === "upscale" ? "⤢ " : ""}${s.prompt ?? ""}`),
    h("p", { class: "card-meta" }, describe(s, job)),
    h(
      "div",
      { class: "card-actions" },
      h("button", { type: "button", class: "ghost small", "data-use": job.id }, "Use these settings"),
      h("button", { type: "button", class: "ghost small", "data-upscale": job.id }, "Upscale"),
      h("span", { class: "downloads" }, ...downloads),
    ),
  );
}

function failedCard(job: Job): HTMLElement {
  return h(
    "article",
    { class: "card failed", "data-job": job.id },
    h("p", { class: "card-prompt" }, job.settings.prompt ?? ""),
    h("p", { class: "error" }, job.error ?? "failed"),
    h("p", { class: "card-meta" }, describe(job.settings)),
    h("div", { class: "card-actions" }, h("button", { type: "button", class: "ghost small", "data-use": job.id }, "Use these settings")),
  );
}

function renderGallery(): void {
  const shown = [...jobs.values()].filter((j) => (j.state === "done" && j.video) || j.state === "failed").sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const gallery = $("#gallery");
  // Cards of finished jobs never change: keep the elements (and their loaded videos) across renders.
  const cards = shown.map((j) => {
    let card = galleryCards.get(j.id);
    if (!card) galleryCards.set(j.id, (card = j.state === "done" ? galleryCard(j) : failedCard(j)));
    return card;
  });
  const same = cards.length === gallery.children.length && cards.every((c, i) => gallery.children[i] === c);
  if (!same) gallery.replaceChildren(...cards);
  $("#gallery-empty").hidden = cards.length > 0;
}

export function render(): void {
  renderCurrent();
  renderQueue();
  renderGallery();
}

