/**
 * "Unknown argument: stpes" -> "Unknown argument: stpes (did you mean --steps?)": the closest
 * flag the command knows, by edit distance, when it is close enough to be a typo.
 */

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The known flag closest to `typed` (without dashes), or undefined when none is plausibly meant. */
export function closestFlag(typed: string, known: readonly string[]): string | undefined {
  const t = typed.replace(/^-+/, "").toLowerCase();
  let best: { flag: string; d: number } | undefined;
  for (const flag of known) {
    if (flag.length < 2) continue;
    const d = editDistance(t, flag.toLowerCase());
    if (!best || d < best.d) best = { flag, d };
  }
  // One edit for short flags, two for longer ones; more is a different word.
  return best && best.d <= (t.length <= 4 ? 1 : 2) ? best.flag : undefined;
}

/** Adds "did you mean --x?" to yargs' "Unknown argument(s): a, b" message. */
export function withFlagSuggestions(message: string, known: readonly string[]): string {
  const m = /^Unknown arguments?: (.+)$/.exec(message.trim());
  if (!m) return message;
  const hints = m[1]!
    .split(", ")
    .map((u) => [u, closestFlag(u, known)] as const)
    .filter(([, s]) => s !== undefined)
    .map(([u, s]) => `${u}: did you mean --${s}?`);
  return hints.length ? `${message} (${hints.join("; ")})` : message;
}
