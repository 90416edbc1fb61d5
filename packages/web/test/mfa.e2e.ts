import * as OTPAuth from "otpauth";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { fillAndSubmit, message, openApp, register, useAppStack, waitForMeLoads, waitForState } from "./support/app";
import { snap } from "./support/browser";
import { PASSWORD, uniqueEmail } from "./support/stack";

const STEP_MS = 30_000;
const stepAt = (timestampMs: number) => Math.floor(timestampMs / STEP_MS);

/** The code an authenticator app shows during TOTP step `step` (SHA-1, 6 digits, 30 s: what the server enrols). */
function totp(secret: string, step: number): string {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({ timestamp: step * STEP_MS });
}

/**
 * The current step, once at least `needMs` of it remain (waiting for the next one otherwise), so
 * that what follows happens inside it. The server runs on this machine's clock.
 */
async function stepWithTimeLeft(needMs: number): Promise<number> {
  const leftMs = STEP_MS - (Date.now() % STEP_MS);
  if (leftMs < needMs) await new Promise((resolve) => setTimeout(resolve, leftMs + 50)); // time itself is the condition
  return stepAt(Date.now());
}

/** The session's RFC 8176 methods as `auth.me` reports them (the profile's `data-amr`). */
async function amr(page: Page): Promise<string[]> {
  await page.waitForSelector("#me[data-amr]");
  return (await page.getAttribute("#me", "data-amr"))!.split(" ");
}

/** Waits for the message line to show a refusal with this reason code (`data-reason`). */
async function expectRefusal(page: Page, reason: string): Promise<void> {
  const shown = () => page.$eval("#message", (e) => ((e as HTMLElement).hidden ? null : e.getAttribute("data-reason")));
  await expect.poll(shown, { timeout: 10_000 }).toBe(reason);
}

async function signOut(page: Page): Promise<void> {
  await page.click("#logout");
  await waitForState(page, "signed-out");
}

/** Email and password; the account has a second factor, so the challenge screen follows. */
async function passwordStep(page: Page, email: string): Promise<void> {
  await fillAndSubmit(page, "login", { email, password: PASSWORD });
  await page.waitForSelector("#mfa-challenge");
  expect(await page.getAttribute("body", "data-state")).toBe("signed-out");
}

async function signedIn(page: Page, email: string): Promise<void> {
  await waitForState(page, "signed-in");
  await waitForMeLoads(page, 1);
  expect(await page.textContent("#status")).toBe(`Signed in as ${email}`);
}

/** The recovery codes the page shows once, after the first factor is added. */
async function shownRecoveryCodes(page: Page): Promise<string[]> {
  await page.waitForSelector("#recovery-codes li");
  const codes = await page.$$eval("#recovery-codes code", (elements) => elements.map((e) => e.textContent ?? ""));
  expect(codes).toHaveLength(10);
  for (const code of codes) expect(code).toMatch(/^[0-9a-z]{5}-[0-9a-z]{5}$/);
  expect(new Set(codes).size).toBe(10);
  return codes;
}

/**
 * Sets up an authenticator app from the security screen, reading the key as a user typing it by
 * hand would. Confirmed with the previous step's code (inside the ±1 step window), so the current
 * step's code is still unspent when this returns. Returns the key and the recovery codes shown.
 */
async function enrolTotp(page: Page): Promise<{ secret: string; recoveryCodes: string[] }> {
  await page.waitForSelector("#security[data-mfa-enabled='false']");
  await page.click("#totp-enroll");
  await page.waitForSelector("#totp-secret");
  const secret = (await page.textContent("#totp-secret"))!.trim();
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  expect(await page.getAttribute("#totp-qr", "src")).toMatch(/^data:image\/svg\+xml;base64,/);
  // The QR code is an image the browser could decode and draw.
  await page.waitForFunction(() => (document.querySelector<HTMLImageElement>("#totp-qr")?.naturalWidth ?? 0) > 0);

  // A code the app does not show: refused on the field, nothing enabled.
  const step = stepAt(Date.now());
  const wrong = [totp(secret, step - 1), totp(secret, step), totp(secret, step + 1)].includes("000000") ? "111111" : "000000";
  await fillAndSubmit(page, "totp-confirm", { code: wrong });
  await page.waitForFunction(() => document.querySelector("#totp-confirm [data-field-error='code']")?.textContent);
  expect(await page.textContent("#totp-confirm [data-field-error='code']")).toBe("That code is not correct");
  expect(await page.getAttribute("#totp", "data-enabled")).toBe("false");

  await fillAndSubmit(page, "totp-confirm", { code: totp(secret, stepAt(Date.now()) - 1) });
  const recoveryCodes = await shownRecoveryCodes(page);
  await page.waitForSelector("#totp[data-enabled='true']");
  await page.waitForSelector("#security[data-mfa-enabled='true']");
  expect(await page.getAttribute("#recovery-left", "data-count")).toBe("10");
  return { secret, recoveryCodes };
}

