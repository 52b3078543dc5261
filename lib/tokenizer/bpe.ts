/**
 * Byte-pair encoding of one pre-tokenised word, as CLIP does it: the word's last symbol carries
 * the end-of-word marker `</w>`, then the lowest-ranked adjacent pair is merged everywhere, over
 * and over, until no adjacent pair has a rank.
 */

/** Marks the last symbol of a word; CLIP's vocab has both "a" and "a</w>". */
export const END_OF_WORD = "</w>";

export class BytePairEncoder {
  readonly #ranks: Map<string, number>;

  /** @param merges merge rules in priority order, each a pair of symbols. */
  constructor(merges: readonly (readonly [string, string])[]) {
    this.#ranks = new Map();
    // A space cannot occur inside a symbol (merges.txt is space-separated), so it is a safe
    // joiner. A repeated merge keeps its last rank, as Python's dict(zip(merges, range(n))) does.
    merges.forEach(([a, b], rank) => this.#ranks.set(`${a} ${b}`, rank));
  }

  get size(): number {
    return this.#ranks.size;
  }

  /** Splits a byte-alphabet word into BPE symbols, the last one ending in `</w>`. */
  encode(word: string): string[] {
    if (word.length === 0) return [];
    // Byte-alphabet characters are all in the BMP, so code units are characters here.
    let symbols: string[] = Array.from(word.slice(0, -1));
    symbols.push(word[word.length - 1] + END_OF_WORD);
    while (symbols.length > 1) {
      let best = Infinity;
      let first = "";
      let second = "";
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = this.#ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < best) {
          best = rank;
          first = symbols[i];
          second = symbols[i + 1];
        }
      }
      if (best === Infinity) break;
      // Merge every non-overlapping occurrence, scanning left to right like the Python loop.
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === first && symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols = merged;
    }
    return symbols;
  }
}
