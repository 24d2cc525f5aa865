// The registry token endpoint, /auth/token, as docker, podman, skopeo, containerd, helm and oras
// expect it (docs/identity.md):
// - GET with `service`, repeated `scope`, `offline_token`, `client_id`, `account`, and Basic
//   credentials (a password, or an API token as the password) or none (anonymous);
// - POST (OAuth2 form) with grant_type=password (username, password) or refresh_token
//   (refresh_token), one space-separated `scope`, `access_type=offline`.
// The grant is what was asked intersected with what the policy allows: never an error for asking
// too much. A refresh token is an API token of the account (the one presented, or a new one named
// after the client when a password signed in).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Logger } from "pino";
import { isDomainError } from "../domain/errors.js";
import { pickRequestId, REQUEST_ID_HEADER } from "../request-id.js";
import type { Store } from "../store/index.js";
import { type Authenticator, type Caller, type RequestInfo, parseBasic, trailOf } from "./authenticator.js";
import { socketAddress } from "./context.js";
import { clientCertificate } from "../http/client-certificate.js";
import type { RegistryTokens } from "./jwt.js";
import type { Locator } from "./locate.js";
import { grant, parseScope, formatScope, type Scope } from "./scopes.js";
import { hashTokenSecret, newTokenSecret } from "./tokens.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export const TOKEN_PATH = "/auth/token";
const MAX_FORM_BYTES = 64 * 1024;
const MAX_SCOPES = 64;
/** How long a refresh token made for a client that signed in with a password works. */
const REFRESH_TOKEN_DAYS = 90;

export interface TokenEndpointOptions {
  authenticator: Authenticator;
  tokens: RegistryTokens;
  locate: Locator;
  store: Store;
  log: Logger;
  service: string;
}

class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly code: "UNAUTHORIZED" | "UNSUPPORTED" | "DENIED",
    readonly oauth: string,
    message: string,
  ) {
    super(message);
  }
}

interface Ask {
  scopes: Scope[];
  offline: boolean;
  clientId: string;
  /** How the caller proves who it is. */
  credential: { kind: "none" } | { kind: "basic"; username: string; password: string } | { kind: "refresh"; token: string };
  form: boolean;
}

export function tokenEndpoint(options: TokenEndpointOptions): (req: Request, res: Response) => void {
  return (req, res) => {
    const requestId = pickRequestId(req.headers[REQUEST_ID_HEADER]);
    const info: RequestInfo = { requestId, clientAddress: socketAddress(req), certificate: clientCertificate(req) };
    const started = performance.now();
    let form = false;
    serve(options, req, res, info, (isForm) => (form = isForm))
      .catch((err: unknown) => {
        const known =
          err instanceof TokenError
            ? err
            : isDomainError(err, "unauthenticated")
              ? new TokenError(401, "UNAUTHORIZED", "invalid_grant", err.message)
              : undefined;
        if (!known) options.log.error({ requestId, err }, "token endpoint: unexpected error");
        const error = known ?? new TokenError(500, "UNSUPPORTED", "server_error", `internal error (request id ${requestId})`);
        const body: Record<string, unknown> = { errors: [{ code: error.code, message: error.message }] };
        if (form) Object.assign(body, { error: error.oauth, error_description: error.message });
        const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
        if (error.status === 401) headers["www-authenticate"] = `Basic realm="${options.service}"`;
        if (!req.complete) headers.connection = "close";
        json(res, error.status, body, headers);
      })
      .finally(() => {
        options.log.info(
          { requestId, method: req.method, path: TOKEN_PATH, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 },
          "token request",
        );
      });
  };
}

async function serve(options: TokenEndpointOptions, req: Request, res: Response, info: RequestInfo, isForm: (form: boolean) => void): Promise<void> {
  const ask = await readAsk(req, options.service, isForm);
  const caller = await authenticate(options, ask, info);
  const account = caller.principal.account;
  const access = await grant(caller.principal, ask.scopes, options.locate);
  const issued = await options.tokens.issue(account?.id ?? "", access);
  const body: Record<string, unknown> = {
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt.toISOString(),
  };
  if (ask.form) body.scope = access.map((a) => formatScope(a)).join(" ");
  if (ask.offline && account && ask.credential.kind === "basic") {
    body.refresh_token = caller.via === "token" ? ask.credential.password : await refreshToken(options, caller, ask.clientId, info);
  }
  json(res, 200, body, { [REQUEST_ID_HEADER]: info.requestId, "cache-control": "no-store", pragma: "no-cache" });
}

