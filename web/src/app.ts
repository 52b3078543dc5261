/**
 * torchvid studio page: the form queues jobs, the "now" panel follows the running job (step,
 * s/it, ETA, live latent preview, then the video), the queue lists waiting jobs with cancel
 * buttons, and the gallery shows every finished video with its settings, "use these settings",
 * "upscale" and downloads. State comes from the API; each unfinished job's event stream keeps
 * it live, and a slow poll picks up jobs other clients queue. This file wires it together.
 */
import { api, FINAL, followJob, initToken, type Config, type Job, type PreviewData, type StepData } from "./api.js";
import { $, h } from "./dom.js";
import { applyPreset, field, form, generateBody, numberOf, randomSeed, showError, useSettings } from "./form.js";
import { following, jobs, view } from "./state.js";
import { render, renderQueue, showPreview, showProgress } from "./views.js";

let config: Config | null = null;

async function submit(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const error = $("#form-error");
  showError(error, null);
  const body = generateBody();
  const button = $<HTMLButtonElement>("button[type=submit]", form);
  button.disabled = true;
  try {
    const { id } = await api<{ id: string }>("POST", "/api/generate", body);
    view.lastSubmitted = id;
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
        if (view.currentId === id) showProgress(job, s);
        renderQueue();
      } else if (event === "preview") showPreview(job, data as PreviewData);
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
    view.lastSubmitted = id;
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
  field<HTMLSelectElement>("preset").addEventListener("change", (e) => applyPreset(config?.presets ?? [], (e.target as HTMLSelectElement).value));
  $("#current-cancel").addEventListener("click", () => view.currentId && void cancel(view.currentId));
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
    applyPreset(config.presets, first.name);
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
