import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { deleteRedisPrefix, TEST_REDIS_URL } from "../../test/support";
import { pong, scriptedRedis } from "../../test/scripted-redis";
import { ServiceUnavailableError } from "../result";
import { createRedisStore, reconnectDelayMs, redisClientOptions } from "./redis";
import type { EphemeralStore } from "./types";

// How the store drives ioredis at the edges: the handshake, dead connections, no resends, TLS.
// A hang would show as the test timing out (a guard, never a timing assertion).

const LONG = 60_000;
const names = (received: { args: string[] }[]) => received.map(({ args }) => args[0]!.toUpperCase());

describe("redis store client", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const open = (url: string, options: Partial<Parameters<typeof createRedisStore>[0]> = {}): EphemeralStore => {
    const store = createRedisStore({ url, keyPrefix: "t:", ...options });
    cleanups.push(() => store.close());
    return store;
  };

  it("does not connect until first used, then authenticates with the URL's user and password and selects its database first", async () => {
    const server = await scriptedRedis(pong);
    cleanups.push(() => server.close());
    const store = open(`redis://app%40user:p%3Ass@127.0.0.1:${server.port}/3`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.connections()).toBe(0);
    await store.ping();
    const commands = server.received.map(({ args }) => [args[0]!.toUpperCase(), ...args.slice(1)]);
    expect(commands).toEqual([["AUTH", "app@user", "p:ss"], ["SELECT", "3"], ["PING"]]);
  });

  it("fails as unavailable when the server refuses the password, without repeating it", async () => {
    const server = await scriptedRedis((args) =>
      args[0]!.toUpperCase() === "AUTH" ? "-WRONGPASS invalid username-password pair\r\n" : "+PONG\r\n",
    );
    cleanups.push(() => server.close());
    const store = open(`redis://:secret-password@127.0.0.1:${server.port}`, { retryDelayMs: () => 60_000 });
    const error = await store.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain("secret-password");
    expect(String((error as Error).cause)).not.toContain("secret-password");
  });

  it("refuses a malformed URL without repeating it (it may hold the password)", () => {
    for (const url of ["redis://default:ab/cd@cache.internal:6379", "redis://[::1", "http://default:pw@cache.internal"]) {
      let error: unknown;
      try {
        createRedisStore({ url });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/^authlith: the Redis URL/);
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toMatch(/ab\/cd|pw|cache\.internal/);
    }
  });

  it("drops a connection that went silent and answers again on a fresh one", async () => {
    let silentOn = 1;
    const server = await scriptedRedis((args, connection) => (connection === silentOn ? null : pong(args, connection)));
    cleanups.push(() => server.close());
    const store = open(server.url, { commandTimeoutMs: 100, retryDelayMs: () => 10 });
    await expect(store.ping()).rejects.toBeInstanceOf(ServiceUnavailableError);
    silentOn = 0;
    // The silent socket is destroyed and replaced; the store answers again without help.
    await expect.poll(() => server.connections(), { timeout: 5000 }).toBe(2);
    await expect.poll(() => store.ping().then(() => "up", () => "down"), { timeout: 5000 }).toBe("up");
  });

  it("fails commands in flight when the connection drops and never resends them on the next one", async () => {
    const server = await scriptedRedis((args, connection) => (args[0]!.toUpperCase() === "SET" && connection === 1 ? null : pong(args, connection)));
    cleanups.push(() => server.close());
    const store = open(server.url, { commandTimeoutMs: 2000, retryDelayMs: () => 10 });
    await store.ping();
    const pending = store.setIfAbsent("once", "x", LONG);
    await expect.poll(() => names(server.received)).toContain("SET");
    server.dropClients();
    await expect(pending).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect.poll(() => store.ping().then(() => "up", () => "down"), { timeout: 5000 }).toBe("up");
    expect(server.received.filter(({ connection }) => connection === 2).map(({ args }) => args[0]!.toUpperCase())).not.toContain("SET");
  });

  it("fails at once while reconnecting instead of queueing", async () => {
    const server = await scriptedRedis(pong);
    cleanups.push(() => server.close());
    const store = open(server.url, { retryDelayMs: () => 60_000 });
    await store.ping();
    server.dropClients();
    await expect.poll(() => store.ping().then(() => "up", () => "down")).toBe("down");
    const started = Date.now();
    await expect(store.getMany(["a"])).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(400); // well under the 500 ms command timeout: nothing waited
    expect(server.connections()).toBe(1);
  });

  it("stops reconnecting once closed", async () => {
    const server = await scriptedRedis(pong);
    cleanups.push(() => server.close());
    const store = createRedisStore({ url: server.url, retryDelayMs: () => 10 });
    await store.ping();
    await store.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.connections()).toBe(1);
    await expect(store.ping()).rejects.toBeInstanceOf(ServiceUnavailableError);
  });

  it("speaks TLS for rediss:// and checks the server's certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "authlith-tls-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // A throwaway self-signed certificate for "localhost", made at test time.
    // prettier-ignore
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    const key = readFileSync(join(dir, "key.pem"), "utf8");
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const server = await scriptedRedis(pong, { tls: { key, cert } });
    cleanups.push(() => server.close());

    const trusted = open(`rediss://:pw@localhost:${server.port}`, { tls: { ca: cert } });
    await trusted.ping();
    expect(server.received.map(({ args }) => args)).toContainEqual(["auth", "pw"]);

    // Without the CA, the certificate is not trusted: no connection, and no password sent.
    const before = server.received.length;
    const untrusted = open(`rediss://:pw2@localhost:${server.port}`, { connectTimeoutMs: 2000, retryDelayMs: () => 60_000 });
    await expect(untrusted.ping()).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(server.received.length).toBe(before);
  });

  it("uses TLS by the URL's scheme unless told otherwise", () => {
    expect(redisClientOptions({ url: "rediss://cache.internal:6379" }).tls).toEqual({});
    expect(redisClientOptions({ url: "redis://cache.internal:6379" }).tls).toBeUndefined();
    expect(redisClientOptions({ url: "redis://cache.internal:6379", tls: true }).tls).toEqual({});
    expect(redisClientOptions({ url: "rediss://cache.internal:6379", tls: false }).tls).toBeUndefined();
  });

  it("backs off exponentially up to 2 s, with jitter over the upper half", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => reconnectDelayMs(n, () => 1))).toEqual([50, 100, 200, 400, 800, 1600, 2000]);
    expect([1, 2, 7, 50].map((n) => reconnectDelayMs(n, () => 0))).toEqual([25, 50, 1000, 1000]);
    const spread = new Set(Array.from({ length: 50 }, () => reconnectDelayMs(6)));
    expect(spread.size).toBeGreaterThan(10);
  });
});

describe.runIf(TEST_REDIS_URL)("redis store scripts against real Redis", () => {
  it("loads its scripts again after Redis forgets them (SCRIPT FLUSH, a failover)", async () => {
    const prefix = `authlith-test:scripts:${Date.now()}:`;
    const store = createRedisStore({ url: TEST_REDIS_URL!, keyPrefix: prefix });
    const raw = new Redis(TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
    try {
      const counter = { key: "c", by: 1, windowMs: LONG, limit: 2 };
      expect((await store.consume([counter])).refusedAt).toBeNull();
      expect((await store.increment([counter]))[0]!.count).toBe(2);
      await raw.script("FLUSH");
      expect((await store.consume([counter])).refusedAt).toBe(0);
      expect((await store.increment([{ ...counter, by: 0 }]))[0]!.count).toBe(2);
    } finally {
      await deleteRedisPrefix(raw, prefix);
      raw.disconnect();
      await store.close();
    }
  });
});
