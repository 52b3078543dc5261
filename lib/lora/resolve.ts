/**
 * Finds the real parameter a LoRA module name points at. Kohya names replaced every dot with an
 * underscore, and module names contain underscores themselves (transformer_blocks, proj_in,
 * to_out_0), so they cannot be turned back by rule: they are looked up in the underscored
 * spelling of the model's own parameter names instead.
 */
import type { LoraComponent } from "./types.ts";

export class ParameterIndex {
  readonly component: LoraComponent;
  /** Modules that own a `.weight` (the only parameters a LoRA changes). */
  readonly #modules = new Set<string>();
  /** Underscored spelling -> dotted module names (more than one only if two names collide). */
  readonly #underscored = new Map<string, string[]>();
  readonly size: number;

  constructor(component: LoraComponent, parameterNames: readonly string[]) {
    this.component = component;
    for (const name of parameterNames) {
      if (!name.endsWith(".weight")) continue;
      const module = name.slice(0, -".weight".length);
      this.#modules.add(module);
      const key = module.replaceAll(".", "_");
      const list = this.#underscored.get(key);
      if (list) list.push(module);
      else this.#underscored.set(key, [module]);
    }
    this.size = parameterNames.length;
  }

  /** The dotted module for `module` (dotted candidates, or one kohya underscored name). */
  resolve(candidates: readonly string[], underscored: string | undefined): ResolveResult {
    if (underscored !== undefined) {
      const matches = this.#underscored.get(underscored) ?? [];
      if (matches.length > 1) return { ambiguous: matches };
      return matches.length === 1 ? { module: matches[0] } : {};
    }
    const module = candidates.find((c) => this.#modules.has(c));
    return module === undefined ? {} : { module };
  }
}

export interface ResolveResult {
  module?: string;
  /** Set when an underscored name fits several modules. */
  ambiguous?: string[];
}
