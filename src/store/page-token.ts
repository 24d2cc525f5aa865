// Opaque keyset page tokens. A token carries the last row's sort key and a fingerprint of
// the query that produced it, signed with a key every replica shares (settings table), so a
// forged, truncated or reused-with-other-filters token is refused instead of misread.
import { createHmac, timingSafeEqual } from "node:crypto";
import { invalidArgument } from "../domain/errors.js";

export interface Cursor {
  /** Sort value of the last row returned: a name, or a time in epoch milliseconds. */
  value: string | number;
  /** Id of the last row returned: the tie-breaker. */
  id: string;
  /** total_size, counted for the first page and carried along (it is not recounted while paging). */
  total: number;
}

const MAC_BYTES = 16;

export class PageTokens {
  constructor(private readonly key: Buffer) {}

  encode(fingerprint: string, cursor: Cursor): string {
    const body = Buffer.from(JSON.stringify([fingerprint, cursor.value, cursor.id, cursor.total]));
    return Buffer.concat([body, this.mac(body)]).toString("base64url");
  }

  /** The cursor inside `token`, if it was issued by us for the same query. */
  decode(fingerprint: string, token: string): Cursor {
    const raw = /^[A-Za-z0-9_-]{1,2048}$/.test(token) ? Buffer.from(token, "base64url") : Buffer.alloc(0);
    const body = raw.subarray(0, Math.max(0, raw.length - MAC_BYTES));
    const mac = raw.subarray(body.length);
    if (body.length === 0 || !timingSafeEqual(mac, this.mac(body))) {
      throw invalidArgument("page_token: not a token this service issued");
    }
    const [issuedFor, value, id, total] = JSON.parse(body.toString()) as [string, string | number, string, number];
    if (issuedFor !== fingerprint) {
      throw invalidArgument("page_token: was issued for a different query; keep filters and order_by the same while paging");
    }
    return { value, id, total };
  }

  private mac(body: Buffer): Buffer {
    return createHmac("sha256", this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
