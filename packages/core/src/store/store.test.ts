import { randomBytes } from "node:crypto";
import net from "node:net";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deleteRedisPrefix, manualClock, TEST_REDIS_URL, type ManualClock } from "../../test/support";
import { isServiceUnavailable, ServiceUnavailableError } from "../result";
import { pong, scriptedRedis } from "../../test/scripted-redis";
import { createMemoryStore } from "./memory";
import { createRedisStore } from "./redis";
import type { EphemeralStore } from "./types";

interface Harness {
  store: EphemeralStore;
  /** Moves the manual clock (memory) or waits in real time (Redis). */
  advance(ms: number): Promise<void>;
  /** Whether advance() is exact (manual clock) rather than real waiting. */
  exact: boolean;
  cleanup(): Promise<void>;
}

interface Implementation {
  name: string;
  create(): Promise<Harness>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const uniquePrefix = () => `authlith-test:store:${randomBytes(6).toString("hex")}:`;

const memory: Implementation = {
  name: "memory store",
  async create() {
    const clock = manualClock();
    const store = createMemoryStore({ clock });
    return {
      store,
      exact: true,
      advance: async (ms) => clock.advance(ms),
      cleanup: () => store.close(),
    };
  },
};

const redis: Implementation = {
  name: "redis store",
  async create() {
    const prefix = uniquePrefix();
    const store = createRedisStore({ url: TEST_REDIS_URL!, keyPrefix: prefix });
    return {
      store,
      exact: false,
      advance: sleep,
      async cleanup() {
        const raw = new Redis(TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
        try {
          await deleteRedisPrefix(raw, prefix);
        } finally {
          raw.disconnect();
          await store.close();
        }
      },
    };
  },
};

const implementations: Implementation[] = TEST_REDIS_URL ? [memory, redis] : [memory];

// Short windows are observed expiring; long ones must survive the test.
const SHORT = 500;
const PAST_SHORT = 650;
const LONG = 60_000;

describe.each(implementations)("$name", (implementation) => {
  let harness: Harness;
  let store: EphemeralStore;

  beforeEach(async () => {
    harness = await implementation.create();
    store = harness.store;
  });

  afterEach(async () => {
    await harness.cleanup();
  });

  it("answers ping", async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  describe("increment", () => {
    it("counts per key", async () => {
      const once = async (key: string, by = 1) => (await store.increment([{ key, by, windowMs: LONG }]))[0]!.count;
      expect(await once("a")).toBe(1);
      expect(await once("a")).toBe(2);
      expect(await once("b")).toBe(1);
      expect(await once("a")).toBe(3);
      expect(await once("a", 5)).toBe(8);
      expect(await once("b")).toBe(2);
    });

    it("reads without counting when by is 0", async () => {
      expect(await store.increment([{ key: "absent", by: 0, windowMs: LONG }])).toEqual([
        { count: 0, resetInMs: expect.any(Number) },
      ]);
      await store.increment([{ key: "k", by: 1, windowMs: LONG }]);
      await store.increment([{ key: "k", by: 1, windowMs: LONG }]);
      for (let i = 0; i < 3; i++) {
        expect((await store.increment([{ key: "k", by: 0, windowMs: LONG }]))[0]!.count).toBe(2);
      }
      expect((await store.increment([{ key: "k", by: 1, windowMs: LONG }]))[0]!.count).toBe(3);
    });

    it("resets the count when the window expires", async () => {
      const hit = async () => (await store.increment([{ key: "w", by: 1, windowMs: SHORT }]))[0]!;
      expect((await hit()).count).toBe(1);
      expect((await hit()).count).toBe(2);
      await harness.advance(PAST_SHORT);
      const fresh = await hit();
      expect(fresh.count).toBe(1);
      expect(fresh.resetInMs).toBeGreaterThan(0);
      expect(fresh.resetInMs).toBeLessThanOrEqual(SHORT);
      expect((await hit()).count).toBe(2);
    });

    it("reports resetInMs within (0, windowMs] and does not extend the window on later hits", async () => {
      const hit = async (by = 1) => (await store.increment([{ key: "r", by, windowMs: LONG }]))[0]!;
      const first = await hit();
      expect(first.resetInMs).toBeGreaterThan(0);
      expect(first.resetInMs).toBeLessThanOrEqual(LONG);
      await harness.advance(100);
      const second = await hit();
      const read = await hit(0);
      for (const state of [second, read]) {
        expect(state.resetInMs).toBeGreaterThan(0);
        // At least ~100 ms of the window have gone (a little slack for real waiting).
        expect(state.resetInMs).toBeLessThanOrEqual(LONG - 90);
        expect(state.resetInMs).toBeLessThanOrEqual(first.resetInMs);
      }
      if (harness.exact) {
        expect(first.resetInMs).toBe(LONG);
        expect(second.resetInMs).toBe(LONG - 100);
      }
    });

    it("handles several counters, each with its own window, in one call", async () => {
      const states = await store.increment([
        { key: "short", by: 1, windowMs: SHORT },
        { key: "long", by: 2, windowMs: LONG },
        { key: "read", by: 0, windowMs: LONG },
        { key: "short", by: 1, windowMs: SHORT },
      ]);
      expect(states.map((s) => s.count)).toEqual([1, 2, 0, 2]);
      expect(states[0]!.resetInMs).toBeLessThanOrEqual(SHORT);
      expect(states[1]!.resetInMs).toBeGreaterThan(SHORT);
      expect(states[1]!.resetInMs).toBeLessThanOrEqual(LONG);
      for (const state of states) expect(state.resetInMs).toBeGreaterThan(0);

      await harness.advance(PAST_SHORT);
      const later = await store.increment([
        { key: "long", by: 1, windowMs: LONG },
        { key: "short", by: 1, windowMs: SHORT },
      ]);
      expect(later.map((s) => s.count)).toEqual([3, 1]);
    });

    it("returns an empty list for no counters", async () => {
      expect(await store.increment([])).toEqual([]);
    });
  });

  describe("consume", () => {
    const budget = (key: string, limit: number, always = false) => ({ key, by: 1, windowMs: LONG, limit, always });

    it("spends from every budget while all have room", async () => {
      for (let i = 1; i <= 3; i++) {
        const result = await store.consume([budget("a", 3), budget("b", 5)]);
        expect(result.refusedAt).toBeNull();
        expect(result.states.map((s) => s.count)).toEqual([i, i]);
      }
    });

    it("stops at the first budget without room and leaves the later ones untouched", async () => {
      await store.consume([budget("a", 1), budget("b", 5)]);
      const refused = await store.consume([budget("a", 1), budget("b", 5)]);
      expect(refused.refusedAt).toBe(0);
      expect(refused.states).toHaveLength(1);
      expect(refused.states[0]!.count).toBe(1); // not counted: it had no room
      expect((await store.increment([{ key: "b", by: 0, windowMs: LONG }]))[0]!.count).toBe(1);
    });

    it("counts an 'always' budget even over its limit, and still stops the walk", async () => {
      await store.consume([budget("ip", 1, true), budget("acct", 5)]);
      const refused = await store.consume([budget("ip", 1, true), budget("acct", 5)]);
      expect(refused).toMatchObject({ refusedAt: 0, states: [{ count: 2 }] });
      expect((await store.increment([{ key: "acct", by: 0, windowMs: LONG }]))[0]!.count).toBe(1);
    });

    it("gives the refusing budget's time to reset, and makes room again after it", async () => {
      await store.consume([{ key: "w", by: 1, windowMs: SHORT, limit: 1 }]);
      const refused = await store.consume([{ key: "w", by: 1, windowMs: SHORT, limit: 1 }]);
      expect(refused.refusedAt).toBe(0);
      expect(refused.states[0]!.resetInMs).toBeGreaterThan(0);
      expect(refused.states[0]!.resetInMs).toBeLessThanOrEqual(SHORT);
      await harness.advance(PAST_SHORT);
      expect((await store.consume([{ key: "w", by: 1, windowMs: SHORT, limit: 1 }])).refusedAt).toBeNull();
    });

    it("lets exactly `limit` of many concurrent callers through", async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store.consume([budget("race", 7)])));
      expect(results.filter((r) => r.refusedAt === null)).toHaveLength(7);
    });
  });

  describe("getMany / setMany", () => {
    it("returns null for absent keys, in the order asked", async () => {
      expect(await store.getMany(["x", "y"])).toEqual([null, null]);
      await store.setMany([{ key: "y", value: "vy", ttlMs: LONG }]);
      expect(await store.getMany(["x", "y", "z", "y"])).toEqual([null, "vy", null, "vy"]);
      expect(await store.getMany([])).toEqual([]);
    });

    it("sets several keys with their own time to live", async () => {
      await store.setMany([
        { key: "short", value: "s", ttlMs: SHORT },
        { key: "long", value: "l", ttlMs: LONG },
      ]);
      expect(await store.getMany(["short", "long"])).toEqual(["s", "l"]);
      await harness.advance(PAST_SHORT);
      expect(await store.getMany(["short", "long"])).toEqual([null, "l"]);
    });

    it("overwrites a value and its time to live", async () => {
      await store.setMany([{ key: "k", value: "old", ttlMs: SHORT }]);
      await store.setMany([{ key: "k", value: "new", ttlMs: LONG }]);
      await harness.advance(PAST_SHORT);
      expect(await store.getMany(["k"])).toEqual(["new"]);
    });

    it("keeps values byte for byte", async () => {
      const values = ["", "with space", "ünïcødé 😀", JSON.stringify({ a: [1, 2] }), "x".repeat(10_000)];
      await store.setMany(values.map((value, i) => ({ key: `v${i}`, value, ttlMs: LONG })));
      expect(await store.getMany(values.map((_, i) => `v${i}`))).toEqual(values);
    });

    it("accepts an empty list", async () => {
      await expect(store.setMany([])).resolves.toBeUndefined();
    });
  });

  describe("setIfAbsent", () => {
    it("is true for the first caller, false while the key lives, true again after expiry", async () => {
      expect(await store.setIfAbsent("lock", "first", SHORT)).toBe(true);
      expect(await store.setIfAbsent("lock", "second", SHORT)).toBe(false);
      expect(await store.getMany(["lock"])).toEqual(["first"]);
      await harness.advance(PAST_SHORT);
      // Straight after expiry, with no read in between that could purge the old entry.
      expect(await store.setIfAbsent("lock", "third", LONG)).toBe(true);
      expect(await store.getMany(["lock"])).toEqual(["third"]);
      expect(await store.setIfAbsent("lock", "fourth", LONG)).toBe(false);
    });

    it("is false for a key written by setMany", async () => {
      await store.setMany([{ key: "taken", value: "v", ttlMs: LONG }]);
      expect(await store.setIfAbsent("taken", "w", LONG)).toBe(false);
      expect(await store.getMany(["taken"])).toEqual(["v"]);
    });

    it("lets exactly one of several concurrent callers win", async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => store.setIfAbsent("race", `v${i}`, LONG)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });
  });

