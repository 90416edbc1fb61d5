import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fillAndSubmit, login, openApp, register, waitForState } from "./support/app";
import { launchChromium, recordApiTraffic, snap, type Exchange } from "./support/browser";
import { PASSWORD, startStack, uniqueEmail, type Stack } from "./support/stack";

/**
 * The React example: `useSession` drives the page, TanStack Query loads `me` and the sessions
 * through tRPC's integration, and the app's own API (notes, at /api on the app's origin) is
 * called with the same tokens through `authLink` and protected by @authlith/verify, which asks
 * authlith about every token here (revocation check on).
 */
describe("the React example app", () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let authlith: Exchange[];
  let ownApi: Exchange[];

  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    await context.clock.install();
    authlith = recordApiTraffic(context, stack.apiUrl);
    ownApi = recordApiTraffic(context, stack.appUrl, "/api/");
  });
  afterEach(async () => {
    await context.close();
  });

  it("useSession: loading, then signed in, after a reload; then signed out", async () => {
    const page = await openApp(context, stack);
    await register(page, stack, uniqueEmail("react"), PASSWORD);

    // Hold the restore's refresh after the reload, to see the loading state the page starts in.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/trpc/auth.refresh*", async (route) => {
      await released;
      await route.continue();
    });
    await page.reload();
    await page.waitForSelector("body[data-state='loading']");
    expect(await page.textContent("#status")).toBe("Loading…");
    expect(await page.$("#signed-in")).toBeNull();
    expect(await page.$("#signed-out")).toBeNull();
    release();
    await waitForState(page, "signed-in");
    await page.unroute("**/trpc/auth.refresh*");
    await page.waitForSelector("#me dd");
    await page.click("#logout");
    await waitForState(page, "signed-out");
    expect(await page.textContent("#status")).toBe("Signed out");
  });

  it("calls the app's own API with the user's token, and refreshes it transparently once it has expired", async () => {
    const email = uniqueEmail("notes");
    const page = await openApp(context, stack);
    await register(page, stack, email, PASSWORD);
    await fillAndSubmit(page, "add-note", { text: "buy milk" });
    await page.waitForSelector("#notes-list li");
    expect(await page.textContent("#notes-list")).toBe("buy milk");
    expect(await page.getAttribute("#notes", "data-owner")).toBe(email);
    expect(ownApi.every((e) => e.request.headers().authorization?.startsWith("Bearer "))).toBe(true);

    // 16 minutes later (the page's clock): the access token has expired; the next call to the
    // app's API gets a new one first, once, and goes through.
    const refreshesBefore = authlith.filter((e) => e.procedure === "auth.refresh").length;
    const bearerBefore = ownApi.at(-1)!.request.headers().authorization;
    await context.clock.fastForward(16 * 60 * 1000);
    const calls = ownApi.length;
    await page.click("#load-notes");
    await expect.poll(() => ownApi.slice(calls).filter((e) => e.response?.status() === 200).length).toBe(1);
    expect(authlith.filter((e) => e.procedure === "auth.refresh").length).toBe(refreshesBefore + 1);
    expect(ownApi.at(-1)!.request.headers().authorization).not.toBe(bearerBefore);
    expect(await page.getAttribute("body", "data-state")).toBe("signed-in");
    await snap(page, "react-1-notes");
  });

  it("a session revoked from another device is refused by the app's own API, and the page signs out", async () => {
    const email = uniqueEmail("revoked-notes");
    const laptop = await openApp(context, stack);
    await register(laptop, stack, email, PASSWORD);
    const phoneContext = await browser.newContext();
    try {
      const phone = await openApp(phoneContext, stack);
      await login(phone, email, PASSWORD);
      const phoneSession = await phone.getAttribute("#me", "data-session-id");
      await laptop.click("#reload-sessions");
      await laptop.waitForSelector(`#sessions li[data-session-id='${phoneSession}'] button`);
      await laptop.click(`#sessions li[data-session-id='${phoneSession}'] button`);
      await laptop.waitForFunction(() => document.querySelector("#message")?.textContent?.startsWith("Session revoked"));

      // The phone's access token is still unexpired and correctly signed: only the revocation
      // check (authlith, asked by the app's API) knows the session has ended.
      const phoneApi = recordApiTraffic(phoneContext, stack.appUrl, "/api/");
      await phone.click("#load-notes");
      await waitForState(phone, "signed-out");
      expect(await phone.textContent("#message")).toBe("This session was ended from another device.");
      expect(phoneApi.length).toBeGreaterThanOrEqual(1);
      await expect.poll(() => phoneApi[0]!.response?.status()).toBe(401);
      await snap(phone, "react-2-revoked");
    } finally {
      await phoneContext.close();
    }
  });
});
