import { and, eq, gt, isNotNull } from "drizzle-orm";
import type { Deps } from "./deps";
import { sessions } from "./db/schema";
import { describeError } from "./log";

/**
 * Immediate revocation of access tokens, keyed by session id (docs/security.md §19).
 *
 * Postgres records every revocation; Redis holds `rv:s:<sid>` for as long as a token of that
 * session could still be valid, so `auth.me` and friends check one key and never read the
 * database. Redis is not trusted to be complete: a flush, a restart, eviction or a write that
 * failed while Redis was paused would silently drop entries. So a marker (`rv:ready`) says "this
 * list is complete", and it expires every `revocationResyncSeconds`. When it is missing, the request answers
 * from Postgres and one instance (holding `rv:lock`) rebuilds the list from the recently revoked
 * sessions and sets the marker again. When Redis does not answer at all, Postgres answers.
 * Bound: an entry lost while Redis was unreachable is restored within revocationResyncSeconds.
 */
export interface RevocationList {
  /** Adds sessions to the Redis list (after Postgres committed their revocation). Never throws. */
  publish(sessionIds: readonly string[]): Promise<void>;
  /** Whether access tokens of this session must be refused. Throws only if Postgres is needed and down. */
  isRevoked(sessionId: string): Promise<boolean>;
}

const READY_KEY = "rv:ready";
const LOCK_KEY = "rv:lock";
const LOCK_TTL_MS = 10_000;
const entryKey = (sessionId: string) => `rv:s:${sessionId}`;

export function createRevocationList(deps: Pick<Deps, "store" | "db" | "clock" | "log" | "config">): RevocationList {
  const { store, db, clock, log, config } = deps;
  // Longest time a token issued before the revocation can still pass verification.
  const retentionMs = (config.accessTokenTtlSeconds + config.clockToleranceSeconds) * 1000 + 5_000;

  const checkPostgres = async (sessionId: string) => {
    const [row] = await db
      .select({ revokedAt: sessions.revokedAt })
      .from(sessions)
      .where(eq(sessions.id, sessionId))
      .limit(1);
    // A session that no longer exists (purged) has no valid tokens either.
    return !row || row.revokedAt !== null;
  };

  const rebuild = async (sessionId: string): Promise<boolean> => {
    try {
      if (!(await store.setIfAbsent(LOCK_KEY, "1", LOCK_TTL_MS))) return await checkPostgres(sessionId);
    } catch {
      return await checkPostgres(sessionId);
    }
    try {
      const now = clock.now();
      const revoked = await db
        .select({ id: sessions.id, revokedAt: sessions.revokedAt })
        .from(sessions)
        .where(and(isNotNull(sessions.revokedAt), gt(sessions.revokedAt, new Date(now - retentionMs))));
      await store.setMany(
        revoked.map((row) => ({
          key: entryKey(row.id),
          value: "1",
          ttlMs: row.revokedAt!.getTime() + retentionMs - now,
        })),
      );
      await store.setMany([{ key: READY_KEY, value: String(now), ttlMs: config.revocationResyncSeconds * 1000 }]);
      log.info("revocation.rebuilt", { entries: revoked.length });
      // Sessions revoked before the retention window have no unexpired tokens left.
      return revoked.some((row) => row.id === sessionId);
    } catch (error) {
      log.warn("revocation.rebuild_failed", describeError(error));
      // Awaited here, not returned as a promise: the `finally` below awaits too, and a promise
      // that rejected meanwhile would have had no handler yet (an unhandled rejection ends the
      // process; the fault suite's connection-limit run found it).
      return await checkPostgres(sessionId);
    } finally {
      await store.delete([LOCK_KEY]).catch(() => {});
    }
  };

  // Revocations this instance could not publish: it refuses them itself until they are in Redis.
  const unpublished = new Map<string, number>();
  const locallyRevoked = (sessionId: string) => {
    const until = unpublished.get(sessionId);
    if (until === undefined) return false;
    if (until > clock.now()) return true;
    unpublished.delete(sessionId);
    return false;
  };

  return {
    async publish(sessionIds) {
      if (sessionIds.length === 0) return;
      try {
        await store.setMany(sessionIds.map((id) => ({ key: entryKey(id), value: "1", ttlMs: retentionMs })));
      } catch (error) {
        log.warn("revocation.publish_failed", { sessions: sessionIds.length, ...describeError(error) });
        for (const id of sessionIds) unpublished.set(id, clock.now() + retentionMs);
        // The list is no longer complete: drop the marker so every instance asks Postgres and one
        // rebuilds. DEL still works when SET does not (Redis out of memory); when Redis is
        // unreachable, readers fall back to Postgres anyway.
        await store.delete([READY_KEY]).catch(() => {});
      }
    },
    async isRevoked(sessionId) {
      if (locallyRevoked(sessionId)) return true;
      let values: (string | null)[];
      try {
        values = await store.getMany([entryKey(sessionId), READY_KEY]);
      } catch {
        return await checkPostgres(sessionId);
      }
      if (values[0] !== null) return true;
      if (values[1] !== null) return false;
      return rebuild(sessionId);
    },
  };
}
