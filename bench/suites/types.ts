import type { Settings } from "../settings.js";

export interface SuiteResult {
  /** The suite's section of the report (starts with a "## " heading). */
  markdown: string;
  /** Any row failed (errors, wrong answers): the run exits 1. */
  failed: boolean;
}

export type SuiteRunner = (settings: Settings, workDir: string) => Promise<SuiteResult>;
