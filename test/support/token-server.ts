// A Docker Registry v2 token server (the `realm` of Distribution's `auth.token`), in the test
// process. It checks Basic credentials and issues ES256 JWTs whose `x5c` header carries a
// self-signed certificate that the registry trusts through its `rootcertbundle`. Distribution 2.8
// finds the signing key from `x5c` first (then `jwk`, then a libtrust-format `kid`), and verifies
// the chain against the bundle; iss must equal its `issuer`, aud its `service`, exp/nbf with 60 s leeway.
import { createPrivateKey, randomUUID, sign, timingSafeEqual, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { selfSigned } from "./tls.js";

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenRequest {
  method: string;
  /** Scopes asked for, e.g. "repository:team/app:pull,push". */
  scopes: string[];
  /** The user whose Basic credentials were valid, or undefined for an anonymous request. */
  user?: string;
  /** What the response was: 200 with a token, 401 for bad credentials, 400 for a wrong service. */
  status: number;
}

export interface TokenServerOptions {
  /** Directory for the key and certificate. */
  dir: string;
  credentials: Credentials;
  service?: string;
  issuer?: string;
  /** Lifetime of issued tokens (`expires_in`); default 300 s. */
  ttlSeconds?: number;
  /** Anonymous requests get pull access (default: a token with no access at all). */
  anonymousPull?: boolean;
}

export interface TokenServer {
  /** The realm URL to put in the registry's config (`http://127.0.0.1:<port>/token`). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key: the registry's `rootcertbundle`. */
  certPath: string;
  /** Every request served, oldest first (to assert token caching, scopes asked for…). */
  requests: TokenRequest[];
  /** A signed token for `scopes` and `subject`, without an HTTP round trip. */
  issue(scopes: string[], subject?: string): string;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** "repository:team/app:pull,push" → {type, name, actions}; the name may itself contain ':'. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter(Boolean),
  };
}

function basicUser(req: IncomingMessage, expected: Credentials): { user?: string; bad: boolean } {
  const header = req.headers.authorization;
  if (!header) return { bad: false };
  const [kind, value] = header.split(" ", 2);
  if (kind?.toLowerCase() !== "basic" || !value) return { bad: true };
  const decoded = Buffer.from(value, "base64").toString();
  const colon = decoded.indexOf(":");
  const user = decoded.slice(0, colon);
  const pass = decoded.slice(colon + 1);
  return credentialsMatch(user, pass, expected) ? { user, bad: false } : { bad: true };
}

function credentialsMatch(user: string, pass: string, expected: Credentials): boolean {
  const a = Buffer.from(`${user}\0${pass}`);
  const b = Buffer.from(`${expected.username}\0${expected.password}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const service = opts.service ?? "artifact-test-registry";
  const issuer = opts.issuer ?? "artifact-test-token-issuer";
  const ttl = opts.ttlSeconds ?? 300;
  const keyPath = join(opts.dir, "token-key.pem");
  const certPath = join(opts.dir, "token-cert.pem");
  // P-256 key and a self-signed certificate, valid for two days.
  selfSigned(keyPath, certPath, "/CN=artifact-test-token-issuer", 2);
  const key: KeyObject = createPrivateKey(await readFile(keyPath));
  const certPem = await readFile(certPath, "utf8");
  const certDer = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, "");

  const issue = (scopes: string[], subject = ""): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c: [certDer] };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + ttl,
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access: scopes.map(parseScope).filter((s) => s !== undefined),
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not DER.
    const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    return `${input}.${b64url(signature)}`;
  };

  const requests: TokenRequest[] = [];
  const respond = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      if (url.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) {
        respond(res, 404, { errors: [{ code: "NOT_FOUND", message: "token endpoint is /token" }] });
        return;
      }
      // GET (docker/skopeo) carries scopes as repeated `scope` params; POST (OAuth2 password grant) in a form.
      let params = url.searchParams;
      let user: string | undefined;
      let bad = false;
      if (req.method === "POST") {
        params = new URLSearchParams(await readBody(req));
        const username = params.get("username");
        if (params.get("grant_type") === "password" && username !== null) {
          if (credentialsMatch(username, params.get("password") ?? "", opts.credentials)) user = username;
          else bad = true;
        }
      }
      if (user === undefined && !bad) ({ user, bad } = basicUser(req, opts.credentials));
      const scopes = params
        .getAll("scope")
        .flatMap((s) => s.split(" "))
        .filter(Boolean);
      const log: TokenRequest = { method: req.method, scopes, user, status: 200 };
      requests.push(log);
      if (params.get("service") !== null && params.get("service") !== service) {
        log.status = 400;
        respond(res, 400, { errors: [{ code: "DENIED", message: `unknown service ${params.get("service")}` }] });
        return;
      }
      if (bad) {
        log.status = 401;
        respond(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] }, { "www-authenticate": 'Basic realm="token"' });
        return;
      }
      // Authenticated users get what they ask for; anonymous ones at most pull.
      const granted = user
        ? scopes
        : opts.anonymousPull
          ? scopes
              .map(parseScope)
              .filter((s) => s?.type === "repository" && s.actions.includes("pull"))
              .map((s) => `repository:${s!.name}:pull`)
          : [];
      const token = issue(granted, user ?? "");
      respond(res, 200, { token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() });
    } catch (err) {
      respond(res, 500, { errors: [{ code: "UNKNOWN", message: String(err) }] });
    }
  };
  // handle() answers its own errors.
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    issue,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
