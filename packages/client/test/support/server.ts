export { expectSignedIn, freePort } from "../../../functions/test/support/dev-process";
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

/** A tRPC request's procedure and input (a mutation's body, a query's `?input=`). */
function procedureCall(input: string | URL | Request, init: RequestInit | undefined) {
  const url = new URL(String(input));
  const query = url.searchParams.get("input");
  const body = typeof init?.body === "string" ? init.body : query;
  return { procedure: url.pathname.replace(/^\/trpc\//, ""), input: body === null ? undefined : (JSON.parse(body) as unknown) };
}

/** Observes every request a client sends and the status it gets back; changes nothing. */
export function observedFetch() {
  const calls: { procedure: string; status: number | null }[] = [];
  const inputs: { procedure: string; input: unknown }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const sent = procedureCall(input as string, init);
    const call = { procedure: sent.procedure, status: null as number | null };
    calls.push(call);
    inputs.push(sent);
    const response = await globalThis.fetch(input, init);
    call.status = response.status;
    return response;
  };
  return {
    fetch,
    calls,
    count: (procedure: string) => calls.filter((c) => c.procedure === procedure).length,
    /** The inputs sent to `procedure`, in order. */
    inputsOf: (procedure: string) => inputs.filter((c) => c.procedure === procedure).map((c) => c.input),
  };
}

/**
 * A stand-in for the service that answers each procedure with `answers[procedure]` (a value, or a
 * function of the input), as tRPC's HTTP link expects, and records what it was sent. For what a
 * real server cannot be brought to do in Node (a passkey that checks out).
 */
export function fakeService(answers: Record<string, unknown>) {
  const inputs: { procedure: string; input: unknown }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const sent = procedureCall(input as string, init);
    inputs.push(sent);
    const answer = answers[sent.procedure];
    if (answer === undefined) return Response.json({ error: { message: "Not found", code: -32004, data: { code: "NOT_FOUND", httpStatus: 404 } } }, { status: 404 });
    const data = typeof answer === "function" ? (answer as (input: unknown) => unknown)(sent.input) : answer;
    return Response.json({ result: { data } });
  };
  return { fetch, procedures: () => inputs.map((c) => c.procedure), inputsOf: (procedure: string) => inputs.filter((c) => c.procedure === procedure).map((c) => c.input) };
}

/** A session as the service answers it, with an access token whose claims the client can read. */
export function fakeSession(email = "ada@example.com") {
  const nowSeconds = Math.floor(Date.now() / 1000);
  const claims = btoa(JSON.stringify({ sid: "0190a0a0-0000-7000-8000-000000000001", iat: nowSeconds, exp: nowSeconds + 900 }));
  return {
    user: { id: "0190a0a0-0000-7000-8000-000000000002", email, name: null, emailVerified: true, createdAt: new Date().toISOString() },
    session: { id: "0190a0a0-0000-7000-8000-000000000001", expiresAt: new Date(Date.now() + 86_400_000).toISOString() },
    tokenType: "Bearer" as const,
    accessToken: `header.${claims.replace(/=+$/, "")}.signature`,
    accessTokenExpiresAt: new Date((nowSeconds + 900) * 1000).toISOString(),
    refreshToken: "fake-refresh-token",
  };
}

export const PASSWORD = "correct horse battery staple";
let emails = 0;
export const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${++emails}@example.com`;

/** The generation in a refresh token (packages/core/src/refresh-token.ts: sid ‖ generation ‖ ...). */
export const refreshGeneration = (token: string) => Buffer.from(token, "base64url").readUInt32BE(16);
