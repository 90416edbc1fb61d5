import { and, inArray, isNull, lt, or, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Clock } from "./clock";
import type { Db } from "./db/client";
import { accountTokens } from "./db/account-tokens.sql";
import { auditEvents } from "./db/audit.sql";
import { sessions } from "./db/sessions.sql";
import { mfaChallenges, totpFactors } from "./db/mfa.sql";

export interface PurgeOptions {
  /**
   * How long a session row is kept after it stopped being usable (expired, idle or revoked).
   * Must outlive the longest access token (3600 s): the Redis revocation list is rebuilt from
   * recently revoked sessions. The default keeps a week for investigating incidents.
   */
  sessionRetentionSeconds?: number;
  /** How long audit events are kept. */
  auditRetentionSeconds?: number;
  /** Rows per DELETE: short statements, short locks, well inside the 5 s statement timeout. */
  batchSize?: number;
  /** Upper bound on DELETE statements per table and run; the next run continues. */
  maxBatches?: number;
}

export interface PurgeResult {
  sessions: number;
  auditEvents: number;
  /** Mailed tokens past their expiry, used or not (they can no longer be redeemed). */
  accountTokens: number;
  /** Second-factor challenges past their expiry, and authenticator-app enrolments never confirmed within a day. */
  mfaChallenges: number;
  /** False when a table still had rows past its cutoff after `maxBatches` (the next run goes on). */
  complete: boolean;
}

export const DEFAULT_PURGE = {
  sessionRetentionSeconds: 7 * 24 * 3600,
  auditRetentionSeconds: 365 * 24 * 3600,
  batchSize: 1000,
  maxBatches: 50,
} as const satisfies Required<PurgeOptions>;

/** The longest access-token lifetime the configuration allows (see AUTHLITH_ACCESS_TOKEN_TTL_SECONDS). */
const MIN_SESSION_RETENTION_SECONDS = 3600;

/**
 * Deletes sessions that ended more than `sessionRetentionSeconds` ago (absolute or idle expiry
 * passed, or revoked) and audit events older than `auditRetentionSeconds`, in bounded batches,
 * so a scheduled job keeps both tables from growing without end; and mailed tokens (reset links)
 * once expired, used or not. Users are never deleted here.
 */
export async function purgeExpired(deps: { db: Db; clock: Clock }, options: PurgeOptions = {}): Promise<PurgeResult> {
  const settings = {
    sessionRetentionSeconds: options.sessionRetentionSeconds ?? DEFAULT_PURGE.sessionRetentionSeconds,
    auditRetentionSeconds: options.auditRetentionSeconds ?? DEFAULT_PURGE.auditRetentionSeconds,
    batchSize: options.batchSize ?? DEFAULT_PURGE.batchSize,
    maxBatches: options.maxBatches ?? DEFAULT_PURGE.maxBatches,
  };
  if (settings.sessionRetentionSeconds < MIN_SESSION_RETENTION_SECONDS) {
    throw new Error(`purge: sessionRetentionSeconds must be at least ${MIN_SESSION_RETENTION_SECONDS}`);
  }
  if (settings.batchSize < 1 || settings.maxBatches < 1) throw new Error("purge: batchSize and maxBatches must be positive");
  const { db } = deps;
  const now = deps.clock.now();
  const sessionCutoff = new Date(now - settings.sessionRetentionSeconds * 1000);
  const auditCutoff = new Date(now - settings.auditRetentionSeconds * 1000);

  /** One bounded DELETE of the rows of `table` that `where` selects, by their key. */
  const batchOf = (table: PgTable, key: PgColumn, where: SQL | undefined) => () =>
    db
      .delete(table)
      .where(inArray(key, db.select({ id: key }).from(table).where(where).limit(settings.batchSize)))
      .returning({ id: key });

  const sessionBatch = batchOf(
    sessions,
    sessions.id,
    or(lt(sessions.absoluteExpiresAt, sessionCutoff), lt(sessions.idleExpiresAt, sessionCutoff), lt(sessions.revokedAt, sessionCutoff)),
  );
  const auditBatch = batchOf(auditEvents, auditEvents.id, lt(auditEvents.createdAt, auditCutoff));
  const tokenBatch = batchOf(accountTokens, accountTokens.id, lt(accountTokens.expiresAt, new Date(now)));
  const challengeBatch = batchOf(mfaChallenges, mfaChallenges.idHash, lt(mfaChallenges.expiresAt, new Date(now)));

  const removedSessions = await deleteInBatches(sessionBatch, settings);
  const removedAudit = await deleteInBatches(auditBatch, settings);
  const removedTokens = await deleteInBatches(tokenBatch, settings);
  const removedChallenges = await deleteInBatches(challengeBatch, settings);
  // An enrolment abandoned before its first code holds an unused secret: gone after a day.
  await db.delete(totpFactors).where(and(isNull(totpFactors.confirmedAt), lt(totpFactors.createdAt, new Date(now - 24 * 3600 * 1000))));
  return {
    sessions: removedSessions.count,
    auditEvents: removedAudit.count,
    accountTokens: removedTokens.count,
    mfaChallenges: removedChallenges.count,
    complete: removedSessions.complete && removedAudit.complete && removedTokens.complete && removedChallenges.complete,
  };
}

async function deleteInBatches(
  batch: () => Promise<unknown[]>,
  settings: { batchSize: number; maxBatches: number },
): Promise<{ count: number; complete: boolean }> {
  let count = 0;
  for (let i = 0; i < settings.maxBatches; i++) {
    const deleted = (await batch()).length;
    count += deleted;
    if (deleted < settings.batchSize) return { count, complete: true };
  }
  return { count, complete: false };
}
