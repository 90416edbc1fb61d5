import { defineConfig } from "drizzle-kit";

// drizzle-kit reads the schema to generate SQL migrations into drizzle/.
// Applying them is `npm run db:migrate` (postgres.js) or automatic for the embedded dev database.
export default defineConfig({
  dialect: "postgresql",
  schema: "./packages/core/src/db/schema.ts",
  out: "./drizzle",
  dbCredentials: { url: process.env.DATABASE_URL ?? "postgres://localhost:5432/authlith" },
  strict: true,
  verbose: true,
});
