import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TEST_REDIS_URL } from "../../test/support";
import { encodeCommand, parseReply, RedisConnectionError, RedisReplyError, RespClient, type RespValue } from "./resp";

const parseAll = (text: string): RespValue[] => {
  const buffer = Buffer.from(text);
  const values: RespValue[] = [];
  let position = 0;
  while (position < buffer.length) {
    const reply = parseReply(buffer, position);
    if (typeof reply === "symbol") throw new Error("incomplete");
    values.push(reply.value);
    position = reply.end;
  }
  return values;
};

describe("RESP encoding and parsing", () => {
  it("encodes commands as arrays of bulk strings, counting bytes, not characters", () => {
    expect(encodeCommand(["SET", "k", "é", 5])).toBe("*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n$1\r\n5\r\n");
  });

  it("parses every RESP2 type, nested arrays and nulls", () => {
    const [simple, error, integer, bulk, nullBulk, array, nullArray] = parseAll(
      "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhé\r\n\r\n$-1\r\n*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n-NOSCRIPT x\r\n*-1\r\n",
    );
    expect(simple).toBe("OK");
    expect(error).toBeInstanceOf(RedisReplyError);
    expect((error as Error).message).toBe("ERR wrong");
    expect(integer).toBe(-42);
    expect(bulk).toBe("hé\r\n"); // a bulk string may itself contain CRLF
    expect(nullBulk).toBeNull();
    expect(array).toEqual([1, ["a", null], expect.any(RedisReplyError)]);
    expect(nullArray).toBeNull();
  });

  it("reports a value cut anywhere as incomplete, and parses it once whole", () => {
    const whole = Buffer.from("*2\r\n$5\r\nhello\r\n*1\r\n:7\r\n");
    for (let cut = 1; cut < whole.length; cut++) {
      expect(typeof parseReply(whole.subarray(0, cut), 0)).toBe("symbol");
    }
    expect(parseReply(whole, 0)).toEqual({ value: ["hello", [7]], end: whole.length });
  });

  it("refuses bytes that are not RESP", () => {
    expect(() => parseReply(Buffer.from("?what\r\n"), 0)).toThrow(RedisConnectionError);
    expect(() => parseReply(Buffer.from("$-7\r\n"), 0)).toThrow(RedisConnectionError);
  });
});

