import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { useState, type FormEvent } from "react";
import { AccountService } from "../../../gen/artifact/v1/account_pb.js";
import { ErrorView, Field } from "../components.js";
import { navigate } from "../router.js";
import { signInWithPassword, signInWithToken } from "../session.js";

/** Sign in with a user's password or an API token (robots have only tokens). */
export function SignIn({ next }: { next: string }) {
  const [mode, setMode] = useState<"password" | "token">("password");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (mode === "password") {
        await signInWithPassword(username.trim(), password);
      } else {
        const secret = token.trim();
        // Checked before it becomes the session: a wrong token stays on this screen with a message.
        const check = createConnectTransport({
          baseUrl: location.origin,
          interceptors: [(n) => (req) => (req.header.set("authorization", `Bearer ${secret}`), n(req))],
        });
        await createClient(AccountService, check).whoAmI({});
        signInWithToken(secret);
      }
      setPassword("");
      setToken("");
      navigate(next, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" className="signin">
      <h1>Artifact Service</h1>
      <form onSubmit={(e) => void submit(e)} aria-labelledby="signin-title">
        <h2 id="signin-title">Sign in</h2>
        <fieldset className="tabs">
          <legend className="visually-hidden">Sign in with</legend>
          <label>
            <input type="radio" name="mode" checked={mode === "password"} onChange={() => setMode("password")} /> Password
          </label>
          <label>
            <input type="radio" name="mode" checked={mode === "token"} onChange={() => setMode("token")} /> API token
          </label>
        </fieldset>
        {mode === "password" ? (
          <>
            <Field label="User name">
              {(id) => <input id={id} autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />}
            </Field>
            <Field label="Password">
              {(id) => (
                <input id={id} type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
              )}
            </Field>
          </>
        ) : (
          <Field label="Token" hint="Starts with art_. Kept in this tab only, until you sign out or close it.">
            {(id) => <input id={id} type="password" autoComplete="off" required value={token} onChange={(e) => setToken(e.target.value)} />}
          </Field>
        )}
        {error !== undefined && <ErrorView error={error} />}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
