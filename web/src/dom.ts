/** Tiny DOM helpers: the page builds its few elements by hand (no framework). */

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function $<T extends Element = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`The page has no ${selector}`);
  return el;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}:${String(s % 60).padStart(2, "0")}` : `${s}s`;
}

/** "2.4 s/it" for slow steps, "3.1 it/s" for fast ones, as progress bars usually show it. */
export function formatRate(secondsPerStep: number): string {
  if (!(secondsPerStep > 0)) return "–";
  return secondsPerStep >= 1 ? `${secondsPerStep.toFixed(2)} s/it` : `${(1 / secondsPerStep).toFixed(2)} it/s`;
}
