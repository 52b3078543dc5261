/**
 * The studio page in a real headless Chromium (Debian's /usr/bin/chromium via puppeteer-core),
 * against `torchvid serve` on the tiny model: type a prompt, submit, watch the progress and the
 * live preview, see a <video> the browser decodes, cancel a second job, reload and find the
 * gallery. TORCHVID_STUDIO_SCREENSHOTS=DIR also writes desktop and phone screenshots there.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { buildWeb, CHROMIUM, chromiumArgs, json, serveCli, tempDir, tinyModel, waitFinal, type Served } from "./helpers/studio.ts";

const root = tempDir("torchvid-studio-browser-");
const screenshots = process.env.TORCHVID_STUDIO_SCREENSHOTS;
let served: Served;
let browser: Browser;
let page: Page;

async function setField(name: string, value: string | number): Promise<void> {
  await page.$eval(`#generate [name=${name}]`, (el, v) => {
    (el as HTMLInputElement).value = String(v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

/** Decoding state of the first <video> matching `selector`. */
function videoState(selector: string) {
  return page.$eval(selector, (v) => {
    const video = v as HTMLVideoElement;
    return { readyState: video.readyState, videoWidth: video.videoWidth, videoHeight: video.videoHeight, error: video.error?.message ?? null };
  });
}

