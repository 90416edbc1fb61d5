import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { confirmFromMail, fillAndSubmit, login, mailLink, message, openApp, register, useAppStack, waitForMeLoads, waitForState } from "./support/app";
import { snap } from "./support/browser";
import { PASSWORD, uniqueEmail, type Stack } from "./support/stack";

const NEW_PASSWORD = "a fresh and private passphrase";

/** The mails the dev server has "sent", newest first (its outbox, GET /dev/mail). */
async function mails(stack: Stack): Promise<{ to: string; kind: string; link?: string; text: string }[]> {
  return ((await (await fetch(`${stack.apiUrl}/dev/mail`)).json()) as { mails: { to: string; kind: string; link?: string; text: string }[] }).mails;
}

async function submit(page: Page, form: string, fields: Record<string, string>) {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#${form} input[name='${name}']`, value);
  await page.click(`#${form} button[type='submit']`);
}

describe("account screens of the example app", () => {
  const suite = useAppStack();
  const context = suite.context;

  it("sign-up → a link in the dev outbox → sign-in refused until the address is confirmed → confirm → sign in → sign out", async () => {
    const email = uniqueEmail("verify");
    const page = await openApp(await context(), suite.stack);
    await fillAndSubmit(page, "register", { email, password: PASSWORD });
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("Check your inbox"));
    expect(await page.getAttribute("body", "data-state")).toBe("signed-out");
    await snap(page, "account-0-check-inbox");

    await fillAndSubmit(page, "login", { email, password: PASSWORD });
    await page.waitForSelector("#message[data-kind='forbidden']");
    expect((await message(page)).text).toBe("Confirm your email address first: we have sent you a new link.");

    const link = await mailLink(suite.stack, email, "email_verification");
    expect(link).toMatch(new RegExp(`^${suite.stack.appUrl}/verify-email#token=`));
    // Opening the link shows a button and changes nothing by itself.
    await page.goto(link);
    await page.waitForSelector("#confirm:not([hidden])");
    await snap(page, "account-0-confirm");
    await fillAndSubmit(page, "login", { email, password: PASSWORD });
    await page.waitForSelector("#message[data-kind='forbidden']");
    await confirmFromMail(page, await mailLink(suite.stack, email, "email_verification"), PASSWORD);
    expect(await page.textContent("#message")).toBe("Your address is confirmed. You can sign in now.");
    expect(new URL(page.url()).pathname).toBe("/");

    await login(page, email, PASSWORD);
    expect(await page.textContent("#me")).toContain("Email confirmedyes");
    expect(await page.isHidden("#unverified")).toBe(true);
    await page.click("#logout");
    await waitForState(page, "signed-out");
  });

  it("moves the account to a new address: a link to it, confirmed in the app; the old address is told", async () => {
    const email = uniqueEmail("old");
    const moved = uniqueEmail("new");
    const page = await openApp(await context(), suite.stack);
    await register(page, suite.stack, email, PASSWORD);
    await fillAndSubmit(page, "change-email", { newEmail: moved, password: PASSWORD });
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("A link is on its way"));
    await confirmFromMail(page, await mailLink(suite.stack, moved, "email_change"));
    expect(await page.textContent("#message")).toBe(`Your account now uses ${moved}.`);
    expect((await mails(suite.stack)).some((m) => m.to === email && m.kind === "email_changed")).toBe(true);
    await page.click("#logout");
    await waitForState(page, "signed-out");
    await login(page, moved, PASSWORD);
    await waitForMeLoads(page, 1);
    expect(await page.textContent("#status")).toBe(`Signed in as ${moved}`);
  });

  it("forgot password → mail in the dev outbox → the link → a new password → sign in; the old sessions are gone", async () => {
    const email = uniqueEmail("forgot");
    const laptop = await openApp(await context(), suite.stack);
    await register(laptop, suite.stack, email, PASSWORD);
    const phone = await openApp(await context(), suite.stack);
    await login(phone, email, PASSWORD);

    const stranger = await openApp(await context(), suite.stack);
    await submit(stranger, "forgot", { email });
    expect((await message(stranger)).text).toMatch(/If an account exists/);
    const mail = (await mails(suite.stack)).find((m) => m.to === email && m.kind === "password_reset")!;
    expect(mail.link).toMatch(new RegExp(`^${suite.stack.appUrl}/reset-password#token=`));

    // Opening the link changes nothing by itself (the app only POSTs the token when asked).
    await stranger.goto(mail.link!);
    await stranger.waitForSelector("#reset:not([hidden])");
    await snap(stranger, "account-1-reset-form");
    await submit(stranger, "reset-password", { newPassword: "password" });
    await stranger.waitForFunction(() => document.querySelector("#reset-password [data-field-error='newPassword']")?.textContent);
    expect(await stranger.textContent("#reset-password [data-field-error='newPassword']")).toMatch(/too common/);
    await submit(stranger, "reset-password", { newPassword: NEW_PASSWORD });
    await stranger.waitForFunction(() => document.querySelector("#message")?.textContent?.includes("password is changed"));
    expect(new URL(stranger.url()).hash).toBe("");
    expect((await mails(suite.stack)).some((m) => m.to === email && m.kind === "password_changed")).toBe(true);

    // Every session that was open is over: the next call signs each page out.
    for (const page of [laptop, phone]) {
      await page.click("#reload-me");
      await waitForState(page, "signed-out");
    }
    await login(stranger, email, NEW_PASSWORD);
    expect(await stranger.textContent("#status")).toBe(`Signed in as ${email}`);
    await snap(stranger, "account-2-signed-in-after-reset");

    // The link worked once.
    const again = await openApp(await context(), suite.stack);
    await again.goto(mail.link!);
    await again.waitForSelector("#reset:not([hidden])");
    await submit(again, "reset-password", { newPassword: "yet another fresh passphrase" });
    expect((await message(again)).text).toMatch(/invalid or has expired/);
  });

  it("changes the password (other devices signed out) and deletes the account", async () => {
    const email = uniqueEmail("change");
    const laptop = await openApp(await context(), suite.stack);
    await register(laptop, suite.stack, email, PASSWORD);
    const phone = await openApp(await context(), suite.stack);
    await login(phone, email, PASSWORD);

    await submit(laptop, "change-password", { currentPassword: "wrong password here", newPassword: NEW_PASSWORD });
    expect((await message(laptop)).text).toBe("The password is not correct.");
    await submit(laptop, "change-password", { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    await laptop.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("Password changed"));
    expect(await laptop.textContent("#message")).toBe("Password changed. 1 other device(s) signed out.");
    await phone.click("#reload-me");
    await waitForState(phone, "signed-out");

    await submit(laptop, "delete-account", { password: NEW_PASSWORD });
    await waitForState(laptop, "signed-out");
    expect(await laptop.textContent("#message")).toBe("Your account is deleted.");
    await snap(laptop, "account-3-deleted");
    await submit(phone, "login", { email, password: NEW_PASSWORD });
    expect((await message(phone)).kind).toBe("invalid_credentials");
  });
});