/** A scripted RESP server: answers by a function of the command, can go silent or drop clients. */
async function scriptedServer(answer: (args: string[]) => string | null, options: { tls?: { key: string; cert: string } } = {}) {
  const sockets = new Set<net.Socket>();
  const received: string[][] = [];
  let connections = 0;
  const onSocket = (socket: net.Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseReply(buffer, 0);
        if (typeof parsed === "symbol") return;
        buffer = buffer.subarray(parsed.end);
        const args = parsed.value as string[];
        received.push(args);
        const reply = answer(args);
        if (reply !== null) socket.write(reply);
      }
    });
  };
  const server = options.tls ? tls.createServer(options.tls, onSocket) : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    received,
    connections: () => connections,
    dropClients: () => {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const pong = (args: string[]) => (args[0] === "PING" ? "+PONG\r\n" : "+OK\r\n");

describe("RespClient against scripted servers", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const track = <T extends { close(): unknown }>(thing: T): T => {
    cleanups.push(() => thing.close());
    return thing;
  };

  it("authenticates with the URL's user and password and selects its database before any command", async () => {
    const server = track(await scriptedServer(pong));
    const client = track(new RespClient({ url: `redis://app%40user:p%3Ass@127.0.0.1:${server.port}/3` }));
    await client.connect();
    expect(await client.command(["PING"])).toBe("PONG");
    expect(server.received).toEqual([["AUTH", "app@user", "p:ss"], ["SELECT", "3"], ["PING"]]);
  });

  it("fails the connection when the server refuses the password, without leaking it", async () => {
    const server = track(await scriptedServer((args) => (args[0] === "AUTH" ? "-WRONGPASS invalid username-password pair\r\n" : "+OK\r\n")));
    const client = track(new RespClient({ url: `redis://:secret-password@127.0.0.1:${server.port}` }));
    const error = await client.connect().then(() => null, (e: Error) => e);
    expect(error).toBeInstanceOf(RedisConnectionError);
    expect(error!.message).toContain("WRONGPASS");
    expect(error!.message).not.toContain("secret-password");
    expect(client.status).not.toBe("ready");
  });

  it("refuses commands while not connected instead of queueing them", async () => {
    const server = track(await scriptedServer(pong));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}` }));
    await expect(client.command(["PING"])).rejects.toBeInstanceOf(RedisConnectionError);
    expect(server.received).toEqual([]);
  });

  it("matches many concurrent commands to their replies, in order", async () => {
    const server = track(await scriptedServer((args) => `$${Buffer.byteLength(args[1] ?? "")}\r\n${args[1] ?? ""}\r\n`));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}` }));
    await client.connect();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.command(["ECHO", `v${i}`])));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
  });

  it("returns error replies in place within a pipeline and throws them for a single command", async () => {
    const server = track(await scriptedServer((args) => (args[0] === "BAD" ? "-ERR unknown command\r\n" : ":1\r\n")));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}` }));
    await client.connect();
    const [good, bad, after] = await client.pipeline([["INCR", "a"], ["BAD"], ["INCR", "b"]]);
    expect([good, after]).toEqual([1, 1]);
    expect(bad).toBeInstanceOf(RedisReplyError);
    await expect(client.command(["BAD"])).rejects.toBeInstanceOf(RedisReplyError);
    expect(client.status).toBe("ready");
  });

  it("times out a command on a silent connection, drops that connection and reconnects to a fresh one", async () => {
    let silent = true;
    const server = track(await scriptedServer((args) => (silent && args[0] === "PING" ? null : "+PONG\r\n")));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}`, commandTimeoutMs: 100, retryDelayMs: () => 10 }));
    await client.connect();
    await expect(client.command(["PING"])).rejects.toThrow(/timed out/);
    // Not a queue behind the lost reply: the connection was replaced.
    silent = false;
    await expect.poll(() => client.status, { timeout: 5000 }).toBe("ready");
    expect(await client.command(["PING"])).toBe("PONG");
    expect(server.connections()).toBe(2);
  });

  it("fails pending commands when the server drops the connection, then reconnects in the background", async () => {
    const server = track(await scriptedServer((args) => (args[0] === "HANG" ? null : "+PONG\r\n")));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}`, commandTimeoutMs: 5000, retryDelayMs: () => 10 }));
    await client.connect();
    const pending = client.command(["HANG"]);
    await expect.poll(() => server.received.length).toBe(1);
    server.dropClients();
    await expect(pending).rejects.toBeInstanceOf(RedisConnectionError);
    await expect.poll(() => client.status, { timeout: 5000 }).toBe("ready");
    expect(await client.command(["PING"])).toBe("PONG");
  });

  it("gives up connecting within the connect timeout when nothing answers the handshake", async () => {
    const server = track(await scriptedServer(() => null));
    const client = track(new RespClient({ url: `redis://:pw@127.0.0.1:${server.port}`, connectTimeoutMs: 200, commandTimeoutMs: 150 }));
    const started = Date.now();
    await expect(client.connect()).rejects.toBeInstanceOf(RedisConnectionError);
    expect(Date.now() - started).toBeLessThan(5000); // a hang guard, not a timing assertion
  });

  it("reconnects on demand once the backoff has passed, even if the retry timer never ran (a Lambda thaw)", async () => {
    const server = track(await scriptedServer(pong));
    // A retry timer far in the future, as if the process had been frozen through it.
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}`, retryDelayMs: () => 60_000 }));
    await client.connect();
    server.dropClients();
    await expect.poll(() => client.status).toBe("reconnecting");
    // Inside the backoff: no waiting, no attempt, the call fails fast.
    await client.ready();
    expect(client.status).toBe("reconnecting");
    expect(server.connections()).toBe(1);
    const now = Date.now();
    const clock = vi.spyOn(Date, "now").mockReturnValue(now + 61_000);
    try {
      await client.ready();
    } finally {
      clock.mockRestore();
    }
    expect(client.status).toBe("ready");
    expect(server.connections()).toBe(2);
    expect(await client.command(["PING"])).toBe("PONG");
  });

  it("refuses a malformed URL without repeating it (it may hold the password)", () => {
    for (const url of ["redis://default:ab/cd@cache.internal:6379", "redis://default:p#w@cache.internal:6379", "redis://[::1"]) {
      let error: unknown;
      try {
        new RespClient({ url });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe("Redis URL is not a valid URL");
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toMatch(/ab\/cd|p#w|cache\.internal/);
      expect((error as Error).cause).toBeUndefined();
    }
  });

  it("drops a connection whose reply grows past the limit", async () => {
    const server = track(await scriptedServer(() => `$${4 * 1024 * 1024}\r\n${"x".repeat(2 * 1024 * 1024)}`));
    const client = track(new RespClient({ url: `redis://127.0.0.1:${server.port}`, commandTimeoutMs: 5000, retryDelayMs: () => 60_000 }));
    await client.connect();
    await expect(client.command(["GET", "big"])).rejects.toThrow(/too large/);
    expect(client.status).toBe("reconnecting");
  });

  it("stops reconnecting once closed", async () => {
    const server = track(await scriptedServer(pong));
    const client = new RespClient({ url: `redis://127.0.0.1:${server.port}`, retryDelayMs: () => 10 });
    await client.connect();
    client.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.status).toBe("closed");
    expect(server.connections()).toBe(1);
    await expect(client.command(["PING"])).rejects.toBeInstanceOf(RedisConnectionError);
    await expect(client.connect()).rejects.toBeInstanceOf(RedisConnectionError);
  });

  it("speaks TLS for rediss:// and checks the server's certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "authlith-tls-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // A throwaway self-signed certificate for "localhost", made at test time.
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    const key = readFileSync(join(dir, "key.pem"), "utf8");
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const server = track(await scriptedServer(pong, { tls: { key, cert } }));

    const trusted = track(new RespClient({ url: `rediss://:pw@localhost:${server.port}`, tls: { ca: cert } }));
    await trusted.connect();
    expect(await trusted.command(["PING"])).toBe("PONG");
    expect(server.received).toContainEqual(["AUTH", "pw"]);

    // Without the CA, the certificate is not trusted: no connection.
    const untrusted = track(new RespClient({ url: `rediss://localhost:${server.port}`, connectTimeoutMs: 2000 }));
    await expect(untrusted.connect()).rejects.toBeInstanceOf(RedisConnectionError);
  });
});