  describe("delete", () => {
    it("removes values, counters and locks, and ignores absent keys", async () => {
      await store.setMany([
        { key: "a", value: "va", ttlMs: LONG },
        { key: "b", value: "vb", ttlMs: LONG },
        { key: "c", value: "vc", ttlMs: LONG },
      ]);
      await store.increment([{ key: "n", by: 4, windowMs: LONG }]);
      expect(await store.setIfAbsent("lock", "x", LONG)).toBe(true);

      await store.delete(["a", "c", "missing", "n", "lock"]);
      expect(await store.getMany(["a", "b", "c"])).toEqual([null, "vb", null]);
      expect((await store.increment([{ key: "n", by: 1, windowMs: LONG }]))[0]!.count).toBe(1);
      expect(await store.setIfAbsent("lock", "y", LONG)).toBe(true);
    });

    it("accepts an empty list", async () => {
      await expect(store.delete([])).resolves.toBeUndefined();
    });
  });
});

describe("memory store only", () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = manualClock();
  });

  it("expires at exactly windowMs / ttlMs", async () => {
    const store = createMemoryStore({ clock });
    await store.increment([{ key: "n", by: 1, windowMs: 1000 }]);
    await store.setMany([{ key: "v", value: "x", ttlMs: 1000 }]);
    clock.advance(999);
    expect((await store.increment([{ key: "n", by: 1, windowMs: 1000 }]))[0]).toEqual({ count: 2, resetInMs: 1 });
    expect(await store.getMany(["v"])).toEqual(["x"]);
    clock.advance(1);
    expect((await store.increment([{ key: "n", by: 1, windowMs: 1000 }]))[0]).toEqual({ count: 1, resetInMs: 1000 });
    expect(await store.getMany(["v"])).toEqual([null]);
  });

  it("maxEntries bounds its size, dropping the oldest written first", async () => {
    const store = createMemoryStore({ clock, maxEntries: 3 });
    await store.setMany(["a", "b", "c", "d"].map((key) => ({ key, value: key, ttlMs: LONG })));
    expect(await store.getMany(["a", "b", "c", "d"])).toEqual([null, "b", "c", "d"]);
    // Rewriting b makes it the newest; the next write drops c.
    await store.setMany([{ key: "b", value: "b2", ttlMs: LONG }]);
    await store.setMany([{ key: "e", value: "e", ttlMs: LONG }]);
    expect(await store.getMany(["b", "c", "d", "e"])).toEqual(["b2", null, "d", "e"]);
  });

  it("maxEntries sweeps expired entries before dropping live ones", async () => {
    const store = createMemoryStore({ clock, maxEntries: 3 });
    await store.setMany([
      { key: "old-live", value: "1", ttlMs: LONG },
      { key: "expiring", value: "2", ttlMs: 100 },
      { key: "live", value: "3", ttlMs: LONG },
    ]);
    clock.advance(200);
    await store.setMany([{ key: "new", value: "4", ttlMs: LONG }]);
    expect(await store.getMany(["old-live", "expiring", "live", "new"])).toEqual(["1", null, "3", "4"]);
  });

  it("maxEntries also bounds counters and locks", async () => {
    const maxEntries = 50;
    const store = createMemoryStore({ clock, maxEntries });
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
    for (const [i, key] of keys.entries()) {
      if (i % 3 === 0) await store.increment([{ key, by: 1, windowMs: LONG }]);
      else if (i % 3 === 1) await store.setIfAbsent(key, "v", LONG);
      else await store.setMany([{ key, value: "v", ttlMs: LONG }]);
    }
    const present = (await store.getMany(keys)).filter((value) => value !== null);
    expect(present).toHaveLength(maxEntries);
    // The newest ones are the survivors.
    expect((await store.getMany(keys.slice(-maxEntries))).every((value) => value !== null)).toBe(true);
  });

  it("close() empties it", async () => {
    const store = createMemoryStore({ clock });
    await store.setMany([{ key: "a", value: "1", ttlMs: LONG }]);
    await store.close();
    expect(await store.getMany(["a"])).toEqual([null]);
  });
});

