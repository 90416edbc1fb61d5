import type { BrowserContext, Page } from "playwright-core";
import { expect } from "vitest";
import type { Stack } from "./stack";

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

export async function fillAndSubmit(page: Page, form: "register" | "login", fields: Record<string, string>) {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#${form} input[name='${name}']`, value);
  await page.click(`#${form} button[type='submit']`);
}

export async function register(page: Page, email: string, password: string): Promise<void> {
  await fillAndSubmit(page, "register", { email, password });
  await waitForState(page, "signed-in");
  await waitForMeLoads(page, 1);
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
