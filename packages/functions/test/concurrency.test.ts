import { auditEvents, sessions } from "@authlith/core/db/schema";
import { createRedisStore, createPostgresDb } from "@authlith/core";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  deleteRedisPrefix,
  hasRealServices,
  TEST_REDIS_URL,
  testHmacSecret,
  testSigningKeys,
} from "../../core/test/support";
import { parseEnvConfig } from "../src/config";
import { createRuntime, type Runtime } from "../src/runtime";
import { data, PASSWORD, TestClient, tokenTransport, uniqueEmail } from "./support/app";
import { Redis } from "ioredis";

const WORKERS = 20;
const GRACE_SECONDS = 2;

/** A worker process: spawned, READY, then one JSON line with its refresh outcome. */
function startWorker(script: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [script], { env, stdio: ["pipe", "pipe", "pipe"] }) as ChildProcessWithoutNullStreams;
  let out = "";
  let err = "";
  child.stderr.on("data", (chunk) => (err += String(chunk)));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      out += String(chunk);
      if (out.includes("READY\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) before READY: ${err.slice(0, 2000)}`)));
  });
  const result = new Promise<{ status: number; refreshToken: string | null }>((resolve, reject) => {
    child.once("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (code === 0 && line) resolve(JSON.parse(line));
      else reject(new Error(`worker exited (${code}): ${err.slice(0, 2000)}`));
    });
  });
  // Awaited later; without this a worker that dies before READY is also an unhandled rejection.
  result.catch(() => {});
  return { child, ready, result };
}

describe.runIf(hasRealServices)("refresh across processes on real Postgres and Redis", () => {
  let workDir: string;
  let workerScript: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: NodeJS.ProcessEnv;
  let runtime: Runtime;
  let redis: Redis;
  const prefix = `authlith-test:${randomBytes(6).toString("hex")}:`;

  beforeAll(async () => {
    // Inside the repository, so the bundle resolves the native argon2 addon from node_modules.
    const cache = fileURLToPath(new URL("../../../node_modules/.cache/", import.meta.url));
    await mkdir(cache, { recursive: true });
    workDir = await mkdtemp(join(cache, "authlith-workers-"));
    workerScript = join(workDir, "refresh-worker.mjs");
    // Bundled once, so twenty processes start in a fraction of a second each.
    await build({
      entryPoints: [fileURLToPath(new URL("./support/refresh-worker.ts", import.meta.url))],
      outfile: workerScript,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      external: ["@node-rs/argon2"],
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: "error",
    });
    database = await createTestDatabase();
    env = {
      PATH: process.env.PATH,
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      AUTHLITH_ISSUER: "https://auth.example.test",
      AUTHLITH_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
      AUTHLITH_HMAC_SECRET: testHmacSecret(),
      AUTHLITH_REFRESH_GRACE_SECONDS: String(GRACE_SECONDS),
      // About refresh: sign-up signs in at once.
      AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false",
      LOG_LEVEL: "error",
    };
    const config = parseEnvConfig(env);
    runtime = await createRuntime(config, {
      db: createPostgresDb(config.database!),
      store: createRedisStore({ url: TEST_REDIS_URL!, keyPrefix: prefix }),
    });
    redis = new Redis(TEST_REDIS_URL!);
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    if (redis) {
      await deleteRedisPrefix(redis, prefix);
      redis.disconnect();
    }
    await database?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function raceRefresh(refreshToken: string) {
    const workers = Array.from({ length: WORKERS }, () => startWorker(workerScript, { ...env, REFRESH_TOKEN: refreshToken }));
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin.write("GO\n");
      return await Promise.all(workers.map((w) => w.result));
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill();
    }
  }

  it(
    `${WORKERS} concurrent refreshes of one token all get the same new token; the session rotates once; a late replay revokes it`,
    async () => {
      const client = new TestClient(runtime.handle, { origin: null });
      const signedUp = data(await client.mutate("auth.register", { email: uniqueEmail("race"), password: PASSWORD }, tokenTransport));
      const sessionId: string = signedUp.session.id;

      const results = await raceRefresh(signedUp.refreshToken);
      expect(results.map((r) => r.status)).toEqual(Array(WORKERS).fill(200));
      const tokens = new Set(results.map((r) => r.refreshToken));
      expect(tokens.size).toBe(1);
      const [child] = [...tokens] as string[];
      expect(child).not.toBe(signedUp.refreshToken);

      const db = runtime.deps.db;
      const [row] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
      expect(row!.refreshGeneration).toBe(1);
      expect(row!.revokedAt).toBeNull();
      const refreshes = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.sessionId, sessionId), eq(auditEvents.type, "session.refreshed")));
      expect(refreshes).toHaveLength(1);

      // After the grace window the old token is a replay: the session and its family die.
      await new Promise((resolve) => setTimeout(resolve, GRACE_SECONDS * 1000 + 500));
      const replay = await client.mutate("auth.refresh", { refreshToken: signedUp.refreshToken });
      expect(replay.status).toBe(401);
      const [revoked] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
      expect(revoked!.revokedReason).toBe("refresh_token_reuse");
      const detections = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.sessionId, sessionId), eq(auditEvents.type, "session.reuse_detected")));
      expect(detections).toHaveLength(1);
      expect((await client.mutate("auth.refresh", { refreshToken: child })).status).toBe(401);
      // Revocation is published to Redis: another instance refuses the session's access tokens.
      expect(await redis.exists(`${prefix}rv:s:${sessionId}`)).toBe(1);
    },
    120_000,
  );
});
