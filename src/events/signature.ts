// The signature on every webhook delivery: `x-artifact-signature: t=<unix seconds>,v1=<hex>`, where
// the hex is HMAC-SHA256, keyed with the webhook's secret, over `<t>.<body>` (the timestamp, a
// dot, then the request body's exact bytes). A receiver recomputes it over the bytes it got,
// compares in constant time, and refuses a timestamp too far from its clock (a replayed request):
// README's "Verifying a delivery", which test/support/webhook-receiver.ts follows. Stripe's scheme,
// which receivers' libraries already know how to check.
import { createHmac } from "node:crypto";

export const SIGNATURE_HEADER = "x-artifact-signature";

function hmac(secret: string, timestamp: number, body: Uint8Array | string): string {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** The header value for `body` sent at `timestamp` (unix seconds). */
export function signatureHeader(secret: string, body: Uint8Array | string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body)}`;
}
