/** Numeric comparison helpers for tests: messages show where and by how much values differ. */
import assert from "node:assert/strict";

export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `length ${actual.length} != expected ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what = "values"): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tolerance, `${what}: max abs difference ${d} exceeds ${tolerance}`);
}

/** |a - e| <= atol + rtol * |e| element-wise. */
export function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol = 0, what = "values"): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const bound = atol + rtol * Math.abs(expected[i]);
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= bound, `${what}[${i}]: ${actual[i]} vs expected ${expected[i]} (diff ${d} > ${bound})`);
  }
}
