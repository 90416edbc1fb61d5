import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { login, meLoads, openApp, register, signUpAndConfirm, waitForMeLoads, waitForState } from "./support/app";
import { launchChromium, recordApiTraffic, snap, type Exchange } from "./support/browser";
import { PASSWORD, refreshGeneration, startStack, uniqueEmail, type Stack } from "./support/stack";

const COOKIE = "__Host-authlith_rt";

/** The access token each `auth.me` of this page carried. */
const bearersOf = (traffic: Exchange[], page: Page) =>
  traffic
    .filter((e) => e.page === page && e.procedure === "auth.me")
    .map((e) => e.request.headers()["authorization"]?.replace(/^Bearer /, ""));

describe("two tabs of one browser", () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let traffic: Exchange[];

  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    // The tabs' clocks (Date, timers) are Playwright's, so the test can move them; the server's is real.
    await context.clock.install();
    traffic = recordApiTraffic(context, stack.apiUrl);
  });
  afterEach(async () => {
    await context.close();
  });

  it("tabs whose access tokens expire at the same moment both keep working, with exactly one rotation", async () => {
    const a = await openApp(context, stack);
    const email = uniqueEmail("tabs");
    await register(a, stack, email, PASSWORD);
    const signedUp = traffic.length; // before: the page's restore() found no session (401)

    // A second tab takes the first tab's access token instead of rotating the refresh token.
    const b = await openApp(context, stack);
    await waitForState(b, "signed-in");
    await waitForMeLoads(b, 1);
    expect(traffic.slice(signedUp).filter((e) => e.procedure === "auth.refresh")).toHaveLength(0);
    const [tokenA] = bearersOf(traffic, a);
    expect(bearersOf(traffic, b)).toEqual([tokenA]); // one token, so one expiry for both tabs
    const cookieBefore = (await context.cookies()).find((c) => c.name === COOKIE)!.value;
    expect(refreshGeneration(cookieBefore)).toBe(0);

    // Both tabs' clocks move past the token's expiry: each tab must refresh before its next call.
    await context.clock.fastForward("16:00");

    // Hold the refresh at the network until both tabs have asked for one: one tab holds the
    // refresh lock and waits for the server, the other waits for the lock.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await context.route(`${stack.apiUrl}/trpc/auth.refresh`, async (route) => {
      await released;
      await route.continue();
    });
    const [loadsA, loadsB] = [await meLoads(a), await meLoads(b)];
    await Promise.all([a.click("#reload-me"), b.click("#reload-me")]);
    const lockName = `authlith:${stack.apiUrl}:refresh`;
    await expect
      .poll(() =>
        a.evaluate(async (name) => {
          const { held = [], pending = [] } = await navigator.locks.query();
          return { held: held.filter((l) => l.name === name).length, pending: pending.filter((l) => l.name === name).length };
        }, lockName),
        { timeout: 15_000 },
      )
      .toEqual({ held: 1, pending: 1 });
    release();

    await Promise.all([waitForMeLoads(a, loadsA + 1), waitForMeLoads(b, loadsB + 1)]);
    await snap(a, "tabs-1-tab-a-after-expiry");
    await snap(b, "tabs-2-tab-b-after-expiry");

    // Exactly one rotation, seen from the browser and from the server's own token.
    const refreshes = traffic.slice(signedUp).filter((e) => e.procedure === "auth.refresh");
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]!.response!.status()).toBe(200);
    const rotated = (await refreshes[0]!.response!.json()) as { result: { data: { accessToken: string } } };
    const cookieAfter = (await context.cookies()).find((c) => c.name === COOKIE)!.value;
    expect(refreshGeneration(cookieAfter)).toBe(1);
    // Both tabs called with the one new token.
    expect(bearersOf(traffic, a).at(-1)).toBe(rotated.result.data.accessToken);
    expect(bearersOf(traffic, b).at(-1)).toBe(rotated.result.data.accessToken);
    expect(rotated.result.data.accessToken).not.toBe(tokenA);
    for (const page of [a, b]) {
      expect(await page.textContent("#status")).toBe(`Signed in as ${email}`);
      expect(await page.isHidden("#message")).toBe(true);
    }

    if (stack.sql) {
      // On Postgres (CI), the server's record agrees: one rotation, one audit event.
      const sessionId = await a.getAttribute("#me", "data-session-id");
      const [session] = await stack.sql`select refresh_generation from sessions where id = ${sessionId}`;
      expect(session?.refresh_generation).toBe(1);
      const [audit] = await stack.sql`
        select count(*)::int as n from audit_events where type = 'session.refreshed' and session_id = ${sessionId}`;
      expect(audit?.n).toBe(1);
    }
  });

  it("a tab whose restore found no session does not sign out the tab that signed in while it waited", async () => {
    const email = uniqueEmail("race");
    const a = await openApp(context, stack);
    await signUpAndConfirm(a, stack, email, PASSWORD);

    // Tab B opens while nobody is signed in. Its restore's refresh goes out without a cookie and
    // is refused, but the refusal is held back until tab A has signed in.
    const b = await context.newPage();
    let sent!: () => void;
    const refreshSent = new Promise<void>((resolve) => (sent = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await b.route("**/trpc/auth.refresh*", async (route) => {
      const response = await route.fetch();
      sent();
      await released;
      await route.fulfill({ response });
    });
    await b.goto(stack.appUrl);
    await refreshSent;
    await login(a, email, PASSWORD);
    await waitForState(b, "signed-in"); // told by tab A
    release();

    // B's late refusal was about a request without a cookie: both tabs stay signed in, and A's
    // session still answers.
    await b.waitForFunction(() => [...document.querySelectorAll("#events li")].length > 0);
    await a.waitForTimeout(300);
    expect(await a.getAttribute("body", "data-state")).toBe("signed-in");
    expect(await b.getAttribute("body", "data-state")).toBe("signed-in");
    const loads = await meLoads(a);
    await a.click("#reload-me");
    await waitForMeLoads(a, loads + 1);
    await b.unroute("**/trpc/auth.refresh*");
  });

  it("a sign-in in one tab signs the other in; a logout in one tab signs the other out", async () => {
    const a = await openApp(context, stack);
    const b = await openApp(context, stack);
    expect(await b.textContent("#status")).toBe("Signed out");

    const email = uniqueEmail("logout");
    await signUpAndConfirm(a, stack, email, PASSWORD);
    const signedOut = traffic.length;
    await login(a, email, PASSWORD);
    await waitForState(b, "signed-in"); // told by tab A, without a request of its own for the token
    await waitForMeLoads(b, 1);
    expect(traffic.slice(signedOut).filter((e) => e.procedure === "auth.refresh")).toHaveLength(0);
    await snap(b, "tabs-3-tab-b-signed-in-by-tab-a");

    const before = traffic.length;
    await a.click("#logout");
    await waitForState(a, "signed-out");
    await waitForState(b, "signed-out");
    expect(await b.textContent("#message")).toBe("You are signed out.");
    expect(await b.textContent("#events")).toContain("signed_out (logout)");
    // Tab B learnt it from tab A: it sent nothing.
    expect(traffic.slice(before).filter((e) => e.page === b)).toEqual([]);
    expect(traffic.slice(before).map((e) => e.procedure)).toEqual(["auth.logout"]);
    await snap(b, "tabs-4-tab-b-signed-out-by-tab-a");

    // And it stays signed out: the cookie is gone with the session.
    expect((await context.cookies()).find((c) => c.name === COOKIE)).toBeUndefined();
    await b.reload();
    await waitForState(b, "signed-out");
  });
});
