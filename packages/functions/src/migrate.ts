import { migratePostgres } from "@authlith/core";
import { fileURLToPath } from "node:url";
import { parseDatabaseConfig } from "./config";

/** `npm run db:migrate`: applies drizzle/ to DATABASE_URL. */
let url: string;
try {
  url = parseDatabaseConfig(process.env).url;
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
const folder = fileURLToPath(new URL("../../../drizzle", import.meta.url));
await migratePostgres(url, folder);
process.stdout.write("migrations applied\n");
