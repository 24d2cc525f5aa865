// The first start: with no account at all, an `admin` user with the global admin role is made,
// with the API token from ADMIN_TOKEN, or the password from ADMIN_PASSWORD, or else a generated
// token written to DATA_DIR/admin-token (mode 0600). The log names that file, never the secret.
// Replicas starting together make one admin (an advisory lock in the store).
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Store } from "../store/index.js";
import { hashPassword } from "./passwords.js";
import { hashTokenSecret, newTokenSecret } from "./tokens.js";

const ADMIN_NAME = "admin";
const ADMIN_TOKEN_FILE = "admin-token";

export interface BootstrapSettings {
  dataDir: string;
  adminToken?: string;
  adminPassword?: string;
}

export async function bootstrap(store: Store, settings: BootstrapSettings, log: Logger): Promise<void> {
  if ((await store.accounts.count()) > 0) return;
  const generated = settings.adminToken || settings.adminPassword ? undefined : newTokenSecret();
  const token = settings.adminToken ?? generated;
  const file = join(settings.dataDir, ADMIN_TOKEN_FILE);
  // Written before the account exists (then renamed into place): a token in the database that
  // nobody was ever told would be no use to anyone.
  const pending = `${file}.${process.pid}.tmp`;
  if (generated) writeFileSync(pending, generated + "\n", { mode: 0o600, flag: "w" });
  let created = false;
  try {
    created = await store.accounts.bootstrap({
      name: ADMIN_NAME,
      passwordHash: settings.adminPassword ? await hashPassword(settings.adminPassword) : null,
      tokenHash: token ? hashTokenSecret(token) : undefined,
    });
    if (created && generated) renameSync(pending, file);
  } finally {
    if (generated && !created) unlinkSync(pending);
  }
  if (!created) return;
  const how = [
    settings.adminToken ? "the API token from ADMIN_TOKEN" : undefined,
    settings.adminPassword ? "the password from ADMIN_PASSWORD" : undefined,
  ].filter(Boolean);
  if (generated) {
    log.warn(
      { user: ADMIN_NAME, tokenFile: file },
      `first start: created the user "${ADMIN_NAME}" with the global admin role; its API token is in ${file} (mode 0600). Sign in with it, create your own accounts, then delete the file`,
    );
  } else {
    log.warn({ user: ADMIN_NAME }, `first start: created the user "${ADMIN_NAME}" with the global admin role and ${how.join(" and ")}`);
  }
}
