import { generateSigningKey } from "@authlith/core";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer as createNetServer, type Socket } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { authHeaders, authLink, AuthClientError, createAuthClient, memoryStorage, type SessionEvent, type TokenStorage } from "../src/index";
import { initTRPC, TRPCError } from "@trpc/server";
import { createHTTPServer } from "@trpc/server/adapters/standalone";
import { createTRPCClient, httpBatchLink, httpLink, TRPCClientError } from "@trpc/client";
import { expectSignedIn, freePort, observedFetch, PASSWORD, refreshGeneration, startDevServer, uniqueEmail, type DevServer } from "./support/server";

const MINUTE = 60_000;

/** A storage that remembers every token it was given. */
function recordingStorage(): TokenStorage & { written: (string | null)[] } {
  const inner = memoryStorage();
  const written: (string | null)[] = [];
  return {
    written,
    get: () => inner.get(),
    set(token) {
      written.push(token);
      return inner.set(token);
    },
  };
}

let dataDir: string;
let port: number;
let server: DevServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "authlith-client-"));
  port = await freePort();
  server = await startDevServer(dataDir, port);
}, 90_000);
afterAll(async () => {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});
afterEach(() => {
  vi.useRealTimers();
});

function newClient(options: { storage?: TokenStorage; deviceStorage?: TokenStorage } = {}) {
  const observed = observedFetch();
  const events: SessionEvent[] = [];
  const client = createAuthClient({ url: server.url, transport: "token", fetch: observed.fetch, ...options });
  client.onSessionChange((event) => events.push(event));
  return { client, observed, events };
}

