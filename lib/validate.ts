/**
 * Argument checks shared by every public entry point. Messages follow one pattern:
 * "Expected <what> for <name> but received <value> of type <type>".
 */

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return String(value);
}

/**
 * The error for a bad argument, of the kind the caller says: "type" (a TypeError: not the kind of
 * value expected, e.g. a string for a number) or "range" (a RangeError: the right kind of value,
 * but not one that is allowed, e.g. 16.5 for an integer or "np" for one of "uint8", "float").
 */
export function invalidParameter(name: string, expected: string, actual: unknown, kind: "type"): TypeError;
export function invalidParameter(name: string, expected: string, actual: unknown, kind: "range"): RangeError;
export function invalidParameter(name: string, expected: string, actual: unknown, kind: "type" | "range"): TypeError | RangeError;
export function invalidParameter(name: string, expected: string, actual: unknown, kind: "type" | "range"): TypeError | RangeError {
  const message = `Expected ${expected} for ${name} but received ${describe(actual)} of type ${typeof actual}`;
  return kind === "range" ? new RangeError(message) : new TypeError(message);
}

export interface NumberBounds {
  min?: number;
  max?: number;
}

/**
 * A finite number (in bounds). Infinity is refused like NaN: no torchvid option means anything at
 * infinity, and letting one through turns every frame into NaN (guidanceScale) or fails deep in
 * the math with a message about something else.
 */
export function expectNumber(value: unknown, name: string, bounds: NumberBounds = {}): number {
  if (typeof value !== "number" || Number.isNaN(value)) throw invalidParameter(name, "a number", value, typeof value === "number" ? "range" : "type");
  if (!Number.isFinite(value)) throw new RangeError(`Expected a finite number for ${name} but received ${value}`);
  checkBounds(value, name, bounds, "a number");
  return value;
}

export function expectInt(value: unknown, name: string, bounds: NumberBounds = {}): number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw invalidParameter(name, "an integer", value, typeof value === "number" ? "range" : "type");
  checkBounds(value, name, bounds, "an integer");
  return value;
}

function checkBounds(value: number, name: string, { min, max }: NumberBounds, what: string): void {
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    const range = min !== undefined && max !== undefined ? `between ${min} and ${max}` : min !== undefined ? `>= ${min}` : `<= ${max}`;
    throw new RangeError(`Expected ${what} ${range} for ${name} but received ${value}`);
  }
}

export function expectIntArray(value: unknown, name: string, bounds: NumberBounds = {}): number[] {
  if (!Array.isArray(value)) throw invalidParameter(name, "an array of integers", value, "type");
  return value.map((v, i) => expectInt(v, `${name}[${i}]`, bounds));
}

export function expectString(value: unknown, name: string): string {
  if (typeof value !== "string") throw invalidParameter(name, "a string", value, "type");
  return value;
}

export function expectBoolean(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") throw invalidParameter(name, "a boolean", value, "type");
  return value;
}

export function expectOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw invalidParameter(name, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, value, typeof value === "string" ? "range" : "type");
  }
  return value as T;
}
