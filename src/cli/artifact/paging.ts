// `--page-size`, `--page-token` and `--all` for every list command: one page by default (what
// the API gives), or every page followed through its tokens.
import { str, bool, type Args, type Context, type OptionSpec } from "./cli.js";

export const PAGING_OPTIONS: Record<string, OptionSpec> = {
  "page-size": {
    type: "string",
    value: "<n>",
    description: "items per page, 1 to 1000 (default 50; 1000 with --all)",
    check: (v) => (/^[0-9]{1,4}$/.test(v) && Number(v) >= 1 && Number(v) <= 1000 ? undefined : "expected a whole number from 1 to 1000"),
  },
  "page-token": { type: "string", value: "<token>", description: "continue where a previous page ended (its next page token)" },
  all: { type: "boolean", description: "follow the page tokens and show every item" },
};

export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

export interface Listed<T> {
  items: T[];
  nextPageToken: string;
  totalSize: number;
}

/** --page-size (checked with the other options before the command runs). */
export function pageSize(args: Args): number | undefined {
  const text = str(args, "page-size");
  return text === undefined ? undefined : Number(text);
}

/** One page, or with --all every page, of a List call. */
export async function listPages<T>(args: Args, fetch: (page: PageRequest) => Promise<Listed<T>>): Promise<Listed<T>> {
  const all = bool(args, "all") === true;
  const size = pageSize(args) ?? (all ? 1000 : 50);
  let pageToken = str(args, "page-token") ?? "";
  const first = await fetch({ pageSize: size, pageToken });
  if (!all) return first;
  const items = [...first.items];
  pageToken = first.nextPageToken;
  while (pageToken !== "") {
    const page = await fetch({ pageSize: size, pageToken });
    items.push(...page.items);
    pageToken = page.nextPageToken;
  }
  return { items, nextPageToken: "", totalSize: first.totalSize };
}

/** Under a table: how to see the rest, when there is more. */
export function moreHint(ctx: Context, listed: Listed<unknown>, noun: string): void {
  if (listed.nextPageToken === "") return;
  ctx.note(`${listed.items.length} of ${listed.totalSize} ${noun} shown; --all for every page, or --page-token ${listed.nextPageToken}`);
}
