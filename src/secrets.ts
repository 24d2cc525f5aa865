// Upstream credentials are sealed with AES-256-GCM before they reach the database and opened
// only where an upstream request needs them. The key is SECRET_KEY; on the embedded default
// without it, a key is generated once into DATA_DIR (mode 0600). On PostgreSQL without
// SECRET_KEY there is no safe place for a key, so storing a credential is refused.
//
// Rotation: SECRET_KEY_PREVIOUS names older keys that still open what they sealed; sealing always
// uses SECRET_KEY. A sealed value says which key sealed it (`v2:<key id>:…`, the id a hash of the
// key), so opening picks the key instead of trying them all, and `npm run reseal` can tell which
// values are not under SECRET_KEY yet. Values of the first format (`v1:…`, no key id) still open:
// every key is tried, and GCM's tag accepts only the right one.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { failedPrecondition } from "./domain/errors.js";

export type Credential = { kind: "basic"; username: string; password: string } | { kind: "token"; token: string };

/** Which key a sealed value is under: SECRET_KEY, one of SECRET_KEY_PREVIOUS (or the v1 format), or none configured. */
export type SealState = "current" | "previous" | "unopenable";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_LABEL = "artifact-service secret key id\0";

/** A short public name for a key: 8 hex digits of a labelled SHA-256, so the key itself never shows. */
export function keyId(key: Buffer): string {
  return createHash("sha256").update(KEY_ID_LABEL).update(key).digest("hex").slice(0, 8);
}

/**
 * A stored credential that no configured key opens. `reason`: "no-key" (no key is configured),
 * "unknown-key" (sealed under a key that is not configured), "damaged" (not a sealed value, or it
 * fails its integrity check under the key it names).
 */
export class UnopenableCredential extends Error {
  constructor(readonly reason: "no-key" | "unknown-key" | "damaged") {
    super(`sealed credential cannot be opened (${reason})`);
    this.name = "UnopenableCredential";
  }

  /** What an operator reads: whose credential, and what to do. Names settings, never keys. */
  explain(registry: string): string {
    const owner = `registry "${registry}": its stored credential`;
    switch (this.reason) {
      case "no-key":
        return `${owner} cannot be opened: SECRET_KEY is not set; set it to the key that sealed the credential, or set the registry's credential again`;
      case "unknown-key":
        return `${owner} cannot be opened with SECRET_KEY (the key changed?): put the old key in SECRET_KEY_PREVIOUS, or set the registry's credential again`;
      case "damaged":
        return `${owner} is damaged (it fails its integrity check): set the registry's credential again`;
    }
  }
}

interface Key {
  id: string;
  key: Buffer;
}

export class Sealer {
  private readonly sealing?: Key;
  /** Every key that may open, SECRET_KEY first. */
  private readonly keys: Key[];

  constructor(keys: { sealing?: Buffer; previous?: readonly Buffer[] }) {
    const all = [...(keys.sealing ? [keys.sealing] : []), ...(keys.previous ?? [])];
    this.keys = all.filter((k, i) => all.findIndex((other) => other.equals(k)) === i).map((key) => ({ id: keyId(key), key }));
    this.sealing = keys.sealing && this.keys[0];
  }

  get canSeal(): boolean {
    return this.sealing !== undefined;
  }

  /** The id of SECRET_KEY (for reports), if there is one. */
  get sealingKeyId(): string | undefined {
    return this.sealing?.id;
  }

  seal(credential: Credential): string {
    const { id, key } = this.requireSealingKey();
    const header = `v2:${id}`;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    // The header is authenticated too: a value cannot be relabelled with another key id.
    cipher.setAAD(Buffer.from(header));
    const body = Buffer.concat([cipher.update(JSON.stringify(credential), "utf8"), cipher.final()]);
    return `${header}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64")}`;
  }

  /** The credential; UnopenableCredential when no configured key opens it. */
  open(sealed: string): Credential {
    return this.unseal(sealed).credential;
  }

