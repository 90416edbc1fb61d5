import { users } from "@authlith/core/db/schema";
import { randomBytes } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgliteBackend } from "../../core/test/support";
import { bearer, COOKIE_NAME, data, startTestApp, tokenTransport, uniqueEmail, type TestApp } from "./support/app";

describe("secrets never reach the logs (docs/security.md §31)", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(pgliteBackend, { LOG_LEVEL: "debug" });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("logs no password, token, cookie or Authorization header across every flow", async () => {
    const password = `canary-${randomBytes(12).toString("hex")}`;
    const email = uniqueEmail("canary");
    const secrets: string[] = [password];
    const c = app.client();
    const browser = data(await c.mutate("auth.register", { email, password }));
    secrets.push(browser.accessToken, c.jar.get(COOKIE_NAME)!);
    const native = data(await app.client({ origin: null }).mutate("auth.login", { email, password }, tokenTransport));
    secrets.push(native.accessToken, native.refreshToken);
    await app.client().mutate("auth.login", { email, password: `${password}-wrong` });
    const rotated = data(await app.client({ origin: null }).mutate("auth.refresh", { refreshToken: native.refreshToken }));
    secrets.push(rotated.accessToken, rotated.refreshToken);
    app.clock.advance(11_000);
    await app.client({ origin: null }).mutate("auth.refresh", { refreshToken: native.refreshToken }); // reuse: logged as a warning
    await c.mutate("auth.refresh");
    await c.query("session.list", undefined, bearer(browser.accessToken));
    await c.mutate("auth.logout", undefined, bearer(browser.accessToken));
    await app.client().query("auth.me", undefined, bearer(`${browser.accessToken}x`));

    expect(app.logs.some((line) => line.event === "session.reuse_detected")).toBe(true);
    const everything = JSON.stringify(app.logs);
    for (const secret of secrets) expect(everything).not.toContain(secret);
    expect(everything).not.toMatch(/authorization|cookie|password/i);
  });

  it("cannot be made to forge log lines with control characters", async () => {
    // The user agent is logged when an account locks: try to break out of that line.
    const forger = 'evil\n{"level":"error","event":"forged"}\r\u2028{"event":"forged2"}';
    const email = uniqueEmail("forger");
    const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
    for (let i = 0; i <= limit; i++) await app.client({ userAgent: forger }).mutate("auth.login", { email, password: "x\r\nforged" });
    const locked = app.logs.find((line) => line.event === "login.locked" && String(line.userAgent).startsWith("evil"));
    expect(locked).toBeDefined();
    for (const line of app.logs) expect(String(line.event)).not.toMatch(/^forged/);
  });
});

describe("an internal error", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(pgliteBackend);
  });
  afterAll(async () => {
    await app?.close();
  });

  it("reaches the client as a bare 500, is logged with the request id, and leaves no partial write", async () => {
    // Break the schema under the service: the audit insert inside register's statement fails.
    await app.runtime.deps.db.execute(sql`ALTER TABLE audit_events RENAME TO audit_events_gone`);
    try {
      const email = uniqueEmail("broken");
      const reply = await app.client().mutate("auth.register", { email, password: "correct horse battery staple" });
      expect(reply.status).toBe(500);
      expect(reply.body.error.message).toBe("Internal server error");
      expect(reply.raw).not.toMatch(/audit|relation|sql|select|insert|stack|\.ts/i);
      expect(reply.cookies).toEqual([]);
      // User, session and audit event are one statement: nothing was written.
      expect(await app.runtime.deps.db.select().from(users).where(eq(users.emailCanonical, email))).toEqual([]);
      const logged = app.logs.find((line) => line.event === "request.failed");
      expect(logged).toMatchObject({ level: "error", path: "auth.register" });
      expect(logged!.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.stringify(logged)).not.toMatch(/audit_events|relation/);
    } finally {
      await app.runtime.deps.db.execute(sql`ALTER TABLE audit_events_gone RENAME TO audit_events`);
    }
  });
});
