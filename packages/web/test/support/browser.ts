import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page, type Request, type Response } from "playwright-core";

/** Screenshots of the key steps, kept as test artifacts (git-ignored). */
export const ARTIFACTS_DIR = fileURLToPath(new URL("../../../../test-results/e2e/", import.meta.url));

/** Debian's Chromium (`apt-get install -y chromium`), or CHROMIUM_PATH. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}: run \`apt-get install -y chromium\` or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

export async function snap(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: true });
}

export interface Exchange {
  page: Page | null;
  method: string;
  procedure: string;
  request: Request;
  response: Response | null;
}

/** Every tRPC request the browser context sends to the API (under `prefix`), with its answer once it comes. */
export function recordApiTraffic(context: BrowserContext, apiUrl: string, prefix = "/trpc/"): Exchange[] {
  const exchanges: Exchange[] = [];
  const byRequest = new Map<Request, Exchange>();
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin !== new URL(apiUrl).origin || !url.pathname.startsWith(prefix)) return;
    const exchange: Exchange = {
      page: request.frame()?.page() ?? null,
      method: request.method(),
      procedure: url.pathname.slice(prefix.length),
      request,
      response: null,
    };
    exchanges.push(exchange);
    byRequest.set(request, exchange);
  });
  context.on("response", (response) => {
    const exchange = byRequest.get(response.request());
    if (exchange) exchange.response = response;
  });
  return exchanges;
}

/** The Set-Cookie header lines of a response, as the server sent them. */
export async function setCookieLines(response: Response): Promise<string[]> {
  return (await response.headersArray()).filter((h) => h.name.toLowerCase() === "set-cookie").map((h) => h.value);
}
