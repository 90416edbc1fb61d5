import { migratePostgres } from "@authlith/core";
import { fileURLToPath } from "node:url";

/** `npm run db:migrate`: applies drizzle/ to DATABASE_URL. */
const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write("DATABASE_URL is not set\n");
  process.exit(1);
}
const folder = fileURLToPath(new URL("../../../drizzle", import.meta.url));
await migratePostgres(url, folder);
process.stdout.write("migrations applied\n");
