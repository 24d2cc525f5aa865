// Reading a request body (or any byte source) chunk by chunk.
import { Readable } from "node:stream";
import type { Body } from "./driver.js";

/**
 * The chunks of `body`. Leaving the loop early (a mismatch, a limit) does not destroy a Readable:
 * an HTTP edge must still be able to answer on the request's connection.
 */
export async function* chunksOf(body: Body): AsyncGenerator<Uint8Array> {
  const source: AsyncIterable<unknown> = body instanceof Readable ? body.iterator({ destroyOnReturn: false }) : body;
  for await (const chunk of source) {
    // A Readable with an encoding set yields strings; everything else must already be bytes.
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (!(bytes instanceof Uint8Array)) throw new TypeError("body chunks must be bytes");
    if (bytes.byteLength > 0) yield bytes;
  }
}

/** A byte budget: `bytes` more may be accepted, past that `error()` is thrown. */
export interface Limit {
  bytes: number;
  error: () => Error;
}
