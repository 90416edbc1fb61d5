import { verify } from "@node-rs/argon2";
import { generateKeyPairSync, sign } from "node:crypto";
import postgres from "postgres";
import { users } from "@authlith/core/db/schema";
import { eq } from "drizzle-orm";
import { TestClient } from "../../packages/functions/test/support/app";
import type { Runtime } from "../../packages/functions/src/runtime";
import { Redis } from "ioredis";
import { alternate, summarize, timed, type Summary } from "../lib/stats";

export const PASSWORD = "correct horse battery staple";

export function benchClient(runtime: Runtime, ip = "203.0.113.7") {
  return new TestClient(runtime.handle, { origin: null, ip, userAgent: "authlith-bench" });
}

/**
 * Times one call of the handler with an API Gateway event built beforehand: building the event is
 * API Gateway's work, and reading the answer the client's. Returns the duration and the answer.
 */
export async function timeInvocation(
  runtime: Runtime,
  procedure: string,
  input: unknown,
  headers: Record<string, string> = {},
): Promise<{ ms: number; status: number; data: any }> {
  const event = benchClient(runtime).event({
    method: "POST",
    path: `/trpc/${procedure}`,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(input),
  });
  const start = performance.now();
  const result = await runtime.handle(event);
  const ms = performance.now() - start;
  const status = result.statusCode ?? 200;
  if (status !== 200) throw new Error(`benchmark call failed: ${status} ${String(result.body).slice(0, 300)}`);
  return { ms, status, data: JSON.parse(result.body ?? "{}").result.data };
}

function ok<T extends { status: number; raw: string }>(reply: T): T {
  if (reply.status !== 200) throw new Error(`benchmark call failed: ${reply.status} ${reply.raw.slice(0, 300)}`);
  return reply;
}

export async function registerBenchUser(runtime: Runtime, email: string) {
  const reply = ok(await benchClient(runtime).mutate("auth.register", { email, password: PASSWORD }, { "x-authlith-transport": "token" }));
  return reply.body.result.data as { accessToken: string; refreshToken: string; user: { id: string } };
}

/**
 * Login (in-process handler, API Gateway v2 events) against one bare argon2id verification of the
 * same password with the same parameters, and against the floor of a login: the round trips a
 * sign-in cannot do without around that same verification, by bare clients (a Redis counter and a
 * one-row read sent together; the hash; an insert in a transaction opened during the hash and
 * committed after it). The three run in rotation, in one run.
 */
export async function measureLogin(runtime: Runtime, iterations: number, warmup: number, databaseUrl: string, redisUrl: string) {
  const email = `login-${Date.now()}@bench.test`;
  await registerBenchUser(runtime, email);
  const [row] = await runtime.deps.db.select({ hash: users.passwordHash }).from(users).where(eq(users.email, email));
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  // The floor's Redis round trip uses ioredis as plainly as it comes: an INCR, no script.
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await sql`CREATE TABLE IF NOT EXISTS bench_login_floor (id uuid PRIMARY KEY, email text NOT NULL, at timestamptz NOT NULL)`;
  const counter = `authlith-bench:floor:${Date.now()}`;
  const argon2 = () => timed(() => verify(row!.hash, PASSWORD));
  const floor = () =>
    timed(async () => {
      const [, found] = await Promise.all([
        redis.incr(counter),
        sql`SELECT password_hash FROM users WHERE email = ${email}`,
      ]);
      const accepted = verify(found[0]!.password_hash, PASSWORD);
      await sql.begin(async (tx) => {
        await tx`INSERT INTO bench_login_floor VALUES (gen_random_uuid(), ${email}, now())`;
        if (!(await accepted)) throw new Error("floor: the password did not verify");
      });
    });
  const login = async () => (await timeInvocation(runtime, "auth.login", { email, password: PASSWORD })).ms;
  const samples = { argon2: [] as number[], floor: [] as number[], login: [] as number[] };
  const rotation = [
    ["argon2", argon2],
    ["floor", floor],
    ["login", login],
  ] as const;
  for (let i = 0; i < warmup + iterations; i++) {
    // Rotate the order, so that drift and after-effects hit all three alike.
    for (let j = 0; j < 3; j++) {
      const [name, run] = rotation[(i + j) % 3]!;
      const ms = await run();
      if (i >= warmup) samples[name].push(ms);
    }
  }
  await redis.del(counter).catch(() => {});
  redis.disconnect();
  await sql.end({ timeout: 2 });
  return { argon2: summarize(samples.argon2), floor: summarize(samples.floor), login: summarize(samples.login) };
}

/**
 * Refresh (in-process handler) against its floor: one single-statement round trip that updates
 * one row and inserts one row (postgres.js, prepared) plus one ES256 signature (node:crypto, as
 * authlith signs), alternated.
 */
export async function measureRefresh(runtime: Runtime, databaseUrl: string, iterations: number, warmup: number) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await sql`CREATE TABLE IF NOT EXISTS bench_floor (id int PRIMARY KEY, n bigint NOT NULL, at timestamptz NOT NULL)`;
  await sql`CREATE TABLE IF NOT EXISTS bench_floor_log (id uuid PRIMARY KEY, floor_id int NOT NULL, at timestamptz NOT NULL)`;
  await sql`INSERT INTO bench_floor VALUES (1, 0, now()) ON CONFLICT DO NOTHING`;
  // The fastest ES256 JWT signature Node has: node:crypto, synchronous, over a small claim set.
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const header = encode({ alg: "ES256", typ: "at+jwt" });
  const floor = () =>
    timed(async () => {
      await sql`WITH u AS (UPDATE bench_floor SET n = n + 1, at = now() WHERE id = 1 RETURNING id)
        INSERT INTO bench_floor_log SELECT gen_random_uuid(), id, now() FROM u`;
      const iat = Math.floor(Date.now() / 1000);
      const input = `${header}.${encode({ sub: "u", sid: "s", iat, exp: iat + 900 })}`;
      void `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
    });

  const session = await registerBenchUser(runtime, `refresh-${Date.now()}@bench.test`);
  let token = session.refreshToken;
  const refresh = async () => {
    const { ms, data } = await timeInvocation(runtime, "auth.refresh", { refreshToken: token });
    token = data.refreshToken;
    return ms;
  };
  await alternate(warmup, floor, refresh);
  const { a, b } = await alternate(iterations, floor, refresh);
  await sql.end({ timeout: 2 });
  return { floor: summarize(a), refresh: summarize(b) };
}

export const ratio = (numerator: Summary, denominator: Summary) => numerator.median / denominator.median;
