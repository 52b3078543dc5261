/**
 * Type checks that always throw TypeError: a prompt or options object of the wrong type is a
 * TypeError whatever was passed. The message wording is validate.ts's shared one.
 */
import { invalidParameter } from "../validate.ts";

export function wrongType(name: string, expected: string, actual: unknown): TypeError {
  return invalidParameter(name, expected, actual, "type");
}

export function expectText(value: unknown, name: string): string {
  if (typeof value !== "string") throw wrongType(name, "a string", value);
  return value;
}
