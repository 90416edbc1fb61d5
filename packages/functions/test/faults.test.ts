import { auditEvents, sessions } from "@authlith/core/db/schema";
import { createPostgresDb, createRedisStore } from "@authlith/core";
import { createServer, type Socket } from "node:net";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, hasRealServices, makeRealBackend, pgliteBackend, realBackend, type Backend } from "../../core/test/support";
import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "./support/dev-process";
import { ServiceUnavailableError } from "@authlith/core";
import { parseEnvConfig } from "../src/config";
import { createRuntime, type Runtime } from "../src/runtime";
import { bearer, data, errorOf, PASSWORD, startTestApp, TestClient, tokenTransport, uniqueEmail, type TestApp } from "./support/app";

/** PGlite for the records, and a Redis that is not there (nothing listens on port 1). */
const unreachableRedis: Backend = {
  name: "pglite + unreachable redis",
  real: false,
  async setup(options) {
    const base = await pgliteBackend.setup(options);
    const store = createRedisStore({ url: "redis://127.0.0.1:1", connectTimeoutMs: 300, commandTimeoutMs: 300 });
    return {
      ...base,
      store,
      async cleanup() {
        await store.close();
        await base.cleanup();
      },
    };
  },
};

/**
 * A Postgres that accepts connections and never says a word: a network partition after the TCP
 * handshake, or a server frozen mid-failover. Nothing in the driver times out a query on a
 * connection that looks alive (statement_timeout runs on the server, which never hears it).
 */
const silentPostgres: Backend = {
  name: "pglite + a silent postgres",
  real: false,
  async setup(options) {
    const base = await pgliteBackend.setup(options);
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {}).on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const db = createPostgresDb({ url: `postgres://authlith@127.0.0.1:${port}/authlith`, connectTimeoutSeconds: 30 });
    return {
      ...base,
      db,
      async cleanup() {
        for (const socket of sockets) socket.destroy();
        await db.close().catch(() => {});
        await new Promise((resolve) => silent.close(resolve));
        await base.cleanup();
      },
    };
  },
};

describe("when Postgres takes connections but never answers", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(silentPostgres, { AUTHLITH_REQUEST_TIMEOUT_MS: "1000" });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("answers 503 with Retry-After at the request deadline, for every procedure that needs it", async () => {
    const c = app.client({ origin: null });
    const started = performance.now();
    const [login, register, refresh] = await Promise.all([
      c.mutate("auth.login", { email: uniqueEmail("silent"), password: PASSWORD }, tokenTransport),
      c.mutate("auth.register", { email: uniqueEmail("silent"), password: PASSWORD }, tokenTransport),
      c.mutate("auth.refresh", { refreshToken: "x".repeat(91) }),
    ]);
    const elapsed = performance.now() - started;
    for (const reply of [login, register]) {
      expect(reply.status).toBe(503);
      expect(errorOf(reply).code).toBe("SERVICE_UNAVAILABLE");
      expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
    }
    // A token this service never issued is refused before any query.
    expect(refresh.status).toBe(401);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000); // the deadline, not the driver's 30 s connect timeout
    expect(app.logs.filter((line) => line.event === "request.unavailable").length).toBeGreaterThanOrEqual(2);
  });

  it("says so on /health, with Retry-After", async () => {
    const health = await app.client({ origin: null }).request({ path: "/health" });
    expect(health.status).toBe(503);
    expect(Number(health.headers["retry-after"])).toBeGreaterThan(0);
    expect(health.body).toMatchObject({ status: "unavailable", checks: { postgres: { ok: false } } });
  });
});

