/**
 * torchvid studio page: the form queues jobs, the "now" panel follows the running job (step,
 * s/it, ETA, live latent preview, then the video), the queue lists waiting jobs with cancel
 * buttons, and the gallery shows every finished video with its settings, "use these settings",
 * "upscale" and downloads. State comes from the API; each unfinished job's event stream keeps
 * it live, and a slow poll picks up jobs other clients queue.
 */
import { api, FINAL, followJob, initToken, type Config, type Job, type PreviewData, type Settings, type StepData } from "./api.js";
import { $, formatDuration, formatRate, h } from "./dom.js";
import { PreviewPlayer } from "./preview-strip.js";

const jobs = new Map<string, Job>();
const following = new Map<string, AbortController>();
const galleryCards = new Map<string, HTMLElement>();
let config: Config | null = null;
/** The job the "now" panel shows: the running one, else the last one queued from this page. */
let currentId: string | null = null;
let lastSubmitted: string | null = null;
let shownResult: string | null = null;

const form = $<HTMLFormElement>("#generate");
const field = <T extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(name: string, root: HTMLFormElement = form) => root.elements.namedItem(name) as T;
const preview = new PreviewPlayer($<HTMLCanvasElement>("#preview canvas"));

// ---- the form -------------------------------------------------------------------------------

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

function numberOf(name: string, root: HTMLFormElement = form): number | undefined {
  const v = field<HTMLInputElement>(name, root).value.trim();
  return v === "" ? undefined : Number(v);
}

function applyPreset(name: string): void {
  const preset = config?.presets.find((p) => p.name === name);
  if (!preset || preset.kind !== "generate") return;
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale"] as const) {
    const v = preset[key];
    if (v !== undefined) field<HTMLInputElement>(key).value = String(v);
  }
}

function useSettings(s: Settings): void {
  field<HTMLTextAreaElement>("prompt").value = s.prompt ?? "";
  field<HTMLTextAreaElement>("negativePrompt").value = s.negativePrompt ?? "";
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale", "fps", "seed"] as const) {
    const v = s[key];
    if (v !== undefined) field<HTMLInputElement>(key).value = String(v);
  }
  field<HTMLSelectElement>("scheduler").value = s.scheduler ?? "";
  field<HTMLInputElement>("model").value = s.model ?? "";
  field<HTMLSelectElement>("preset").value = "";
  field<HTMLInputElement>("lockSeed").checked = true;
  field<HTMLTextAreaElement>("prompt").focus();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function showError(el: HTMLElement, message: string | null): void {
  el.textContent = message ?? "";
  el.hidden = message === null;
}

async function submit(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const error = $("#form-error");
  showError(error, null);
  if (!field<HTMLInputElement>("lockSeed").checked || field<HTMLInputElement>("seed").value.trim() === "") {
    field<HTMLInputElement>("seed").value = String(randomSeed());
  }
  const body: Record<string, unknown> = { prompt: field<HTMLTextAreaElement>("prompt").value };
  const negative = field<HTMLTextAreaElement>("negativePrompt").value;
  if (negative.trim()) body.negativePrompt = negative;
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale", "fps", "seed"]) {
    const v = numberOf(key);
    if (v !== undefined) body[key] = v;
  }
  const scheduler = field<HTMLSelectElement>("scheduler").value;
  if (scheduler) body.scheduler = scheduler;
  const model = field<HTMLInputElement>("model").value.trim();
  if (model) body.model = model;
  const button = $<HTMLButtonElement>("button[type=submit]", form);
  button.disabled = true;
  try {
    const { id } = await api<{ id: string }>("POST", "/api/generate", body);
    lastSubmitted = id;
    await track(id);
  } catch (err) {
    showError(error, (err as Error).message);
  } finally {
    button.disabled = false;
  }
}

// ---- jobs -----------------------------------------------------------------------------------

async function track(id: string): Promise<void> {
  const job = await api<Job>("GET", `/api/jobs/${id}`);
  upsert(job);
}

function upsert(job: Job): void {
  jobs.set(job.id, { ...jobs.get(job.id), ...job });
  if (!FINAL.includes(job.state) && !following.has(job.id)) follow(job.id);
  render();
}

function follow(id: string): void {
  const controller = new AbortController();
  following.set(id, controller);
  void followJob(
    id,
    (event, data) => {
      const job = jobs.get(id);
      if (!job) return;
      if (event === "state") upsert(data as Job);
      else if (event === "position") {
        job.position = (data as { position: number }).position;
        render();
      } else if (event === "step") {
        const s = data as StepData;
        Object.assign(job, { step: s.step, numSteps: s.numSteps, state: "running" });
        if (currentId === id) showProgress(job, s);
        renderQueue();
      } else if (event === "preview" && currentId === id) {
        const p = data as PreviewData;
        $("#preview").hidden = false;
        preview.show(p.image, p.frames, p.width, p.height, job.settings.fps);
        $<HTMLImageElement>("#preview img").src = p.image;
      }
    },
    controller.signal,
  ).finally(() => following.delete(id));
}

async function cancel(id: string): Promise<void> {
  try {
    const job = await api<Job>("DELETE", `/api/jobs/${id}`);
    upsert(job);
  } catch (err) {
    showError($("#current-error"), (err as Error).message);
  }
}

async function refresh(): Promise<void> {
  try {
    const { jobs: list } = await api<{ jobs: Job[] }>("GET", "/api/jobs");
    for (const job of list) {
      const known = jobs.get(job.id);
      // A live stream knows better than a poll that may be a moment old.
      if (known && following.has(job.id) && known.state === "running" && job.state === "running") continue;
      jobs.set(job.id, { ...known, ...job });
      if (!FINAL.includes(job.state) && !following.has(job.id)) follow(job.id);
    }
    render();
  } catch {
    // The server may be restarting: the next poll tries again.
  }
}

