// TLS for both listeners: the handshake on every accepted socket (in a cluster worker: on the
// socket its primary handed over, so the primary stays TLS-agnostic), ALPN choosing h2 or
// http/1.1, and the certificate re-read without a restart.
//
// Rotation: the directories holding the files are watched (a write, a rename over the file, a
// Kubernetes secret's `..data` symlink swap), SIGHUP asks for a re-read (src/cluster.ts passes it
// to every worker), and the files are compared once a minute in case the file system sends no
// events (NFS, some bind mounts). A new certificate serves the next handshake; open connections
// keep the one they were made with. Files that do not check out (a key written before its
// certificate, an expired certificate) leave the current ones in place and are logged.
import { constants } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import tls, { type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { readTlsMaterial, TlsFileError, type TlsMaterial, type TlsSettings } from "../tls.js";

// TLS 1.2: ECDHE with AEAD only, the server's order (forward secrecy; HTTP/2 forbids the CBC
// suites, RFC 9113 §9.2.2). TLS 1.3: its three suites, named so the list above cannot drop them.
const CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** A certificate this close to its end is warned about at every (re)load. */
const EXPIRY_WARNING_MS = 14 * 24 * 3_600_000;
const DEBOUNCE_MS = 200;
const POLL_MS = 60_000;

export interface TlsEndpointOptions {
  /** A client that has not finished its handshake in this time is cut (HTTP_HEADERS_TIMEOUT_MS). */
  handshakeTimeoutMs: number;
  log: Logger;
}

export class TlsEndpoint {
  /** Never listens: sockets accepted elsewhere are emitted into it for their handshake. */
  readonly server: tls.Server;
  /** `Strict-Transport-Security` value, or undefined when TLS_HSTS_MAX_AGE_SECONDS is 0. */
  readonly hsts: string | undefined;
  private material: TlsMaterial;
  private readonly watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: TlsSettings,
    private readonly options: TlsEndpointOptions,
  ) {
    this.material = readTlsMaterial(settings);
    this.server = tls.createServer({
      ...this.contextOptions(),
      ALPNProtocols: ["h2", "http/1.1"],
      requestCert: settings.clientCaFile !== undefined,
      rejectUnauthorized: settings.clientCaFile !== undefined && settings.clientAuth === "require",
      handshakeTimeout: options.handshakeTimeoutMs,
    });
    // A failed handshake (a cleartext client, an untrusted certificate, no client certificate
    // when one is required) ends that connection only; it is the client's business.
    this.server.on("tlsClientError", (err, socket) => {
      options.log.debug({ err, client: socket.remoteAddress }, "TLS handshake failed");
      socket.destroy();
    });
    this.hsts = settings.hstsMaxAgeSeconds > 0 ? `max-age=${settings.hstsMaxAgeSeconds}` : undefined;
    this.describe("TLS certificate loaded");
  }

  /** Every connection that completed its handshake (and, with a client CA, passed its check). */
  onSecureConnection(serve: (socket: TLSSocket, protocol: "h2" | "http/1.1") => void): void {
    this.server.on("secureConnection", (socket: TLSSocket) => {
      // Optional client certificates: none is fine; one the CA does not verify is refused, not
      // taken for anonymous (a client that meant to identify itself must learn that it did not).
      if (this.settings.clientCaFile && !socket.authorized && Object.keys(socket.getPeerCertificate()).length > 0) {
        this.options.log.info(
          { client: socket.remoteAddress, reason: String(socket.authorizationError) },
          "client certificate not verified by TLS_CLIENT_CA_FILE: connection closed",
        );
        socket.destroy();
        return;
      }
      serve(socket, socket.alpnProtocol === "h2" ? "h2" : "http/1.1");
    });
  }

  /** Reads the files again; a changed, valid set serves the next handshake. True when it changed. */
  reload(reason: string): boolean {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(this.settings);
    } catch (err) {
      if (!(err instanceof TlsFileError)) throw err;
      this.options.log.error({ reason, problem: err.message }, "TLS files not reloaded: still serving the previous certificate");
      return false;
    }
    const unchanged =
      next.cert.equals(this.material.cert) && next.key.equals(this.material.key) && (next.ca ?? Buffer.alloc(0)).equals(this.material.ca ?? Buffer.alloc(0));
    if (unchanged) {
      if (reason === "SIGHUP") this.options.log.info({ reason, fingerprint256: next.fingerprint256 }, "TLS files unchanged");
      return false;
    }
    this.material = next;
    this.server.setSecureContext(this.contextOptions());
    this.describe("TLS certificate reloaded", reason);
    return true;
  }

  /** Watches the files' directories (and compares the files once a minute). */
  watch(): void {
    const files = [this.settings.certFile, this.settings.keyFile, this.settings.clientCaFile].filter((f): f is string => f !== undefined);
    const names = new Set(files.map((f) => basename(f)));
    // Only our files, and Kubernetes' `..data` swaps (the files are symlinks through it): a busy
    // directory's other files must not re-read ours on every write. No name given: re-read.
    const ours = (name: string | null) => name === null || names.has(name) || name.startsWith("..");
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => ours(name) && this.soon("file change"));
        watcher.on("error", (err) => {
          this.options.log.warn({ err, dir }, "cannot watch the TLS files' directory any more: they are compared once a minute");
          watcher.close();
        });
        this.watchers.push(watcher);
      } catch (err) {
        this.options.log.warn({ err, dir }, "cannot watch the TLS files' directory: they are compared once a minute");
      }
    }
    this.poll = setInterval(() => this.reload("poll"), POLL_MS);
    this.poll.unref();
  }

  close(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers.length = 0;
    clearTimeout(this.debounce);
    clearInterval(this.poll);
  }

  /** Renewal tools write the key and the certificate one after the other: wait for both. */
  private soon(reason: string): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.reload(reason), DEBOUNCE_MS);
    this.debounce.unref();
  }

  private contextOptions(): tls.SecureContextOptions {
    return {
      cert: this.material.cert,
      key: this.material.key,
      ca: this.material.ca,
      minVersion: "TLSv1.2",
      ciphers: CIPHERS,
      honorCipherOrder: true,
      // TLS 1.3 has no renegotiation; this refuses it on TLS 1.2 too (a client could make the
      // server redo the expensive half of a handshake at will).
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    };
  }

  private describe(message: string, reason?: string): void {
    const { subject, notAfter, fingerprint256 } = this.material;
    this.options.log.info({ reason, subject, notAfter: notAfter.toISOString(), fingerprint256 }, message);
    if (notAfter.getTime() - Date.now() < EXPIRY_WARNING_MS) {
      this.options.log.warn(
        { notAfter: notAfter.toISOString() },
        `the TLS certificate (TLS_CERT_FILE) expires on ${notAfter.toISOString()}: replace it; the file is re-read without a restart`,
      );
    }
  }
}
