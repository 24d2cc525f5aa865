// Hashing off the event-loop thread, for big content. sha256 runs at ~1.2 GB/s on one core
// here, so verifying a blob in line caps a relay near half the speed the network allows; worker
// threads hash while the event loop moves bytes. Each job's bytes are copied once into a staging
// buffer that is then handed (transferred, not copied again) to a worker, which hands it back.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

// CommonJS evaluated in the worker: no file to find, whether we run from src/ or dist/.
const WORKER = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const jobs = new Map();
parentPort.on("message", (m) => {
  if (m.type === "update") {
    let hash = jobs.get(m.id);
    if (!hash) jobs.set(m.id, (hash = createHash(m.algorithm)));
    hash.update(new Uint8Array(m.data, 0, m.length));
    // The buffer goes back for the next bytes: no allocation while a big blob streams.
    parentPort.postMessage({ type: "ack", id: m.id, bytes: m.length, data: m.data }, [m.data]);
  } else if (m.type === "digest") {
    const hash = jobs.get(m.id) || createHash(m.algorithm);
    jobs.delete(m.id);
    parentPort.postMessage({ type: "digest", id: m.id, hex: hash.digest("hex") });
  } else if (m.type === "drop") {
    jobs.delete(m.id);
  }
});
`;

const STAGE_BYTES = 1 << 20;
/** Bytes a job may have handed to its worker and not yet seen hashed, before update() waits. */
const MAX_IN_FLIGHT = 16 << 20;

interface JobState {
  inFlight: number;
  /** Staging buffers the worker has handed back. */
  free: ArrayBuffer[];
  wake?: () => void;
  done?: (hex: string) => void;
}

class Pool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, JobState>();
  private next = 0;
  private ids = 0;

  private worker(): Worker {
    const size = Math.max(1, Math.min(4, availableParallelism() - 1));
    if (this.workers.length < size) {
      const worker = new Worker(WORKER, { eval: true });
      worker.unref();
      worker.on("message", (m: { type: string; id: number; bytes?: number; hex?: string; data?: ArrayBuffer }) => {
        const job = this.jobs.get(m.id);
        if (!job) return;
        if (m.type === "ack") {
          job.inFlight -= m.bytes!;
          job.free.push(m.data!);
          if (job.inFlight <= MAX_IN_FLIGHT / 2) job.wake?.();
        } else if (m.type === "digest") {
          this.jobs.delete(m.id);
          job.done?.(m.hex!);
        }
      });
      this.workers.push(worker);
      return worker;
    }
    return this.workers[this.next++ % this.workers.length]!;
  }

  start(algorithm: string): OffThreadHash {
    const id = ++this.ids;
    const state: JobState = { inFlight: 0, free: [] };
    this.jobs.set(id, state);
    const worker = this.worker();
    let stage = new Uint8Array(STAGE_BYTES);
    let staged = 0;
    const send = () => {
      if (staged === 0) return;
      const data = stage.buffer;
      state.inFlight += staged;
      worker.postMessage({ type: "update", id, algorithm, data, length: staged }, [data]);
      stage = new Uint8Array(state.free.pop() ?? new ArrayBuffer(STAGE_BYTES));
      staged = 0;
    };
    return {
      update: async (chunk: Uint8Array) => {
        for (let at = 0; at < chunk.length;) {
          const n = Math.min(chunk.length - at, STAGE_BYTES - staged);
          stage.set(chunk.subarray(at, at + n), staged);
          staged += n;
          at += n;
          if (staged === STAGE_BYTES) send();
        }
        if (state.inFlight > MAX_IN_FLIGHT) await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = undefined;
      },
      digest: () => {
        send();
        return new Promise<string>((resolve) => {
          state.done = resolve;
          worker.postMessage({ type: "digest", id, algorithm });
        });
      },
      drop: () => {
        if (!this.jobs.delete(id)) return;
        stage = new Uint8Array(0);
        worker.postMessage({ type: "drop", id });
      },
    };
  }
}

export interface OffThreadHash {
  /** Adds bytes; waits when too much is still being hashed (backpressure). */
  update(chunk: Uint8Array): Promise<void>;
  /** The hex digest of everything added. */
  digest(): Promise<string>;
  /** Abandons the job (the stream failed or was cancelled). */
  drop(): void;
}

const pool = new Pool();

/** A hash computed by a worker thread. */
export function offThreadHash(algorithm: "sha256" | "sha512"): OffThreadHash {
  return pool.start(algorithm);
}