  /** Any other secret text (the registry's JWT signing key), sealed the same way. */
  sealText(text: string): string {
    return this.seal({ kind: "token", token: text });
  }

  /** What sealText() sealed; UnopenableCredential when no configured key opens it. */
  openText(sealed: string): string {
    const value = this.open(sealed);
    if (value.kind !== "token") throw new UnopenableCredential("damaged");
    return value.token;
  }

  /** Whether `sealed` is under SECRET_KEY, under a previous key (or in the v1 format), or opens with no key. */
  state(sealed: string): SealState {
    try {
      return this.unseal(sealed).current ? "current" : "previous";
    } catch (err) {
      if (err instanceof UnopenableCredential) return "unopenable";
      throw err;
    }
  }

  /** `sealed` sealed again under SECRET_KEY, or undefined when it already is. */
  reseal(sealed: string): string | undefined {
    this.requireSealingKey();
    const { credential, current } = this.unseal(sealed);
    return current ? undefined : this.seal(credential);
  }

  private unseal(sealed: string): { credential: Credential; current: boolean } {
    if (this.keys.length === 0) throw new UnopenableCredential("no-key");
    const v2 = /^v2:([0-9a-f]{8}):([A-Za-z0-9+/]+={0,2})$/.exec(sealed);
    if (v2) {
      const [, id, payload] = v2 as unknown as [string, string, string];
      const candidates = this.keys.filter((k) => k.id === id);
      if (candidates.length === 0) throw new UnopenableCredential("unknown-key");
      for (const k of candidates) {
        const credential = decrypt(k.key, payload, `v2:${id}`);
        if (credential) return { credential, current: k === this.sealing };
      }
      throw new UnopenableCredential("damaged");
    }
    const v1 = /^v1:([A-Za-z0-9+/]+={0,2})$/.exec(sealed);
    if (v1) {
      for (const k of this.keys) {
        const credential = decrypt(k.key, v1[1]!, undefined);
        // v1 is never current: re-sealing moves it to v2 and gives it a key id.
        if (credential) return { credential, current: false };
      }
      throw new UnopenableCredential("unknown-key");
    }
    throw new UnopenableCredential("damaged");
  }

  private requireSealingKey(): Key {
    if (!this.sealing) {
      throw failedPrecondition("credentials cannot be stored: set SECRET_KEY (32 bytes, e.g. `openssl rand -base64 32`) on every replica to enable them");
    }
    return this.sealing;
  }
}

/** The credential in `payload` if `key` opens it (GCM's tag checks key and bytes), else undefined. */
function decrypt(key: Buffer, payload: string, header: string | undefined): Credential | undefined {
  const raw = Buffer.from(payload, "base64");
  if (raw.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES));
    if (header !== undefined) decipher.setAAD(Buffer.from(header));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const json = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    return parseCredential(json.toString("utf8"));
  } catch {
    return undefined;
  }
}

// Only what seal() wrote can pass GCM's tag; this just keeps a malformed body from crashing a caller.
function parseCredential(json: string): Credential | undefined {
  const value: unknown = JSON.parse(json);
  return typeof value === "object" && value !== null && typeof (value as { kind?: unknown }).kind === "string" ? (value as Credential) : undefined;
}

/** The key for this deployment, or undefined when none may be made up (PostgreSQL without SECRET_KEY). */
export function resolveSecretKey(options: { secretKey?: Buffer; embedded: boolean; dataDir: string }): Buffer | undefined {
  if (options.secretKey) return options.secretKey;
  if (!options.embedded) return undefined;
  const file = join(options.dataDir, "secret.key");
  if (!existsSync(file)) {
    mkdirSync(options.dataDir, { recursive: true });
    // "wx": never overwrite a key another process wrote a moment ago.
    try {
      writeFileSync(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, "utf8").trim(), "base64");
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}
