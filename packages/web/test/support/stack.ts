import { migratePostgres } from "@authlith/core/db/migrate";
import { MIGRATIONS_FOLDER, startDevServer } from "@authlith/functions/dev-server";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";
import { startWebServer } from "../../scripts/dev";
import { deleteRedisPrefix } from "../../../core/test/redis-keys";
import { freePort } from "../../../functions/test/support/dev-process";

export { freePort };

export interface Stack {
  /** The API, as the browser reaches it (http://localhost:PORT). */
  apiUrl: string;
  /** The example app (http://localhost:PORT): same site as the API, an allowed origin. */
  appUrl: string;
  /** Postgres of this stack when the tests run on real services (TEST_DATABASE_URL), else null. */
  sql: postgres.Sql | null;
  close(): Promise<void>;
}

/**
 * The dev server (`startDevServer`, as `npm run dev` runs it) and the example app (Vite, as
 * `npm run dev:web` runs it) on free ports. PGlite and the in-process store by default; with
 * TEST_DATABASE_URL / TEST_REDIS_URL (CI), a fresh Postgres database and a Redis key prefix of its own.
 */
export async function startStack(options: { allowedOrigins?: (appUrl: string) => string } = {}): Promise<Stack> {
  const [apiPort, webPort] = [await freePort(), await freePort()];
  const appUrl = `http://localhost:${webPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), "authlith-web-e2e-"));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dataDir, { recursive: true, force: true })];
  const env: Record<string, string> = {
    PORT: String(apiPort),
    AUTHLITH_DATA_DIR: dataDir,
    AUTHLITH_ALLOWED_ORIGINS: options.allowedOrigins?.(appUrl) ?? appUrl,
    LOG_LEVEL: "warn",
  };

  let sql: postgres.Sql | null = null;
  try {
    if (process.env.TEST_DATABASE_URL) {
      const admin = postgres(process.env.TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      const name = `authlith_web_${randomBytes(6).toString("hex")}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      cleanups.push(async () => {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end({ timeout: 5 });
      });
      const url = new URL(process.env.TEST_DATABASE_URL);
      url.pathname = `/${name}`;
      await migratePostgres(url.toString(), MIGRATIONS_FOLDER);
      env.DATABASE_URL = url.toString();
      const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
      sql = db;
      cleanups.push(() => db.end({ timeout: 5 }));
    }
    if (process.env.TEST_REDIS_URL) {
      const prefix = `authlith-web-e2e:${randomBytes(6).toString("hex")}:`;
      env.REDIS_URL = process.env.TEST_REDIS_URL;
      env.REDIS_KEY_PREFIX = prefix;
      cleanups.push(async () => {
        const redis = new Redis(process.env.TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
        await deleteRedisPrefix(redis, prefix);
        redis.disconnect();
      });
    }

    const api = await startDevServer(env);
    cleanups.push(() => api.close());
    // The app's own API asks authlith about every token (no remembered answers): a revoked
    // session is refused at once in the tests.
    const web = await startWebServer({ port: webPort, apiUrl: api.url, notesApi: { issuer: api.url, revocationMaxAgeSeconds: 0 } });
    cleanups.push(() => web.close());

    return {
      apiUrl: api.url,
      appUrl,
      sql,
      async close() {
        for (const cleanup of cleanups.reverse()) await cleanup();
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    throw error;
  }
}

/** A page on another origin (a different port, or another host name for another site). */
export async function startForeignSite(): Promise<{ port: number; close(): Promise<void> }> {
  const port = await freePort();
  const server: Server = createHttpServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>another site</title><h1>Another origin</h1>");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let emails = 0;
export const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${++emails}@example.com`;
export const PASSWORD = "correct horse battery staple";

/**
 * The generation of a refresh token: how many times its session has rotated. The server's wire
 * format (packages/core/src/refresh-token.ts): base64url( session id (16) ‖ generation (uint32 BE) ‖
 * secret (32) ‖ tag (16) ).
 */
export function refreshGeneration(token: string): number {
  return Buffer.from(token, "base64url").readUInt32BE(16);
}
