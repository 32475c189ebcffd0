/**
 * Runs async sections one at a time per key, in call order: writes to one dataset or one job record never
 * interleave, while different keys proceed in parallel.
 *
 * @example
 * ```ts
 * import { KeyedLock } from "./keyed_lock.ts";
 * const lock = new KeyedLock();
 * const order: number[] = [];
 * await Promise.all([
 *   lock.run("a", async () => { await new Promise((r) => setTimeout(r, 5)); order.push(1); }),
 *   lock.run("a", () => { order.push(2); return Promise.resolve(); }),
 * ]);
 * console.assert(order.join() === "1,2");
 * ```
 */
export class KeyedLock {
  #tails = new Map<string, Promise<unknown>>();

  /** Runs `section` after every earlier section of `key` has settled; resolves to its result. */
  run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.catch(() => {}).then(section);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
