// The shell: sign-in gate, header (who am I, sign out, jump to an image), navigation that follows
// the caller's roles, and the screen the URL names.
import { useQuery } from "@connectrpc/connect-query";
import { createContext, lazy, Suspense, useContext, useEffect, useId, useState, useSyncExternalStore, type FormEvent } from "react";
import { AccountService } from "../../gen/artifact/v1/account_pb.js";
import { ErrorView, Loading } from "./components.js";
import { Roles } from "./roles.js";
import { Link, navigate, paths, useLocation } from "./router.js";
import { onSessionChange, session, signOut } from "./session.js";
import { SignIn } from "./screens/signin.js";
import { Registries, Namespaces, Repositories } from "./screens/browse.js";
import { Tags } from "./screens/tags.js";
// Loaded when first opened: the browse screens, the first a person sees, stay in the main bundle.
const Image = lazy(() => import("./screens/image.js").then((m) => ({ default: m.Image })));
const Search = lazy(() => import("./screens/search.js").then((m) => ({ default: m.Search })));
const Sync = lazy(() => import("./screens/sync.js").then((m) => ({ default: m.Sync })));
const admin = () => import("./screens/admin.js");
const GarbageCollection = lazy(() => admin().then((m) => ({ default: m.GarbageCollection })));
const Audit = lazy(() => admin().then((m) => ({ default: m.Audit })));
const Accounts = lazy(() => admin().then((m) => ({ default: m.Accounts })));
const Tokens = lazy(() => admin().then((m) => ({ default: m.Tokens })));
const Bindings = lazy(() => admin().then((m) => ({ default: m.Bindings })));
const WhoAmI = lazy(() => admin().then((m) => ({ default: m.Me })));

export interface Me {
  name: string;
  roles: Roles;
  authenticatedBy: string;
}

const MeContext = createContext<Me>({ name: "", roles: new Roles([]), authenticatedBy: "" });
export const useMe = () => useContext(MeContext);

export function App() {
  const signedIn = useSyncExternalStore(onSessionChange, () => session() !== undefined);
  const { path, query } = useLocation();
  if (!signedIn || path === "/signin") {
    if (signedIn && path === "/signin") {
      navigate(safeNext(query.get("next")), { replace: true });
      return null;
    }
    return <SignIn next={path === "/signin" ? safeNext(query.get("next")) : path + location.search} />;
  }
  return <SignedIn />;
}

/** Only a path of this app: never another origin. */
function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

/** Before WhoAmI answers: no roles, so nothing that needs one shows (it appears when they are known). */
const UNKNOWN: Me = { name: "", roles: new Roles([]), authenticatedBy: "" };

function SignedIn() {
  // Not waited for: the screen's own calls go out at the same time.
  const who = useQuery(AccountService.method.whoAmI, {});
  const me: Me = who.data
    ? { name: who.data.account?.name ?? "anonymous", roles: new Roles(who.data.roleBindings), authenticatedBy: who.data.authenticatedBy }
    : UNKNOWN;
  return (
    <MeContext.Provider value={me}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" className="page" tabIndex={-1}>
        {who.isError ? (
          <ErrorView error={who.error} retry={() => void who.refetch()} />
        ) : (
          <Suspense fallback={<Loading what="the screen" />}>
            <Screen />
          </Suspense>
        )}
      </main>
    </MeContext.Provider>
  );
}

function Header() {
  const me = useMe();
  const { path } = useLocation();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  const links: [string, string, boolean][] = [
    ["Browse", paths.home(), true],
    ["Search", paths.search(""), true],
    ["My tokens", paths.tokens(), true],
    ["Accounts", paths.accounts(), me.roles.administrator],
    ["Role bindings", paths.bindings(), me.roles.adminSomewhere],
    ["Garbage collection", paths.gc(), me.roles.administrator],
    ["Audit log", paths.audit(), me.roles.administrator],
  ];
  return (
    <header className="top">
      <Link to="/" className="brand">
        Artifact Service
      </Link>
      <JumpBox />
      <button type="button" className="menu-toggle" aria-expanded={open} aria-controls="nav" onClick={() => setOpen(!open)}>
        Menu
      </button>
      <nav id="nav" aria-label="Main" className={open ? "open" : ""}>
        <ul>
          {links
            .filter(([, , shown]) => shown)
            .map(([label, to]) => (
              <li key={to}>
                <Link to={to} aria-current={path === to.split("?")[0] ? "page" : undefined}>
                  {label}
                </Link>
              </li>
            ))}
        </ul>
        <div className="who">
          <Link to={paths.me()} title="Who am I">
            {me.name || "Who am I"}
          </Link>
          <button type="button" onClick={() => void signOut().then(() => navigate("/signin"))}>
            Sign out
          </button>
        </div>
      </nav>
    </header>
  );
}

/** Jump to an image by its full name (`local/team/app:1.0`, `…@sha256:…`) or a repository (`local/team/app`). */
function JumpBox() {
  const id = useId();
  const [text, setText] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const ref = text.trim();
    if (!ref) return;
    const at = ref.indexOf("@");
    const lastSlash = ref.lastIndexOf("/");
    const colon = ref.indexOf(":", lastSlash);
    if (at > 0) navigate(paths.image(ref.slice(0, at), ref.slice(at + 1)));
    else if (colon > 0) navigate(paths.image(ref.slice(0, colon), ref.slice(colon + 1)));
    else if (ref.split("/").length >= 3) navigate(paths.repository(ref));
    else navigate(paths.search(ref));
    setText("");
  };
  return (
    <form className="jump" role="search" onSubmit={submit}>
      <label htmlFor={id} className="visually-hidden">
        Go to image
      </label>
      <input id={id} type="search" placeholder="Go to image: local/team/app:1.0" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit">Go</button>
    </form>
  );
}

function Screen() {
  const { path } = useLocation();
  const parts = path
    .split("/")
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  const [head, ...rest] = parts;
  switch (head) {
    case undefined:
      return <Registries />;
    case "browse":
      if (rest.length === 1) return <Namespaces registry={rest[0]!} />;
      if (rest.length === 2 && rest[1] === "~sync") return <Sync registry={rest[0]!} />;
      if (rest.length === 2) return <Repositories registry={rest[0]!} namespace={rest[1]!} />;
      break;
    case "repo":
      if (rest.length >= 3) return <Tags repository={rest.join("/")} />;
      break;
    case "image": {
      const full = rest.join("/");
      const at = full.lastIndexOf("@");
      const colon = full.lastIndexOf(":");
      if (at > 0) return <Image repository={full.slice(0, at)} reference={full.slice(at + 1)} />;
      if (colon > full.lastIndexOf("/")) return <Image repository={full.slice(0, colon)} reference={full.slice(colon + 1)} />;
      break;
    }
    case "search":
      return <Search />;
    case "me":
      return <WhoAmI />;
    case "tokens":
      return <Tokens />;
    case "admin":
      if (rest[0] === "gc") return <GarbageCollection />;
      if (rest[0] === "accounts") return <Accounts />;
      if (rest[0] === "bindings") return <Bindings />;
      if (rest[0] === "audit") return <Audit />;
      break;
  }
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{path}</code>. <Link to="/">Go to the registries</Link>.
      </p>
    </section>
  );
}
