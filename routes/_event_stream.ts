import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

/** Milliseconds between SSE comments that keep an idle connection open. */
const HEARTBEAT_MS = 15_000;

/** Writes one server-sent event; its `id` counts up from 0 per stream. */
export type SendEvent = (event: string, data: unknown) => Promise<void>;

/** Where a stream's events come from, and what it writes of them. */
export interface EventFeed<E> {
  /** Registers a listener for new events; returns what unregisters it. */
  subscribe(listener: (event: E) => void): () => void;
  /** Writes what the client sees first (after subscribing, so nothing is missed); `true` ends the stream. */
  start(send: SendEvent): Promise<boolean>;
  /** Writes the events that arrived since the last write; `true` ends the stream. */
  flush(events: E[], send: SendEvent): Promise<boolean>;
}

/**
 * A server-sent event stream over a feed of events: events that arrive while a write is in progress are
 * batched into the next `flush`, a comment line every 15 s keeps an idle connection open, and the listener is
 * removed when the stream ends or the client goes.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { streamEvents } from "./_event_stream.ts";
 * const app = new Hono().get("/", (c) =>
 *   streamEvents(c, {
 *     subscribe: () => () => {},
 *     start: async (send) => (await send("hello", { n: 1 }), true),
 *     flush: () => Promise.resolve(true),
 *   }));
 * console.assert((await (await app.request("/")).text()).includes("event: hello"));
 * ```
 */
export function streamEvents<E>(c: Context, feed: EventFeed<E>): Response {
  return streamSSE(c, async (stream) => {
    const pending: E[] = [];
    let wake = () => {};
    const unsubscribe = feed.subscribe((event) => {
      pending.push(event);
      wake();
    });
    stream.onAbort(() => wake());
    let seq = 0;
    const send: SendEvent = (event, data) =>
      stream.writeSSE({ event, data: JSON.stringify(data), id: String(seq++) });
    try {
      if (await feed.start(send)) return;
      while (!stream.aborted) {
        if (pending.length === 0) {
          const woke = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), HEARTBEAT_MS);
            wake = () => {
              clearTimeout(timer);
              resolve(true);
            };
          });
          if (!woke && !stream.aborted) await stream.write(": keep-alive\n\n");
          continue;
        }
        if (await feed.flush(pending.splice(0), send)) return;
      }
    } finally {
      unsubscribe();
    }
  });
}