describe("the client's refresh logic, against a real dev server", () => {
  it("many calls refused at once (a key the server no longer has) share one refresh, and each is retried once", async () => {
    const storage = recordingStorage();
    const { client, observed, events } = newClient({ storage });
    await client.register({ email: uniqueEmail("burst"), password: PASSWORD });

    // The server restarts with a new signing key: every access token it issued before is refused
    // (INVALID_TOKEN), while sessions and refresh tokens live on in its database.
    await server.stop();
    const keys = JSON.stringify({ keys: [await generateSigningKey("ES256")] });
    server = await startDevServer(dataDir, port, { AUTHLITH_SIGNING_KEYS: keys });
    try {
      const before = observed.calls.length;
      const results = await Promise.all([
        ...Array.from({ length: 16 }, () => client.me()),
        ...Array.from({ length: 4 }, () => client.sessions.list()),
      ]);
      expect(new Set(results.slice(0, 16).map((me) => "user" in me && me.user.id)).size).toBe(1);
      expect(results.slice(16).every((sessions) => Array.isArray(sessions) && sessions.length === 1)).toBe(true);

      const calls = observed.calls.slice(before);
      expect(calls.filter((c) => c.procedure === "auth.refresh")).toEqual([{ procedure: "auth.refresh", status: 200 }]);
      // Every call went out twice: refused with the old token, accepted with the new one.
      const meStatuses = calls.filter((c) => c.procedure === "auth.me").map((c) => c.status);
      expect(meStatuses.filter((s) => s === 401)).toHaveLength(16);
      expect(meStatuses.filter((s) => s === 200)).toHaveLength(16);
      expect(calls.filter((c) => c.procedure === "session.list")).toHaveLength(8);
      expect(events.map((e) => e.type)).toEqual(["signed_in", "refreshed"]);
      // One rotation: the stored refresh token moved from generation 0 to 1, once.
      expect(storage.written.map((t) => t && refreshGeneration(t))).toEqual([0, 1]);
    } finally {
      await server.stop();
      server = await startDevServer(dataDir, port); // back to the key set in the data directory
    }
  }, 120_000);

  it("many calls on a revoked session: one refresh, refused; every call fails typed; one signed_out", async () => {
    const storage = recordingStorage();
    const { client, observed, events } = newClient({ storage });
    const email = uniqueEmail("revoked");
    await client.register({ email, password: PASSWORD });
    const mine = (await client.sessions.list())[0]!.id;
    const other = createAuthClient({ url: server.url, transport: "token" });
    await other.login({ email, password: PASSWORD });
    await other.sessions.revoke(mine);

    const before = observed.calls.length;
    const failures = await Promise.all(Array.from({ length: 12 }, () => client.me().catch((error: unknown) => error)));
    for (const failure of failures) {
      expect(AuthClientError.is(failure)).toBe(true);
      expect(failure).toMatchObject({ kind: "unauthorized", status: 401, reason: "SESSION_REVOKED" });
    }
    expect(observed.calls.slice(before).filter((c) => c.procedure === "auth.refresh")).toEqual([
      { procedure: "auth.refresh", status: 401 },
    ]);
    expect(events.filter((e) => e.type === "signed_out")).toEqual([{ type: "signed_out", reason: "revoked" }]);
    expect(client.getUser()).toBeNull();
    expect(storage.written.at(-1)).toBeNull();
    // Signed out now: the next call does not even reach the server.
    const after = observed.calls.length;
    await expect(client.me()).rejects.toMatchObject({ kind: "unauthorized", reason: "NOT_SIGNED_IN" });
    expect(observed.calls.length).toBe(after);
  });

  it("refreshes shortly before expiry, once for many calls, without a refused call first", async () => {
    const { client, observed, events } = newClient();
    await client.register({ email: uniqueEmail("margin"), password: PASSWORD });
    const before = observed.calls.length;
    await Promise.all(Array.from({ length: 5 }, () => client.me()));
    expect(observed.count("auth.refresh")).toBe(0); // fresh: no refresh

    // 14 minutes 30 seconds later (by this process's clock; the token lives 15 minutes): inside
    // the 60-second margin, so the next calls refresh first. The server's clock is the real one.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 14.5 * MINUTE);
    await Promise.all(Array.from({ length: 10 }, () => client.me()));
    const calls = observed.calls.slice(before);
    expect(calls.filter((c) => c.procedure === "auth.refresh")).toEqual([{ procedure: "auth.refresh", status: 200 }]);
    expect(calls.filter((c) => c.procedure === "auth.me").every((c) => c.status === 200)).toBe(true);
    expect(events.map((e) => e.type)).toEqual(["signed_in", "refreshed"]);
  });

  it("schedules by the token's lifetime, not the device clock: a clock an hour off neither refreshes every call nor waits too long", async () => {
    for (const skewMs of [60 * MINUTE, -60 * MINUTE]) {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + skewMs);
      const { client, observed } = newClient();
      await client.register({ email: uniqueEmail("skew"), password: PASSWORD });
      await Promise.all(Array.from({ length: 3 }, () => client.me()));
      expect(observed.count("auth.refresh")).toBe(0);
      expect(observed.calls.filter((c) => c.status === 401)).toEqual([]);

      vi.setSystemTime(Date.now() + 14.5 * MINUTE);
      await client.me();
      expect(observed.count("auth.refresh")).toBe(1);
      vi.useRealTimers();
    }
  });

  it("a network failure during a refresh keeps the session: typed as network, and it works again once the server is back", async () => {
    const storage = recordingStorage();
    const { client, observed, events } = newClient({ storage });
    await client.register({ email: uniqueEmail("offline"), password: PASSWORD });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 14.5 * MINUTE); // the next call refreshes first

    await server.stop();
    try {
      const failures = await Promise.all(Array.from({ length: 3 }, () => client.me().catch((error: unknown) => error)));
      for (const failure of failures) expect(failure).toMatchObject({ kind: "network", status: undefined });
      expect(client.getUser()).not.toBeNull();
      expect(storage.written.filter((t) => t === null)).toEqual([]);
    } finally {
      server = await startDevServer(dataDir, port);
    }
    await client.me();
    expect(observed.calls.filter((c) => c.procedure === "auth.refresh" && c.status === 200)).toHaveLength(1);
    expect(events.map((e) => e.type)).toEqual(["signed_in", "refreshed"]);
  }, 120_000);

  it("a logout while a refresh is in flight wins: the late answer does not bring the session back", async () => {
    const storage = recordingStorage();
    let delayRefresh = false;
    const slowFetch: typeof fetch = async (input, init) => {
      if (delayRefresh && String(input).includes("/trpc/auth.refresh")) await new Promise((resolve) => setTimeout(resolve, 300));
      return fetch(input, init);
    };
    const events: SessionEvent[] = [];
    const client = createAuthClient({ url: server.url, transport: "token", storage, fetch: slowFetch });
    client.onSessionChange((event) => events.push(event));
    await client.register({ email: uniqueEmail("race"), password: PASSWORD });
    delayRefresh = true;
    const refreshing = client.refresh().catch(() => null);
    await client.logout();
    await refreshing;
    // The refresh in flight finishes first (the logout then ends the newest token); nothing after.
    expect(events.map((e) => e.type)).toEqual(["signed_in", "refreshed", "signed_out"]);
    expect(client.getUser()).toBeNull();
    expect(await storage.get()).toBeNull();
    await expect(client.me()).rejects.toMatchObject({ kind: "unauthorized" });
  });

  it("restores a session from a stored refresh token (a new process)", async () => {
    const storage = recordingStorage();
    const first = newClient({ storage });
    const email = uniqueEmail("restore");
    await first.client.register({ email, password: PASSWORD });

    const second = newClient({ storage });
    expect(second.client.getUser()).toBeNull();
    expect((await second.client.restore())?.email).toBe(email);
    expect(second.events.map((e) => e.type)).toEqual(["signed_in"]);
    expect((await second.client.me()).user.email).toBe(email);

    await second.client.logout();
    expect(storage.written.at(-1)).toBeNull();
    expect(await newClient({ storage }).client.restore()).toBeNull();
  });

});

