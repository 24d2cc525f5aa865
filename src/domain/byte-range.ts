// Byte ranges of a blob, in one module: reading the ways a client asks for a part (HTTP `Range`,
// ImageService's offset and length), resolving a request against the blob's size (or refusing
// it: RangeNotSatisfiable, 416 / OUT_OF_RANGE), and the `Content-Range` headers of upload chunks
// and of an upstream's 206 answers.
import { RangeNotSatisfiable } from "./errors.js";

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * An HTTP range: `bytes=start-end` or `bytes=start-` (RFC 9110 §14.1.2; a start past the end is
 * unsatisfiable), or `bytes=-n`, the last n bytes.
 */
export type HttpRange = { start: number; end?: number } | { suffix: number };

/**
 * A part of a blob as asked for, before its size is known: an HTTP range, or ImageService's offset
 * and length (0: to the end; offset 0 of an empty blob is its empty whole).
 */
export type RangeRequest = HttpRange | { offset: number; length: number };

/**
 * The last byte position any blob can have: sizes are JavaScript numbers, at most 2^53 − 1. A
 * Range position beyond it (any number of digits is valid HTTP) is read as this one: past the
 * end of every blob, or "to the end" as a last position, which is what it means.
 */
const LAST_POSITION = Number.MAX_SAFE_INTEGER - 1;

/**
 * A single `bytes=` range. Undefined means "send everything": no Range, or one the server may
 * ignore (RFC 9110 §14.2: other units, several ranges, a last position before the first).
 */
export function parseRangeHeader(value: string | undefined): HttpRange | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") return { suffix: position(m[2]!) };
  const start = position(m[1]!);
  if (m[2] === "") return { start };
  const end = position(m[2]!);
  if (end < start) return undefined;
  return { start, end };
}

/** A Range position: its digits' value, or LAST_POSITION when that is beyond any blob. */
function position(digits: string): number {
  return Math.min(Number(digits), LAST_POSITION);
}

/**
 * The bytes `request` names in a blob of `size` bytes. Undefined when it names the whole blob and
 * was not an HTTP range (an HTTP client that sent `Range` gets a 206 even for every byte).
 * RangeNotSatisfiable when nothing of it exists; `what` names the blob in that message.
 */
export function resolveRange(request: RangeRequest, size: number, what = "a blob"): ByteRange | undefined {
  if ("offset" in request) {
    const { offset, length } = request;
    // Offset 0 of an empty blob is its (empty) whole; past the last byte there is nothing to read.
    if (offset > 0 && offset >= size) throw new RangeNotSatisfiable(`offset ${offset} is beyond the end of ${what} (${size} bytes)`, size);
    const end = length === 0 ? size : Math.min(size, offset + length);
    return offset === 0 && end === size ? undefined : { start: offset, end: end - 1 };
  }
  const unsatisfiable = () => new RangeNotSatisfiable(`range ${rangeText(request)} is not satisfiable for ${what} of ${size} bytes`, size);
  if ("suffix" in request) {
    if (request.suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - request.suffix), end: size - 1 };
  }
  if (request.start >= size) throw unsatisfiable();
  return { start: request.start, end: request.end === undefined ? size - 1 : Math.min(request.end, size - 1) };
}

/** Whether `range` is every byte of a blob of `size` bytes (undefined: the whole blob). */
export function coversWhole(range: ByteRange | undefined, size: number): boolean {
  return range === undefined || (range.start === 0 && range.end === size - 1);
}

/** Bytes in `range` of a blob of `size` bytes. */
export function rangeLength(range: ByteRange | undefined, size: number): number {
  return range === undefined ? size : range.end - range.start + 1;
}

/** `bytes start-end/size`, the Content-Range of a 206. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** The bytes of `chunk`, which starts `position` bytes into the blob, that lie inside `range`. */
export function sliceOf(chunk: Buffer, position: number, range: ByteRange): Buffer {
  const from = Math.max(range.start - position, 0);
  const to = Math.min(range.end + 1 - position, chunk.length);
  return to > from ? chunk.subarray(from, to) : chunk.subarray(0, 0);
}

/** An upload chunk's `Content-Range`: the spec's `start-end`, also RFC 9110's `bytes start-end/total`. */
export function parseChunkRange(value: string): ByteRange | undefined {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(value.trim());
  if (!m || Number(m[2]) < Number(m[1])) return undefined;
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** The `Content-Range` of a 206 answer: `bytes start-end/total`, the total possibly `*` (unknown). */
export function parsePartialContentRange(value: string | undefined): (ByteRange & { total?: number }) | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!m || Number(m[2]) < Number(m[1])) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

function rangeText(request: HttpRange): string {
  return "suffix" in request ? `bytes=-${request.suffix}` : `bytes=${request.start}-${request.end ?? ""}`;
}
