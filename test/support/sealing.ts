// Sealed values as the first release wrote them, for tests of what later releases still open.
import { createCipheriv, randomBytes } from "node:crypto";
import type { Credential } from "../../src/secrets.js";

/** `v1:` + base64 of nonce, body, tag: no key id, no associated data. */
export function sealV1(key: Buffer, credential: Credential): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const body = Buffer.concat([cipher.update(JSON.stringify(credential), "utf8"), cipher.final()]);
  return `v1:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64")}`;
}