describe("sign-in and errors, against a real dev server", () => {
  it("types errors: invalid credentials, rate limiting with retry-after, validation with field errors, conflict, network, timeout", async () => {
    const { client } = newClient();
    const email = uniqueEmail("errors");
    await client.register({ email, password: PASSWORD });

    const caught = (promise: Promise<unknown>) => promise.then(() => null, (error: unknown) => error as AuthClientError);
    expect(await caught(client.login({ email, password: "not the password" }))).toMatchObject({
      kind: "invalid_credentials",
      status: 401,
      reason: "INVALID_CREDENTIALS",
    });
    // The per-account limit: 10 failures in 15 minutes, then 429 with Retry-After.
    let limited: AuthClientError | null = null;
    for (let attempt = 0; attempt < 12 && !limited; attempt++) {
      const error = await caught(client.login({ email, password: "still not the password" }));
      if (error?.kind === "rate_limited") limited = error;
      else expect(error).toMatchObject({ kind: "invalid_credentials" });
    }
    expect(limited).toMatchObject({ kind: "rate_limited", status: 429 });
    expect(limited!.retryAfterSeconds).toBeGreaterThan(0);

    const invalid = await caught(client.register({ email: "nope", password: "short" }));
    expect(invalid).toMatchObject({ kind: "validation", status: 400 });
    expect(Object.keys(invalid!.fieldErrors).sort()).toEqual(["email", "password"]);
    expect(invalid!.fieldErrors.password![0]).toEqual(expect.any(String));

    expect(await caught(client.register({ email, password: PASSWORD }))).toMatchObject({ kind: "conflict", status: 409 });

    const offline = createAuthClient({ url: `http://127.0.0.1:${await freePort()}`, transport: "token" });
    const network = await caught(offline.login({ email, password: PASSWORD }));
    expect(network).toBeInstanceOf(AuthClientError);
    expect(network).toMatchObject({ kind: "network", status: undefined });

    // A server that takes the connection and never answers: the client gives up, typed.
    const connections: Socket[] = [];
    const silent = createNetServer((socket) => void connections.push(socket.on("error", () => {})));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const hanging = createAuthClient({
        url: `http://127.0.0.1:${(silent.address() as { port: number }).port}`,
        transport: "token",
        timeoutSeconds: 0.2,
      });
      expect(await caught(hanging.login({ email, password: PASSWORD }))).toMatchObject({ kind: "network", reason: "TIMEOUT" });
    } finally {
      for (const socket of connections) socket.destroy();
      silent.close();
    }
  });

  it("keeps the known-device token (token transport): a device that signed in before is not locked out by an attacker elsewhere", async () => {
    const deviceStorage = recordingStorage();
    const owner = newClient({ deviceStorage });
    const email = uniqueEmail("lockout");
    await owner.client.register({ email, password: PASSWORD });
    expect(deviceStorage.written).toEqual([expect.any(String)]);
    await owner.client.logout();

    // Someone else guesses until the account is locked for everyone without a known device.
    const attacker = newClient();
    let locked = false;
    for (let attempt = 0; attempt < 12 && !locked; attempt++) {
      const error = await attacker.client.login({ email, password: "guess guess guess" }).then(() => null, (e: unknown) => e);
      locked = AuthClientError.is(error, "rate_limited");
    }
    expect(locked).toBe(true);
    await expect(newClient().client.login({ email, password: PASSWORD })).rejects.toMatchObject({ kind: "rate_limited" });

    // The owner's client sends its device token back and signs in.
    const signedIn = expectSignedIn(await owner.client.login({ email, password: PASSWORD }));
    expect(signedIn.user.email).toBe(email);
    expect(deviceStorage.written.includes(null)).toBe(false); // logout kept it
  });
});

