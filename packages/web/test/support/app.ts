import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, expect } from "vitest";
import { launchChromium } from "./browser";
import { startStack, type Stack } from "./stack";

/**
 * For one describe block: the stack (dev server and app) and Chromium, started before its tests and
 * closed after them; `context()` opens a fresh browser context (its own cookies), closed at the end.
 */
export function useAppStack(): { readonly stack: Stack; context(): Promise<BrowserContext> } {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  });
  afterAll(async () => {
    for (const created of contexts) await created.close().catch(() => {});
    await browser?.close();
    await stack?.close();
  });
  return {
    get stack() {
      if (!stack) throw new Error("the stack is not started yet (use it inside a test)");
      return stack;
    },
    async context() {
      const created = await browser!.newContext();
      contexts.push(created);
      return created;
    },
  };
}

/** Opens the example app and waits until it knows whether it is signed in. */
export async function openApp(context: BrowserContext, stack: Stack): Promise<Page> {
  const page = await context.newPage();
  await page.goto(stack.appUrl);
  await page.waitForSelector("body:not([data-state='loading'])");
  return page;
}

export const state = (page: Page) => page.getAttribute("body", "data-state");

export async function waitForState(page: Page, value: "signed-in" | "signed-out"): Promise<void> {
  await page.waitForSelector(`body[data-state='${value}']`);
}

/** How many times the profile panel has loaded `auth.me` successfully. */
export async function meLoads(page: Page): Promise<number> {
  return Number((await page.getAttribute("#me", "data-loads")) ?? 0);
}

export async function waitForMeLoads(page: Page, atLeast: number): Promise<void> {
  await page.waitForFunction((n) => Number(document.querySelector("#me")?.getAttribute("data-loads") ?? 0) >= n, atLeast);
}

export async function fillAndSubmit(page: Page, form: string, fields: Record<string, string>) {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#${form} input[name='${name}']`, value);
  await page.click(`#${form} button[type='submit']`);
}

/** The link in the newest mail of `kind` to `email` in the dev server's outbox (GET /dev/mail). */
export async function mailLink(stack: Stack, email: string, kind: string): Promise<string> {
  const { mails } = (await (await fetch(`${stack.apiUrl}/dev/mail`)).json()) as { mails: { to: string; kind: string; link?: string }[] };
  const link = mails.find((mail) => mail.to === email && mail.kind === kind)?.link;
  expect(link, `a ${kind} mail to ${email}`).toBeDefined();
  return link!;
}

/** Follows a link from a mail in `page` and presses the button that confirms it. */
export async function confirmFromMail(page: Page, link: string, password?: string): Promise<void> {
  await page.goto(link);
  await page.waitForSelector("#confirm:not([hidden])");
  // A verification link asks for the account's password too.
  if (password !== undefined) await page.fill("#confirm input[name='password']", password);
  await page.click("#confirm-button");
  await page.waitForFunction(() => !document.querySelector("#confirm:not([hidden])"));
}

/** Sign-up, then the link from the outbox and the confirm button; not signed in yet. */
export async function signUpAndConfirm(page: Page, stack: Stack, email: string, password: string): Promise<void> {
  await fillAndSubmit(page, "register", { email, password });
  await page.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("Check your inbox"));
  await confirmFromMail(page, await mailLink(stack, email, "email_verification"), password);
  expect(await page.textContent("#message")).toBe("Your address is confirmed. You can sign in now.");
}

/**
 * Signs up as a user does with email verification on (the dev server's default): the form, the
 * link from the outbox, the confirm button, then sign-in.
 */
export async function register(page: Page, stack: Stack, email: string, password: string): Promise<void> {
  await signUpAndConfirm(page, stack, email, password);
  await login(page, email, password);
  expect(await page.textContent("#status")).toBe(`Signed in as ${email}`);
}

export async function login(page: Page, email: string, password: string): Promise<void> {
  await fillAndSubmit(page, "login", { email, password });
  await waitForState(page, "signed-in");
  await waitForMeLoads(page, 1);
}

/** The app's message line: its text and the error kind it shows (data-kind). */
export async function message(page: Page): Promise<{ text: string | null; kind: string | null }> {
  await page.waitForSelector("#message:not([hidden])");
  return { text: await page.textContent("#message"), kind: await page.getAttribute("#message", "data-kind") };
}
