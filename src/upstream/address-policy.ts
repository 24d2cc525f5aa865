// Which network addresses upstream connections may reach (issue 9 §3). A REMOTE registry's url,
// its token realm and every redirect hop are chosen by whoever configures the registry or runs
// the upstream; without this fence they could point the service at its own network (cloud
// metadata at 169.254.169.254, databases on 10.x, the service itself). The rules are judged on
// the addresses actually dialled (src/upstream/transport.ts gives undici a connector that asks
// here), so spellings of an IP, DNS names and DNS rebinding all end at the same check.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { DomainError } from "../domain/errors.js";

/** The setting that opens the fence, named in every refusal. */
const ALLOW_SETTING = "UPSTREAM_ALLOWED_NETWORKS";

/** A connection the policy refuses: a configuration refusal, never worth a retry. */
export class AddressRefused extends DomainError {
  constructor(message: string) {
    super("permission-denied", message);
    this.name = "AddressRefused";
  }
}

/** 4 bytes for IPv4, 16 for IPv6. */
type Ip = Uint8Array;

interface Cidr {
  ip: Ip;
  prefix: number;
  /** As written in messages: `10.0.0.0/8`. */
  text: string;
}

/** One entry of UPSTREAM_ALLOWED_NETWORKS: a network, or a host name whose every address is allowed. */
export type AllowedNetwork = { kind: "cidr"; cidr: Cidr } | { kind: "host"; host: string };

// ---- addresses ----

/** The bytes of an IP literal (IPv6 zone ids ignored), or undefined when `text` is not one. */
function parseIp(text: string): Ip | undefined {
  const bare = text.replace(/%.*$/, "");
  const family = isIP(bare);
  if (family === 4) return Uint8Array.from(bare.split(".").map(Number));
  if (family !== 6) return undefined;
  const [head = "", tail] = bare.split("::");
  const groups = (part: string): number[] => {
    const out: number[] = [];
    for (const g of part === "" ? [] : part.split(":")) {
      if (g.includes(".")) {
        const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const ip = new Uint8Array(16);
  all.forEach((g, i) => {
    ip[2 * i] = g >> 8;
    ip[2 * i + 1] = g & 0xff;
  });
  return ip;
}

function formatIp(ip: Ip): string {
  if (ip.length === 4) return ip.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i]! << 8) | ip[i + 1]!).toString(16));
  // Shorten the longest run of zero groups, as URL and `ip` print them.
  const joined = groups.join(":");
  const runs = [...joined.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].sort((a, b) => b[0].length - a[0].length);
  const run = runs[0];
  if (!run) return joined;
  return `${joined.slice(0, run.index)}::${joined.slice(run.index + run[0].length)}`;
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

/** `a.b.c.d/n`, `x::/n` or a bare IP (a /32 or /128); a string says why not. */
export function parseCidr(text: string): Cidr | string {
  const [address = "", prefixText, extra] = text.split("/");
  const ip = parseIp(address);
  if (!ip || address.includes("%") || extra !== undefined) return `${JSON.stringify(text)} is not an IP address or network`;
  const bits = ip.length * 8;
  if (prefixText === undefined) return { ip, prefix: bits, text: formatIp(ip) };
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return `${JSON.stringify(text)}: the prefix length must be 0 to ${bits}`;
  const masked = mask(ip, prefix);
  if (!masked.every((b, i) => b === ip[i])) {
    return `${JSON.stringify(text)} has bits set past its /${prefix} prefix; did you mean ${formatIp(masked)}/${prefix}?`;
  }
  return { ip, prefix, text: `${formatIp(ip)}/${prefix}` };
}

