import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { hasRealServices, TEST_DATABASE_URL } from "../../test/support";
import { waitForPostgres } from "./wait";

/** A port in front of the real Postgres: nothing listens on it (refused) until `open()` forwards it. */
async function lateProxy(target: URL) {
  const port = await closedPort();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    const upstream = connect(Number(target.port || 5432), target.hostname);
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const url = new URL(target);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    open: () => void server.listen(port, "127.0.0.1"),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}

/** A TCP port nothing listens on (connections are refused). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("waiting for Postgres before migrating", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("gives up at the deadline with the last cause's code, retrying with growing, jittered waits", async () => {
    const port = await closedPort();
    const retries: { attempt: number; code: string; delayMs: number }[] = [];
    const started = Date.now();
    const error = await waitForPostgres(`postgres://postgres@127.0.0.1:${port}/none`, {
      deadlineMs: 1500,
      baseDelayMs: 50,
      random: () => 1,
      onRetry: (event) => retries.push(event),
    }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/did not become reachable within 2 s \(\d+ attempts, last: ECONNREFUSED\)/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(retries.length).toBeGreaterThan(2);
    expect(retries[0]).toMatchObject({ attempt: 1, code: "ECONNREFUSED", delayMs: 50 });
    expect(retries[1]!.delayMs).toBe(100);
    expect(retries[2]!.delayMs).toBe(200);
  });

  describe.runIf(hasRealServices)("against the real Postgres", () => {
    it("waits for a Postgres that comes up late, then answers", async () => {
      const proxy = await lateProxy(new URL(TEST_DATABASE_URL!));
      cleanups.push(proxy.close);
      const codes: string[] = [];
      setTimeout(proxy.open, 1200);
      const result = await waitForPostgres(proxy.url, { deadlineMs: 20_000, baseDelayMs: 100, maxDelayMs: 400, onRetry: (e) => codes.push(e.code) });
      expect(result.attempts).toBeGreaterThan(1);
      expect(result.waitedMs).toBeGreaterThanOrEqual(1100);
      expect(codes.length).toBe(result.attempts - 1);
      expect(new Set(codes)).toEqual(new Set(["ECONNREFUSED"]));
    });

    it("fails at once when waiting cannot help (the database does not exist)", async () => {
      const url = new URL(TEST_DATABASE_URL!);
      url.pathname = "/authlith_no_such_database";
      const retries: unknown[] = [];
      const started = Date.now();
      const error = await waitForPostgres(url.toString(), { deadlineMs: 20_000, onRetry: (e) => retries.push(e) }).catch((e: unknown) => e);
      expect((error as { code?: string }).code).toBe("3D000");
      expect(retries).toEqual([]);
      expect(Date.now() - started).toBeLessThan(3000);
    });
  });
});
