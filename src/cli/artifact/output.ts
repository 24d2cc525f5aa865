// How results reach people and scripts: aligned tables with humanised sizes and times, or JSON
// (`--output json`) with stable field names, full digests, byte counts and ISO times.

export type OutputFormat = "table" | "json" | "ndjson";

/** A protobuf Timestamp as generated code carries it. */
export interface ProtoTime {
  seconds: bigint;
  nanos: number;
}

export function toDate(ts: ProtoTime | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}

/** ISO 8601 for JSON; null when unset, so every object has the same keys. */
export function isoTime(ts: ProtoTime | undefined): string | null {
  return toDate(ts)?.toISOString() ?? null;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB". */
export function humanBytes(bytes: bigint | number): string {
  let n = Number(bytes);
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${UNITS[i]}`;
}

const SPANS: [number, string][] = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [30, "day"],
];

/** "3 minutes ago", "in 2 days"; past a month, the date (YYYY-MM-DD). "" when unset. */
export function relativeTime(ts: ProtoTime | undefined, now = Date.now()): string {
  const date = toDate(ts);
  if (!date) return "";
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (Math.abs(seconds) < 5) return "just now";
  let value = Math.abs(seconds);
  for (const [size, unit] of SPANS) {
    if (value < size) {
      const text = `${value} ${unit}${value === 1 ? "" : "s"}`;
      return seconds > 0 ? `${text} ago` : `in ${text}`;
    }
    value = Math.floor(value / size);
  }
  return date.toISOString().slice(0, 10);
}

/** `sha256:` and the first 12 hex digits, as container tools show digests in tables. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return colon < 0 ? digest : digest.slice(0, colon + 13);
}

/** Display width: code points, which is right for the ASCII names and near enough for free text. */
const width = (text: string) => [...text].length;

/**
 * Columns padded to their widest cell, two spaces apart; `right` lists the columns (by index)
 * aligned right (sizes, counts). The last column is never padded, so lines carry no trailing blanks.
 */
export function formatTable(headers: string[], rows: string[][], right: number[] = []): string {
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        if (i === cells.length - 1 && !right.includes(i)) return cell;
        const pad = " ".repeat(widths[i]! - width(cell));
        return right.includes(i) ? pad + cell : cell + pad;
      })
      .join("  ")
      .trimEnd();
  return [headers, ...rows].map(line).join("\n") + "\n";
}

/** `label: value` lines with the values aligned, for one resource. */
export function formatFields(fields: [string, string][]): string {
  const w = Math.max(...fields.map(([label]) => width(label)));
  return fields.map(([label, value]) => `${label}:${" ".repeat(w - width(label) + 1)}${value}`.trimEnd()).join("\n") + "\n";
}

export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