describe("when Redis does not answer", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(unreachableRedis);
  });
  afterAll(async () => {
    await app?.close();
  });

  it("still registers, signs in, refreshes and answers me (per-IP limits fail open)", async () => {
    const c = app.client({ origin: null });
    const email = uniqueEmail("noredis");
    const signedUp = data(await c.mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    const signedIn = data(await c.mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
    expect(data(await c.query("auth.me", undefined, bearer(signedIn.accessToken))).user.email).toBe(email);
    expect(data(await c.mutate("auth.refresh", { refreshToken: signedUp.refreshToken })).session.id).toBe(signedUp.session.id);
    const health = await c.request({ path: "/health" });
    expect(health.body).toMatchObject({ status: "degraded", checks: { postgres: { ok: true }, redis: { ok: false } } });
  });

  it("checks revocation in Postgres: a logged-out session's access token is refused at once", async () => {
    const c = app.client({ origin: null });
    const signedUp = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    data(await c.mutate("auth.logout", undefined, bearer(signedUp.accessToken)));
    const me = await c.query("auth.me", undefined, bearer(signedUp.accessToken));
    expect(me.status).toBe(401);
    expect(errorOf(me).reason).toBe("SESSION_REVOKED");
    expect(app.logs.some((line) => line.event === "revocation.publish_failed")).toBe(true);
  });

  it("keeps per-account protection by counting failures in Postgres", async () => {
    const c = app.client({ origin: null });
    const email = uniqueEmail("lockpg");
    data(await c.mutate("auth.register", { email, password: PASSWORD }));
    const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
    for (let i = 0; i < limit; i++) expect((await c.mutate("auth.login", { email, password: "wrong password!" })).status).toBe(401);
    const locked = await c.mutate("auth.login", { email, password: PASSWORD });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers["retry-after"])).toBeGreaterThan(0);
    // The same holds for an address nobody registered: the lock reveals nothing.
    const ghost = uniqueEmail("ghostpg");
    for (let i = 0; i < limit; i++) await c.mutate("auth.login", { email: ghost, password: "wrong password!" });
    expect((await c.mutate("auth.login", { email: ghost, password: PASSWORD })).status).toBe(429);
  });
});

