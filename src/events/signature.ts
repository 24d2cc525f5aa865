// The signature on every webhook delivery: `x-artifact-signature: t=<unix seconds>,v1=<hex>`, where
// the hex is HMAC-SHA256, keyed with the webhook's secret, over `<t>.<body>` (the timestamp, a
// dot, then the request body's exact bytes). A receiver recomputes it over the bytes it got,
// compares in constant time, and refuses a timestamp too far from its clock (a replayed request).
// Stripe's scheme, which receivers' libraries already know how to check.
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-artifact-signature";

/** How far a timestamp may be from the receiver's clock (seconds) before verify() refuses it. */
const DEFAULT_TOLERANCE_SECONDS = 300;

function hmac(secret: string, timestamp: number, body: Uint8Array | string): string {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** The header value for `body` sent at `timestamp` (unix seconds). */
export function signatureHeader(secret: string, body: Uint8Array | string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body)}`;
}

/**
 * Whether `header` signs `body` with `secret`, within `toleranceSeconds` of `now` (unix seconds).
 * Several `v1=` values (a receiver rotating secrets is sent one) are each tried.
 */
export function verifySignature(header: string, body: Uint8Array | string, secret: string, options: { now?: number; toleranceSeconds?: number } = {}): boolean {
  const parts = header.split(",").map((p) => p.trim().split("=", 2) as [string, string | undefined]);
  const t = Number(parts.find(([k]) => k === "t")?.[1] ?? NaN);
  if (!Number.isSafeInteger(t)) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const expected = Buffer.from(hmac(secret, t, body), "hex");
  return parts.some(([k, v]) => k === "v1" && v !== undefined && /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(Buffer.from(v, "hex"), expected));
}
