// Big buffers lent to a blob transfer and given back when every consumer is done with them.
// A cold pull-through reads each upstream blob into 1 MiB buffers (src/upstream/bulk.ts); fresh
// ones for every megabyte live long enough (relay, cache lag, socket writes) to reach V8's old
// generation, and 512 MiB of them set off a full garbage collection every 64 MiB or so: a
// quarter of the event loop's time in a cold pull. Reused ones cost nothing.
//
// The rule that keeps this safe: a buffer is given back only by the code that knows every holder
// of it is done (src/registry/upstream-blob.ts: the client's write callback ran and the cache
// driver said the bytes are written). A buffer nobody gives back is simply collected, as any
// other; a chunk is given back at most once (its identity is checked), so a late or repeated
// give-back cannot free a buffer lent again meanwhile.

export const SLAB_BYTES = 1 << 20;
/** Buffers kept for reuse while no transfer needs them: at most this many MiB stay allocated. */
const KEEP_FREE = 32;

const free: ArrayBuffer[] = [];
/** The chunk each lent buffer went out as: only that chunk gives it back. */
const lent = new WeakMap<ArrayBufferLike, Uint8Array>();

/** A buffer of SLAB_BYTES to fill (not yet lent: see lend). */
export function takeSlab(): Buffer {
  const reused = free.pop();
  return reused ? Buffer.from(reused) : Buffer.allocUnsafeSlow(SLAB_BYTES);
}

/** Marks `chunk` (a view of a slab from takeSlab) as the one piece of its slab handed out. */
export function lend<T extends Uint8Array>(chunk: T): T {
  lent.set(chunk.buffer, chunk);
  return chunk;
}

/** Gives `chunk`'s slab back for reuse, if `chunk` is what it was lent as; otherwise does nothing. */
export function giveBack(chunk: Uint8Array): void {
  const slab = chunk.buffer;
  if (lent.get(slab) !== chunk) return;
  lent.delete(slab);
  if (free.length < KEEP_FREE && slab.byteLength === SLAB_BYTES && slab instanceof ArrayBuffer) free.push(slab);
}
