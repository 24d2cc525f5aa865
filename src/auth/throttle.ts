// Brute force: failed sign-ins are counted per account name and per client address in the
// database (every replica sees them). From the 5th failure in a row on, every further attempt for
// that key waits 1 s, 2 s, 4 s … (at most 60 s) before it is even checked. Tokens are never
// delayed by others' failures: only a failing token's address is (src/auth/authenticator.ts).
import { setTimeout as sleep } from "node:timers/promises";
import type { ThrottleStore } from "../store/throttle.js";

export interface ThrottleOptions {
  /** Failures in a row before attempts wait (default 5). */
  threshold?: number;
  /** The first wait (default 1 s); each further failure doubles it. */
  baseMs?: number;
  /** The longest wait (default 60 s). */
  maxMs?: number;
}

export const accountKey = (name: string) => `account:${name}`;
export const addressKey = (address: string) => `address:${address}`;

export class SignInThrottle {
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly store: ThrottleStore,
    options: ThrottleOptions = {},
  ) {
    this.threshold = options.threshold ?? 5;
    this.baseMs = options.baseMs ?? 1000;
    this.maxMs = options.maxMs ?? 60_000;
  }

  /** Waits as long as the worst of these keys asks; returns how long that was (ms). */
  async wait(keys: readonly string[]): Promise<number> {
    const counts = await this.store.get(keys);
    let delay = 0;
    for (const { failures } of counts.values()) delay = Math.max(delay, this.delayAfter(failures));
    if (delay > 0) await sleep(delay);
    return delay;
  }

  /** The wait before an attempt after `failures` failures in a row. */
  delayAfter(failures: number): number {
    if (failures < this.threshold) return 0;
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(30, failures - this.threshold));
  }

  fail(keys: readonly string[]): Promise<void> {
    return this.store.fail(keys);
  }

  reset(key: string): Promise<void> {
    return this.store.reset(key);
  }
}
