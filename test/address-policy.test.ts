// The address policy of upstream connections (src/upstream/address-policy.ts), as a unit: which
// addresses are special, every spelling of one, the allow-list, the service's own listeners, and the
// `lookup` that judges each fresh DNS answer (DNS rebinding). test/upstream-fence.test.ts drives the
// same rules through real servers.
import type { LookupAddress } from "node:dns";
import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { loadConfig, ConfigError } from "../src/config.js";
import { AddressPolicy, AddressRefused, classify, parseAllowedNetworks, parseCidr, type Listening, type Resolver } from "../src/upstream/address-policy.js";

const allow = (raw: string) => parseAllowedNetworks(raw).networks;

describe("classify", () => {
  it.each([
    ["127.0.0.1", "loopback", "127.0.0.0/8"],
    ["127.255.255.254", "loopback", "127.0.0.0/8"],
    ["10.1.2.3", "private", "10.0.0.0/8"],
    ["172.16.0.1", "private", "172.16.0.0/12"],
    ["172.31.255.255", "private", "172.16.0.0/12"],
    ["192.168.1.1", "private", "192.168.0.0/16"],
    ["169.254.169.254", "link-local", "169.254.0.0/16"],
    ["100.100.100.200", "shared (carrier-grade NAT)", "100.64.0.0/10"],
    ["0.0.0.0", "unspecified", "0.0.0.0/8"],
    ["224.0.0.1", "multicast", "224.0.0.0/4"],
    ["255.255.255.255", "reserved", "240.0.0.0/4"],
    ["::1", "loopback", "::1/128"],
    ["::", "unspecified", "::/128"],
    ["fe80::1", "link-local", "fe80::/10"],
    ["fe80::1%eth0", "link-local", "fe80::/10"],
    ["fd00:ec2::254", "private (unique local)", "fc00::/7"],
    ["fc00::1", "private (unique local)", "fc00::/7"],
    ["ff02::1", "multicast", "ff00::/8"],
  ])("%s is %s (%s)", (address, rule, range) => {
    expect(classify(address)).toEqual({ rule, range });
  });

  it.each([
    // IPv4-mapped, both spellings
    ["::ffff:127.0.0.1", "loopback", "127.0.0.1"],
    ["::ffff:7f00:1", "loopback", "127.0.0.1"],
    ["0:0:0:0:0:ffff:a9fe:a9fe", "link-local", "169.254.169.254"],
    // IPv4-compatible (deprecated)
    ["::127.0.0.1", "loopback", "127.0.0.1"],
    // NAT64
    ["64:ff9b::10.0.0.1", "private", "10.0.0.1"],
    ["64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254"],
    // 6to4 of 169.254.169.254
    ["2002:a9fe:a9fe::1", "link-local", "169.254.169.254"],
    // Teredo, client 127.0.0.1 obfuscated
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback", "127.0.0.1"],
  ])("%s is judged by the IPv4 address it carries: %s", (address, rule, embedded) => {
    expect(classify(address)).toMatchObject({ rule, embedded });
  });

  it.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"])(
    "%s is public",
    (address) => {
      expect(classify(address)).toBeUndefined();
    },
  );
});

describe("URL spellings of loopback all end at 127.0.0.1 (WHATWG URL normalises them, the policy refuses)", () => {
  const policy = new AddressPolicy();
  it.each([
    "http://2130706433:5000",
    "http://0x7f.1:5000",
    "http://0x7f000001:5000",
    "http://0177.0.0.1:5000",
    "http://017700000001:5000",
    "http://127.1:5000",
    "http://[::ffff:127.0.0.1]:5000",
    "http://[0:0:0:0:0:ffff:7f00:1]:5000",
    "http://[::1]:5000",
  ])("%s", (spelling) => {
    const url = new URL(spelling);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const refusal = policy.check(host, 5000, host);
    expect(refusal).toBeInstanceOf(AddressRefused);
    expect(refusal!.kind).toBe("permission-denied");
    expect(refusal!.message).toMatch(/is loopback/);
    expect(refusal!.message).toContain("UPSTREAM_ALLOWED_NETWORKS");
  });
});

