import { defineConfig } from "drizzle-kit";

// Only used by drizzle-kit to generate migrations/ from the schema; the service applies
// them itself at start-up (src/db/database.ts).
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
