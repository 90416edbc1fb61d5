import { auditEvents, users } from "@authlith/core/db/schema";
import type { OutboxMail } from "@authlith/core";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { bearer, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp } from "./support/app";

describe.each(backends)("changing the email address on $name", (backend) => {
  const service = useTestApp(backend);
  const client = service.client;
  const signUp = async () => {
    const email = uniqueEmail("move");
    const tokens = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, userId: tokens.user.id as string, accessToken: tokens.accessToken as string };
  };
  const tokenOf = (mail: OutboxMail | undefined) => decodeURIComponent(/#token=([^&\s]+)/.exec(mail!.link!)![1]!);
  const ask = (accessToken: string, newEmail: string, password = PASSWORD) =>
    client().mutate("account.changeEmail", { password, newEmail }, bearer(accessToken));
  const confirm = (token: string) => client().mutate("account.confirmEmailChange", { token });

  it("takes effect only when the new address confirms, then tells the old one; the new address signs in", async () => {
    const account = await signUp();
    const newEmail = uniqueEmail("moved");
    expect(data(await ask(account.accessToken, newEmail))).toEqual({ success: true });
    // Nothing has changed yet.
    expect((await client().mutate("auth.login", { email: account.email, password: PASSWORD })).status).toBe(200);
    const link = service.app.runtime.outbox!.lastTo(newEmail, "email_change")!;
    expect(link.link).toMatch(/\/confirm-email#token=[A-Za-z0-9_-]{43}$/);

    expect(data(await confirm(tokenOf(link)))).toEqual({ success: true, email: newEmail });
    expect((await client().mutate("auth.login", { email: account.email, password: PASSWORD })).status).toBe(401);
    const signedIn = data(await client().mutate("auth.login", { email: newEmail, password: PASSWORD }));
    expect(signedIn.user).toMatchObject({ email: newEmail, emailVerified: true });
    expect(service.app.runtime.outbox!.lastTo(account.email, "email_changed")!.text).toContain(newEmail);
    const events = await service.app.runtime.deps.db.select({ type: auditEvents.type }).from(auditEvents).where(eq(auditEvents.userId, account.userId));
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["email.change_requested", "email.changed"]));
    // The link works once.
    expect(errorOf(await confirm(tokenOf(link))).reason).toBe("INVALID_TOKEN");
  });

  it("answers the same when the new address has an account, and tells that address's owner instead", async () => {
    const account = await signUp();
    const other = await signUp();
    const free = await ask(account.accessToken, uniqueEmail("free"));
    const taken = await ask(account.accessToken, other.email.toUpperCase());
    expect(taken.status).toBe(free.status);
    expect(taken.raw).toBe(free.raw);
    expect(service.app.runtime.outbox!.lastTo(other.email, "email_change")).toBeUndefined();
    expect(service.app.runtime.outbox!.lastTo(other.email, "email_in_use")).toBeDefined();
  });

  it("needs the password, refuses the current address, and a newer request supersedes the older link", async () => {
    const account = await signUp();
    const wrong = await ask(account.accessToken, uniqueEmail("x"), "not the password");
    expect(wrong.status).toBe(403);
    expect(errorOf(wrong).reason).toBe("INVALID_PASSWORD");
    const same = await ask(account.accessToken, account.email);
    expect(errorOf(same).fieldErrors?.newEmail?.[0]).toMatch(/already your address/);
    const first = uniqueEmail("first");
    const second = uniqueEmail("second");
    data(await ask(account.accessToken, first));
    data(await ask(account.accessToken, second));
    expect(errorOf(await confirm(tokenOf(service.app.runtime.outbox!.lastTo(first, "email_change")))).reason).toBe("INVALID_TOKEN");
    expect(data(await confirm(tokenOf(service.app.runtime.outbox!.lastTo(second, "email_change"))))).toMatchObject({ email: second });
  });

  it("refuses a link whose address was taken by a sign-up in the meantime, and changes nothing", async () => {
    const account = await signUp();
    const wanted = uniqueEmail("wanted");
    data(await ask(account.accessToken, wanted));
    data(await client().mutate("auth.register", { email: wanted, password: PASSWORD }));
    const reply = await confirm(tokenOf(service.app.runtime.outbox!.lastTo(wanted, "email_change")));
    expect(reply.status).toBe(409);
    expect(errorOf(reply).reason).toBe("EMAIL_TAKEN");
    const [row] = await service.app.runtime.deps.db.select({ email: users.email }).from(users).where(eq(users.id, account.userId));
    expect(row!.email).toBe(account.email);
  });

  it("a reset token cannot confirm an email change (tokens are bound to their purpose)", async () => {
    const account = await signUp();
    data(await client().mutate("account.requestPasswordReset", { email: account.email }));
    const resetToken = tokenOf(service.app.runtime.outbox!.lastTo(account.email, "password_reset"));
    expect(errorOf(await confirm(resetToken)).reason).toBe("INVALID_TOKEN");
    data(await client().mutate("account.resetPassword", { token: resetToken, newPassword: "the reset still works" }));
  });
});