describe("parseAllowedNetworks", () => {
  it("takes networks, bare IPs and host names", () => {
    const { networks, problems } = parseAllowedNetworks(" 10.1.0.0/16, fd00::/8 ,192.0.2.7,::1, Registry.Internal., ,");
    expect(problems).toEqual([]);
    expect(networks.map((n) => (n.kind === "cidr" ? n.cidr.text : `host ${n.host}`))).toEqual([
      "10.1.0.0/16",
      "fd00::/8",
      "192.0.2.7",
      "::1",
      "host registry.internal",
    ]);
  });

  it.each([
    ["10.1.2.3/8", "did you mean 10.0.0.0/8?"],
    ["10.0.0.0/33", "prefix length must be 0 to 32"],
    ["fd00::/129", "prefix length must be 0 to 128"],
    ["1.2.3", "not an IP address or network"],
    ["registry.internal:5000", "host name without a port"],
    ["bad host!", "neither a network"],
    ["10.0.0.0/8/1", "not an IP address or network"],
  ])("refuses %j: %s", (raw, why) => {
    const { problems } = parseAllowedNetworks(raw);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("UPSTREAM_ALLOWED_NETWORKS");
    expect(problems[0]).toContain(why);
  });

  it("is read by loadConfig, and a bad entry stops the start naming the variable", () => {
    expect(loadConfig({}).upstream.allowedNetworks).toEqual([]);
    expect(loadConfig({ UPSTREAM_ALLOWED_NETWORKS: "127.0.0.0/8,registry.internal" }).upstream.allowedNetworks).toHaveLength(2);
    expect(() => loadConfig({ UPSTREAM_ALLOWED_NETWORKS: "10.1.2.3/8" })).toThrow(ConfigError);
    expect(() => loadConfig({ UPSTREAM_ALLOWED_NETWORKS: "10.1.2.3/8" })).toThrow(/UPSTREAM_ALLOWED_NETWORKS/);
  });

  it("parseCidr prints networks the way URLs and ip(8) do", () => {
    expect(parseCidr("2001:0db8:0000:0000:0000:0000:0000:0000/32")).toMatchObject({ text: "2001:db8::/32" });
    expect(parseCidr("fe80:0:0:0:0:0:0:0/10")).toMatchObject({ text: "fe80::/10" });
  });
});

describe("AddressPolicy.check", () => {
  it("refuses special addresses by default, naming host, address, rule and setting", () => {
    const refusal = new AddressPolicy().check("169.254.169.254", 80, "169.254.169.254")!;
    expect(refusal.message).toBe(
      "connection to upstream 169.254.169.254:80 refused: 169.254.169.254 is link-local (169.254.0.0/16); REMOTE registries may not reach such addresses unless the operator allows them in UPSTREAM_ALLOWED_NETWORKS (e.g. 169.254.169.254/32)",
    );
    const named = new AddressPolicy().check("metadata.example", 80, "169.254.169.254")!;
    expect(named.message).toContain("metadata.example:80 resolves to 169.254.169.254, which is link-local");
    expect(named.message).toContain("(e.g. metadata.example)");
    expect(new AddressPolicy().check("registry.example", 443, "8.8.8.8")).toBeUndefined();
  });

  it("opens what the allow-list names: networks (IPv4 ones in their IPv6-mapped spelling too), IPs and host names", () => {
    const policy = new AddressPolicy({ allowed: allow("10.1.0.0/16,fd00::/8,192.168.7.7,registry.internal") });
    expect(policy.check("10.1.2.3", 80, "10.1.2.3")).toBeUndefined();
    expect(policy.check("::ffff:a01:203", 80, "::ffff:a01:203")).toBeUndefined();
    expect(policy.check("10.2.0.1", 80, "10.2.0.1")).toBeInstanceOf(AddressRefused);
    expect(policy.check("fd12::1", 80, "fd12::1")).toBeUndefined();
    expect(policy.check("fc00::1", 80, "fc00::1")).toBeInstanceOf(AddressRefused);
    expect(policy.check("192.168.7.7", 80, "192.168.7.7")).toBeUndefined();
    expect(policy.check("192.168.7.8", 80, "192.168.7.8")).toBeInstanceOf(AddressRefused);
    // A host name entry allows whatever that name resolves to, and nothing else.
    expect(policy.check("registry.internal", 5000, "127.0.0.1")).toBeUndefined();
    expect(policy.check("REGISTRY.internal.", 5000, "169.254.1.1")).toBeUndefined();
    expect(policy.check("other.internal", 5000, "127.0.0.1")).toBeInstanceOf(AddressRefused);
  });

  it("never reaches the service's own listeners, whatever is allowed", () => {
    const listeners: Listening[] = [{ address: "127.0.0.1", port: 8080 }];
    const policy = new AddressPolicy({ allowed: allow("127.0.0.0/8,0.0.0.0/0,::/0,localhost"), ownListeners: () => listeners });
    const own = policy.check("127.0.0.1", 8080, "127.0.0.1")!;
    expect(own.message).toContain("is this service's own listener on port 8080");
    expect(own.message).toContain("UPSTREAM_ALLOWED_NETWORKS cannot allow it");
    expect(policy.check("localhost", 8080, "127.0.0.1")).toBeInstanceOf(AddressRefused);
    expect(policy.check("::ffff:7f00:1", 8080, "::ffff:7f00:1")).toBeInstanceOf(AddressRefused);
    // 0.0.0.0 as a destination is this host.
    expect(policy.check("0.0.0.0", 8080, "0.0.0.0")).toBeInstanceOf(AddressRefused);
    // Another port, or another loopback address than the one bound, is someone else.
    expect(policy.check("127.0.0.1", 8081, "127.0.0.1")).toBeUndefined();
    expect(policy.check("127.0.0.2", 8080, "127.0.0.2")).toBeUndefined();

    // Bound to every address: every local address reaches it, all of 127.0.0.0/8 too.
    listeners.splice(0, 1, { address: "::", port: 9090 });
    const interfaceAddress = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal)?.address;
    for (const address of ["127.0.0.1", "127.0.0.5", "::1", "::", ...(interfaceAddress ? [interfaceAddress] : [])]) {
      expect(policy.check(address, 9090, address), address).toBeInstanceOf(AddressRefused);
    }
    expect(policy.check("8.8.8.8", 9090, "8.8.8.8")).toBeUndefined();
  });
});

