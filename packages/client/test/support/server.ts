export { freePort } from "../../../functions/test/support/dev-process";
import { startDevServerProcess } from "../../../functions/test/support/dev-process";

export interface DevServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * `npm run dev`'s entry point in its own process (its clock is the real one, whatever the test
 * does to its own), on PGlite in `dataDir`. Started again on the same data directory it keeps its
 * users, sessions and keys, unless `env` brings other keys. These tests are about the client's
 * sessions, so sign-up signs in at once (email verification off); the client's verification flow
 * against the default server is in packages/functions/test/e2e.test.ts and the browser tests.
 */
export async function startDevServer(dataDir: string, port: number, env: Record<string, string> = {}): Promise<DevServer> {
  return startDevServerProcess(dataDir, port, { LOG_LEVEL: "warn", AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false", ...env });
}

/** Observes every request a client sends and the status it gets back; changes nothing. */
export function observedFetch() {
  const calls: { procedure: string; status: number | null }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const call = { procedure: new URL(String(input)).pathname.replace(/^\/trpc\//, ""), status: null as number | null };
    calls.push(call);
    const response = await globalThis.fetch(input, init);
    call.status = response.status;
    return response;
  };
  return { fetch, calls, count: (procedure: string) => calls.filter((c) => c.procedure === procedure).length };
}

export const PASSWORD = "correct horse battery staple";
let emails = 0;
export const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${++emails}@example.com`;

/** The generation in a refresh token (packages/core/src/refresh-token.ts: sid ‖ generation ‖ ...). */
export const refreshGeneration = (token: string) => Buffer.from(token, "base64url").readUInt32BE(16);
