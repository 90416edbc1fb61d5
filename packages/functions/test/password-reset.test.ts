import { accountTokens, auditEvents, users } from "@authlith/core/db/schema";
import { purgeExpired, type OutboxMail } from "@authlith/core";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { APP_ORIGIN, bearer, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp } from "./support/app";

const NEW_PASSWORD = "a brand new passphrase";

describe.each(backends)("password reset on $name", (backend) => {
  const service = useTestApp(backend, { AUTHLITH_APP_URL: "https://app.example.test/" });

  const client = service.client;
  const outbox = () => service.app.runtime.outbox!;
  const db = () => service.app.runtime.deps.db;
  const register = async (email = uniqueEmail("reset")) => {
    const result = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, ...result } as { email: string; accessToken: string; refreshToken: string; user: { id: string } };
  };
  const requestReset = (email: string, options = {}) => client(options).mutate("account.requestPasswordReset", { email });
  const tokenOf = (mail: OutboxMail | undefined) => {
    expect(mail, "a reset mail").toBeDefined();
    return decodeURIComponent(/#token=([^&\s]+)/.exec(mail!.link!)![1]!);
  };
  const mailedToken = async (email: string) => {
    data(await requestReset(email));
    return tokenOf(outbox().lastTo(email, "password_reset"));
  };
  const reset = (token: string, newPassword = NEW_PASSWORD, options = {}) =>
    client(options).mutate("account.resetPassword", { token, newPassword });

  describe("account.requestPasswordReset", () => {
    it("answers an address with an account and one without alike, and mails only the first", async () => {
      const { email } = await register();
      const unknown = uniqueEmail("nobody");
      const known = await requestReset(email);
      const stranger = await requestReset(unknown);
      expect(known.status).toBe(200);
      expect(stranger.status).toBe(known.status);
      expect(stranger.raw).toBe(known.raw);
      expect(Object.keys(stranger.headers).sort()).toEqual(Object.keys(known.headers).sort());
      expect(outbox().lastTo(unknown)).toBeUndefined();
      const mail = outbox().lastTo(email, "password_reset")!;
      expect(mail.subject).toMatch(/Reset your authlith password/);
      expect(mail.text).toContain(mail.link);
      expect(mail.html).toContain("<a href=");
      // The link goes to the app, with the token in the fragment (never sent to a server).
      expect(mail.link).toMatch(/^https:\/\/app\.example\.test\/reset-password#token=[A-Za-z0-9_-]{43}$/);
    });

    it("stores only a hash of the token, bound to its purpose", async () => {
      const { email, user } = await register();
      const token = await mailedToken(email);
      const rows = await db().select().from(accountTokens).where(eq(accountTokens.userId, user.id));
      expect(rows).toHaveLength(1);
      expect(rows[0]!.purpose).toBe("password_reset");
      expect(Buffer.from(rows[0]!.tokenHash).toString("base64url")).not.toContain(token);
      expect(JSON.stringify(rows)).not.toContain(token);
    });

    it("sends nothing for a disabled account, and answers the same", async () => {
      const { email, user } = await register();
      await db().update(users).set({ disabledAt: new Date(service.app.clock.now()) }).where(eq(users.id, user.id));
      const reply = await requestReset(email);
      expect(reply.status).toBe(200);
      expect(outbox().lastTo(email, "password_reset")).toBeUndefined();
    });

    it("limits mails per address, known or not, with Retry-After, and the limit looks the same for both", async () => {
      const { email } = await register();
      const unknown = uniqueEmail("nobody");
      const { limit } = service.app.runtime.deps.config.rateLimits.resetRequestPerAccount;
      for (let i = 0; i < limit; i++) {
        expect((await requestReset(email, { ip: `198.51.100.${i + 1}` })).status).toBe(200);
        expect((await requestReset(unknown, { ip: `198.51.100.${i + 1}` })).status).toBe(200);
      }
      const known = await requestReset(email, { ip: "198.51.100.200" });
      const stranger = await requestReset(unknown, { ip: "198.51.100.200" });
      expect(known.status).toBe(429);
      expect(Number(known.headers["retry-after"])).toBeGreaterThan(0);
      expect(stranger.status).toBe(429);
      expect(stranger.body).toEqual(known.body);
    });

    it("limits requests per IP, whatever the addresses", async () => {
      const { limit } = service.app.runtime.deps.config.rateLimits.resetRequestPerIp;
      for (let i = 0; i < limit; i++) expect((await requestReset(uniqueEmail("spray"), { ip: "192.0.2.77" })).status).toBe(200);
      const refused = await requestReset(uniqueEmail("spray"), { ip: "192.0.2.77" });
      expect(refused.status).toBe(429);
      expect(errorOf(refused).reason).toBe("RATE_LIMITED");
    });

    it("still answers 200 when the mail cannot be sent, and logs the failure without the address", async () => {
      const { email } = await register();
      const mailer = service.app.runtime.deps.mailer;
      service.app.runtime.deps.mailer = { send: async () => Promise.reject(new Error("SES said no")) };
      try {
        const reply = await requestReset(email);
        expect(reply.status).toBe(200);
        expect(reply.raw).not.toMatch(/SES|mail/i);
      } finally {
        service.app.runtime.deps.mailer = mailer;
      }
      const failure = service.app.logs.findLast((line) => line.event === "mail.failed");
      expect(failure).toMatchObject({ level: "error", kind: "password_reset" });
      expect(JSON.stringify(failure)).not.toContain(email);
    });
  });

  describe("account.resetPassword", () => {
    it("sets the new password, ends every session at once, does not sign in, and tells the owner", async () => {
      const account = await register();
      const token = await mailedToken(account.email);
      const reply = await reset(token);
      expect(data(reply)).toEqual({ success: true });
      expect(reply.cookies).toEqual([]);
      expect(reply.raw).not.toMatch(/accessToken|refreshToken/);
      // The access token issued before is refused on its next request, the refresh token too.
      const me = await client().query("auth.me", undefined, bearer(account.accessToken));
      expect(me.status).toBe(401);
      expect(errorOf(me).reason).toBe("SESSION_REVOKED");
      expect((await client().mutate("auth.refresh", { refreshToken: account.refreshToken })).status).toBe(401);
      // Only the new password signs in.
      expect((await client().mutate("auth.login", { email: account.email, password: PASSWORD })).status).toBe(401);
      expect((await client().mutate("auth.login", { email: account.email, password: NEW_PASSWORD })).status).toBe(200);
      const notice = outbox().lastTo(account.email, "password_changed")!;
      expect(notice.text).toMatch(/reset/);
      const events = await db().select({ type: auditEvents.type }).from(auditEvents).where(eq(auditEvents.userId, account.user.id));
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["password.reset_requested", "password.reset"]));
    });

    it("is single use, and a newer request supersedes the older link", async () => {
      const { email } = await register();
      const first = await mailedToken(email);
      const second = await mailedToken(email);
      expect(second).not.toBe(first);
      const stale = await reset(first);
      expect(stale.status).toBe(400);
      expect(errorOf(stale).reason).toBe("INVALID_TOKEN");
      data(await reset(second));
      expect(errorOf(await reset(second, "yet another long passphrase")).reason).toBe("INVALID_TOKEN");
    });

    it("expires after 30 minutes", async () => {
      const { email } = await register();
      const token = await mailedToken(email);
      service.app.clock.advance(30 * 60 * 1000 + 1000);
      expect(errorOf(await reset(token)).reason).toBe("INVALID_TOKEN");
    });

    it("refuses a weak new password without spending the token", async () => {
      const { email } = await register();
      const token = await mailedToken(email);
      const weak = await reset(token, "password1");
      expect(weak.status).toBe(400);
      expect(errorOf(weak).fieldErrors?.newPassword?.[0]).toMatch(/too common/);
      const context = await reset(token, "resetexample"); // the email's words, not its random part (see procedures.test.ts)
      expect(errorOf(context).fieldErrors?.newPassword?.[0]).toMatch(/email address/);
      data(await reset(token));
    });

    it("refuses malformed, unknown and foreign tokens alike", async () => {
      for (const token of ["x", "A".repeat(43), "not a token at all, with spaces and more than 43 chars"]) {
        const reply = await reset(token);
        expect(reply.status, token).toBe(400);
        expect(errorOf(reply).reason, token).toBe("INVALID_TOKEN");
      }
    });

    it("works while the account is locked out, and lifts the lock", async () => {
      const { email } = await register();
      const { limit } = service.app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i < limit; i++) await client({ ip: `203.0.113.${i + 1}` }).mutate("auth.login", { email, password: "wrong wrong wrong" });
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(429);
      data(await reset(await mailedToken(email)));
      expect((await client().mutate("auth.login", { email, password: NEW_PASSWORD })).status).toBe(200);
    });

    it("does not work for an account disabled after the mail was sent", async () => {
      const { email, user } = await register();
      const token = await mailedToken(email);
      await db().update(users).set({ disabledAt: new Date(service.app.clock.now()) }).where(eq(users.id, user.id));
      expect(errorOf(await reset(token)).reason).toBe("INVALID_TOKEN");
    });

    it("changes nothing when the link is fetched with GET, as mail scanners do", async () => {
      const { email } = await register();
      const token = await mailedToken(email);
      const input = encodeURIComponent(JSON.stringify({ token, newPassword: NEW_PASSWORD }));
      const scanned = await client().request({ path: "/trpc/account.resetPassword", query: `input=${input}` });
      expect(scanned.status).toBe(405);
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
      data(await reset(token));
    });

    it("lets exactly one of several concurrent redemptions of one token win", async () => {
      const { email, user } = await register();
      const token = await mailedToken(email);
      const passwords = Array.from({ length: 5 }, (_, i) => `concurrent passphrase number ${i}`);
      const replies = await Promise.all(passwords.map((password) => reset(token, password)));
      const winners = replies.flatMap((reply, i) => (reply.status === 200 ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const reply of replies.filter((r) => r.status !== 200)) expect(errorOf(reply).reason).toBe("INVALID_TOKEN");
      // The password that took is the winner's, and exactly one reset was recorded.
      expect((await client().mutate("auth.login", { email, password: passwords[winners[0]!]! })).status).toBe(200);
      const resets = await db()
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.userId, user.id), eq(auditEvents.type, "password.reset")));
      expect(resets).toHaveLength(1);
    });

    it("leaves expired tokens to the purge", async () => {
      const { email, user } = await register();
      await mailedToken(email);
      service.app.clock.advance(31 * 60 * 1000);
      const result = await purgeExpired({ db: db(), clock: service.app.clock });
      expect(result.accountTokens).toBeGreaterThanOrEqual(1);
      expect(await db().select().from(accountTokens).where(eq(accountTokens.userId, user.id))).toEqual([]);
    });
  });

  it("has no outbox route in the handler the Lambda serves (only the dev server lists mail)", async () => {
    expect((await client().request({ path: "/dev/mail" })).status).toBe(404);
  });

  it("links to the configured app, not to this API", () => {
    expect(service.app.runtime.deps.config.mail.appUrl).toBe("https://app.example.test");
    expect(APP_ORIGIN).not.toBe(service.app.runtime.deps.config.issuer);
  });
});
