// The admin credential every test server starts with, in the forms its clients send it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Interceptor } from "@connectrpc/connect";
import { removeWhenProcessEnds } from "./reaper.js";

/**
 * The bootstrap admin's API token (ADMIN_TOKEN) on every test server: auth is on as in
 * production, and the suites' clients (transports, grpc-js, buf curl, RegistryClient, skopeo,
 * `adminFetch`) send it. A test of what an anonymous caller gets builds a client without it.
 */
export const ADMIN_TOKEN = "art_test-admin-token-0123456789abcdefghijklmnop";
/** The admin's credential as an API caller sends it. */
export const ADMIN_AUTHORIZATION = `Bearer ${ADMIN_TOKEN}`;
/** The admin's credential as a registry client sends it straight on /v2/ (an API token is the Basic password). */
export const ADMIN_BASIC = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}`;
/** skopeo's / podman's `--creds` for the admin. */
export const ADMIN_CREDS = { username: "admin", password: ADMIN_TOKEN };

/** `fetch` with the admin's Bearer token (unless the request sets its own Authorization). */
export function adminFetch(url: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", ADMIN_AUTHORIZATION);
  return fetch(url, { ...init, headers });
}

/** Sends the admin's token on every call of a Connect transport. */
export const adminInterceptor: Interceptor = (next) => (req) => {
  if (!req.header.has("authorization")) req.header.set("authorization", ADMIN_AUTHORIZATION);
  return next(req);
};

let tokenFile: string | undefined;
/** A file holding ADMIN_TOKEN (mode 0600), for CLIs that take `--token-file`; one per test process. */
export function adminTokenFile(): string {
  if (tokenFile) return tokenFile;
  const dir = mkdtempSync(join(tmpdir(), "artifact-admin-token-"));
  removeWhenProcessEnds(dir);
  tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  return tokenFile;
}
