// Run by tests/native-errors.test.ts in a child process, so that a native crash is a failed test
// with a message instead of a dead test runner. Calls EVERY native function and method with bad
// arguments (none, wrong types, NaN, a wrong `this`), then makes good calls. Prints one JSON line:
// for each entry point, "threw: <name>: <message>" / "returned" / "rejected: ...", and whether
// the good calls after all of that still worked.
import { join } from "node:path";
import { native } from "../../lib/native.ts";

const fixtureDir = process.argv[2]!;
const n = native() as unknown as Record<string, unknown> & {
  Tensor: { fromArray: (...a: unknown[]) => Record<string, unknown> };
  Module: { load: (...a: unknown[]) => Promise<Record<string, unknown>> };
  Generator: new () => Record<string, unknown>;
};

const BAD_ARGS: unknown[][] = [[], [undefined, undefined, undefined], [{}, {}, {}], ["x", "y", "z", "w"], [NaN, -1, 1.5, Symbol("s")], [[1, "a"], null, [NaN]]];
// Methods that would change or free the object a later call needs, and calls that are fine without arguments.
const results: Record<string, string[]> = {};

async function attempt(name: string, call: () => unknown): Promise<void> {
  let outcome: string;
  try {
    const r = call();
    if (r instanceof Promise) {
      try {
        await r;
        outcome = "resolved";
      } catch (e) {
        outcome = `rejected: ${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
    } else outcome = "returned";
  } catch (e) {
    outcome = `threw: ${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  (results[name] ??= []).push(outcome);
}

const freshTensor = () => n.Tensor.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2], "float32", "cpu");
const module = await n.Module.load(join(fixtureDir, "affine.pt"), "cpu", null);

// Module-level functions (testHooks excluded: a "bad" number there would arm the hook).
for (const [key, fn] of Object.entries(n)) {
  if (typeof fn !== "function" || /^[A-Z]/.test(key)) continue;
  for (const args of BAD_ARGS) await attempt(key, () => (fn as (...a: unknown[]) => unknown)(...args));
}
await attempt("testHooks.failNextMoveAfter", () => (n.testHooks as { failNextMoveAfter: (...a: unknown[]) => unknown }).failNextMoveAfter("x"));
// Static methods.
for (const [cls, statics] of [["Tensor", n.Tensor], ["Module", n.Module]] as const) {
  for (const key of Object.getOwnPropertyNames(statics)) {
    const fn = (statics as unknown as Record<string, unknown>)[key];
    if (typeof fn !== "function" || ["length", "name", "prototype"].includes(key)) continue;
    for (const args of BAD_ARGS) await attempt(`${cls}.${key}`, () => (fn as (...a: unknown[]) => unknown).apply(statics, args));
  }
}
// Constructors called from JS (handles are made by torchvid, not with new).
for (const cls of ["Tensor", "Module"] as const) {
  await attempt(`new ${cls}`, () => new (n[cls] as unknown as new (...a: unknown[]) => unknown)());
  await attempt(`new ${cls}`, () => new (n[cls] as unknown as new (...a: unknown[]) => unknown)({}, 1));
}
// Instance methods and accessors: on a live object, on a wrong `this`, on a disposed object.
const instances: [string, () => Record<string, unknown>][] = [
  ["Tensor", freshTensor],
  ["Module", () => module],
  ["Generator", () => new n.Generator()],
];
for (const [cls, make] of instances) {
  const proto = Object.getPrototypeOf(make()) as object;
  for (const key of Object.getOwnPropertyNames(proto)) {
    if (key === "constructor") continue;
    const desc = Object.getOwnPropertyDescriptor(proto, key)!;
    const name = `${cls}.prototype.${key}`;
    if (desc.get) {
      await attempt(name, () => desc.get!.call({}));
      continue;
    }
    const fn = desc.value as (...a: unknown[]) => unknown;
    if (key === "dispose") continue; // exercised below
    for (const args of BAD_ARGS) await attempt(name, () => fn.apply(cls === "Module" ? module : make(), args));
    await attempt(name, () => fn.apply({}, [1]));
    await attempt(name, () => fn.apply(freshTensor(), []));  // another class's object as `this`
  }
}
// Disposed handles: every method of a disposed tensor and module.
const disposedTensor = freshTensor();
(disposedTensor.dispose as () => void)();
const disposedModule = await n.Module.load(join(fixtureDir, "affine.pt"), "cpu", null);
(disposedModule.dispose as () => void)();
for (const [cls, obj] of [["Tensor", disposedTensor], ["Module", disposedModule]] as const) {
  const proto = Object.getPrototypeOf(obj) as object;
  for (const key of Object.getOwnPropertyNames(proto)) {
    if (key === "constructor" || key === "dispose" || key === "disposed") continue;
    const desc = Object.getOwnPropertyDescriptor(proto, key)!;
    await attempt(`disposed ${cls}.${key}`, () => (desc.get ? desc.get.call(obj) : (desc.value as (...a: unknown[]) => unknown).call(obj, freshTensor(), 1, 1)));
  }
}

// Good calls afterwards.
const x = n.Tensor.fromArray(new Float32Array([-1, -0.5, 0.5, 1, 0, 0.25, 0.75, 1]), [2, 4], "float32", "cpu");
const out = (await (module.run as (m: string, i: unknown[]) => Promise<{ toArraySync(): Float32Array }>)("forward", [x])).toArraySync();
const sum = (freshTensor().add as (o: unknown, a: number) => { toArraySync(): Float32Array })(freshTensor(), 1).toArraySync();
(n.emptyCache as () => void)();
console.log(JSON.stringify({ results, after: { forward: Array.from(out), sum: Array.from(sum) } }));
