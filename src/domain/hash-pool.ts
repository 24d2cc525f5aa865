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
  } else if (m.type === "fork") {
    const hash = jobs.get(m.from);
    jobs.set(m.id, hash ? hash.copy() : createHash(m.algorithm));
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
/**
 * A job's first staging buffer: a job that gets a few bytes and then waits (a stalled upload;
 * a thousand of them) must not hold a megabyte each. Once one is full, the job stages 1 MiB at a time.
 */
const FIRST_STAGE_BYTES = 16 << 10;
/** Bytes a job may have handed to its worker and not yet seen hashed, before update() waits. */
const MAX_IN_FLIGHT = 16 << 20;

/** Staging buffers kept for reuse, shared by all jobs (more come back only while many jobs stream). */
const MAX_FREE = 32;

interface JobState {
  inFlight: number;
  wake?: () => void;
  done?: (hex: string) => void;
}

class Pool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, JobState>();
  /** Staging buffers the workers have handed back. */
  private readonly free: ArrayBuffer[] = [];
  private readonly waits = new Map<Worker, number>();
  private next = 0;
  private ids = 0;

  /** An idle worker keeps no process alive; one that a caller waits on does (its answer must come). */
  private async waitOn<T>(worker: Worker, answer: Promise<T>): Promise<T> {
    const n = this.waits.get(worker) ?? 0;
    this.waits.set(worker, n + 1);
    if (n === 0) worker.ref();
    try {
      return await answer;
    } finally {
      const left = this.waits.get(worker)! - 1;
      this.waits.set(worker, left);
      if (left === 0) worker.unref();
    }
  }

  private worker(): Worker {
    const size = Math.max(1, Math.min(4, availableParallelism() - 1));
    if (this.workers.length < size) {
      const worker = new Worker(WORKER, { eval: true });
      worker.on("message", (m: { type: string; id: number; bytes?: number; hex?: string; data?: ArrayBuffer }) => {
        if (m.type === "ack" && m.data!.byteLength === STAGE_BYTES && this.free.length < MAX_FREE) this.free.push(m.data!);
        const job = this.jobs.get(m.id);
        if (!job) return;
        if (m.type === "ack") {
          job.inFlight -= m.bytes!;
          if (job.inFlight <= MAX_IN_FLIGHT / 2) job.wake?.();
        } else if (m.type === "digest") {
          this.jobs.delete(m.id);
          job.done?.(m.hex!);
        }
      });
      // After the listener (adding one refs the port again).
      worker.unref();
      this.workers.push(worker);
      return worker;
    }
    return this.workers[this.next++ % this.workers.length]!;
  }

  /** A new job; with `from`, a copy of that job's state on its worker (`on`). */
  start(algorithm: string, on?: Worker, from?: number): OffThreadHash {
    const id = ++this.ids;
    const state: JobState = { inFlight: 0 };
    this.jobs.set(id, state);
    const worker = on ?? this.worker();
    // Messages to one worker are handled in order: the copy holds every byte sent before it.
    if (from !== undefined) worker.postMessage({ type: "fork", id, from, algorithm });
    // Taken when bytes come and handed over when sent: a job between appends holds no buffer.
    let stage: Uint8Array | undefined;
    let staged = 0;
    let sent = false;
    const send = () => {
      if (staged === 0 || stage === undefined) return;
      const data = stage.buffer as ArrayBuffer;
      state.inFlight += staged;
      worker.postMessage({ type: "update", id, algorithm, data, length: staged }, [data]);
      stage = undefined;
      staged = 0;
      sent = true;
    };
    return {
      update: (chunk: Uint8Array) => {
        for (let at = 0; at < chunk.length;) {
          stage ??= sent ? new Uint8Array(this.free.pop() ?? new ArrayBuffer(STAGE_BYTES)) : new Uint8Array(FIRST_STAGE_BYTES);
          const n = Math.min(chunk.length - at, stage.length - staged);
          stage.set(chunk.subarray(at, at + n), staged);
          staged += n;
          at += n;
          if (staged === stage.length) send();
        }
        if (state.inFlight <= MAX_IN_FLIGHT) return undefined;
        return this.waitOn(
          worker,
          new Promise<void>((resolve) => (state.wake = resolve)).then(() => {
            state.wake = undefined;
          }),
        );
      },
      flush: send,
      fork: () => {
        send();
        return this.start(algorithm, worker, id);
      },
      digest: () => {
        send();
        return this.waitOn(
          worker,
          new Promise<string>((resolve) => {
            state.done = resolve;
            worker.postMessage({ type: "digest", id, algorithm });
          }),
        );
      },
      drop: () => {
        if (!this.jobs.delete(id)) return;
        stage = undefined;
        worker.postMessage({ type: "drop", id });
      },
    };
  }
}

export interface OffThreadHash {
  /**
   * Adds bytes (copied: the caller may reuse `chunk` at once). Returns a promise to wait for when
   * too much is still being hashed (backpressure), else undefined.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** Hands the bytes staged so far to the worker (and the staging buffer with them). */
  flush(): void;
  /** A new job that starts from the bytes added so far; this one goes on independently. */
  fork(): OffThreadHash;
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
