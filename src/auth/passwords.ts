// Passwords: argon2id (OWASP's minimum parameters: 19 MiB, 2 passes, 1 lane — about 20 ms here),
// checked in constant time by argon2 itself.
import argon2 from "argon2";

const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, OPTIONS);
}

let dummy: Promise<string> | undefined;

/**
 * Whether `password` matches `hash`. Without a hash (no such user, or none set) a dummy hash is
 * checked all the same, so the answer takes as long and the timing does not tell which names exist.
 */
export async function verifyPassword(hash: string | null | undefined, password: string): Promise<boolean> {
  const target = hash ?? (await (dummy ??= hashPassword("not a password of anyone")));
  try {
    return (await argon2.verify(target, password)) && hash !== null && hash !== undefined;
  } catch {
    // A stored value that is not an argon2 hash matches nothing.
    return false;
  }
}
