// KNOWN_FAILURES: classes of failure this suite finds that are being fixed elsewhere (a branch not merged yet).
// While one is listed, a failure of that class is counted and printed but does not fail the run.
// Delete an entry as soon as its fix is merged: from then on the suite guards the fix.
import type { FuzzCase } from "./oracle.js";
import type { LogLine, ProcessEvent } from "./watch.js";
import type { WireRequest, WireResponse } from "./wire.js";

export interface Failure {
  /** What is wrong, in a line. */
  problem: string;
  /** The request(s) concerned: one for a bad answer, the whole batch for a process-level event. */
  requests: { c: FuzzCase; req: WireRequest; res?: WireResponse }[];
  serverErrors: LogLine[];
  processEvents: ProcessEvent[];
  /** Milliseconds of the smallest deadline any request sent shortly before asked for (undefined: none). */
  recentDeadlineMs: number | undefined;
}

export interface KnownFailure {
  id: string;
  description: string;
  matches(f: Failure): boolean;
}

// Empty: the two classes listed while this suite was written (NUL reaching PostgreSQL through
// free-text fields; a deadline already past on a failing call) are fixed, and the suite guards them.
export const KNOWN_FAILURES: KnownFailure[] = [];