// ---- rendering ------------------------------------------------------------------------------

function describe(s: Settings, job?: Job): string {
  const size = job?.result ? `${job.result.width}×${job.result.height}` : `${s.width ?? "?"}×${s.height ?? "?"}`;
  const frames = job?.result?.numFrames ?? s.numFrames;
  return [size, frames !== undefined ? `${frames} frames` : null, `${s.numInferenceSteps ?? 50} steps`, s.scheduler ?? null, `cfg ${s.guidanceScale ?? 9}`, `seed ${s.seed}`, s.strength !== undefined ? `strength ${s.strength}` : null]
    .filter(Boolean)
    .join(" · ");
}

function showProgress(job: Job, s?: StepData): void {
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
  const nextId = running?.id ?? lastSubmitted ?? currentId;
  if (nextId !== currentId) {
    currentId = nextId;
    preview.clear();
    $("#preview").hidden = true;
  }
  const panel = $("#current");
  const job = currentId ? jobs.get(currentId) : undefined;
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
function renderQueue(): void {
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

function render(): void {
  renderCurrent();
  renderQueue();
  renderGallery();
}

// ---- upscale --------------------------------------------------------------------------------

function openUpscale(id: string): void {
  const job = jobs.get(id);
  if (!job) return;
  const dialog = $<HTMLDialogElement>("#upscale-dialog");
  const f = $<HTMLFormElement>("#upscale-form");
  dialog.dataset.job = id;
  field<HTMLTextAreaElement>("prompt", f).value = job.settings.prompt ?? "";
  showError($("#upscale-error"), null);
  dialog.showModal();
}

async function submitUpscale(event: SubmitEvent): Promise<void> {
  if ((event.submitter as HTMLButtonElement | null)?.value !== "ok") return;
  event.preventDefault();
  const dialog = $<HTMLDialogElement>("#upscale-dialog");
  const f = $<HTMLFormElement>("#upscale-form");
  const body: Record<string, unknown> = { video: dialog.dataset.job, prompt: field<HTMLTextAreaElement>("prompt", f).value };
  for (const key of ["width", "height", "strength", "numInferenceSteps"]) {
    const v = numberOf(key, f);
    if (v !== undefined) body[key] = v;
  }
  const model = field<HTMLInputElement>("model", f).value.trim() || jobs.get(dialog.dataset.job ?? "")?.settings.model;
  if (model) body.model = model;
  try {
    const { id } = await api<{ id: string }>("POST", "/api/upscale", body);
    lastSubmitted = id;
    dialog.close();
    await track(id);
  } catch (err) {
    showError($("#upscale-error"), (err as Error).message);
  }
}

// ---- start ----------------------------------------------------------------------------------

async function start(): Promise<void> {
  initToken();
  form.addEventListener("submit", (e) => void submit(e));
  $("#randomize").addEventListener("click", () => {
    field<HTMLInputElement>("seed").value = String(randomSeed());
    field<HTMLInputElement>("lockSeed").checked = true;
  });
  field<HTMLInputElement>("seed").addEventListener("input", () => (field<HTMLInputElement>("lockSeed").checked = true));
  field<HTMLSelectElement>("preset").addEventListener("change", (e) => applyPreset((e.target as HTMLSelectElement).value));
  $("#current-cancel").addEventListener("click", () => currentId && void cancel(currentId));
  $<HTMLFormElement>("#upscale-form").addEventListener("submit", (e) => void submitUpscale(e));
  document.addEventListener("click", (e) => {
    const target = (e.target as HTMLElement).closest<HTMLElement>("[data-cancel],[data-use],[data-upscale]");
    if (!target) return;
    if (target.dataset.cancel) void cancel(target.dataset.cancel);
    else if (target.dataset.use) useSettings(jobs.get(target.dataset.use)!.settings);
    else if (target.dataset.upscale) openUpscale(target.dataset.upscale);
  });

  try {
    config = await api<Config>("GET", "/api/config");
  } catch (err) {
    showError($("#form-error"), (err as Error).message);
    return;
  }
  $("#model").textContent = `model: ${config.model.split("/").slice(-2).join("/")}`;
  const scheduler = field<HTMLSelectElement>("scheduler");
  for (const name of config.schedulers) scheduler.append(h("option", { value: name }, name));
  const presets = field<HTMLSelectElement>("preset");
  presets.append(h("option", { value: "" }, "custom"));
  for (const p of config.presets.filter((p) => p.kind === "generate")) presets.append(h("option", { value: p.name }, p.name));
  // The form's starting values are the first preset's (ModelScope 256²).
  const first = config.presets.find((p) => p.kind === "generate");
  if (first) {
    presets.value = first.name;
    applyPreset(first.name);
  }
  for (const name of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale"]) {
    field<HTMLInputElement>(name).addEventListener("input", () => (presets.value = ""));
  }
  const xl = config.presets.find((p) => p.kind === "upscale");
  if (xl) {
    const f = $<HTMLFormElement>("#upscale-form");
    for (const key of ["width", "height", "strength", "numInferenceSteps"] as const) {
      const v = xl[key];
      if (v !== undefined) field<HTMLInputElement>(key, f).value = String(v);
    }
  }
  field<HTMLInputElement>("seed").value = String(randomSeed());
  await refresh();
  document.body.dataset.ready = "true";
  window.setInterval(() => void refresh(), 4000);
}

void start();
