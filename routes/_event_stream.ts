import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

/** Milliseconds between SSE comments that keep an idle connection open. */
const HEARTBEAT_MS = 15_000;

/** One server-sent event: its name and its JSON data. */
export interface OutgoingEvent {
  event: string;
  data: unknown;
}

/**
 * Writes an async iterable of events out as a server-sent event stream (`id` counting up from 0), with a
 * comment line every 15 s while the source is quiet, so an idle connection stays open. The stream ends when
 * the source does; when the client goes, `signal` aborts and the source is closed (`return`).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { streamEvents } from "./_event_stream.ts";
 * const app = new Hono().get("/", (c) =>
 *   streamEvents(c, async function* () {
 *     yield { event: "hello", data: { n: 1 } };
 *   }));
 * console.assert((await (await app.request("/")).text()).includes("event: hello"));
 * ```
 */
export function streamEvents(
  c: Context,
  source: (signal: AbortSignal) => AsyncIterable<OutgoingEvent>,
): Response {
  return streamSSE(c, async (stream) => {
    const controller = new AbortController();
    stream.onAbort(() => controller.abort());
    const events = source(controller.signal)[Symbol.asyncIterator]();
    let seq = 0;
    try {
      let next = events.next();
      while (!stream.aborted) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const quiet = new Promise<"quiet">((
          resolve,
        ) => (timer = setTimeout(() => resolve("quiet"), HEARTBEAT_MS)));
        const result = await Promise.race([next, quiet]);
        clearTimeout(timer);
        if (result === "quiet") {
          if (!stream.aborted) await stream.write(": keep-alive\n\n");
          continue;
        }
        if (result.done) return;
        const { event, data } = result.value;
        await stream.writeSSE({ event, data: JSON.stringify(data), id: String(seq++) });
        next = events.next();
      }
    } finally {
      controller.abort();
      await events.return?.();
    }
  });
}
