// WWW-Authenticate (RFC 9110 §11.6.1): one header may hold several challenges, each a scheme and
// either a token68 or comma-separated auth-params whose values may be quoted strings with commas
// and backslash escapes inside. Registries send e.g.
//   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"
//   Basic realm="Registry Realm"

export interface Challenge {
  /** Lower-cased: "bearer", "basic", … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const TOKEN68 = /[A-Za-z0-9._~+/-]/;

/** Every challenge in the header(s), in order; malformed parts end the parse, never throw. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  const s = header;
  let i = 0;
  const out: Challenge[] = [];

  const skip = (chars: string) => {
    while (i < s.length && chars.includes(s[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string => {
    // s[i] === '"'
    let value = "";
    i++;
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      value += s[i];
      i++;
    }
    i++; // closing quote (or end)
    return value;
  };
  /** At i: `name = value`? Leaves i unchanged and returns undefined when it is not one. */
  const param = (): [string, string] | undefined => {
    const start = i;
    const name = token();
    skip(" \t");
    // `abc==` is a token68, not the param "abc" with an empty value.
    if (name === "" || s[i] !== "=" || s[i + 1] === "=") {
      i = start;
      return undefined;
    }
    i++;
    skip(" \t");
    if (s[i] === '"') return [name.toLowerCase(), quoted()];
    const value = token();
    if (value === "") {
      i = start;
      return undefined;
    }
    return [name.toLowerCase(), value];
  };

  while (i < s.length) {
    skip(" \t,");
    const scheme = token();
    if (scheme === "") break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skip(" \t");
    const first = i;
    if (param() === undefined) {
      // token68 (e.g. `Negotiate abc==`), or no parameters at all.
      const start = i;
      while (i < s.length && TOKEN68.test(s[i]!)) i++;
      while (s[i] === "=") i++;
      if (i > start) challenge.params[""] = s.slice(start, i);
      continue;
    }
    // Params separated by commas, until something that is not one (the next challenge's scheme).
    i = first;
    for (;;) {
      const p = param();
      if (!p) break;
      challenge.params[p[0]] = p[1];
      skip(" \t");
      if (s[i] !== ",") break;
      const mark = i;
      i++;
      skip(" \t,");
      const save = i;
      if (param() === undefined) {
        i = mark;
        break;
      }
      i = save;
    }
  }
  return out;
}

/** The challenge we can answer best: Bearer before Basic; undefined when neither is offered. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === "bearer" && c.params.realm) ?? challenges.find((c) => c.scheme === "basic");
}