describe("studio page in headless Chromium", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)` }, () => {
  before(async () => {
    buildWeb();
    served = await serveCli(["--out", join(root, "out"), "--model", tinyModel]);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(join(root, "profile")) });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on("pageerror", (err) => {
      throw err;
    });
    await page.goto(served.url);
    await page.waitForSelector("body[data-ready=true]");
  });
  after(async () => {
    await browser?.close();
    await served?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  let firstId = "";

  it("types a prompt, submits, shows step, s/it, ETA and the live preview, then plays the video", async () => {
    // Record what the page shows while the job runs (a tiny model runs fast; no screenshot race).
    await page.evaluate(() => {
      const seen = { progress: [] as string[], previews: [] as string[], canvas: 0 };
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver(() => seen.progress.push(document.querySelector("#progress")!.textContent ?? "")).observe(document.querySelector("#progress")!, { childList: true, characterData: true, subtree: true });
      new MutationObserver(() => {
        seen.previews.push(document.querySelector<HTMLImageElement>("#preview img")!.src);
        seen.canvas = Math.max(seen.canvas, document.querySelector<HTMLCanvasElement>("#preview canvas")!.width);
      }).observe(document.querySelector("#preview img")!, { attributes: true, attributeFilter: ["src"] });
    });
    await page.type("textarea[name=prompt]", "a red panda eating bamboo in the snow");
    await setField("width", 32);
    await setField("height", 32);
    await setField("numFrames", 4);
    await setField("numInferenceSteps", 12);
    await page.click("button[type=submit]");

    await page.waitForFunction(() => document.querySelector("#current")?.getAttribute("data-state") === "done", { timeout: 60000 });
    firstId = await page.$eval("#current", (el) => el.getAttribute("data-job")!);
    const seen = await page.evaluate(() => (window as unknown as { seen: { progress: string[]; previews: string[] } }).seen);
    const steps = seen.progress.map((t) => /step (\d+)\/12 · [\d.]+ (s\/it|it\/s) · ETA \S+/.exec(t)).filter(Boolean).map((m) => Number(m![1]));
    // Events that arrive in one network chunk render once, so not every step is seen; most are.
    assert.ok(steps.length >= 2, `progress seen: ${JSON.stringify(seen.progress)}`);
    assert.deepEqual(steps, [...steps].sort((a, b) => a - b), "steps went backwards");
    assert.ok(steps.at(-1)! <= 12 && steps.at(-1)! > steps[0]);
    assert.ok(seen.previews.length >= 1, "no preview shown");
    // The preview strip is an image the browser decodes: 4 frames of 16x16 latent pixels side by side.
    const size = await page.evaluate(async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    }, seen.previews.at(-1)!);
    assert.deepEqual(size, [64, 16]);

    await page.waitForFunction(() => {
      const v = document.querySelector<HTMLVideoElement>("#result video");
      return v !== null && v.readyState >= 2 && v.videoWidth > 0;
    }, { timeout: 30000 });
    const state = await videoState("#result video");
    assert.deepEqual([state.videoWidth, state.videoHeight, state.error], [32, 32, null]);
    assert.match(await page.$eval("#progress", (el) => el.textContent!), /^done in/);
  });

  it("cancels a second job while it runs", async () => {
    await page.$eval("textarea[name=prompt]", (el) => ((el as HTMLTextAreaElement).value = ""));
    await page.type("textarea[name=prompt]", "a very long job");
    await setField("numInferenceSteps", 400);
    await page.click("button[type=submit]");
    await page.waitForFunction((first) => {
      const cur = document.querySelector("#current");
      return cur?.getAttribute("data-job") !== first && cur?.getAttribute("data-state") === "running" && /step \d+\/400/.test(document.querySelector("#progress")?.textContent ?? "");
    }, { timeout: 30000 }, firstId);
    const id = await page.$eval("#current", (el) => el.getAttribute("data-job")!);
    assert.ok(await page.$(`#queue [data-job="${id}"]`), "the running job is not in the queue list");
    await page.click("#current-cancel");
    await page.waitForFunction(() => document.querySelector("#current")?.getAttribute("data-state") === "cancelled", { timeout: 30000 });
    const job = await waitFinal(served.origin, id);
    assert.equal(job.state, "cancelled");
    assert.ok(job.step < 400);
    await page.waitForFunction(() => document.querySelectorAll("#queue li").length === 0);
  });

  it("reload: the gallery still has the video, with its settings, downloads and actions", async () => {
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    const card = `#gallery .card[data-job="${firstId}"]`;
    await page.waitForSelector(card);
    assert.equal(await page.$$eval("#gallery .card", (cards) => cards.length), 1, "the cancelled job is in the gallery");
    const { seed } = (await json(served.origin, "GET", `/api/jobs/${firstId}`)).body.settings;
    const text = await page.$eval(card, (el) => el.textContent!);
    assert.match(text, /a red panda eating bamboo in the snow/);
    assert.match(text, new RegExp(`32×32 · 4 frames · 12 steps · cfg 9 · seed ${seed}`));
    await page.waitForFunction((sel) => {
      const v = document.querySelector<HTMLVideoElement>(`${sel} video`);
      return v !== null && v.readyState >= 2 && v.videoWidth > 0;
    }, { timeout: 30000 }, card);
    const hrefs = await page.$$eval(`${card} .downloads a`, (as) => as.map((a) => (a as HTMLAnchorElement).href));
    assert.equal(hrefs.length, 3);
    for (const href of hrefs) {
      const res = await page.evaluate(async (u) => {
        const r = await fetch(u);
        return { status: r.status, type: r.headers.get("content-type"), bytes: (await r.arrayBuffer()).byteLength };
      }, href);
      assert.equal(res.status, 200, href);
      assert.match(res.type ?? "", /^(video\/mp4|video\/webm|image\/gif)/);
      assert.ok(res.bytes > 100);
    }
    // "Use these settings" puts them back in the form, seed locked.
    await page.click(`${card} [data-use]`);
    // (No named helper functions inside evaluate(): tsx's keepNames would reference a __name the page lacks.)
    const form = await page.evaluate(() => {
      const f = document.querySelector<HTMLFormElement>("#generate")!.elements;
      return {
        prompt: (f.namedItem("prompt") as HTMLTextAreaElement).value,
        steps: (f.namedItem("numInferenceSteps") as HTMLInputElement).value,
        frames: (f.namedItem("numFrames") as HTMLInputElement).value,
        seed: (f.namedItem("seed") as HTMLInputElement).value,
        lock: (f.namedItem("lockSeed") as HTMLInputElement).checked,
      };
    });
    assert.deepEqual(form, { prompt: "a red panda eating bamboo in the snow", steps: "12", frames: "4", seed: String(seed), lock: true });
  });

  it("upscale from the gallery queues a video-to-video job at the chosen size", async () => {
    const card = `#gallery .card[data-job="${firstId}"]`;
    await page.click(`${card} [data-upscale]`);
    await page.waitForSelector("#upscale-dialog[open]");
    for (const [name, value] of [["width", 48], ["height", 48], ["numInferenceSteps", 4], ["strength", 0.5]] as const) {
      await page.$eval(`#upscale-form [name=${name}]`, (el, v) => ((el as HTMLInputElement).value = String(v)), value);
    }
    await page.click("#upscale-submit");
    await page.waitForFunction(() => document.querySelector("#gallery .card:first-child")?.textContent?.startsWith("⤢"), { timeout: 60000 });
    const id = await page.$eval("#gallery .card:first-child", (el) => el.getAttribute("data-job")!);
    const job = (await json(served.origin, "GET", `/api/jobs/${id}`)).body;
    assert.deepEqual([job.kind, job.state, job.result.width, job.result.height, job.result.numFrames], ["upscale", "done", 48, 48, 4]);
  });

  it("shows jobs queued by other clients with live positions, and a failed job's error", async () => {
    const submit = (body: object) => json(served.origin, "POST", "/api/generate", { numFrames: 2, width: 32, height: 32, ...body }).then((r) => r.body.id as string);
    const a = await submit({ prompt: "long from a script", numInferenceSteps: 400 });
    const b = await submit({ prompt: "bad model from a script", numInferenceSteps: 2, model: join(root, "no-such-model") });
    const c = await submit({ prompt: "quick from a script", numInferenceSteps: 2 });
    // The page learns of them by its poll, then follows each one's events.
    await page.waitForFunction((ids) => ids.every((id: string) => document.querySelector(`#queue li[data-job="${id}"]`)), { timeout: 15000 }, [a, b, c]);
    await page.waitForFunction((ids) => {
      const [ba, bb, bc] = ids.map((id: string) => document.querySelector(`#queue li[data-job="${id}"] .badge`)?.textContent ?? "");
      return /^\d+\/400$/.test(ba) && bb === "#1" && bc === "#2";
    }, { timeout: 15000 }, [a, b, c]);
    await page.click(`#queue [data-cancel="${a}"]`);
    await page.waitForSelector(`#gallery .card.failed[data-job="${b}"]`, { timeout: 30000 });
    assert.match(await page.$eval(`#gallery .card.failed[data-job="${b}"] .error`, (el) => el.textContent!), /no-such-model/);
    await page.waitForSelector(`#gallery .card[data-job="${c}"] video`, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll("#queue li").length === 0, { timeout: 15000 });
    assert.equal((await json(served.origin, "GET", `/api/jobs/${a}`)).body.state, "cancelled");
  });

  it("fits a phone-sized screen (no sideways scrolling)", async () => {
    await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    await page.waitForSelector("#gallery .card");
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0] <= widths[1], `page is ${widths[0]} px wide on a ${widths[1]} px screen`);
  });

  if (screenshots) {
    it(`writes screenshots to ${screenshots}`, async () => {
      mkdirSync(screenshots, { recursive: true });
      // Desktop: a job running (progress, live preview) above the queue and the gallery.
      await page.setViewport({ width: 1280, height: 860 });
      await page.reload();
      await page.waitForSelector("body[data-ready=true]");
      await page.type("textarea[name=prompt]", "a corgi running on the beach at sunset, golden hour");
      await setField("width", 64);
      await setField("height", 64);
      await setField("numFrames", 8);
      await setField("numInferenceSteps", 300);
      await page.click("button[type=submit]");
      await page.waitForFunction(() => !document.querySelector("#preview")!.hasAttribute("hidden") && /step ([3-9]|\d\d+)\//.test(document.querySelector("#progress")?.textContent ?? ""), { timeout: 60000 });
      await page.waitForFunction(() => [...document.querySelectorAll<HTMLVideoElement>("#gallery video")].every((v) => v.readyState >= 2), { timeout: 30000 });
      await page.screenshot({ path: join(screenshots, "studio-desktop.png") });
      await page.click("#current-cancel");
      await page.waitForFunction(() => document.querySelector("#current")?.getAttribute("data-state") === "cancelled", { timeout: 30000 });
      // Phone: the whole page in one tall viewport (a fullPage capture resizes it and drops the video frames).
      await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      await page.reload();
      await page.waitForSelector("body[data-ready=true]");
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.setViewport({ width: 390, height, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      // Fully loaded, so the players show a frame rather than their loading spinner.
      await page.$$eval("#gallery video", (vs) => vs.forEach((v) => ((v as HTMLVideoElement).preload = "auto")));
      await page.waitForFunction(() => [...document.querySelectorAll<HTMLVideoElement>("#gallery video")].every((v) => v.readyState >= 4), { timeout: 30000 });
      await new Promise((r) => setTimeout(r, 1000));
      await page.screenshot({ path: join(screenshots, "studio-phone.png") });
    });
  }
});
