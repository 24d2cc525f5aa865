// Loaded into the service's processes with `node --import` by test/replicas.test.ts, never by the
// product: upload writers' leases last ARTIFACT_TEST_WRITER_LEASE_MS instead of 30 s, so a test
// that kills a replica mid-chunk sees its lease run out in seconds. The store's constructor option
// (`writerLeaseMs`, what in-process tests use) cannot reach a separate process; this sets the same
// field on every BlobStore before it claims an upload. It fails loudly if BlobStore changed shape.
import { BlobStore } from "../../src/store/blobs.js";

const leaseMs = Number(process.env.ARTIFACT_TEST_WRITER_LEASE_MS);
if (!Number.isSafeInteger(leaseMs) || leaseMs <= 0) throw new Error("writer-lease.ts: set ARTIFACT_TEST_WRITER_LEASE_MS to a number of milliseconds");

type Claim = (this: BlobStore, ...args: unknown[]) => Promise<unknown>;
const prototype = BlobStore.prototype as unknown as { claim: Claim };
const claim = prototype.claim;
if (typeof claim !== "function") throw new Error("writer-lease.ts: BlobStore has no claim() any more; update this hook");
prototype.claim = function (this: BlobStore, ...args: unknown[]) {
  const store = this as unknown as { writerLeaseMs: number };
  if (typeof store.writerLeaseMs !== "number") throw new Error("writer-lease.ts: BlobStore has no writerLeaseMs any more; update this hook");
  store.writerLeaseMs = leaseMs;
  return claim.apply(this, args);
};
