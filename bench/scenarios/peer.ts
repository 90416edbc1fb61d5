import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { Pool } from "pg";
import { randomBytes } from "node:crypto";
import type { Runtime } from "../../packages/functions/src/runtime";
import { createBenchDatabase } from "../lib/services";
import { alternate, summarize } from "../lib/stats";
import { benchClient, PASSWORD, registerBenchUser, timeInvocation } from "./latency";

const BASE = "http://localhost:3000";

/**
 * Better Auth (email and password, its defaults: scrypt N=16384 r=16 p=1, ≈ 16 MiB; sessions in
 * Postgres) on the same Postgres server, called through its own HTTP handler in-process, as
 * authlith is called through its Lambda handler. Sign-in against sign-in; Better Auth's
 * get-session against authlith's `me` (and refresh, the call that reads and writes the session).
 */
export async function measurePeer(runtime: Runtime, iterations: number, warmup: number) {
  const database = await createBenchDatabase("betterauth", { migrate: false });
  const pool = new Pool({ connectionString: database.url, max: 2 });
  // An idle client the drop below terminates while the pool is still closing it emits 'error' on
  // the pool; unheard, that would end the whole run.
  pool.on("error", () => {});
  try {
    const auth = betterAuth({
      database: pool,
      baseURL: BASE,
      secret: randomBytes(32).toString("hex"),
      emailAndPassword: { enabled: true },
      rateLimit: { enabled: false },
      logger: { disabled: true },
      telemetry: { enabled: false },
    });
    await (await getMigrations(auth.options)).runMigrations();
    const email = `peer-${Date.now()}@bench.test`;
    await auth.api.signUpEmail({ body: { email, password: PASSWORD, name: "Peer" } });
    const signInRequest = () =>
      new Request(`${BASE}/api/auth/sign-in/email`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: BASE },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
    const first = await auth.handler(signInRequest());
    const cookie = first.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const ok = (response: Response) => {
      if (response.status !== 200) throw new Error(`Better Auth answered ${response.status}`);
    };

    const ourEmail = `peer-authlith-${Date.now()}@bench.test`;
    const ours = await registerBenchUser(runtime, ourEmail);
    const client = benchClient(runtime);
    const me = { authorization: `Bearer ${ours.accessToken}` };
    let refreshToken = ours.refreshToken;

    // Each side gets its request built before the clock starts (Request for Better Auth, an API
    // Gateway event for authlith) and is timed from handing it over to getting its answer.
    const timedHandler = async (request: Request) => {
      const start = performance.now();
      const response = await auth.handler(request);
      const ms = performance.now() - start;
      ok(response);
      return ms;
    };
    const baSignIn = () => timedHandler(signInRequest());
    const ourLogin = async () => (await timeInvocation(runtime, "auth.login", { email: ourEmail, password: PASSWORD })).ms;
    const baSession = () => timedHandler(new Request(`${BASE}/api/auth/get-session`, { headers: { cookie } }));
    const meEvent = () => client.event({ path: "/trpc/auth.me", headers: me });
    const ourMe = async () => {
      const event = meEvent();
      const start = performance.now();
      const result = await runtime.handle(event);
      const ms = performance.now() - start;
      if (result.statusCode !== 200) throw new Error(`authlith me answered ${result.statusCode}`);
      return ms;
    };
    const ourRefresh = async () => {
      const { ms, data } = await timeInvocation(runtime, "auth.refresh", { refreshToken });
      refreshToken = data.refreshToken;
      return ms;
    };

    const signInIterations = Math.max(10, Math.round(iterations / 4));
    await alternate(Math.min(warmup, 5), baSignIn, ourLogin);
    const signIn = await alternate(signInIterations, baSignIn, ourLogin);
    await alternate(warmup, baSession, ourMe);
    const session = await alternate(iterations, baSession, ourMe);
    const refresh = await alternate(iterations, baSession, ourRefresh);
    return {
      betterAuth: { signIn: summarize(signIn.a), getSession: summarize([...session.a, ...refresh.a]) },
      authlith: { login: summarize(signIn.b), me: summarize(session.b), refresh: summarize(refresh.b) },
      hashes: {
        betterAuth: "scrypt N=16384, r=16, p=1 (16 MiB per hash)",
        authlith: "argon2id m=19456 KiB, t=2, p=1 (19 MiB per hash)",
      },
    };
  } finally {
    await pool.end();
    await database.drop();
  }
}