describe("AddressPolicy.lookupFor (what Node calls before dialling a host name)", () => {
  /** A resolver answering from a script, one answer per call, counting the calls. */
  function scripted(...answers: string[][]): Resolver & { calls: number } {
    const resolver = ((_host, _options, callback) => {
      const answer = answers[Math.min(resolver.calls++, answers.length - 1)]!;
      callback(
        null,
        answer.map((address): LookupAddress => ({ address, family: address.includes(":") ? 6 : 4 })),
      );
    }) as Resolver & { calls: number };
    resolver.calls = 0;
    return resolver;
  }

  function lookup(policy: AddressPolicy, host: string, all: boolean): Promise<unknown> {
    return new Promise((resolve, reject) =>
      policy.lookupFor(443)(host, { all }, (err, address, family) => (err ? reject(err) : resolve(all ? address : { address, family }))),
    );
  }

  it("judges every answer afresh: public first, loopback on the next connection is refused (DNS rebinding)", async () => {
    const resolve = scripted(["93.184.215.14"], ["127.0.0.1"]);
    const policy = new AddressPolicy({ resolve });
    expect(await lookup(policy, "rebind.example", false)).toEqual({ address: "93.184.215.14", family: 4 });
    const err = await lookup(policy, "rebind.example", false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressRefused);
    expect((err as Error).message).toContain("rebind.example:443 resolves to 127.0.0.1, which is loopback");
    expect(resolve.calls).toBe(2);
  });

  it("dials only the allowed addresses of a mixed answer, and refuses when none is left", async () => {
    const policy = new AddressPolicy({ allowed: allow("127.0.0.0/8"), resolve: scripted(["::1", "127.0.0.1"]) });
    expect(await lookup(policy, "localhost", true)).toEqual([{ address: "127.0.0.1", family: 4 }]);
    expect(await lookup(policy, "localhost", false)).toEqual({ address: "127.0.0.1", family: 4 });
    const none = new AddressPolicy({ resolve: scripted(["10.0.0.1", "fd00::1"]) });
    await expect(lookup(none, "db.example", true)).rejects.toThrow(/db.example:443 resolves to 10.0.0.1, which is private/);
  });

  it("passes DNS failures through as they are", async () => {
    const policy = new AddressPolicy({
      resolve: (_h, _o, callback) => callback(Object.assign(new Error("getaddrinfo ENOTFOUND x.invalid"), { code: "ENOTFOUND" }), []),
    });
    await expect(lookup(policy, "x.invalid", true)).rejects.toMatchObject({ code: "ENOTFOUND" });
  });
});
