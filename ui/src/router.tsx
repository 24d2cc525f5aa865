// A small router over the History API: every screen has its own URL (a reload or a shared link
// lands on the same place), links are real <a href> (open in a new tab, keyboard), and the app
// navigates without reloading.
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from "react";

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const snapshot = () => location.pathname + location.search;

/** The current path and query string; re-renders on navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const value = useSyncExternalStore(subscribe, snapshot);
  const [path, search = ""] = value.split("?", 2) as [string, string?];
  return { path, query: new URLSearchParams(search) };
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.scrollTo(0, 0);
  listeners.forEach((l) => l());
}

/** Replaces some query parameters of the current URL (empty values are dropped). */
export function withQuery(path: string, query: URLSearchParams, changes: Record<string, string | undefined>): string {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value) next.set(key, value);
    else next.delete(key);
  }
  const text = next.toString();
  return text ? `${path}?${text}` : path;
}

export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    rest.onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a {...rest} href={to} onClick={onClick} />;
}

/** A path segment, escaped (names may hold `.`, `-`, `_`; ids are UUIDs). */
export const seg = (s: string) => encodeURIComponent(s);

/** Paths of the screens, in one place. */
export const paths = {
  home: () => "/",
  signIn: (next?: string) => (next && next !== "/" ? `/signin?next=${encodeURIComponent(next)}` : "/signin"),
  registry: (registry: string) => `/browse/${seg(registry)}`,
  namespace: (registry: string, namespace: string) => `/browse/${seg(registry)}/${seg(namespace)}`,
  /** The tag list of a repository, by its image name `<registry>/<namespace>/<repository>`. */
  repository: (fullName: string) => `/repo/${fullName.split("/").map(seg).join("/")}`,
  /** An image by `<repository image name>:<tag>` or `@<digest>`. */
  image: (repositoryFullName: string, reference: string) =>
    `/image/${repositoryFullName.split("/").map(seg).join("/")}${reference.includes(":") ? "@" : ":"}${seg(reference)}`,
  search: (q: string) => `/search?q=${encodeURIComponent(q)}`,
  me: () => "/me",
  gc: () => "/admin/gc",
  accounts: () => "/admin/accounts",
  tokens: () => "/tokens",
  bindings: () => "/admin/bindings",
  audit: () => "/admin/audit",
  sync: (registry: string) => `/browse/${seg(registry)}/~sync`,
};
