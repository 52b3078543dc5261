/**
 * Type checks that always throw TypeError. validate.ts's `invalidParameter` reports a number as
 * a RangeError (its convention for out-of-range numbers); a prompt or options object of the
 * wrong type is a TypeError whatever was passed. The message wording stays the shared one.
 */
import { invalidParameter } from "../validate.ts";

export function wrongType(name: string, expected: string, actual: unknown): TypeError {
  return new TypeError(invalidParameter(name, expected, actual).message);
}

export function expectText(value: unknown, name: string): string {
  if (typeof value !== "string") throw wrongType(name, "a string", value);
  return value;
}
