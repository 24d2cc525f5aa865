// The signed-in session: an API token held in memory and in sessionStorage (this tab only, gone
// when it closes; never in a URL, never logged), sent as `Authorization: Bearer` by the
// transport's interceptor. A password signs in through the registry token endpoint (/auth/token,
// OAuth2 password grant, as docker does): the refresh token it returns is an API token of the
// account, which is swapped at once for a short-lived one the UI can revoke on sign-out.
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { TokenService } from "../../gen/artifact/v1/token_pb.js";

const STORAGE_KEY = "artifact.session";
/** How long a password sign-in lasts. */
const SESSION_SECONDS = 12 * 3600;

export interface Session {
  token: string;
  /** The id of a token the UI made (password sign-in): revoked on sign-out. */
  ownTokenId?: string;
}

let current: Session | undefined = load();
const listeners = new Set<() => void>();

function load(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    const parsed = raw ? (JSON.parse(raw) as Session) : undefined;
    return parsed && typeof parsed.token === "string" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function session(): Session | undefined {
  return current;
}

export function setSession(next: Session | undefined): void {
  current = next;
  if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener();
}

export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Adds the session's token; an UNAUTHENTICATED answer ends the session (back to sign-in). */
const authInterceptor: Interceptor = (next) => async (req) => {
  const token = current?.token;
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (err) {
    if (token && ConnectError.from(err).code === Code.Unauthenticated && current?.token === token) setSession(undefined);
    throw err;
  }
};

/** The API on this origin (the server that served the page), Connect protocol with JSON. */
export const transport: Transport = createConnectTransport({ baseUrl: location.origin, interceptors: [authInterceptor] });

/** Signs in with an API token: checked by the caller with WhoAmI. */
export function signInWithToken(token: string): void {
  setSession({ token: token.trim() });
}

/** Signs in with a user's password: token endpoint, then a 12-hour API token of the UI's own. */
export async function signInWithPassword(username: string, password: string): Promise<void> {
  const clientId = `web-ui.${crypto.randomUUID()}`;
  const form = new URLSearchParams({ grant_type: "password", username, password, access_type: "offline", client_id: clientId });
  const answer = await fetch("/auth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form,
    credentials: "omit",
  });
  const body = (await answer.json().catch(() => ({}))) as { refresh_token?: string; error_description?: string };
  if (!answer.ok || !body.refresh_token) {
    throw new ConnectError(
      answer.status === 401 ? "wrong user name or password" : (body.error_description ?? `sign-in failed (HTTP ${answer.status})`),
      Code.Unauthenticated,
    );
  }
  const refresh = body.refresh_token;
  const tokens = createClient(
    TokenService,
    createConnectTransport({ baseUrl: location.origin, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${refresh}`), next(req))] }),
  );
  const created = await tokens.createToken({ name: "web-ui session", expiration: { case: "ttl", value: { seconds: BigInt(SESSION_SECONDS) } } });
  // The refresh token lives 90 days: revoke it now that the session has its own.
  const listed = await tokens.listTokens({ query: `refresh:${clientId}`, pageSize: 1 });
  for (const t of listed.tokens) await tokens.revokeToken({ id: t.id });
  setSession({ token: created.secret, ownTokenId: created.token?.id });
}

/** Signs out: revokes the token the UI made (never one the user pasted), forgets the session. */
export async function signOut(): Promise<void> {
  const own = current?.ownTokenId;
  if (own) {
    await createClient(TokenService, transport)
      .revokeToken({ id: own })
      .catch(() => undefined);
  }
  setSession(undefined);
}
