// The keys that sign the registry's JWTs (ES256), kept in the database so every replica signs
// and verifies alike. The private key is sealed with SECRET_KEY when the service has one; the
// public key is kept in the clear. A key signs for ROTATE_AFTER, then a new one takes over and the
// old one only verifies, until the last token it signed has expired (the token TTL plus the
// clock leeway), after which it is deleted. A key that no configured SECRET_KEY opens any more is
// simply replaced: tokens live minutes, nothing else depends on it.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { Logger } from "pino";
import type { Sealer } from "../secrets.js";
import type { SigningKeyRow, SigningKeyStore } from "../store/signing-keys.js";

export const ALGORITHM = "ES256";
const ROTATE_AFTER_MS = 30 * 24 * 3_600_000;
const REFRESH_MS = 60_000;
const RELOAD_AT_MOST_EVERY_MS = 1_000;
const PLAIN = "plain:";

type Key = CryptoKey | Uint8Array;

export interface SigningKeysOptions {
  /** How long a retired key still verifies: the longest token lifetime plus the clock leeway. */
  verifyRetiredForMs: number;
  /** How long a key signs before a new one takes over (default 30 days). */
  rotateAfterMs?: number;
}

export class SigningKeys {
  private signing?: { kid: string; key: Key; created: number };
  private verifying = new Map<string, Key>();
  private loaded = 0;
  private timer?: NodeJS.Timeout;
  private readonly rotateAfterMs: number;
  private refreshing?: Promise<void>;
  /** The newest key is there but cannot be opened here. */
  private unopenable = false;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly sealer: Sealer,
    private readonly log: Logger,
    private readonly options: SigningKeysOptions,
  ) {
    this.rotateAfterMs = options.rotateAfterMs ?? ROTATE_AFTER_MS;
  }

  /** Loads the keys (making the first one if there is none) and keeps them current. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, "could not refresh the registry token signing keys"));
    }, REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The key to sign with now. */
  signer(): { kid: string; key: Key } {
    if (!this.signing) throw new Error("no registry token signing key is loaded");
    return this.signing;
  }

  /** The key with this kid, loading keys another replica made if it is new here. */
  async verifier(kid: string | undefined): Promise<Key | undefined> {
    if (kid === undefined) return undefined;
    const known = this.verifying.get(kid);
    if (known || Date.now() - this.loaded < RELOAD_AT_MOST_EVERY_MS) return known;
    await this.load();
    return this.verifying.get(kid);
  }

  /** Starts signing with a new key; the current one keeps verifying until its tokens expire. */
  async rotate(): Promise<string> {
    const kid = await this.add(undefined);
    await this.load();
    return kid;
  }

  /** Loads, and rotates when the signing key is due (or missing, or unopenable). */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        await this.load();
        if (!this.signing || Date.now() - this.signing.created >= this.rotateAfterMs) {
          // Another replica may be doing the same: the store adds ours only if none is newer
          // (unless the newest cannot be opened, which only a new key mends).
          await this.add(this.unopenable ? undefined : new Date(Date.now() - this.rotateAfterMs));
          await this.load();
        }
        await this.store.prune(new Date(Date.now() - this.options.verifyRetiredForMs));
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async add(unlessNewerThan: Date | undefined): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const privateJson = JSON.stringify(await exportJWK(privateKey));
    const sealed = this.sealer.canSeal ? this.sealer.sealText(privateJson) : PLAIN + privateJson;
    if (!this.sealer.canSeal) this.log.warn("SECRET_KEY is not set: the registry token signing key is stored unsealed in the database");
    await this.store.add({ kid, privateKey: sealed, publicKey: { ...publicJwk, kid, alg: ALGORITHM, use: "sig" } }, unlessNewerThan);
    return kid;
  }

  private async load(): Promise<void> {
    const rows = await this.store.list();
    const now = Date.now();
    const verifying = new Map<string, Key>();
    let signing: typeof this.signing;
    let newest = true;
    let unopenable = false;
    for (const row of rows) {
      if (row.retireTime && row.retireTime.getTime() + this.options.verifyRetiredForMs < now) continue;
      verifying.set(row.kid, this.verifying.get(row.kid) ?? (await importJWK(row.publicKey as JWK, ALGORITHM)));
      if (!row.retireTime && newest) {
        newest = false;
        signing = await this.openSigning(row);
        unopenable = signing === undefined;
      }
    }
    this.verifying = verifying;
    this.signing = signing;
    this.unopenable = unopenable;
    this.loaded = now;
  }

  private async openSigning(row: SigningKeyRow): Promise<typeof this.signing> {
    if (this.signing?.kid === row.kid) return this.signing;
    try {
      const json = row.privateKey.startsWith(PLAIN) ? row.privateKey.slice(PLAIN.length) : this.sealer.openText(row.privateKey);
      return { kid: row.kid, key: await importJWK(JSON.parse(json) as JWK, ALGORITHM), created: row.createTime.getTime() };
    } catch (err) {
      // A key sealed under a SECRET_KEY this service no longer has: a new one replaces it.
      this.log.warn(
        { kid: row.kid, err: err instanceof Error ? err.message : String(err) },
        "the registry token signing key cannot be opened; making a new one",
      );
      return undefined;
    }
  }
}
