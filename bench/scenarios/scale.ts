import postgres from "postgres";
import { users } from "@authlith/core/db/schema";
import { eq } from "drizzle-orm";
import type { Runtime } from "../../packages/functions/src/runtime";
import { alternate, summarize } from "../lib/stats";
import { PASSWORD, registerBenchUser, timeInvocation } from "./latency";

/**
 * Fills a database with `count` users (and one session each), all sharing one real argon2id hash
 * of the benchmark password, so any of them can sign in. Done in SQL, in batches.
 */
export async function seedUsers(databaseUrl: string, count: number, passwordHash: string): Promise<number> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const started = performance.now();
  const batch = 250_000;
  for (let from = 1; from <= count; from += batch) {
    const to = Math.min(count, from + batch - 1);
    await sql`
      WITH u AS (
        INSERT INTO users (id, email, email_canonical, password_hash, created_at, updated_at)
        SELECT gen_random_uuid(), 'user' || g || '@scale.test', 'user' || g || '@scale.test', ${passwordHash}, now(), now()
          FROM generate_series(${from}::int, ${to}::int) AS g
        RETURNING id
      )
      INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_expires_at, absolute_expires_at, refresh_hash)
      SELECT gen_random_uuid(), id, now(), now(), now() + interval '7 days', now() + interval '30 days',
             sha256(convert_to(id::text, 'UTF8'))
        FROM u`;
  }
  await sql`ANALYZE users`;
  await sql`ANALYZE sessions`;
  await sql.end({ timeout: 2 });
  return performance.now() - started;
}

/** Login and refresh latency on a small and a large database, alternated between the two. */
export async function measureScale(small: Runtime, large: Runtime, largeUserCount: number, iterations: number) {
  const setup = async (runtime: Runtime, label: string) => {
    const email = `scale-${label}-${Date.now()}@bench.test`;
    const session = await registerBenchUser(runtime, email);
    return { runtime, email, token: session.refreshToken };
  };
  const a = await setup(small, "small");
  const b = await setup(large, "large");
  // A user from the middle of the large table signs in too: the index, not luck, finds it.
  const [someone] = await large.deps.db.select({ email: users.email }).from(users).where(eq(users.email, `user${Math.ceil(largeUserCount / 2)}@scale.test`));
  if (!someone) throw new Error("seeded user not found");

  const login = (side: typeof a, email: string) => async () =>
    (await timeInvocation(side.runtime, "auth.login", { email, password: PASSWORD })).ms;
  const refresh = (side: typeof a) => async () => {
    const { ms, data } = await timeInvocation(side.runtime, "auth.refresh", { refreshToken: side.token });
    side.token = data.refreshToken;
    return ms;
  };
  const loginIterations = Math.max(10, Math.round(iterations / 4));
  const logins = await alternate(loginIterations, login(a, a.email), login(b, someone.email));
  await alternate(20, refresh(a), refresh(b));
  const refreshes = await alternate(iterations, refresh(a), refresh(b));
  return {
    small: { users: 10, login: summarize(logins.a), refresh: summarize(refreshes.a) },
    large: { users: largeUserCount, login: summarize(logins.b), refresh: summarize(refreshes.b) },
  };
}
