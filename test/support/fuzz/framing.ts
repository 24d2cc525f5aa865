// What every fuzzed request may carry whatever its protocol: deadlines in both spellings (valid,
// zero, tiny, huge, malformed), random and malformed headers and content types, and bodies cut
// short or spliced with garbage.
import fc from "fast-check";
import { hostileShortText, INVALID_UTF8, oneIn, type Leaf } from "./values.js";

export const CONNECT_TIMEOUTS = ["0", "1", "2", "5", "50", "1000", "30000", "4294967295", "9999999999", "99999999999", "-1", "1.5", "", "abc", " 1", "0x10"];
export const GRPC_TIMEOUTS = ["0n", "1n", "1u", "1m", "2m", "5m", "1S", "1H", "99999999H", "100000000H", "1x", "", "-1S", "1.5S", "S", "1 m"];

/** A deadline header: usually the protocol's own spelling, sometimes the other one. */
export function deadlineHeader(own: "connect" | "grpc"): fc.Arbitrary<[string, string] | undefined> {
  const connect = fc.constantFrom(...CONNECT_TIMEOUTS).map((v): [string, string] => ["connect-timeout-ms", v]);
  const grpc = fc.constantFrom(...GRPC_TIMEOUTS).map((v): [string, string] => ["grpc-timeout", v]);
  const [mine, other] = own === "connect" ? [connect, grpc] : [grpc, connect];
  return oneIn(4, fc.oneof({ weight: 4, arbitrary: mine }, { weight: 1, arbitrary: other }));
}

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds a deadline header asks for, when it is one a server accepts (undefined: none or malformed). */
export function deadlineMs(headers: [string, string][]): number | undefined {
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    if (name === "connect-timeout-ms" && /^\d{1,10}$/.test(v)) return Number(v);
    const m = name === "grpc-timeout" ? /^(\d{1,8})([HMSmun])$/.exec(v) : null;
    if (m) return Number(m[1]) * GRPC_UNIT_MS[m[2]!]!;
  }
  return undefined;
}

export const hasDeadlineHeader = (headers: [string, string][]) => headers.some(([k]) => /^(connect-timeout-ms|grpc-timeout)$/i.test(k));

/** Content types a client might send by mistake or on purpose. */
export const ODD_CONTENT_TYPES = [
  "",
  "application/json",
  "application/proto",
  "application/grpc",
  "application/grpc+json",
  "application/grpc-web-text",
  "application/grpc-web+json",
  "application/connect+json",
  "application/connect+proto",
  "text/plain",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "APPLICATION/JSON",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "application/vnd.oci.image.manifest.v1+json",
  "*/*",
  "application/json;;",
];

export const oddContentType: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ODD_CONTENT_TYPES) },
  { weight: 1, arbitrary: hostileShortText },
);

const HEADER_NAMES = [
  "x-request-id",
  "connect-protocol-version",
  "te",
  "accept",
  "accept-encoding",
  "content-encoding",
  "connect-accept-encoding",
  "grpc-accept-encoding",
  "grpc-encoding",
  "connect-content-encoding",
  "x-grpc-web",
  "x-user-agent",
  "origin",
  "authorization",
  "range",
  "if-none-match",
  "expect",
  "content-length",
  "transfer-encoding",
  "x-forwarded-for",
  "grpc-message",
  "grpc-status",
  "trailer",
];

const HEADER_VALUES = [
  "",
  "1",
  "gzip",
  "br",
  "identity",
  "deflate",
  "zstd",
  "gzip, br",
  "trailers",
  "100-continue",
  "chunked",
  "-1",
  "99999999999999999999",
  "*",
  "Bearer x",
];

/** Extra headers (one request in three): known names with odd values, odd names, repeated names. */
export const extraHeaders: fc.Arbitrary<[string, Leaf][]> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<[string, Leaf][]>([]) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.tuple(
        fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HEADER_NAMES) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/) }),
        fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HEADER_VALUES) }, { weight: 1, arbitrary: hostileShortText }),
      ),
      { minLength: 1, maxLength: 3 },
    ),
  },
);

/** A change to a body after it was encoded. */
export type BodyMutation =
  | { keep: number } // keep this fraction of the bytes (a truncated body)
  | { at: number; insert: Uint8Array } // splice bytes in at this fraction
  | { replace: Uint8Array };

const SPLICES: Uint8Array[] = [
  ...INVALID_UTF8.map((b) => new Uint8Array(b)),
  new Uint8Array([0]),
  new Uint8Array([0xef, 0xbb, 0xbf]),
  new Uint8Array(Buffer.from("}")),
  new Uint8Array(Buffer.from(",")),
  new Uint8Array(Buffer.from('"')),
  new Uint8Array(Buffer.from("/*x*/")),
  new Uint8Array(Array(11).fill(0xff)), // a varint longer than ten bytes
  new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // a length-delimited field longer than the message
  new Uint8Array([0x0b]), // an unmatched group start
];

export const bodyMutation: fc.Arbitrary<BodyMutation | undefined> = oneIn(
  8,
  fc.oneof(
    fc.double({ min: 0, max: 1, noNaN: true }).map((keep) => ({ keep })),
    fc
      .tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.oneof(fc.constantFrom(...SPLICES), fc.uint8Array({ minLength: 1, maxLength: 8 })))
      .map(([at, insert]) => ({ at, insert })),
    fc.uint8Array({ maxLength: 64 }).map((replace) => ({ replace })),
  ),
);

export function mutate(body: Uint8Array, m: BodyMutation | undefined): Uint8Array {
  if (!m) return body;
  if ("replace" in m) return m.replace;
  if ("keep" in m) return body.subarray(0, Math.floor(body.length * m.keep));
  const at = Math.floor(body.length * m.at);
  return Buffer.concat([body.subarray(0, at), m.insert, body.subarray(at)]);
}

/** A gRPC / Connect envelope: flags, big-endian length (off by `lengthDelta` on purpose when asked), payload. */
export function envelope(flags: number, payload: Uint8Array, lengthDelta = 0): Uint8Array {
  const head = Buffer.alloc(5);
  head[0] = flags & 0xff;
  head.writeUInt32BE(Math.max(0, Math.min(0xffffffff, payload.length + lengthDelta)), 1);
  return Buffer.concat([head, payload]);
}
