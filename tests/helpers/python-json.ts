/** JSON written by Python's json module may hold Infinity / -Infinity / NaN, which JSON.parse rejects. */
export function parsePythonJson(text: string): unknown {
  // 1e999 parses to Infinity; only bare tokens outside strings are replaced.
  return JSON.parse(text.replace(/(?<=[:,\[]\s*)(-?)Infinity\b/g, "$11e999").replace(/(?<=[:,\[]\s*)NaN\b/g, "null"));
}
