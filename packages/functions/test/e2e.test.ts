import { createAuthClient, AuthClientError, type SessionEvent } from "@authlith/client";
import type { AppRouter } from "../src/router";
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PASSWORD, uniqueEmail } from "./support/app";
import { expectSignedIn, freePort, mailedToken, signUp, startDevServerProcess, type DevServerProcess } from "./support/dev-process";

describe("end to end: the dev server over HTTP with the real @trpc/client", () => {
  let dataDir: string;
  let port: number;
  let server: DevServerProcess;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "authlith-e2e-"));
    port = await freePort();
    server = await startDevServerProcess(dataDir, port);
  }, 90_000);

  afterAll(async () => {
    if (server) await server.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("prints its URL and how to try it, and answers health and JWKS", async () => {
    expect(server.output()).toContain(`listening on http://localhost:${port}`);
    expect(server.output()).toContain("curl");
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health).toMatchObject({ status: "ok", checks: { postgres: { ok: true }, redis: { ok: true } } });
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", alg: "ES256" });
    // Development secrets are kept private on disk.
    expect((await stat(join(dataDir, "dev-keys-es256.json"))).mode & 0o077).toBe(0);
  });

  it("keeps a development outbox: each mail printed as one line with its link, and listed at GET /dev/mail", async () => {
    const email = uniqueEmail("outbox");
    const post = (path: string, body: unknown) =>
      fetch(`${server.url}/trpc/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("auth.register", { email, password: PASSWORD })).status).toBe(200);
    expect((await post("account.requestPasswordReset", { email })).status).toBe(200);
    const listed = (await (await fetch(`${server.url}/dev/mail`)).json()) as { mails: { to: string; kind: string; link: string }[] };
    const mail = listed.mails.find((m) => m.to === email && m.kind === "password_reset")!;
    expect(mail).toMatchObject({ kind: "password_reset" });
    expect(mail.link).toMatch(/^http:\/\/localhost:5173\/reset-password#token=[A-Za-z0-9_-]{43}$/);
    await expect.poll(() => server.output()).toContain(`mail password_reset to ${email}: Reset your authlith password ${mail.link}`);
    // The link's token sets a new password through the API.
    const token = decodeURIComponent(mail.link.split("#token=")[1]!);
    expect((await post("account.resetPassword", { token, newPassword: "a fresh passphrase for e2e" })).status).toBe(200);
    expect((await post("auth.login", { email, password: "a fresh passphrase for e2e" })).status).toBe(200);
  });

  it("runs the whole flow through @authlith/client with the token transport", async () => {
    const events: SessionEvent["type"][] = [];
    const client = createAuthClient({ url: server.url, transport: "token" });
    client.onSessionChange((event) => events.push(event.type));
    const email = uniqueEmail("e2e");

    // Email verification is on by default: sign-up mails a link and signs nobody in.
    expect(await client.register({ email, password: PASSWORD, name: "Grace" })).toEqual({ status: "verification_required" });
    const early = await client.login({ email, password: PASSWORD }).catch((e: unknown) => e);
    expect(early).toMatchObject({ kind: "forbidden", reason: "EMAIL_NOT_VERIFIED" });
    expect(await client.verifyEmail({ token: await mailedToken(server.url, email), password: PASSWORD })).toEqual({ email });
    const signedIn = expectSignedIn(await client.login({ email, password: PASSWORD }));
    expect(signedIn.user).toMatchObject({ email, name: "Grace", emailVerified: true });
    expect((await client.me()).user.email).toBe(email);
    const sessions = await client.sessions.list();
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ current: true, ip: "127.0.0.1" });

    const refreshed = await client.refresh();
    expect(refreshed?.user.email).toBe(email);

    const phone = createAuthClient({ url: server.url, transport: "token" });
    await phone.login({ email, password: PASSWORD });
    const phoneSession = (await phone.sessions.list()).find((s) => s.current)!;
    expect(await client.sessions.list()).toHaveLength(2);
    await client.sessions.revoke(phoneSession.id);
    await expect(phone.me()).rejects.toMatchObject({ kind: "unauthorized" });

    await client.logout();
    await expect(client.me()).rejects.toBeInstanceOf(AuthClientError);
    expect(events).toEqual(["signed_in", "refreshed", "signed_out"]);
  });

  it("shares one refresh between concurrent calls", async () => {
    const refreshes: string[] = [];
    // A margin longer than the token's life: every call wants a fresh token.
    const client = createAuthClient({ url: server.url, transport: "token", refreshMarginSeconds: 3600 });
    await signUp(client, server.url, { email: uniqueEmail("burst"), password: PASSWORD });
    client.onSessionChange((event) => refreshes.push(event.type));
    const results = await Promise.all(Array.from({ length: 8 }, () => client.me()));
    expect(new Set(results.map((r) => r.user.id)).size).toBe(1);
    expect(refreshes).toEqual(["refreshed"]);
  });

  it("types errors so callers can tell them apart", async () => {
    const client = createAuthClient({ url: server.url, transport: "token" });
    const email = uniqueEmail("errors");
    await signUp(client, server.url, { email, password: PASSWORD });
    const wrong = await client.login({ email, password: "not the password" }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ kind: "invalid_credentials", status: 401 });
    const invalid = await client.register({ email: "nope", password: "short" }).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ kind: "validation", status: 400 });
    expect(Object.keys((invalid as AuthClientError).fieldErrors).sort()).toEqual(["email", "password"]);
    // A taken address answers like a new one.
    expect(await client.register({ email, password: PASSWORD })).toEqual({ status: "verification_required" });
    const offline = createAuthClient({ url: "http://127.0.0.1:1", transport: "token" });
    expect(await offline.login({ email, password: PASSWORD }).catch((e: unknown) => e)).toMatchObject({ kind: "network" });
  });

  it("is callable with a plain typed tRPC client (httpBatchLink)", async () => {
    const trpc = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-authlith-transport": "token" } })],
    });
    const email = uniqueEmail("raw");
    expect(await trpc.auth.register.mutate({ email, password: PASSWORD })).toEqual({ status: "verification_required" });
    expect(await trpc.account.verifyEmail.mutate({ token: await mailedToken(server.url, email), password: PASSWORD })).toEqual({ success: true, email });
    const signedIn = await trpc.auth.login.mutate({ email, password: PASSWORD });
    // No second factor on this account: the answer is the tokens, not a challenge.
    if ("mfaRequired" in signedIn) throw new Error("unexpected second-factor challenge");
    expect(signedIn.refreshToken).toMatch(/^[A-Za-z0-9_-]{91}$/);
    const error = await trpc.auth.login.mutate({ email, password: "wrong wrong" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data?.code).toBe("UNAUTHORIZED");
  });

  it("binds any free port with PORT=0 and uses that port in its issuer", async () => {
    const { startDevServer: startInProcess } = await import("../src/dev-server");
    const scratch = await mkdtemp(join(tmpdir(), "authlith-port0-"));
    const dev = await startInProcess({ PORT: "0", AUTHLITH_DATA_DIR: scratch, LOG_LEVEL: "error" });
    try {
      expect(dev.port).toBeGreaterThan(0);
      const discovery = await (await fetch(`${dev.url}/.well-known/openid-configuration`)).json();
      expect(discovery.issuer).toBe(dev.url);
    } finally {
      await dev.close();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("keeps users and keys across a restart (PGlite and keys persisted under the data directory)", async () => {
    const client = createAuthClient({ url: server.url, transport: "token" });
    const email = uniqueEmail("persist");
    const before = await signUp(client, server.url, { email, password: PASSWORD });
    await server.stop();
    server = await startDevServerProcess(dataDir, port);
    // The access token issued before the restart still verifies: same key set.
    const me = await fetch(`${server.url}/trpc/auth.me`, { headers: { authorization: `Bearer ${before.accessToken}` } });
    expect(me.status).toBe(200);
    const again = createAuthClient({ url: server.url, transport: "token" });
    expect(expectSignedIn(await again.login({ email, password: PASSWORD })).user.id).toBe(before.user.id);
  }, 90_000);
});