async function readAsk(req: Request, service: string, isForm: (form: boolean) => void): Promise<Ask> {
  const url = new URL(req.url ?? "/", "http://token");
  let params: URLSearchParams;
  let form = false;
  if (req.method === "GET") {
    params = url.searchParams;
  } else if (req.method === "POST") {
    const type = String(req.headers["content-type"] ?? "")
      .split(";")[0]!
      .trim()
      .toLowerCase();
    if (type !== "application/x-www-form-urlencoded") {
      throw new TokenError(400, "UNSUPPORTED", "invalid_request", "POST takes an application/x-www-form-urlencoded form (OAuth2)");
    }
    params = new URLSearchParams(await readBody(req));
    form = true;
    isForm(true);
  } else {
    throw new TokenError(405, "UNSUPPORTED", "invalid_request", `${req.method} is not supported here; use GET or POST`);
  }
  const asked = params.get("service");
  if (asked !== null && asked !== service)
    throw new TokenError(400, "UNSUPPORTED", "invalid_request", `unknown service ${JSON.stringify(asked.slice(0, 100))}; this is ${service}`);
  // A challenge may name several scopes in one space-separated `scope`; clients that copy it as
  // one parameter (reggie, the conformance suite's client) send it so on GET too.
  const rawScopes = form ? (params.get("scope") ?? "").split(" ") : params.getAll("scope").flatMap((s) => s.split(" "));
  const scopes = rawScopes
    .filter((s) => s !== "")
    .slice(0, MAX_SCOPES)
    .map(parseScope)
    .filter((s): s is Scope => s !== undefined);
  const clientId = (params.get("client_id") ?? "").slice(0, 100).replace(/[^\x20-\x7e]/g, "");
  if (!form) {
    const basic = basicOf(req);
    return { scopes, offline: params.get("offline_token") === "true", clientId, credential: basic ?? { kind: "none" }, form };
  }
  const grantType = params.get("grant_type");
  const offline = params.get("access_type") === "offline";
  if (grantType === "password") {
    const username = params.get("username") ?? "";
    const password = params.get("password") ?? "";
    if (password === "") throw new TokenError(400, "UNSUPPORTED", "invalid_request", "grant_type=password needs username and password");
    return { scopes, offline, clientId, credential: { kind: "basic", username, password }, form };
  }
  if (grantType === "refresh_token") {
    const token = params.get("refresh_token") ?? "";
    if (token === "") throw new TokenError(400, "UNSUPPORTED", "invalid_request", "grant_type=refresh_token needs refresh_token");
    return { scopes, offline: false, clientId, credential: { kind: "refresh", token }, form };
  }
  throw new TokenError(400, "UNSUPPORTED", "unsupported_grant_type", "grant_type must be password or refresh_token");
}

function basicOf(req: Request): Ask["credential"] | undefined {
  const header = req.headers.authorization;
  if (header === undefined || header === "") return undefined;
  const space = header.indexOf(" ");
  if (header.slice(0, space).toLowerCase() !== "basic")
    throw new TokenError(401, "UNAUTHORIZED", "invalid_client", "send Basic credentials (a user's password, or an API token as the password)");
  const credentials = parseBasic(header.slice(space + 1).trim());
  if (!credentials) throw new TokenError(401, "UNAUTHORIZED", "invalid_client", "malformed Basic credentials");
  return { kind: "basic", ...credentials };
}

async function authenticate(options: TokenEndpointOptions, ask: Ask, info: RequestInfo): Promise<Caller> {
  switch (ask.credential.kind) {
    case "none":
      // Mutual TLS: a robot's client certificate signs in without other credentials.
      return info.certificate ? options.authenticator.certificate(info.certificate) : options.authenticator.anonymousCaller();
    case "basic":
      return options.authenticator.basic(ask.credential.username, ask.credential.password, info);
    case "refresh":
      return options.authenticator.token(ask.credential.token, info);
  }
}

/** A new API token for a client that signed in with a password and asked for offline access. */
async function refreshToken(options: TokenEndpointOptions, caller: Caller, clientId: string, info: RequestInfo): Promise<string> {
  const secret = newTokenSecret();
  await options.store.tokens.create(
    {
      accountId: caller.principal.account!.id,
      name: `refresh:${clientId || "registry-client"}`,
      secretHash: hashTokenSecret(secret),
      expireTime: new Date(Date.now() + REFRESH_TOKEN_DAYS * 24 * 3_600_000),
    },
    trailOf(caller, info),
  );
  return secret;
}

async function readBody(req: Request): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_FORM_BYTES) throw new TokenError(413, "UNSUPPORTED", "invalid_request", `the form is larger than ${MAX_FORM_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_FORM_BYTES) throw new TokenError(413, "UNSUPPORTED", "invalid_request", `the form is larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function json(res: Response, status: number, body: unknown, headers: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
