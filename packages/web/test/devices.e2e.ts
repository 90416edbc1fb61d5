import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { login, meLoads, openApp, register, waitForMeLoads, waitForState } from "./support/app";
import { launchChromium, recordApiTraffic, snap } from "./support/browser";
import { PASSWORD, startStack, uniqueEmail, type Stack } from "./support/stack";

const LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) authlith-e2e laptop";
const PHONE = "Mozilla/5.0 (Linux; Android 14) authlith-e2e phone";

describe("two browsers of one user", () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it("the session list shows both browsers' sessions; revoking one signs that browser out on its next call", async () => {
    // Two browser contexts: two cookie jars, as two devices would have.
    const laptopContext: BrowserContext = await browser.newContext({ userAgent: LAPTOP });
    const phoneContext: BrowserContext = await browser.newContext({ userAgent: PHONE });
    const phoneTraffic = recordApiTraffic(phoneContext, stack.apiUrl);
    const email = uniqueEmail("devices");
    const laptop = await openApp(laptopContext, stack);
    await register(laptop, stack, email, PASSWORD);
    const phone = await openApp(phoneContext, stack);
    await login(phone, email, PASSWORD);
    const phoneSession = await phone.getAttribute("#me", "data-session-id");

    await laptop.click("#reload-sessions");
    await laptop.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
    const rows = await laptop.$$eval("#sessions li", (items) =>
      items.map((li) => ({
        id: li.getAttribute("data-session-id"),
        current: li.getAttribute("data-current"),
        device: li.querySelector(".device")?.textContent,
      })),
    );
    expect(rows).toEqual(
      expect.arrayContaining([
        { id: await laptop.getAttribute("#me", "data-session-id"), current: "true", device: LAPTOP },
        { id: phoneSession, current: "false", device: PHONE },
      ]),
    );
    await snap(laptop, "devices-1-laptop-sees-both-sessions");

    // The laptop revokes the phone's session.
    await laptop.click(`#sessions li[data-session-id='${phoneSession}'] button`);
    await laptop.waitForFunction(() => document.querySelectorAll("#sessions li").length === 1);
    expect(await laptop.getAttribute("#sessions li", "data-current")).toBe("true");
    await snap(laptop, "devices-2-laptop-revoked-phone");

    // The phone learns on its next call: refused, its refresh refused too, and it is signed out.
    const before = phoneTraffic.length;
    await phone.click("#reload-me");
    await waitForState(phone, "signed-out");
    expect(await phone.textContent("#message")).toBe("This session was ended from another device.");
    const calls = phoneTraffic.slice(before);
    expect(calls.map((e) => [e.procedure, e.response?.status()])).toEqual([
      ["auth.me", 401],
      ["auth.refresh", 401],
    ]);
    expect(((await calls[0]!.response!.json()) as { error: { data: { reason: string } } }).error.data.reason).toBe(
      "SESSION_REVOKED",
    );
    await snap(phone, "devices-3-phone-signed-out");
    await phone.reload();
    await waitForState(phone, "signed-out");

    // The laptop carries on.
    const loads = await meLoads(laptop);
    await laptop.click("#reload-me");
    await waitForMeLoads(laptop, loads + 1);
    expect(await laptop.textContent("#status")).toBe(`Signed in as ${email}`);
    await laptopContext.close();
    await phoneContext.close();
  });
});
