// Progress of a sync on stderr: a bar redrawn in place on a terminal, plain lines now and then
// (and one per failed repository) when stderr is a file or a pipe, so CI logs stay readable.
import type { SyncRegistryProgress } from "../../../gen/artifact/v1/registry_pb.js";

type Counters = Pick<SyncRegistryProgress, "repositoriesFound" | "repositoriesSynced" | "tagsAdded" | "tagsUpdated" | "tagsRemoved" | "errors">;

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export const tagCounts = (p: Counters) => `tags +${p.tagsAdded} ~${p.tagsUpdated} -${p.tagsRemoved}`;

/** `[=====>    ] 42/203 repositories  tags +84 ~0 -0  1 error  proj/app-042`, cut to `columns`. */
export function renderBar(p: Counters & { repository?: string }, columns: number): string {
  const done = p.repositoriesSynced + p.errors;
  const total = Math.max(p.repositoriesFound, done);
  const barWidth = Math.max(10, Math.min(30, columns - 60));
  const filled = total === 0 ? 0 : Math.floor((done / total) * barWidth);
  const bar = "=".repeat(filled) + (filled < barWidth ? ">" + " ".repeat(barWidth - filled - 1) : "");
  const text = `[${bar}] ${done}/${total} repositories  ${tagCounts(p)}  ${count(p.errors, "error")}${p.repository ? `  ${p.repository}` : ""}`;
  return [...text].slice(0, Math.max(1, columns - 1)).join("");
}

function progressLine(p: Counters): string {
  return `sync: ${p.repositoriesSynced + p.errors}/${p.repositoriesFound} repositories done, ${tagCounts(p)}, ${count(p.errors, "error")}`;
}

function summaryLine(p: Counters): string {
  return `sync: done: ${count(p.repositoriesFound, "repository", "repositories")} found, ${p.repositoriesSynced} synced, ${tagCounts(p)}, ${count(p.errors, "error")}`;
}

export interface ProgressOptions {
  /** "bar" on a terminal, "lines" otherwise, "off" with --quiet or NDJSON on stdout. */
  mode: "bar" | "lines" | "off";
  /** Lines mode: at most one progress line per this many ms (errors and the end always print). */
  intervalMs?: number;
  now?: () => number;
}

export class SyncProgressView {
  private lastDraw = -Infinity;
  private drawn = false;
  private latest: SyncRegistryProgress | undefined;
  private readonly now: () => number;
  private readonly interval: number;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.interval = options.mode === "bar" ? 100 : (options.intervalMs ?? 2_000);
  }

  update(p: SyncRegistryProgress): void {
    this.latest = p;
    if (this.options.mode === "off") return;
    if (p.error) this.printAbove(`sync: ${p.repository || "(catalog)"}: ${p.error}`);
    const t = this.now();
    if (t - this.lastDraw < this.interval) return;
    this.lastDraw = t;
    this.draw(p);
  }

  /** The stream ended (with the last message, or an error): leave the terminal clean. */
  finish(): void {
    if (this.options.mode === "off" || !this.latest) return;
    if (this.options.mode === "bar") {
      this.draw(this.latest);
      this.stream.write("\n");
      this.drawn = false;
    }
    if (this.latest.done) this.stream.write(summaryLine(this.latest) + "\n");
  }

  private draw(p: SyncRegistryProgress): void {
    if (this.options.mode === "bar") {
      this.stream.write(`\r\x1b[2K${renderBar(p, this.stream.columns || 80)}`);
      this.drawn = true;
    } else if (!p.done) {
      this.stream.write(progressLine(p) + "\n");
    }
  }

  private printAbove(line: string): void {
    if (this.options.mode === "bar" && this.drawn) this.stream.write("\r\x1b[2K");
    this.stream.write(line + "\n");
    this.drawn = false;
    if (this.options.mode === "bar" && this.latest) this.draw(this.latest);
  }
}