describe("password reset through the client, against a real dev server", () => {
  it("asks for a link, reads it from the dev outbox, sets a new password, and every old session is gone", async () => {
    const email = uniqueEmail("client-reset");
    const { client, events } = newClient();
    await client.register({ email, password: PASSWORD });
    const stranger = createAuthClient({ url: server.url, transport: "token" });
    await stranger.requestPasswordReset({ email });
    // The same answer for an address without an account: nothing to tell them apart.
    await expect(stranger.requestPasswordReset({ email: uniqueEmail("nobody") })).resolves.toBeUndefined();
    const outbox = (await (await fetch(`${server.url}/dev/mail`)).json()) as { mails: { to: string; kind: string; link: string }[] };
    const link = outbox.mails.find((mail) => mail.to === email && mail.kind === "password_reset")!.link;
    const token = decodeURIComponent(new URL(link).hash.replace(/^#token=/, ""));

    const weak = await stranger.resetPassword({ token, newPassword: "password" }).then(() => null, (e: unknown) => e);
    expect(weak).toMatchObject({ kind: "validation" });
    expect((weak as AuthClientError).fieldErrors.newPassword?.[0]).toMatch(/too common/);
    await stranger.resetPassword({ token, newPassword: "an entirely new passphrase" });
    const reused = await stranger.resetPassword({ token, newPassword: "another new passphrase" }).then(() => null, (e: unknown) => e);
    expect(reused).toMatchObject({ kind: "validation", reason: "INVALID_TOKEN" });

    // The session that was open before the reset is over on its next call.
    await expect(client.me()).rejects.toMatchObject({ kind: "unauthorized" });
    expect(events.at(-1)).toMatchObject({ type: "signed_out" });
    await stranger.login({ email, password: "an entirely new passphrase" });
    expect((await stranger.me()).user.email).toBe(email);
  });
});

describe("email verification through the client, against a real dev server", () => {
  it("asks for a link while signed in, confirms the address with it, and picks up emailVerified at once", async () => {
    const email = uniqueEmail("client-verify");
    const { client, events } = newClient();
    const registered = await client.register({ email, password: PASSWORD });
    expect(registered).toMatchObject({ status: "signed_in", user: { email, emailVerified: false } });
    expect(await client.requestVerification()).toEqual({ alreadyVerified: false });
    const outbox = (await (await fetch(`${server.url}/dev/mail`)).json()) as { mails: { to: string; kind: string; link: string }[] };
    const link = outbox.mails.find((mail) => mail.to === email && mail.kind === "email_verification")!.link;
    const token = decodeURIComponent(new URL(link).hash.replace(/^#token=/, ""));

    expect(await client.verifyEmail({ token, password: PASSWORD })).toEqual({ email });
    // The client refreshed, so what it holds (and what it tells listeners) says verified.
    expect(client.getUser()).toMatchObject({ email, emailVerified: true });
    expect(events.at(-1)).toMatchObject({ type: "refreshed", user: { emailVerified: true } });
    expect((await client.me()).user.emailVerified).toBe(true);
    expect(await client.requestVerification()).toEqual({ alreadyVerified: true });
    const reused = await client.verifyEmail({ token, password: PASSWORD }).then(() => null, (e: unknown) => e);
    expect(reused).toMatchObject({ kind: "validation", reason: "INVALID_TOKEN" });
  });
});

describe("calling your own API with the client's tokens", () => {
  // One account for these tests, each signing in afresh (sign-ups are limited per IP, and every
  // request here comes from 127.0.0.1).
  const email = uniqueEmail("own-api");
  /** The sign-up's refresh token, for a client that restores its session from storage. */
  const stored = memoryStorage();
  beforeAll(async () => {
    const { client } = newClient({ storage: stored });
    await client.register({ email, password: PASSWORD });
  });
  const signedIn = async () => {
    const made = newClient();
    await made.client.login({ email, password: PASSWORD });
    return made;
  };
  /** An API of the app's own that refuses the first `refuse` tokens it sees and accepts any other. */
  async function ownApi(refuse: number) {
    const seen: (string | null)[] = [];
    const refused = new Set<string>();
    const api = createHttpServer((request, response) => {
      const token = request.headers.authorization?.replace(/^Bearer /, "") ?? null;
      seen.push(token);
      if (token && refused.size < refuse && !refused.has(token)) refused.add(token);
      response.writeHead(token && !refused.has(token) ? 200 : 401).end();
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(api.address() as { port: number }).port}/`, seen, close: () => new Promise((r) => api.close(r)) };
  }

  it("getAccessToken({ rejected }) renews only while the refused token is the current one, once for many callers", async () => {
    const { client, observed } = await signedIn();
    const first = (await client.getAccessToken())!;
    const before = observed.count("auth.refresh");
    // Five calls to the app's API refused the same token at once: one rotation between them.
    const renewed = await Promise.all(Array.from({ length: 5 }, () => client.getAccessToken({ rejected: first })));
    expect(new Set(renewed).size).toBe(1);
    expect(renewed[0]).not.toBe(first);
    expect(observed.count("auth.refresh")).toBe(before + 1);
    // A refusal of a token already replaced costs nothing.
    expect(await client.getAccessToken({ rejected: first })).toBe(renewed[0]);
    expect(observed.count("auth.refresh")).toBe(before + 1);
  });

  it("fetch attaches the token, and after a 401 renews it once and retries once", async () => {
    const { client, observed } = await signedIn();
    const api = await ownApi(1);
    try {
      const token = await client.getAccessToken();
      const response = await client.fetch(api.url, { headers: { "x-app": "1" } });
      expect(response.status).toBe(200);
      expect(api.seen).toHaveLength(2);
      expect(api.seen[0]).toBe(token);
      expect(api.seen[1]).not.toBe(token);
      expect(observed.count("auth.refresh")).toBe(1);
    } finally {
      await api.close();
    }
  });

  it("authLink signs an app's own tRPC API in; refused calls share one refresh and are each retried once", async () => {
    const { client, observed } = await signedIn();
    const first = (await client.getAccessToken())!;
    // The app's API refuses the first token it sees (as if it had expired there) and takes any other.
    const seen: (string | null)[] = [];
    const t = initTRPC.context<{ token: string | null }>().create();
    const router = t.router({
      whoami: t.procedure.query(({ ctx }) => {
        seen.push(ctx.token);
        if (!ctx.token || ctx.token === first) throw new TRPCError({ code: "UNAUTHORIZED" });
        return { ok: true };
      }),
      open: t.procedure.query(({ ctx }) => ({ signedIn: ctx.token !== null })),
    });
    const api = createHTTPServer({ router, createContext: ({ req }) => ({ token: req.headers.authorization?.replace(/^Bearer /, "") ?? null }) });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
      const app = createTRPCClient<typeof router>({ links: [authLink(client), httpLink({ url, headers: authHeaders })] });
      const before = observed.count("auth.refresh");
      const results = await Promise.all(Array.from({ length: 6 }, () => app.whoami.query()));
      expect(results).toEqual(Array.from({ length: 6 }, () => ({ ok: true })));
      expect(observed.count("auth.refresh")).toBe(before + 1);
      expect(seen.filter((token) => token === first)).toHaveLength(6);
      expect(seen).toHaveLength(12);
      // Batched, the same.
      const batched = createTRPCClient<typeof router>({ links: [authLink(client), httpBatchLink({ url, headers: authHeaders })] });
      expect(await Promise.all([batched.whoami.query(), batched.open.query()])).toEqual([{ ok: true }, { signedIn: true }]);
      // Signed out: calls go out without a token, and a refusal is not retried.
      await client.logout();
      expect(await app.open.query()).toEqual({ signedIn: false });
      const refused = await app.whoami.query().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TRPCClientError);
      expect((refused as TRPCClientError<typeof router>).data?.httpStatus).toBe(401);
    } finally {
      await new Promise((resolve) => api.close(resolve));
    }
  });

  it("auth.trpc is the typed tRPC client for every authlith procedure, with the same token handling", async () => {
    const { client, observed } = await signedIn();
    const listed = await client.trpc.session.list.query();
    expect(listed.sessions.filter((session) => session.current)).toHaveLength(1);
    expect((await client.trpc.auth.me.query()).user.email).toBe(email);
    // A call refused as UNAUTHORIZED (the session was ended elsewhere) is not retried into success,
    // and arrives as tRPC's own error type.
    const other = createAuthClient({ url: server.url, transport: "token" });
    await other.login({ email, password: PASSWORD });
    await other.sessions.revoke(listed.sessions.find((session) => session.current)!.id);
    const error = await client.trpc.session.list.query().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(observed.count("auth.refresh")).toBe(1);
  });

  it("exposes the state as a snapshot: loading, then signed out or in, the same object until it changes", async () => {
    // Nothing stored: the first subscriber starts a restore, which settles as signed out.
    const { client: empty } = newClient();
    expect(empty.getSnapshot()).toEqual({ status: "loading", user: null, error: null });
    const emptyChanges: string[] = [];
    empty.subscribe(() => emptyChanges.push(empty.getSnapshot().status));
    await vi.waitFor(() => expect(empty.getSnapshot().status).toBe("signed_out"));
    const signedOut = empty.getSnapshot();
    expect(empty.getSnapshot()).toBe(signedOut);
    expect(emptyChanges).toEqual(["signed_out"]);

    // A stored session: loading, then signed in; a logout, then signed out.
    const { client } = newClient({ storage: stored });
    const changes: string[] = [];
    const unsubscribe = client.subscribe(() => changes.push(client.getSnapshot().status));
    expect(client.getSnapshot().status).toBe("loading");
    await vi.waitFor(() => expect(client.getSnapshot()).toMatchObject({ status: "signed_in", user: { email }, error: null }));
    const signedIn = client.getSnapshot();
    expect(client.getSnapshot()).toBe(signedIn);
    await client.logout();
    expect(client.getSnapshot()).toMatchObject({ status: "signed_out", user: null });
    expect(changes).toEqual(["signed_in", "signed_out"]);
    unsubscribe();
  });

  it("reports a restore that could not reach the server in the snapshot's error", async () => {
    const offline = createAuthClient({ url: `http://127.0.0.1:${await freePort()}`, transport: "token", storage: { get: async () => "stored-token", set: async () => {} } });
    offline.subscribe(() => {});
    await vi.waitFor(() => expect(offline.getSnapshot().status).toBe("signed_out"));
    expect(offline.getSnapshot().error).toMatchObject({ kind: "network" });
  });
});
