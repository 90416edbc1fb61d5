import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { meLoads, openApp, register, waitForMeLoads, waitForState } from "./support/app";
import { launchChromium, recordApiTraffic, snap, type Exchange } from "./support/browser";
import { PASSWORD, refreshGeneration, startForeignSite, startStack, uniqueEmail, type Stack } from "./support/stack";

const COOKIE = "__Host-authlith_rt";

/** What a script on a foreign page can do with the user's cookie, and what it gets back. */
async function attack(page: Page, apiUrl: string) {
  return page.evaluate(async (api) => {
    const attempt = async (request: () => Promise<Response>) => {
      try {
        const response = await request();
        return { type: response.type, status: response.status };
      } catch (error) {
        return { error: (error as Error).name };
      }
    };
    const json = { "content-type": "application/json" };
    const text = { "content-type": "text/plain" };
    return {
      // Read the user's data or mint an access token: a credentialed call that must pass CORS.
      refresh: await attempt(() => fetch(`${api}/trpc/auth.refresh`, { method: "POST", credentials: "include", headers: json, body: "{}" })),
      list: await attempt(() => fetch(`${api}/trpc/session.list`, { credentials: "include" })),
      // Blind CSRF: no preflight and an unreadable answer, but it would still change state.
      blindLogout: await attempt(() =>
        fetch(`${api}/trpc/auth.logout`, { method: "POST", mode: "no-cors", credentials: "include", headers: text, body: "{}" }),
      ),
      blindRefresh: await attempt(() =>
        fetch(`${api}/trpc/auth.refresh`, { method: "POST", mode: "no-cors", credentials: "include", headers: text, body: "{}" }),
      ),
    };
  }, apiUrl);
}

/** A classic CSRF form: a top-level POST navigation to the logout procedure. */
async function submitForm(page: Page, apiUrl: string) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${apiUrl}/trpc/auth.logout`),
    page.evaluate((api) => {
      const form = document.createElement("form");
      form.method = "POST";
      form.action = `${api}/trpc/auth.logout`;
      form.enctype = "text/plain";
      const field = document.createElement("input");
      field.name = '{"x":"';
      field.value = '"}';
      form.append(field);
      document.body.append(form);
      form.submit();
    }, apiUrl),
  ]);
  return response;
}

describe("pages on other origins", () => {
  let stack: Stack;
  let browser: Browser;
  let foreign: Awaited<ReturnType<typeof startForeignSite>>;

  beforeAll(async () => {
    [stack, browser, foreign] = await Promise.all([startStack(), launchChromium(), startForeignSite()]);
  });
  afterAll(async () => {
    await browser?.close();
    await foreign?.close();
    await stack?.close();
  });

  it("cannot call cookie-authenticated mutations: CORS refuses them, the server refuses their Origin", async () => {
    const context: BrowserContext = await browser.newContext();
    const traffic: Exchange[] = recordApiTraffic(context, stack.apiUrl);
    const app = await openApp(context, stack);
    const email = uniqueEmail("origins");
    await register(app, stack, email, PASSWORD);
    const cookie = (await context.cookies()).find((c) => c.name === COOKIE)!.value;

    const sites = [
      // Same site as the API (the browser sends the SameSite=Lax cookie), but not an allowed origin.
      { origin: `http://localhost:${foreign.port}` },
      // Another site altogether: the browser does not even send the cookie.
      { origin: `http://127.0.0.1:${foreign.port}` },
    ];
    for (const [i, site] of sites.entries()) {
      const evil = await context.newPage();
      await evil.goto(`${site.origin}/`);
      const outcome = await attack(evil, stack.apiUrl);
      expect(outcome).toEqual({
        refresh: { error: "TypeError" }, // preflight refused: the request is never sent
        list: { error: "TypeError" }, // answered 403 without CORS headers: unreadable
        blindLogout: { type: "opaque", status: 0 },
        blindRefresh: { type: "opaque", status: 0 },
      });

      // What the server answered (the browser saw it; the page could not). Requests whose CORS
      // check failed in the browser carry no response here; every answer there is was a refusal.
      const answered = traffic.filter((e) => e.page === evil && e.response !== null);
      expect(answered.map((e) => `${e.method} ${e.procedure}`)).toEqual(
        expect.arrayContaining(["POST auth.logout", "POST auth.refresh"]),
      );
      for (const exchange of answered) {
        // 403, not 415 for the text/plain bodies: the Origin check refused them before anything else.
        expect(exchange.response!.status()).toBe(403);
        expect(exchange.response!.headers()["access-control-allow-origin"]).toBeUndefined();
      }

      const form = await submitForm(evil, stack.apiUrl);
      expect(form.status()).toBe(403);
      await snap(evil, `origins-${i + 1}-form-post-refused`);
      await evil.close();
    }

    // Nothing changed: the cookie was neither rotated nor cleared, the session still works.
    expect((await context.cookies()).find((c) => c.name === COOKIE)?.value).toBe(cookie);
    const loads = await meLoads(app);
    await app.click("#reload-me");
    await waitForMeLoads(app, loads + 1);
    await app.reload();
    await waitForState(app, "signed-in");
    expect(await app.textContent("#status")).toBe(`Signed in as ${email}`);
    expect(refreshGeneration((await context.cookies()).find((c) => c.name === COOKIE)!.value)).toBe(1); // the reload's own
    await snap(app, "origins-3-victim-still-signed-in");
    await context.close();
  });
});
