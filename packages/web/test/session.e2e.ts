import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fillAndSubmit, message, openApp, register, waitForMeLoads, waitForState } from "./support/app";
import { launchChromium, recordApiTraffic, setCookieLines, snap, type Exchange } from "./support/browser";
import { PASSWORD, refreshGeneration, startStack, uniqueEmail, type Stack } from "./support/stack";

const COOKIE = "__Host-authlith_rt";

/** Everything a script on the page can read that could hold a token. */
async function readableByPageScripts(page: Page) {
  return page.evaluate(async () => {
    const dump = (storage: Storage) =>
      Array.from({ length: storage.length }, (_, i) => `${storage.key(i)}=${storage.getItem(storage.key(i)!)}`).join("\n");
    return {
      localStorage: dump(localStorage),
      sessionStorage: dump(sessionStorage),
      cookie: document.cookie,
      indexedDB: (await indexedDB.databases()).map((db) => db.name ?? ""),
      caches: await caches.keys(),
    };
  });
}

async function tokenFrom(exchange: Exchange): Promise<{ accessToken: string; refreshToken?: string }> {
  const body = (await exchange.response!.json()) as { result: { data: { accessToken: string; refreshToken?: string } } };
  return body.result.data;
}

describe("a browser session with the cookie transport", () => {
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
    traffic = recordApiTraffic(context, stack.apiUrl);
  });
  afterEach(async () => {
    await context.close();
  });

  it("register → reload → still signed in; the access token is never where page scripts can read it", async () => {
    const page = await openApp(context, stack);
    expect(await page.textContent("#status")).toBe("Signed out");
    const email = uniqueEmail("reload");
    await register(page, stack, email, PASSWORD);
    await snap(page, "session-1-registered");

    // Sign-up mailed a link and issued nothing; the session came from the sign-in after confirming.
    const registered = traffic.find((e) => e.procedure === "auth.register")!;
    expect(registered.response!.status()).toBe(200);
    expect(await setCookieLines(registered.response!)).toEqual([]);
    const signedIn = traffic.find((e) => e.procedure === "auth.login")!;
    const first = await tokenFrom(signedIn);
    expect(first.refreshToken).toBeUndefined(); // a browser never gets the refresh token in a body
    const sessionId = await page.getAttribute("#me", "data-session-id");

    let readable = await readableByPageScripts(page);
    expect(JSON.stringify(readable)).not.toContain(first.accessToken);
    expect(readable).toEqual({ localStorage: "", sessionStorage: "", cookie: "", indexedDB: [], caches: [] });

    // Reload: memory is gone; the HttpOnly cookie brings the session back.
    const before = traffic.length;
    const cookieBefore = (await context.cookies()).find((c) => c.name === COOKIE)!.value;
    await page.reload();
    await waitForState(page, "signed-in");
    await waitForMeLoads(page, 1);
    expect(await page.textContent("#status")).toBe(`Signed in as ${email}`);
    expect(await page.getAttribute("#me", "data-session-id")).toBe(sessionId);
    await snap(page, "session-2-reloaded");

    const refreshes = traffic.slice(before).filter((e) => e.procedure === "auth.refresh");
    expect(refreshes).toHaveLength(1);
    const [refresh] = refreshes;
    expect(refresh!.response!.status()).toBe(200);
    expect(refresh!.request.postData() ?? "").not.toContain("refreshToken"); // the cookie carried it
    expect((await refresh!.request.allHeaders()).cookie).toContain(`${COOKIE}=${cookieBefore}`);
    const second = await tokenFrom(refresh!);
    expect(second.refreshToken).toBeUndefined();
    expect(second.accessToken).not.toBe(first.accessToken);
    const cookieAfter = (await context.cookies()).find((c) => c.name === COOKIE)!.value;
    expect(refreshGeneration(cookieAfter)).toBe(refreshGeneration(cookieBefore) + 1);

    readable = await readableByPageScripts(page);
    expect(JSON.stringify(readable)).not.toContain(second.accessToken);
    expect(readable.cookie).toBe("");
  });

  it("sets the refresh cookie as the design says: __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain", async () => {
    const page = await openApp(context, stack);
    await register(page, stack, uniqueEmail("cookie"), PASSWORD);
    const registered = traffic.find((e) => e.procedure === "auth.login")!;

    const lines = (await setCookieLines(registered.response!)).filter((line) => line.startsWith(`${COOKIE}=`));
    expect(lines).toHaveLength(1);
    const [, ...attributes] = lines[0]!.split(";").map((part) => part.trim());
    const names = attributes.map((a) => a.split("=")[0]!.toLowerCase());
    expect(names.sort()).toEqual(["httponly", "max-age", "path", "samesite", "secure"]);
    expect(attributes).toContain("Path=/");
    expect(attributes).toContain("SameSite=Lax");
    const maxAge = Number(attributes.find((a) => a.startsWith("Max-Age="))!.split("=")[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(30 * 24 * 3600); // never past the session's absolute end
    expect(registered.response!.headers()["cache-control"]).toContain("no-store");

    // As the browser stored it: host-only (no Domain), and not visible to page scripts.
    const cookie = (await context.cookies(stack.apiUrl)).find((c) => c.name === COOKIE)!;
    expect(cookie).toMatchObject({ domain: "localhost", path: "/", httpOnly: true, secure: true, sameSite: "Lax" });
    expect(await page.evaluate(() => document.cookie)).toBe("");
    await snap(page, "session-3-cookie");
  });

  it("shows typed errors: invalid credentials, field errors", async () => {
    const page = await openApp(context, stack);
    const email = uniqueEmail("errors");
    await register(page, stack, email, PASSWORD);
    await page.click("#logout");
    await waitForState(page, "signed-out");

    await fillAndSubmit(page, "login", { email, password: "not the password" });
    await page.waitForSelector("#message[data-kind='invalid_credentials']");
    expect(await message(page)).toMatchObject({ kind: "invalid_credentials", text: "Wrong email or password." });

    await fillAndSubmit(page, "register", { email: "not-an-email", password: "short" });
    await page.waitForSelector("#message[data-kind='validation']");
    expect(await page.textContent("#register [data-field-error='email']")).not.toBe("");
    expect(await page.textContent("#register [data-field-error='password']")).not.toBe("");
    await snap(page, "session-4-field-errors");
  });
});
