// The web UI for tests: built into dist/ui/ by the build script (global-setup.ts, once per run;
// only when ui/ or gen/ changed), a page that signs in, and axe-core's accessibility check.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Page } from "playwright-core";
import { packageRoot } from "../../src/paths.js";

/** `npm run build` for the UI alone. */
export async function buildUi(): Promise<void> {
  await promisify(execFile)(process.execPath, [join(packageRoot, "scripts", "build.mjs"), "--ui"], { cwd: packageRoot, timeout: 170_000 });
}

/** Opens `url` (a path of the UI) signed in with an API token through the sign-in screen. */
export async function signInWithToken(page: Page, baseUrl: string, token: string, path = "/"): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.getByRole("radio", { name: "API token" }).check();
  await page.getByLabel("Token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("header.top").waitFor();
}

export async function signInWithPassword(page: Page, baseUrl: string, user: string, password: string, path = "/"): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.getByLabel("User name").fill(user);
  await page.getByRole("textbox", { name: "Password" }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("header.top").waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core on the page as it is now: the violations of impact serious or critical. Injected over
 * the DevTools protocol (page.evaluate), which the page's Content-Security-Policy does not govern,
 * so the policy under test stays as strict as it is.
 */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const result = await page.evaluate<AxeViolation[]>(`
    axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) })),
    )
  `);
  return result;
}