describe.runIf(TEST_REDIS_URL)("RespClient against real Redis", () => {
  it("loads a script with EVAL when the server does not have it, then runs it by SHA", async () => {
    const client = new RespClient({ url: TEST_REDIS_URL! });
    try {
      await client.connect();
      await client.command(["SCRIPT", "FLUSH"]);
      const script = "return {KEYS[1], ARGV[1]}";
      expect(await client.evalScript(script, ["k"], ["v"])).toEqual(["k", "v"]);
      expect(await client.command(["SCRIPT", "EXISTS", "0"])).toEqual([0]);
      expect(await client.evalScript(script, ["k2"], [2])).toEqual(["k2", "2"]);
    } finally {
      client.close();
    }
  });

  it("returns a transaction's replies, error replies in place", async () => {
    const client = new RespClient({ url: TEST_REDIS_URL! });
    const key = `authlith-test:resp:${Date.now()}`;
    try {
      await client.connect();
      const replies = await client.pipeline([["MULTI"], ["SET", key, "x"], ["INCR", key], ["DEL", key], ["EXEC"]]);
      expect(replies.slice(0, 4)).toEqual(["OK", "QUEUED", "QUEUED", "QUEUED"]);
      const [set, incr, del] = replies[4] as RespValue[];
      expect(set).toBe("OK");
      expect(incr).toBeInstanceOf(RedisReplyError);
      expect(del).toBe(1);
    } finally {
      client.close();
    }
  });
});
