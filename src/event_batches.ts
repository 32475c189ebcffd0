/** Registers a listener for events and returns what unregisters it. */
export type Subscribe<E> = (listener: (event: E) => void) => () => void;

/**
 * The events of a subscription as an async iterable of batches: each batch holds every event that arrived
 * since the consumer last asked (never empty), so a slow consumer sees fewer, larger batches instead of
 * falling behind. It subscribes at once, so nothing that happens between this call and the first `next` is
 * missed; it ends when `signal` aborts, and unsubscribes when it ends or the consumer stops (`return`, which
 * `for await` calls on `break`).
 *
 * @example
 * ```ts
 * import { eventBatches } from "./event_batches.ts";
 * const listeners = new Set<(n: number) => void>();
 * const controller = new AbortController();
 * const batches = eventBatches<number>((l) => (listeners.add(l), () => listeners.delete(l)), controller.signal);
 * for (const l of listeners) l(1), l(2);
 * console.assert(JSON.stringify((await batches.next()).value) === "[1,2]");
 * controller.abort();
 * console.assert((await batches.next()).done && listeners.size === 0);
 * ```
 */
export function eventBatches<E>(subscribe: Subscribe<E>, signal?: AbortSignal): AsyncIterableIterator<E[]> {
  const pending: E[] = [];
  let wake = () => {};
  let ended = false;
  const unsubscribe = subscribe((event) => {
    pending.push(event);
    wake();
  });
  const end = (): IteratorResult<E[]> => {
    if (!ended) {
      ended = true;
      signal?.removeEventListener("abort", onAbort);
      unsubscribe();
    }
    wake();
    return { done: true, value: undefined };
  };
  const onAbort = () => end();
  signal?.addEventListener("abort", onAbort);
  if (signal?.aborted) end();
  return {
    async next() {
      while (!ended && pending.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return ended ? end() : { done: false, value: pending.splice(0) };
    },
    return: () => Promise.resolve(end()),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