describe.runIf(Boolean(TEST_REDIS_URL))("redis store only", () => {
  const prefixes: string[] = [];
  const stores: EphemeralStore[] = [];
  let raw: Redis;

  beforeEach(() => {
    raw = new Redis(TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
  });

  afterEach(async () => {
    for (const prefix of prefixes.splice(0)) await deleteRedisPrefix(raw, prefix);
    for (const store of stores.splice(0)) await store.close();
    raw.disconnect();
  });

  const open = () => {
    const prefix = uniquePrefix();
    const store = createRedisStore({ url: TEST_REDIS_URL!, keyPrefix: prefix });
    prefixes.push(prefix);
    stores.push(store);
    return { prefix, store };
  };

  it("writes every key under its prefix, with the TTL asked for", async () => {
    const { prefix, store } = open();
    await store.setMany([{ key: "v", value: "1", ttlMs: LONG }]);
    await store.increment([{ key: "n", by: 1, windowMs: LONG }]);
    await store.setIfAbsent("l", "x", LONG);
    expect((await raw.keys(`${prefix}*`)).sort()).toEqual([`${prefix}l`, `${prefix}n`, `${prefix}v`]);
    for (const key of ["v", "n", "l"]) {
      const ttl = await raw.pttl(`${prefix}${key}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(LONG);
    }
  });

  it("stores with different prefixes do not see each other's keys", async () => {
    const one = open().store;
    const two = open().store;
    await one.setMany([{ key: "shared", value: "one", ttlMs: LONG }]);
    expect(await two.getMany(["shared"])).toEqual([null]);
    expect(await two.setIfAbsent("shared", "two", LONG)).toBe(true);
    expect(await one.getMany(["shared"])).toEqual(["one"]);
    expect((await two.increment([{ key: "c", by: 1, windowMs: LONG }]))[0]!.count).toBe(1);
    expect((await one.increment([{ key: "c", by: 1, windowMs: LONG }]))[0]!.count).toBe(1);
  });

  it("counts every hit of concurrent increments exactly once", async () => {
    const { store } = open();
    const states = await Promise.all(
      Array.from({ length: 25 }, () => store.increment([{ key: "c", by: 1, windowMs: LONG }])),
    );
    expect(states.map((s) => s[0]!.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });
});

/** A TCP port nothing listens on: bind an ephemeral one, then release it. */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function expectUnavailable(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error("expected the store to reject");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ServiceUnavailableError);
  expect((error as ServiceUnavailableError).dependency).toBe("redis");
  expect(isServiceUnavailable(error)).toBe(true);
}

// No real Redis needed: these point the Redis store at nothing, or at something that never answers.
// A hang would show as the test timing out (generous guard, not a timing assertion).
describe("redis store when Redis is unreachable", () => {
  const HANG_GUARD_MS = 15_000;

  it(
    "rejects every operation with ServiceUnavailableError when nothing listens on the port",
    async () => {
      const store = createRedisStore({ url: `redis://127.0.0.1:${await unusedPort()}`, keyPrefix: uniquePrefix() });
      try {
        await expectUnavailable(store.ping());
        await expectUnavailable(store.increment([{ key: "n", by: 1, windowMs: LONG }]));
        await expectUnavailable(store.getMany(["a"]));
        await expectUnavailable(store.setMany([{ key: "a", value: "1", ttlMs: LONG }]));
        await expectUnavailable(store.setIfAbsent("a", "1", LONG));
        await expectUnavailable(store.delete(["a"]));
        await expectUnavailable(store.ping());
      } finally {
        await store.close();
      }
    },
    HANG_GUARD_MS,
  );

  it(
    "rejects increment first (before any ping) with ServiceUnavailableError",
    async () => {
      const store = createRedisStore({ url: `redis://127.0.0.1:${await unusedPort()}`, keyPrefix: uniquePrefix() });
      try {
        await expectUnavailable(store.increment([{ key: "n", by: 1, windowMs: LONG }]));
      } finally {
        await store.close();
      }
    },
    HANG_GUARD_MS,
  );

  it(
    "rejects with ServiceUnavailableError when the server accepts connections but never answers",
    async () => {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on("data", () => {});
        socket.on("error", () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as net.AddressInfo;
      const store = createRedisStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix() });
      try {
        await expectUnavailable(store.ping());
        await expectUnavailable(store.increment([{ key: "n", by: 1, windowMs: LONG }]));
        await expectUnavailable(store.getMany(["a"]));
      } finally {
        await store.close();
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
    HANG_GUARD_MS,
  );

  it(
    "rejects with ServiceUnavailableError when a connected Redis stops answering",
    async () => {
      let silent = false;
      const server = await scriptedRedis((args, connection) => (silent ? null : pong(args, connection)));
      const store = createRedisStore({ url: server.url, keyPrefix: uniquePrefix() });
      try {
        // Control: connected and answering.
        await expect(store.ping()).resolves.toBeUndefined();
        expect(server.received.map((c) => c.args[0])).toContain("ping");
        silent = true;
        await expectUnavailable(store.ping());
        await expectUnavailable(store.getMany(["a"]));
        await expectUnavailable(store.increment([{ key: "n", by: 1, windowMs: LONG }]));
        await expectUnavailable(store.setIfAbsent("a", "1", LONG));
      } finally {
        await store.close();
        await server.close();
      }
    },
    HANG_GUARD_MS,
  );

  it(
    "rejects with ServiceUnavailableError after a connected Redis drops the connection",
    async () => {
      const server = await scriptedRedis(pong);
      const store = createRedisStore({ url: server.url, keyPrefix: uniquePrefix() });
      try {
        await expect(store.ping()).resolves.toBeUndefined();
        await server.close();
        // Whether the drop has been noticed yet or not, the command fails as unavailable.
        await expectUnavailable(store.ping());
        await expectUnavailable(store.increment([{ key: "n", by: 1, windowMs: LONG }]));
      } finally {
        await store.close();
      }
    },
    HANG_GUARD_MS,
  );
});
