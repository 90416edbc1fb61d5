import { accountTokens, auditEvents, sessions, users } from "@authlith/core/db/schema";
import { canonicalEmail, emailSubject } from "@authlith/core";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { bearer, COOKIE_NAME, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp } from "./support/app";

const NEW_PASSWORD = "a completely different passphrase";

describe.each(backends)("changing and deleting an account on $name", (backend) => {
  const service = useTestApp(backend);
  const client = service.client;
  const db = () => service.app.runtime.deps.db;
  const signUp = async () => {
    const email = uniqueEmail("change");
    const first = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    const second = data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
    return { email, userId: first.user.id as string, here: first.accessToken as string, elsewhere: second.accessToken as string };
  };
  const status = async (token: string) => (await client().query("auth.me", undefined, bearer(token))).status;

  describe("account.changePassword", () => {
    it("sets the new password, ends every other session at once but keeps this one, and tells the owner", async () => {
      const account = await signUp();
      const reply = await client().mutate("account.changePassword", { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(account.here));
      expect(data(reply)).toEqual({ success: true, revokedSessions: 1 });
      expect(await status(account.here)).toBe(200);
      expect(await status(account.elsewhere)).toBe(401);
      expect((await client().mutate("auth.login", { email: account.email, password: PASSWORD })).status).toBe(401);
      expect((await client().mutate("auth.login", { email: account.email, password: NEW_PASSWORD })).status).toBe(200);
      expect(service.app.runtime.outbox!.lastTo(account.email, "password_changed")!.text).toMatch(/changed/);
      const events = await db().select({ type: auditEvents.type }).from(auditEvents).where(eq(auditEvents.userId, account.userId));
      expect(events.map((e) => e.type)).toContain("password.changed");
    });

    it("refuses a wrong current password with FORBIDDEN (not UNAUTHORIZED: the session is fine), and counts the tries", async () => {
      const account = await signUp();
      const wrong = await client().mutate("account.changePassword", { currentPassword: "not it at all", newPassword: NEW_PASSWORD }, bearer(account.here));
      expect(wrong.status).toBe(403);
      expect(errorOf(wrong).reason).toBe("INVALID_PASSWORD");
      expect(await status(account.elsewhere)).toBe(200);
      const { limit } = service.app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      let last = wrong;
      for (let i = 1; i <= limit; i++) {
        last = await client().mutate("account.changePassword", { currentPassword: `guess ${i} guess`, newPassword: NEW_PASSWORD }, bearer(account.here));
      }
      expect(last.status).toBe(429);
      expect(Number(last.headers["retry-after"])).toBeGreaterThan(0);
    });

    it("lets no more concurrent guesses through than the budget allows", async () => {
      const account = await signUp();
      const { limit } = service.app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      const replies = await Promise.all(
        Array.from({ length: limit + 5 }, (_, i) =>
          client().mutate("account.changePassword", { currentPassword: `guess number ${i}`, newPassword: NEW_PASSWORD }, bearer(account.here)),
        ),
      );
      expect(replies.filter((r) => r.status === 403)).toHaveLength(limit);
      expect(replies.filter((r) => r.status === 429)).toHaveLength(5);
    });

    it("applies the password policy to the new password, and needs a signed-in user", async () => {
      const account = await signUp();
      const weak = await client().mutate("account.changePassword", { currentPassword: PASSWORD, newPassword: "qwerty123" }, bearer(account.here));
      expect(weak.status).toBe(400);
      expect(errorOf(weak).fieldErrors?.newPassword?.[0]).toMatch(/too common/);
      const mine = await client().mutate("account.changePassword", { currentPassword: PASSWORD, newPassword: "changeexample!" /* the email's words, not its random part (see procedures.test.ts) */ }, bearer(account.here));
      expect(errorOf(mine).fieldErrors?.newPassword?.[0]).toMatch(/email address/);
      expect(await status(account.elsewhere)).toBe(200);
      expect((await client().mutate("account.changePassword", { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })).status).toBe(401);
    });
  });

  describe("account.delete", () => {
    it("refuses a wrong password and changes nothing", async () => {
      const account = await signUp();
      const reply = await client().mutate("account.delete", { password: "not the password" }, bearer(account.here));
      expect(reply.status).toBe(403);
      expect(errorOf(reply).reason).toBe("INVALID_PASSWORD");
      expect(await status(account.here)).toBe(200);
      expect(await db().select().from(users).where(eq(users.id, account.userId))).toHaveLength(1);
    });

    it("ends every session at once, removes the personal data, and keeps the audit trail under a pseudonym", async () => {
      const account = await signUp();
      data(await client().mutate("account.requestPasswordReset", { email: account.email }));
      const browser = service.app.client();
      data(await browser.mutate("auth.login", { email: account.email, password: PASSWORD }));
      const reply = await client().mutate("account.delete", { password: PASSWORD }, bearer(account.here));
      expect(data(reply)).toEqual({ success: true });
      expect(reply.cookies.some((c) => c.startsWith(`${COOKIE_NAME}=;`))).toBe(true);
      expect(await status(account.here)).toBe(401);
      expect(await status(account.elsewhere)).toBe(401);
      expect((await browser.mutate("auth.refresh")).status).toBe(401);
      // The account is gone: signing in answers as for an unknown address, and the address is free.
      const login = await client().mutate("auth.login", { email: account.email, password: PASSWORD });
      expect(login.status).toBe(401);
      expect(await db().select().from(users).where(eq(users.id, account.userId))).toEqual([]);
      expect(await db().select().from(sessions).where(eq(sessions.userId, account.userId))).toEqual([]);
      expect(await db().select().from(accountTokens).where(eq(accountTokens.userId, account.userId))).toEqual([]);
      // What happened stays on record, under the HMAC of the address, never the address itself.
      const subject = emailSubject(service.app.runtime.deps, canonicalEmail(account.email));
      const trail = await db().select().from(auditEvents).where(eq(auditEvents.subject, subject));
      expect(trail.map((e) => e.type)).toEqual(expect.arrayContaining(["user.registered", "login.succeeded", "user.deleted"]));
      expect(trail.every((e) => e.userId === null)).toBe(true);
      expect(JSON.stringify(trail)).not.toContain(account.email);
      data(await client().mutate("auth.register", { email: account.email, password: NEW_PASSWORD }));
    });
  });
});

describe.each(backends)("recent authentication on $name", (backend) => {
  const service = useTestApp(backend, { AUTHLITH_REAUTH_SECONDS: "300" });
  const client = service.client;

  it("carries the sign-in time in the access token as auth_time, and a refresh keeps it", async () => {
    const email = uniqueEmail("authtime");
    const signedUpAt = service.app.clock.now();
    const first = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    const claims = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { auth_time: number; iat: number };
    expect(claims(first.accessToken).auth_time).toBe(Math.floor(signedUpAt / 1000));
    service.app.clock.advance(120_000);
    const refreshed = data(await client().mutate("auth.refresh", { refreshToken: first.refreshToken }));
    expect(claims(refreshed.accessToken).auth_time).toBe(Math.floor(signedUpAt / 1000));
    expect(claims(refreshed.accessToken).iat).toBeGreaterThan(claims(first.accessToken).iat);
  });

  it("lets a recent sign-in sign out the other devices; later it needs the password", async () => {
    const email = uniqueEmail("reauth");
    const me = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    const other = () => client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport);
    data(await other());
    expect(data(await client().mutate("session.revokeOthers", undefined, bearer(me.accessToken)))).toEqual({ success: true, revokedSessions: 1 });

    data(await other());
    service.app.clock.advance(301_000);
    // A refreshed token is no fresher: the sign-in is what counts.
    const refreshed = data(await client().mutate("auth.refresh", { refreshToken: me.refreshToken }));
    const stale = await client().mutate("session.revokeOthers", undefined, bearer(refreshed.accessToken));
    expect(stale.status).toBe(403);
    expect(errorOf(stale).reason).toBe("REAUTHENTICATION_REQUIRED");
    const wrong = await client().mutate("session.revokeOthers", { password: "not the password" }, bearer(refreshed.accessToken));
    expect(errorOf(wrong).reason).toBe("INVALID_PASSWORD");
    expect(data(await client().mutate("session.revokeOthers", { password: PASSWORD }, bearer(refreshed.accessToken)))).toEqual({
      success: true,
      revokedSessions: 1,
    });
  });
});
