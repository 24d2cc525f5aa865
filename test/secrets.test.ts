// The Sealer on its own: what it writes, what it opens (both formats, every configured key), and
// how it refuses what it cannot open (another key, damaged bytes, no key, garbage).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDomainError } from "../src/domain/errors.js";
import { keyId, Sealer, UnopenableCredential, type Credential } from "../src/secrets.js";
import { sealV1 } from "./support/sealing.js";

const A = Buffer.alloc(32, 0xa1);
const B = Buffer.alloc(32, 0xb2);
const C = Buffer.alloc(32, 0xc3);
const basic: Credential = { kind: "basic", username: "robot", password: "pa55-PLAINTEXT" };
const token: Credential = { kind: "token", token: "tok-PLAINTEXT" };

function reasonOf(open: () => unknown): string | undefined {
  try {
    open();
  } catch (err) {
    if (err instanceof UnopenableCredential) return err.reason;
    throw err;
  }
  return undefined;
}

/** Flips one bit of the sealed bytes (after the `v2:<id>:` header). */
function tamper(sealed: string, byte: number): string {
  const at = sealed.lastIndexOf(":") + 1;
  const raw = Buffer.from(sealed.slice(at), "base64");
  raw[byte % raw.length]! ^= 0x01;
  return sealed.slice(0, at) + raw.toString("base64");
}

describe("Sealer", () => {
  it("seals as v2 under the first key's id, never in the clear, with a fresh nonce each time", () => {
    const sealer = new Sealer({ sealing: A, previous: [B] });
    const sealed = sealer.seal(basic);
    expect(sealed).toMatch(new RegExp(`^v2:${keyId(A)}:[A-Za-z0-9+/]+=*$`));
    expect(sealed).not.toContain("PLAINTEXT");
    expect(sealer.seal(basic)).not.toBe(sealed);
    expect(sealer.open(sealed)).toEqual(basic);
    expect(sealer.state(sealed)).toBe("current");
  });

  it("names a key by a short hash that is stable and never the key", () => {
    expect(keyId(A)).toMatch(/^[0-9a-f]{8}$/);
    expect(keyId(A)).toBe(keyId(Buffer.alloc(32, 0xa1)));
    expect(keyId(A)).not.toBe(keyId(B));
    expect(A.toString("hex")).not.toContain(keyId(A));
  });

  it("opens what a previous key sealed, and says so", () => {
    const old = new Sealer({ sealing: A }).seal(token);
    const rotated = new Sealer({ sealing: B, previous: [C, A] });
    expect(rotated.open(old)).toEqual(token);
    expect(rotated.state(old)).toBe("previous");
  });

  it("opens v1 values under any configured key; they are never current", () => {
    const v1 = sealV1(A, basic);
    expect(new Sealer({ sealing: A }).open(v1)).toEqual(basic);
    expect(new Sealer({ sealing: A }).state(v1)).toBe("previous");
    expect(new Sealer({ sealing: B, previous: [A] }).open(v1)).toEqual(basic);
    expect(reasonOf(() => new Sealer({ sealing: B, previous: [C] }).open(v1))).toBe("unknown-key");
  });

  it("re-seals under the first key, and leaves what already is", () => {
    const rotated = new Sealer({ sealing: B, previous: [A] });
    for (const old of [new Sealer({ sealing: A }).seal(basic), sealV1(A, basic), sealV1(B, basic)]) {
      const again = rotated.reseal(old)!;
      expect(again).toMatch(new RegExp(`^v2:${keyId(B)}:`));
      expect(rotated.state(again)).toBe("current");
      expect(new Sealer({ sealing: B }).open(again)).toEqual(basic);
    }
    expect(rotated.reseal(rotated.seal(basic))).toBeUndefined();
    expect(() => rotated.reseal(new Sealer({ sealing: C }).seal(basic))).toThrow(UnopenableCredential);
  });

  it("refuses a value sealed under a key it does not have: unknown-key, and a message naming the remedy", () => {
    const sealed = new Sealer({ sealing: A }).seal(basic);
    const sealer = new Sealer({ sealing: C });
    expect(sealer.state(sealed)).toBe("unopenable");
    let thrown: unknown;
    try {
      sealer.open(sealed);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UnopenableCredential);
    expect((thrown as UnopenableCredential).reason).toBe("unknown-key");
    expect((thrown as UnopenableCredential).explain("hub")).toBe(
      `registry "hub": its stored credential cannot be opened with SECRET_KEY (the key changed?): put the old key in SECRET_KEY_PREVIOUS, or set the registry's credential again`,
    );
  });

  it("refuses damaged values: any flipped bit, a key id swapped for another configured key's, truncation", () => {
    const sealer = new Sealer({ sealing: A, previous: [B] });
    const sealed = sealer.seal(basic);
    const length = Buffer.from(sealed.slice(sealed.lastIndexOf(":") + 1), "base64").length;
    for (let byte = 0; byte < length; byte++) expect(reasonOf(() => sealer.open(tamper(sealed, byte)))).toBe("damaged");
    // The header is authenticated: relabelling a value with another key's id does not open it.
    expect(reasonOf(() => sealer.open(sealed.replace(keyId(A), keyId(B))))).toBe("damaged");
    expect(reasonOf(() => sealer.open(sealed.slice(0, 20)))).toBe("damaged");
    expect(reasonOf(() => sealer.open("v3:whatever"))).toBe("damaged");
    expect(new UnopenableCredential("damaged").explain("hub")).toContain("set the registry's credential again");
  });

  it("without any key, opens nothing (no-key) and seals nothing (FAILED_PRECONDITION naming SECRET_KEY)", () => {
    const none = new Sealer({});
    expect(none.canSeal).toBe(false);
    expect(reasonOf(() => none.open(new Sealer({ sealing: A }).seal(basic)))).toBe("no-key");
    expect(new UnopenableCredential("no-key").explain("hub")).toMatch(/^registry "hub": .*SECRET_KEY is not set/);
    let thrown: unknown;
    try {
      none.seal(basic);
    } catch (err) {
      thrown = err;
    }
    expect(isDomainError(thrown, "failed-precondition") && thrown.message).toContain("SECRET_KEY");
  });

  it("with only previous keys, opens but cannot seal or re-seal", () => {
    const openOnly = new Sealer({ previous: [A] });
    expect(openOnly.canSeal).toBe(false);
    expect(openOnly.open(new Sealer({ sealing: A }).seal(token))).toEqual(token);
    expect(() => openOnly.reseal(sealV1(A, token))).toThrow(/SECRET_KEY/);
  });

  it("answers any string with a credential or UnopenableCredential, nothing else", () => {
    const sealer = new Sealer({ sealing: A, previous: [B] });
    const prefixed = fc.oneof(
      fc.string(),
      fc.base64String().map((s) => `v1:${s}`),
      fc.base64String().map((s) => `v2:${keyId(A)}:${s}`),
      fc.uint8Array({ minLength: 0, maxLength: 80 }).map((b) => `v2:${keyId(B)}:${Buffer.from(b).toString("base64")}`),
    );
    fc.assert(
      fc.property(prefixed, (value) => {
        expect(["unknown-key", "damaged"]).toContain(reasonOf(() => sealer.open(value)));
        expect(sealer.state(value)).toBe("unopenable");
      }),
    );
  });
});
