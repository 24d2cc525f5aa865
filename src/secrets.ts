// Upstream credentials are sealed with AES-256-GCM before they reach the database and opened
// only where an upstream request needs them. The key is SECRET_KEY; on the embedded default
// without it, a key is generated once into DATA_DIR (mode 0600). On PostgreSQL without
// SECRET_KEY there is no safe place for a key, so storing a credential is refused.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { failedPrecondition } from "./domain/errors.js";

export type Credential = { kind: "basic"; username: string; password: string } | { kind: "token"; token: string };

const VERSION = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class Sealer {
  constructor(private readonly key: Buffer | undefined) {}

  get canSeal(): boolean {
    return this.key !== undefined;
  }

  seal(credential: Credential): string {
    const key = this.requireKey();
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    const body = Buffer.concat([cipher.update(JSON.stringify(credential), "utf8"), cipher.final()]);
    return `${VERSION}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64")}`;
  }

  open(sealed: string): Credential {
    const key = this.requireKey();
    const [version, payload] = sealed.split(":");
    if (version !== VERSION || !payload) throw new Error("sealed credential has an unknown format");
    const raw = Buffer.from(payload, "base64");
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const json = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    return JSON.parse(json.toString("utf8")) as Credential;
  }

  private requireKey(): Buffer {
    if (!this.key) {
      throw failedPrecondition("credentials cannot be stored: set SECRET_KEY (32 bytes, e.g. `openssl rand -base64 32`) on every replica to enable them");
    }
    return this.key;
  }
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