interface VirtualAuthenticator {
  credentials(): Promise<{ rpId?: string; isResidentCredential: boolean; signCount: number }[]>;
}

/** Chromium's virtual authenticator (CDP): a platform passkey that verifies its user, no prompt. */
async function addVirtualAuthenticator(page: Page): Promise<VirtualAuthenticator> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { credentials: async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials };
}

/** Adds a passkey named `name` from the security screen; the account's first factor brings recovery codes. */
async function addPasskey(page: Page, name: string): Promise<string[] | null> {
  const first = (await page.getAttribute("#security", "data-mfa-enabled")) === "false";
  await fillAndSubmit(page, "passkey-add", { name });
  await page.waitForSelector(`#passkey-list li[data-name='${name}']`);
  await page.waitForSelector("#security[data-mfa-enabled='true']");
  expect(await page.textContent("#message")).toBe(`The passkey “${name}” is added.`);
  return first ? shownRecoveryCodes(page) : null;
}

describe("second factors in the example app", () => {
  const suite = useAppStack();
  const context = suite.context;

  it("authenticator app: enrol → sign in with its code; a replayed code is refused; recovery codes work once each", async () => {
    const email = uniqueEmail("totp");
    const page = await openApp(await context(), suite.stack);
    await register(page, suite.stack, email, PASSWORD);
    expect(await amr(page)).toEqual(["pwd"]);
    // Enrolment, two sign-ins and the replay below stay inside one step (the server checks ±1 step).
    const step = await stepWithTimeLeft(15_000);
    const { secret, recoveryCodes } = await enrolTotp(page);
    await snap(page, "mfa-1-recovery-codes");
    await page.click("#recovery-codes-done");
    expect(await page.$("#recovery-codes")).toBeNull();

    await signOut(page);
    await passwordStep(page, email);
    expect(await page.getAttribute("#mfa-challenge", "data-methods")).toBe("totp recovery_code");
    expect(await page.getAttribute("#mfa-challenge", "data-mode")).toBe("totp");
    expect(await page.$("#mfa-use-passkey")).toBeNull();
    await snap(page, "mfa-2-challenge");

    // A wrong code: told so, and the same challenge takes the next try.
    const code = totp(secret, step);
    await fillAndSubmit(page, "mfa-code", { code: code === "123456" ? "654321" : "123456" });
    await expectRefusal(page, "INVALID_MFA_CODE");
    expect((await message(page)).text).toBe("That code is not correct. Try again.");
    await fillAndSubmit(page, "mfa-code", { code });
    await signedIn(page, email);
    expect(await amr(page)).toEqual(["pwd", "otp", "mfa"]);

    // The code just accepted, again, while the app still shows it: spent.
    await signOut(page);
    await passwordStep(page, email);
    await fillAndSubmit(page, "mfa-code", { code });
    await expectRefusal(page, "INVALID_MFA_CODE");
    expect(stepAt(Date.now()), "the replay happened while the code was still current").toBe(step);
    expect(await page.getAttribute("body", "data-state")).toBe("signed-out");

    // A recovery code instead, on the same challenge (typed in capitals: forgiven).
    await page.click("#mfa-use-recovery-code");
    await page.waitForSelector("#mfa-challenge[data-mode='recovery_code']");
    await fillAndSubmit(page, "mfa-code", { recoveryCode: recoveryCodes[0]!.toUpperCase() });
    await signedIn(page, email);
    expect(await amr(page)).toEqual(["pwd", "otp", "mfa"]);
    await page.waitForSelector("#recovery-left[data-count='9']");

    // That recovery code a second time: refused; another one works.
    await signOut(page);
    await passwordStep(page, email);
    await page.click("#mfa-use-recovery-code");
    await fillAndSubmit(page, "mfa-code", { recoveryCode: recoveryCodes[0]! });
    await expectRefusal(page, "INVALID_MFA_CODE");
    expect(await page.getAttribute("body", "data-state")).toBe("signed-out");
    await fillAndSubmit(page, "mfa-code", { recoveryCode: recoveryCodes[1]! });
    await signedIn(page, email);
    await page.waitForSelector("#recovery-left[data-count='8']");
  });

  it("authenticator app: new recovery codes replace the old; removing the app takes the password and a code", async () => {
    const email = uniqueEmail("totp-off");
    const page = await openApp(await context(), suite.stack);
    await register(page, suite.stack, email, PASSWORD);
    const { secret, recoveryCodes: first } = await enrolTotp(page);
    await page.click("#recovery-codes-done");

    // Right after signing in, new codes need no further proof.
    await page.click("#recovery-regenerate");
    await page.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("New recovery codes"));
    const second = await shownRecoveryCodes(page);
    expect(second.some((code) => first.includes(code))).toBe(false);
    await page.click("#recovery-codes-done");

    // Removing the only factor: a second factor and the password.
    await page.click("#totp-disable");
    await page.waitForSelector("#step-up[data-needs='password factor']");
    await snap(page, "mfa-3-step-up");
    const code = totp(secret, stepAt(Date.now()));
    await fillAndSubmit(page, "step-up", { password: "not the password at all", code });
    await expectRefusal(page, "INVALID_PASSWORD");
    expect((await message(page)).text).toBe("The password is not correct.");
    // An old recovery code is no proof any more.
    await page.click("#step-up-switch");
    await fillAndSubmit(page, "step-up", { password: PASSWORD, recoveryCode: first[0]! });
    await expectRefusal(page, "INVALID_MFA_CODE");
    await page.click("#step-up-switch");
    // The password check refused the first try before the code was looked at: it is still unspent.
    await fillAndSubmit(page, "step-up", { password: PASSWORD, code });
    await page.waitForSelector("#totp[data-enabled='false']");
    await page.waitForSelector("#security[data-mfa-enabled='false']");
    expect(await page.$("#step-up")).toBeNull();
    expect(await page.textContent("#message")).toBe("The authenticator app is removed.");

    // Sign-in is a password again.
    await signOut(page);
    await fillAndSubmit(page, "login", { email, password: PASSWORD });
    await signedIn(page, email);
    expect(await amr(page)).toEqual(["pwd"]);
  });

  it("passkey: added from the security screen, then signs in alone (no address typed); renamed", async () => {
    const email = uniqueEmail("passkey");
    const page = await openApp(await context(), suite.stack);
    const authenticator = await addVirtualAuthenticator(page);
    await register(page, suite.stack, email, PASSWORD);
    const recoveryCodes = await addPasskey(page, "Test laptop");
    expect(recoveryCodes).toHaveLength(10);
    await page.click("#recovery-codes-done");
    await snap(page, "mfa-4-passkey-added");

    // A discoverable credential for this site, held by the authenticator.
    const credentials = await authenticator.credentials();
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);
    expect(credentials[0]!.rpId).toBe(new URL(suite.stack.appUrl).hostname);
    expect(await page.textContent("#passkey-list li[data-name='Test laptop'] .meta")).toContain("never used");

    await signOut(page);
    await page.click("#passkey-sign-in");
    await signedIn(page, email);
    const methods = await amr(page);
    expect(methods).toContain("mfa");
    expect(methods.filter((m) => m === "hwk" || m === "swk")).toHaveLength(1);
    expect(methods).not.toContain("pwd");
    await page.waitForSelector("#passkey-list li[data-name='Test laptop']");
    expect(await page.textContent("#passkey-list li[data-name='Test laptop'] .meta")).toContain("last used");

    const passkeyId = await page.getAttribute("#passkey-list li[data-name='Test laptop']", "data-passkey-id");
    await page.click(`#passkey-list li[data-passkey-id='${passkeyId}'] button.rename`);
    await fillAndSubmit(page, `rename-${passkeyId}`, { name: "Work laptop" });
    await page.waitForSelector(`#passkey-list li[data-passkey-id='${passkeyId}'][data-name='Work laptop']`);
    expect(await page.$$("#passkey-list li")).toHaveLength(1);
  });

  it("password + passkey: sign-in asks for the passkey; deleting it takes a second factor and the password", async () => {
    const email = uniqueEmail("passkey-mfa");
    const page = await openApp(await context(), suite.stack);
    await addVirtualAuthenticator(page);
    await register(page, suite.stack, email, PASSWORD);
    await addPasskey(page, "Phone");
    await page.click("#recovery-codes-done");

    await signOut(page);
    await passwordStep(page, email);
    expect(await page.getAttribute("#mfa-challenge", "data-methods")).toBe("passkey recovery_code");
    expect(await page.getAttribute("#mfa-challenge", "data-mode")).toBe("passkey");
    await snap(page, "mfa-5-passkey-challenge");
    await page.click("#mfa-passkey");
    await signedIn(page, email);
    const methods = await amr(page);
    expect(methods[0]).toBe("pwd");
    expect(methods).toContain("mfa");
    expect(methods.filter((m) => m === "hwk" || m === "swk")).toHaveLength(1);

    await page.click("#passkey-list li[data-name='Phone'] button.delete");
    await page.waitForSelector("#step-up[data-needs='password factor']");
    // The passkey alone is not enough to remove the last factor: the page asks for the password first.
    await page.click("#step-up-passkey");
    await page.waitForFunction(() => document.querySelector("#step-up [data-field-error='password']")?.textContent);
    expect(await page.textContent("#step-up [data-field-error='password']")).toBe("Enter your password.");
    expect(await page.$$("#passkey-list li")).toHaveLength(1);
    await page.fill("#step-up input[name='password']", PASSWORD);
    await page.click("#step-up-passkey");
    await page.waitForFunction(() => document.querySelectorAll("#passkey-list li").length === 0);
    await page.waitForSelector("#security[data-mfa-enabled='false']");
    expect(await page.textContent("#message")).toBe("The passkey “Phone” is deleted.");

    await signOut(page);
    await fillAndSubmit(page, "login", { email, password: PASSWORD });
    await signedIn(page, email);
  });
});