function mask(ip: Ip, prefix: number): Ip {
  return ip.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

function contains(net: Cidr, ip: Ip): boolean {
  if (net.ip.length !== ip.length) return false;
  const masked = mask(ip, net.prefix);
  return masked.every((b, i) => b === net.ip[i]);
}

/**
 * The IPv4 address an IPv6 address carries and reaches, if any: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo
 * (2001:0::, the client address obfuscated in the last 32 bits).
 */
function embeddedIPv4(ip: Ip): Ip | undefined {
  if (ip.length !== 16) return undefined;
  const zero = (from: number, to: number) => ip.subarray(from, to).every((b) => b === 0);
  if (zero(0, 10) && ip[10] === 0xff && ip[11] === 0xff) return ip.slice(12);
  if (zero(0, 12)) return ip.slice(12);
  if (contains(NAT64, ip)) return ip.slice(12);
  if (ip[0] === 0x20 && ip[1] === 0x02) return ip.slice(2, 6);
  if (ip[0] === 0x20 && ip[1] === 0x01 && ip[2] === 0 && ip[3] === 0) return ip.slice(12).map((b) => b ^ 0xff);
  return undefined;
}

const NAT64 = cidr("64:ff9b::/96");
// All of it reaches a listener bound to 0.0.0.0, not only the interface's 127.0.0.1.
const LOOPBACK_V4 = cidr("127.0.0.0/8");

/** Special-purpose ranges (RFC 6890 and successors) an upstream may not reach by default. */
const SPECIAL: [Cidr, string][] = [
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared (carrier-grade NAT)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved (IETF protocol assignments)"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "reserved (benchmarking)"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["100::/64", "reserved (discard-only)"],
  ["64:ff9b:1::/48", "private (local-use NAT64)"],
  ["fc00::/7", "private (unique local)"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "private (site-local)"],
  ["ff00::/8", "multicast"],
].map(([text, rule]) => [cidr(text!), rule!]);

export interface Classification {
  /** e.g. "link-local" */
  rule: string;
  /** The range, e.g. 169.254.0.0/16 */
  range: string;
  /** The IPv4 address judged, when it was carried inside an IPv6 one. */
  embedded?: string;
}

/** The special-purpose range `address` falls in (judging an IPv6 address by the IPv4 it carries), or undefined for a public address. */
export function classify(address: string | Ip): Classification | undefined {
  const ip = typeof address === "string" ? parseIp(address) : address;
  if (!ip) return undefined;
  const direct = SPECIAL.find(([net]) => contains(net, ip));
  if (direct) return { rule: direct[1], range: direct[0].text };
  const v4 = embeddedIPv4(ip);
  if (!v4) return undefined;
  const inner = SPECIAL.find(([net]) => contains(net, v4));
  return inner ? { rule: inner[1], range: inner[0].text, embedded: formatIp(v4) } : undefined;
}

// ---- the allow-list ----

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

const normaliseHost = (host: string) => host.toLowerCase().replace(/\.$/, "");

/** UPSTREAM_ALLOWED_NETWORKS: a comma list of CIDRs, bare IPs and host names. */
export function parseAllowedNetworks(raw: string): { networks: AllowedNetwork[]; problems: string[] } {
  const networks: AllowedNetwork[] = [];
  const problems: string[] = [];
  for (const entry of raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    if (/^[\d.]+(\/\d*)?$/.test(entry) || entry.includes(":") || entry.includes("/")) {
      const parsed = parseCidr(entry);
      if (typeof parsed === "string")
        problems.push(`${ALLOW_SETTING}: ${parsed} (expected a network such as 10.1.0.0/16 or fd00::/8, an IP, or a host name without a port)`);
      else networks.push({ kind: "cidr", cidr: parsed });
    } else if (HOST_NAME.test(normaliseHost(entry))) {
      networks.push({ kind: "host", host: normaliseHost(entry) });
    } else {
      problems.push(`${ALLOW_SETTING}: ${JSON.stringify(entry)} is neither a network (10.1.0.0/16, fd00::/8, an IP) nor a host name`);
    }
  }
  return { networks, problems };
}

/** The service's own listeners: the addresses and ports it bound. */
export interface Listening {
  address: string;
  port: number;
}

/** A `dns.lookup` with `all: true` (tests inject answers to play DNS rebinding). */
export type Resolver = (
  hostname: string,
  options: { all: true; family?: number; hints?: number },
  callback: (err: Error | null, addresses: LookupAddress[]) => void,
) => void;

/** net.connect's `lookup` option. */
export type ConnectLookup = (
  hostname: string,
  options: { all?: boolean; family?: number | string; hints?: number },
  callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
) => void;

export interface AddressPolicyOptions {
  /** What the operator opened (UPSTREAM_ALLOWED_NETWORKS). */
  allowed?: readonly AllowedNetwork[];
  /** The listeners of this service, known once it listens; never reachable, whatever is allowed. */
  ownListeners?: () => readonly Listening[];
  resolve?: Resolver;
  /**
   * Whose connections these are, for the refusals' wording: REMOTE registries' upstreams (the
   * default) or webhook endpoints (src/events/delivery.ts), which pass the same fence.
   */
  purpose?: "upstream" | "webhook";
}

const WORDING = {
  upstream: { target: "upstream", who: "REMOTE registries", loop: "a REMOTE registry pointing at the service itself would loop" },
  webhook: { target: "webhook endpoint", who: "webhooks", loop: "a webhook pointing at the service itself would send it its own events" },
} as const;

const defaultResolver: Resolver = (hostname, options, callback) => dnsLookup(hostname, options, callback);

export class AddressPolicy {
  private readonly hosts: Set<string>;
  private readonly networks: Cidr[];
  private readonly ownListeners: () => readonly Listening[];
  private readonly wording: (typeof WORDING)[keyof typeof WORDING];
  readonly resolve: Resolver;

  constructor(options: AddressPolicyOptions = {}) {
    this.wording = WORDING[options.purpose ?? "upstream"];
    const allowed = options.allowed ?? [];
    this.hosts = new Set(allowed.flatMap((a) => (a.kind === "host" ? [a.host] : [])));
    this.networks = allowed.flatMap((a) => (a.kind === "cidr" ? [a.cidr] : []));
    this.ownListeners = options.ownListeners ?? (() => []);
    this.resolve = options.resolve ?? defaultResolver;
  }

  /**
   * Whether a connection to `host:port` may go to `address` (one of the addresses `host` resolved
   * to, or `host` itself when it is an IP literal): undefined when it may, the refusal otherwise.
   */
  check(host: string, port: number, address: string): AddressRefused | undefined {
    const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    const refuse = (why: string) => new AddressRefused(`connection to ${this.wording.target} ${target} refused: ${why}`);
    const ip = parseIp(address);
    if (!ip) return refuse(`${JSON.stringify(address)} is not an IP address`);
    const viaName = normaliseHost(host) !== normaliseHost(address);
    const subject = (what: string) => (viaName ? `${target} resolves to ${what}, which` : what);
    if (this.isOwnListener(ip, port)) {
      return refuse(`${subject(address)} is this service's own listener on port ${port}; ${this.wording.loop}, so ${ALLOW_SETTING} cannot allow it`);
    }
    if (this.hosts.has(normaliseHost(host))) return undefined;
    const v4 = ip.length === 16 ? embeddedIPv4(ip) : undefined;
    if (this.networks.some((n) => contains(n, ip) || (v4 !== undefined && contains(n, v4)))) return undefined;
    const special = classify(ip);
    if (!special) return undefined;
    const what = special.embedded ? `${address} (IPv4 ${special.embedded})` : address;
    const example = viaName ? normaliseHost(host) : special.embedded ? `${special.embedded}/32` : `${formatIp(ip)}/${ip.length * 8}`;
    return refuse(
      `${subject(what)} is ${special.rule} (${special.range}); ${this.wording.who} may not reach such addresses unless the operator allows them in ${ALLOW_SETTING} (e.g. ${example})`,
    );
  }

  /**
   * A `lookup` for net.connect on `port`: resolves, keeps the addresses the policy allows and
   * refuses the connection when none is left. Node calls it for every connection it makes to a
   * host name (it skips it for IP literals, which the connector checks itself), so each new
   * connection, keep-alive pool refills included, is judged on a fresh answer: DNS rebinding meets
   * the same check. Dropping refused addresses rather than refusing the name keeps a dual-stack
   * `localhost` (::1 and 127.0.0.1) usable when only 127.0.0.0/8 is allowed.
   */
  lookupFor(port: number): ConnectLookup {
    return (hostname, options, callback) => {
      const family = options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : Number(options.family ?? 0);
      this.resolve(hostname, { all: true, family, hints: options.hints }, (err, addresses) => {
        if (err) return callback(err, "");
        let refusal: AddressRefused | undefined;
        const allowed = addresses.filter((a) => {
          const why = this.check(hostname, port, a.address);
          refusal ??= why;
          return why === undefined;
        });
        if (allowed.length === 0) return callback(refusal ?? Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "");
        if (options.all) return callback(null, allowed);
        callback(null, allowed[0]!.address, allowed[0]!.family);
      });
    };
  }

  private isOwnListener(ip: Ip, port: number): boolean {
    const listeners = this.ownListeners().filter((l) => l.port === port);
    if (listeners.length === 0) return false;
    const target = unwrap(ip);
    const unspecified = (a: Ip) => a.every((b) => b === 0);
    for (const l of listeners) {
      const bound = parseIp(l.address);
      if (!bound) continue;
      const at = unwrap(bound);
      // 0.0.0.0 and :: as a destination mean this host on Linux.
      if (unspecified(target) || same(at, target)) return true;
      if (unspecified(at) && (contains(LOOPBACK_V4, target) || localAddresses().some((local) => same(local, target)))) return true;
    }
    return false;
  }
}

/** An IPv4-mapped IPv6 address as its IPv4 address; anything else as it is. */
function unwrap(ip: Ip): Ip {
  const zero10 = ip.length === 16 && ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
  return zero10 ? ip.slice(12) : ip;
}

function same(a: Ip, b: Ip): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Every address a socket bound to 0.0.0.0 or :: answers on: loopback and each interface's. */
function localAddresses(): Ip[] {
  const out: Ip[] = [];
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.push(unwrap(parseIp(i.address)!));
  out.push(parseIp("::1")!);
  return out;
}
