// Sync tag patterns (issue 9 §3): how long the worst patterns take against a 128-character tag
// with the RE2 engine the sync uses (re2js, src/domain/tag-pattern.ts), beside JavaScript's
// backtracking RegExp (what the sync used before) on much shorter tags, where it already takes
// exponential time. Standalone: `npx tsx bench/tag-pattern.ts` prints a Markdown table.
import { performance } from "node:perf_hooks";
import { compileTagPattern } from "../src/domain/tag-pattern.js";

interface Case {
  pattern: string;
  /** A tag of `n` characters on which a backtracking engine explores every split. */
  tag: (n: number) => string;
}

const CASES: Case[] = [
  { pattern: "(a+)+$", tag: (n) => `${"a".repeat(n - 1)}b` },
  { pattern: "(a|aa)*b", tag: (n) => "a".repeat(n) },
  { pattern: "(x+x+)+y", tag: (n) => "x".repeat(n) },
  { pattern: "(.*a){20}", tag: (n) => `${"a".repeat(n - 1)}_` },
  { pattern: "[\\p{L}\\p{N}]{1000}", tag: (n) => "a".repeat(n) },
];
const TAG_LENGTH = 128;
const RUNS = 200;
/** JavaScript's RegExp is measured only up to here: each step past it roughly doubles its time. */
const JS_LENGTHS = [16, 20, 24];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const ms = (v: number) => (v < 0.1 ? v.toFixed(4) : v < 10 ? v.toFixed(2) : v.toFixed(0));

const rows: string[] = [];
let worst = { pattern: "", first: 0, warm: 0 };
for (const c of CASES) {
  const tag = c.tag(TAG_LENGTH);
  const started = performance.now();
  const compiled = compileTagPattern(c.pattern);
  if ("problem" in compiled) throw new Error(`${c.pattern}: ${compiled.problem}`);
  const answer = compiled.matches(tag);
  const first = performance.now() - started;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    if (compiled.matches(tag) !== answer) throw new Error("unstable answer");
    times.push(performance.now() - t);
  }
  const warm = median(times);
  if (first > worst.first) worst = { pattern: c.pattern, first, warm };
  const js = JS_LENGTHS.map((n) => {
    const re = new RegExp(`^(?:${c.pattern})$`, "u");
    const t = performance.now();
    re.test(c.tag(n));
    return `${n}: ${ms(performance.now() - t)}`;
  });
  rows.push(`| \`${c.pattern.replaceAll("|", "\\|")}\` | ${answer} | ${ms(first)} | ${ms(warm)} | ${js.join(", ")} |`);
}

console.log(`## Sync tag patterns against a ${TAG_LENGTH}-character tag (ms)

| pattern | matches | RE2: compile + first match | RE2: a match, median of ${RUNS} | JavaScript RegExp, by tag length |
|---|---|---|---|---|
${rows.join("\n")}

Worst RE2 pattern: \`${worst.pattern}\`, ${ms(worst.first)} ms to compile and match once, ${ms(worst.warm)} ms per match after.`);
