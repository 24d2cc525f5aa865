// Small shared pieces: loading, empty and error states, copyable text, sizes and times, the search
// box, the pager over the API's page tokens, and the confirmation dialog.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { navigate, withQuery, useLocation } from "./router.js";

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

/** What went wrong and what to do about it, by the Connect code. */
export function describeError(err: unknown): { title: string; hint: string } {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.PermissionDenied:
      return { title: "Not allowed", hint: `Your account may not do this (${e.rawMessage}). Ask an administrator for a role here.` };
    case Code.NotFound:
      return { title: "Not found", hint: `${e.rawMessage}. It may have been deleted, or you may not be allowed to see it.` };
    case Code.Unauthenticated:
      return { title: "Signed out", hint: "Your session ended. Sign in again." };
    case Code.InvalidArgument:
      return { title: "Invalid input", hint: e.rawMessage };
    case Code.AlreadyExists:
      return { title: "Already exists", hint: e.rawMessage };
    case Code.Aborted:
    case Code.FailedPrecondition:
      return { title: "Changed meanwhile or not possible now", hint: `${e.rawMessage}. Reload and try again.` };
    case Code.Unavailable:
      return { title: "Service unavailable", hint: `${e.rawMessage || "The service or its database does not answer"}. Try again in a moment.` };
    default:
      return { title: "Something went wrong", hint: `${e.rawMessage || String(err)}. Try again; if it persists, check the service's log.` };
  }
}

export function ErrorView({ error, retry }: { error: unknown; retry?: () => void }) {
  const { title, hint } = describeError(error);
  return (
    <div className="state error" role="alert">
      <strong>{title}</strong>
      <p>{hint}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function formatBytes(n: bigint | number): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

export function toDate(t: Timestamp | undefined): Date | undefined {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)) : undefined;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
export function relative(d: Date): string {
  const s = (d.getTime() - Date.now()) / 1000;
  const steps: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let value = s;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return rtf.format(Math.round(value), unit);
    value /= size;
  }
  return d.toISOString();
}

const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A time as "3 minutes ago", the exact one in the title and the datetime attribute; `exact` shows it too. */
export function Time({ t, exact }: { t: Timestamp | undefined; exact?: boolean }) {
  const d = toDate(t);
  if (!d) return <span>—</span>;
  return (
    <time dateTime={d.toISOString()} title={d.toISOString()}>
      {relative(d)}
      {exact && <span className="exact">{exactFormat.format(d)}</span>}
    </time>
  );
}

export const shortDigest = (digest: string) => digest.replace(/^(sha256:|sha512:)?(.{12}).*$/, "$1$2");

/** Text with a copy button; `display` is what shows (e.g. a short digest). */
export function Copy({ text, display, label }: { text: string; display?: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 1500);
    return () => clearTimeout(t);
  }, [copied]);
  return (
    <span className="copy">
      <code title={text}>{display ?? text}</code>
      <button
        type="button"
        className="small"
        aria-label={`Copy ${label ?? text}`}
        onClick={() => {
          void navigator.clipboard?.writeText(text).then(
            () => setCopied(true),
            () => undefined,
          );
        }}
      >
        {copied ? "Copied" : "Copy"}
      </button>
    </span>
  );
}

/** A search box that keeps its text in the URL's `q` (deep links, back button). */
export function SearchBox({ label, placeholder }: { label: string; placeholder?: string }) {
  const { path, query } = useLocation();
  const id = useId();
  const current = query.get("q") ?? "";
  const [text, setText] = useState(current);
  useEffect(() => setText(current), [current]);
  // Searches as one types, after a pause; the first page of the new result.
  useEffect(() => {
    if (text === current) return;
    const t = setTimeout(() => navigate(withQuery(path, query, { q: text.trim() || undefined, page: undefined }), { replace: true }), 250);
    return () => clearTimeout(t);
  }, [text, current, path, query]);
  return (
    <div className="search" role="search">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="search" value={text} placeholder={placeholder} onChange={(e) => setText(e.target.value)} />
    </div>
  );
}

/**
 * Pages over the API's page tokens: the URL holds the current page's token (`page`) and the
 * tokens before it (`back`, a stack), so a reload or a link keeps the page and Back works.
 */
export function Pager({ nextToken, total, shown }: { nextToken: string; total?: number; shown: number }) {
  const { path, query } = useLocation();
  const page = query.get("page") ?? "";
  const back = query.get("back")?.split(",") ?? [];
  const number = back.length + (page ? 1 : 0) + 1;
  const prev = () => {
    const stack = [...back];
    const previous = stack.pop();
    navigate(withQuery(path, query, { page: previous === "-" ? undefined : previous, back: stack.join(",") || undefined }));
  };
  const next = () => navigate(withQuery(path, query, { page: nextToken, back: [...back, page || "-"].join(",") }));
  if (!page && !nextToken) return total !== undefined ? <p className="muted">{total === 1 ? "1 item" : `${total} items`}</p> : null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" onClick={prev} disabled={!page}>
        ← Previous
      </button>
      <span>
        Page {number}
        {total !== undefined && ` · ${shown} of ${total}`}
      </span>
      <button type="button" onClick={next} disabled={!nextToken}>
        Next →
      </button>
    </nav>
  );
}

/** A modal confirmation that names what goes; focus starts on Cancel, Escape cancels. */
export function Confirm({
  title,
  children,
  action,
  onConfirm,
  onCancel,
  busy,
  error,
}: {
  title: string;
  children: ReactNode;
  action: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  error?: unknown;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={id} onCancel={(e) => (e.preventDefault(), onCancel())} className="dialog">
      <h2 id={id}>{title}</h2>
      <div>{children}</div>
      {error !== undefined && <ErrorView error={error} />}
      <div className="actions">
        <button type="button" autoFocus onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
          {busy ? "Working…" : action}
        </button>
      </div>
    </dialog>
  );
}

/** A form in a dialog (create / edit). */
export function FormDialog({
  title,
  submit,
  onSubmit,
  onCancel,
  busy,
  error,
  children,
}: {
  title: string;
  submit: string;
  onSubmit: () => void;
  onCancel: () => void;
  busy?: boolean;
  error?: unknown;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const handle = (e: FormEvent) => {
    e.preventDefault();
    onSubmit();
  };
  return (
    <dialog ref={ref} aria-labelledby={id} onCancel={(e) => (e.preventDefault(), onCancel())} className="dialog">
      <form onSubmit={handle}>
        <h2 id={id}>{title}</h2>
        {children}
        {error !== undefined && <ErrorView error={error} />}
        <div className="actions">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Working…" : submit}
          </button>
        </div>
      </form>
    </dialog>
  );
}

export function Field({ label, children, hint }: { label: string; children: (id: string) => ReactNode; hint?: string }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
      {hint && <small className="muted">{hint}</small>}
    </div>
  );
}