describe.each(backends)("when Redis takes reads but refuses writes ($name)", (backend) => {
  // Redis out of memory (noeviction) refuses SET but still answers GET and DEL: the case where a
  // revocation could silently fail to reach the list while readers keep trusting it.
  const refusingWrites: Backend = {
    ...backend,
    async setup(options) {
      const base = await backend.setup(options);
      let refuse = false;
      const store = {
        ...base.store,
        setMany: async (entries: Parameters<typeof base.store.setMany>[0]) => {
          if (refuse) throw new ServiceUnavailableError("redis");
          return base.store.setMany(entries);
        },
      };
      return { ...base, store, refuseWrites: (on: boolean) => void (refuse = on) } as typeof base;
    },
  };
  let first: TestApp;
  let second: Runtime;
  beforeAll(async () => {
    first = await startTestApp(refusingWrites);
    // A second "Lambda instance" on the same Postgres and Redis.
    second = await createRuntime(parseEnvConfig(first.env), {
      db: first.backend.db,
      store: first.backend.store,
      clock: first.clock,
      log: first.runtime.deps.log,
    });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it("a revocation that could not be written still takes effect at once, on every instance", async () => {
    const c = first.client({ origin: null });
    const victim = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    const other = new TestClient(second.handle, { origin: null });
    expect((await other.query("auth.me", undefined, bearer(victim.accessToken))).status).toBe(200);
    (first.backend as unknown as { refuseWrites(on: boolean): void }).refuseWrites(true);
    try {
      data(await c.mutate("auth.logout", undefined, bearer(victim.accessToken)));
      expect(first.logs.some((line) => line.event === "revocation.publish_failed")).toBe(true);
      expect(errorOf(await c.query("auth.me", undefined, bearer(victim.accessToken))).reason).toBe("SESSION_REVOKED");
      expect(errorOf(await other.query("auth.me", undefined, bearer(victim.accessToken))).reason).toBe("SESSION_REVOKED");
    } finally {
      (first.backend as unknown as { refuseWrites(on: boolean): void }).refuseWrites(false);
    }
  });
});

describe.runIf(hasRealServices)("when Redis loses or misses data (real Redis)", () => {
  // A Redis server of this suite's own: pausing or flushing it touches no other test file.
  let privateRedis: ChildProcess;
  let app: TestApp;
  beforeAll(async () => {
    const port = await freePort();
    privateRedis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    const url = `redis://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt++) {
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on("error", () => {});
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        probe.disconnect();
      }
    }
    app = await startTestApp(makeRealBackend(() => url), { AUTHLITH_REVOCATION_RESYNC_SECONDS: "1" });
  });
  afterAll(async () => {
    await app?.close();
    privateRedis?.kill();
  });

  const revokeKeys = async () => {
    const redis = app.backend.redis!;
    const keys = await redis.keys(`${app.backend.prefix}rv:*`);
    if (keys.length) await redis.del(...keys);
  };

  it("rebuilds the revocation list from Postgres after a flush", async () => {
    const c = app.client({ origin: null });
    const victim = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    const bystander = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    data(await c.mutate("auth.logout", undefined, bearer(victim.accessToken)));
    await revokeKeys(); // as FLUSHALL, a failover to an empty replica, or eviction would
    expect(errorOf(await c.query("auth.me", undefined, bearer(victim.accessToken))).reason).toBe("SESSION_REVOKED");
    expect((await c.query("auth.me", undefined, bearer(bystander.accessToken))).status).toBe(200);
    const redis = app.backend.redis!;
    expect(await redis.exists(`${app.backend.prefix}rv:s:${victim.session.id}`)).toBe(1);
    expect(await redis.exists(`${app.backend.prefix}rv:ready`)).toBe(1);
  });

  it("a revocation made while Redis is paused still takes effect", async () => {
    const c = app.client({ origin: null });
    const victim = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    const redis = app.backend.redis!;
    await redis.call("CLIENT", "PAUSE", "1500", "WRITE");
    try {
      data(await c.mutate("auth.logout", undefined, bearer(victim.accessToken)));
    } finally {
      await redis.call("CLIENT", "UNPAUSE");
    }
    expect(app.logs.some((line) => line.event === "revocation.publish_failed")).toBe(true);
    const [row] = await app.runtime.deps.db.select().from(sessions).where(eq(sessions.id, victim.session.id));
    expect(row!.revokedReason).toBe("logout");
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(errorOf(await c.query("auth.me", undefined, bearer(victim.accessToken))).reason).toBe("SESSION_REVOKED");
  });

  it("restores an entry that never reached Redis within the resync period", async () => {
    const c = app.client({ origin: null });
    const victim = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }, tokenTransport));
    data(await c.mutate("auth.logout", undefined, bearer(victim.accessToken)));
    const redis = app.backend.redis!;
    // The entry alone is lost (the "list is complete" marker survives): the write that never landed.
    await redis.del(`${app.backend.prefix}rv:s:${victim.session.id}`);
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(errorOf(await c.query("auth.me", undefined, bearer(victim.accessToken))).reason).toBe("SESSION_REVOKED");
    expect(await redis.exists(`${app.backend.prefix}rv:s:${victim.session.id}`)).toBe(1);
  });
});

describe.runIf(hasRealServices)("when Postgres drops connections (real Postgres)", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(realBackend);
  });
  afterAll(async () => {
    await app?.close();
  });

  it("answers 503 (never 500) while its connections are killed, then recovers with no lost writes", async () => {
    const c = app.client({ origin: null });
    const email = uniqueEmail("pgkill");
    let token = data(await c.mutate("auth.register", { email, password: PASSWORD }, tokenTransport)).refreshToken as string;
    const database = (await app.backend.sql!`select current_database() as name`)[0]!.name as string;
    for (let round = 0; round < 3; round++) {
      await app.backend.sql!`select pg_terminate_backend(pid) from pg_stat_activity
        where datname = ${database} and application_name = 'authlith' and pid <> pg_backend_pid()`;
      const reply = await c.mutate("auth.refresh", { refreshToken: token });
      expect([200, 503]).toContain(reply.status);
      if (reply.status === 200) token = data(reply).refreshToken;
      else expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
      // Whatever happened, the token we hold can still be rotated: no lost or doubled rotation.
      const next = await c.mutate("auth.refresh", { refreshToken: token });
      token = data(next).refreshToken;
    }
    const failures = await app.runtime.deps.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.type, "session.reuse_detected")));
    expect(failures).toEqual([]);
  });
});
