import { auditEvents, sessions } from "@authlith/core/db/schema";
import { and, eq, isNull } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { adminCommand } from "../src/scripts/admin";
import { bearer, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp } from "./support/app";

describe.each(backends)("disabling an account on $name", (backend) => {
  const service = useTestApp(backend);
  const client = service.client;
  const admin = async (...argv: string[]) => {
    const lines: string[] = [];
    const code = await adminCommand(service.app.runtime.deps, argv, (line) => lines.push(line));
    return { code, output: lines.join("\n") };
  };
  const register = async () => {
    const email = uniqueEmail("status");
    const tokens = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, ...tokens } as { email: string; accessToken: string; refreshToken: string; user: { id: string } };
  };

  it("refuses every session and access token on its next request, and sign-in with the answer of a wrong password", async () => {
    const account = await register();
    const phone = data(await client().mutate("auth.login", { email: account.email, password: PASSWORD }, tokenTransport));
    expect((await client().query("auth.me", undefined, bearer(account.accessToken))).status).toBe(200);

    const disabled = await admin("disable", account.email, "fraud", "report");
    expect(disabled).toEqual({ code: 0, output: `disabled ${account.user.id}; 2 session(s) ended` });

    for (const token of [account.accessToken, phone.accessToken]) {
      const me = await client().query("auth.me", undefined, bearer(token));
      expect(me.status).toBe(401);
      expect(errorOf(me).reason).toBe("SESSION_REVOKED");
      expect((await client().query("session.list", undefined, bearer(token))).status).toBe(401);
      expect((await client().mutate("session.revokeOthers", undefined, bearer(token))).status).toBe(401);
    }
    expect((await client().mutate("auth.refresh", { refreshToken: phone.refreshToken })).status).toBe(401);
    const signIn = await client().mutate("auth.login", { email: account.email, password: PASSWORD });
    const wrong = await client().mutate("auth.login", { email: uniqueEmail("nobody"), password: PASSWORD });
    expect(signIn.status).toBe(401);
    expect(signIn.body).toEqual(wrong.body);
    // No reset link either.
    expect((await client().mutate("account.requestPasswordReset", { email: account.email })).status).toBe(200);
    expect(service.app.runtime.outbox!.lastTo(account.email, "password_reset")).toBeUndefined();

    const [event] = await service.app.runtime.deps.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, account.user.id), eq(auditEvents.type, "user.disabled")));
    expect(event!.details).toEqual({ reason: "fraud report" });
  });

  it("is undone by enable, which does not bring the ended sessions back", async () => {
    const account = await register();
    await admin("disable", account.email);
    expect(await admin("enable", account.email)).toEqual({ code: 0, output: `enabled ${account.user.id}` });
    expect((await client().query("auth.me", undefined, bearer(account.accessToken))).status).toBe(401);
    expect((await client().mutate("auth.login", { email: account.email, password: PASSWORD })).status).toBe(200);
  });

  it("is idempotent, and says so; an unknown email or a wrong command is an error", async () => {
    const account = await register();
    await admin("disable", account.email);
    expect(await admin("disable", account.email.toUpperCase())).toEqual({ code: 0, output: `already disabled: ${account.user.id}; 0 session(s) ended` });
    expect(await admin("enable", account.email)).toMatchObject({ code: 0 });
    expect(await admin("enable", account.email)).toEqual({ code: 0, output: `already enabled: ${account.user.id}` });
    expect(await admin("disable", uniqueEmail("nobody"))).toMatchObject({ code: 1, output: expect.stringMatching(/^no account/) });
    expect(await admin("delete", account.email)).toMatchObject({ code: 2, output: expect.stringMatching(/^usage/) });
    expect(await admin("disable")).toMatchObject({ code: 2 });
  });

  it("leaves no live session behind when a sign-in is in flight as it runs", async () => {
    const account = await register();
    // Hold the sign-in's transaction open (its session row written, not committed) until the
    // disable has started, and a little longer.
    const hasher = service.app.runtime.deps.hasher;
    let disableStarted!: () => void;
    const started = new Promise<void>((resolve) => (disableStarted = resolve));
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    service.app.runtime.deps.hasher = {
      ...hasher,
      verify: async (stored, password) => {
        const valid = await hasher.verify(stored, password);
        await started;
        await sleep(100);
        return valid;
      },
    };
    try {
      const login = client().mutate("auth.login", { email: account.email, password: PASSWORD }, tokenTransport);
      await sleep(50);
      const disable = admin("disable", account.email);
      disableStarted();
      const [signedIn] = await Promise.all([login, disable]);
      const live = await service.app.runtime.deps.db
        .select({ id: sessions.id })
        .from(sessions)
        .where(and(eq(sessions.userId, account.user.id), isNull(sessions.revokedAt)));
      expect(live).toEqual([]);
      if (signedIn.status === 200) expect((await client().query("auth.me", undefined, bearer(data(signedIn).accessToken))).status).toBe(401);
      else expect(signedIn.status).toBe(401);
    } finally {
      service.app.runtime.deps.hasher = hasher;
    }
  });
});
