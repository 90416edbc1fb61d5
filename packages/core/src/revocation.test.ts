import { describe, expect, it, vi } from "vitest";
import { ServiceUnavailableError } from "./result";
import { createRevocationList } from "./revocation";
import { createMemoryStore } from "./store/memory";
import { createLogger } from "./log";
import { systemClock } from "./clock";
import type { Deps } from "./deps";

/** A database whose every query fails after `ms` (a Postgres past its connection limit). */
const failingDb = (ms: number) => {
  const failing = () => new Promise((_, reject) => setTimeout(() => reject(new ServiceUnavailableError("postgres")), ms));
  const chain: Record<string, unknown> = {};
  for (const step of ["select", "from", "where", "limit"]) chain[step] = () => chain;
  chain.then = (resolve: (v: unknown) => unknown, reject: (e: unknown) => unknown) => failing().then(resolve, reject);
  return chain as unknown as Deps["db"];
};

describe("revocation list: Postgres failing while the list is rebuilt", () => {
  it("rejects the check (a 503 for the caller), never an unhandled rejection that ends the process", async () => {
    const store = createMemoryStore();
    // The lock is released slowly (Redis under load): the fallback query fails meanwhile.
    const slowDelete = store.delete.bind(store);
    store.delete = async (keys) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return slowDelete(keys);
    };
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const list = createRevocationList({
        store,
        db: failingDb(5),
        clock: systemClock,
        log: createLogger({ write: () => {} }),
        config: { accessTokenTtlSeconds: 900, clockToleranceSeconds: 5, revocationResyncSeconds: 30 } as Deps["config"],
      });
      await expect(list.isRevoked("01a23ad8-e1d5-701c-9988-92b464010217")).rejects.toBeInstanceOf(ServiceUnavailableError);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});
