import { and, desc, eq, gt, isNull, sql, type SQL } from "drizzle-orm";
import { accessTokenOptions, signAccessToken } from "./access-token";
import { AuditEvent, type AuditEventType } from "./audit";
import { toIso } from "./clock";
import { bytesEqual } from "./crypto";
import { queryRows, toNumber } from "./db/client";
import { sessions, users } from "./db/schema";
import type { Deps, RequestMeta } from "./deps";
import { uuidv7 } from "./ids";
import { checkLimits, countFailure, rateLimitIp } from "./rate-limit";
import {
  decodeRefreshToken,
  deriveChild,
  descendTo,
  encodeRefreshToken,
  hashRefreshSecret,
  newRefreshToken,
  type RefreshToken,
} from "./refresh-token";
import { fail, ok, type Result } from "./result";

export interface PublicUser {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  createdAt: string;
}

/** A user as the API shows it, from the columns every sign-in path reads. */
export function toPublicUser(row: { id: string; email: string; name: string | null; emailVerified: boolean; createdAtMs: number | string }): PublicUser {
  return { id: row.id, email: row.email, emailVerified: row.emailVerified, name: row.name, createdAt: toIso(toNumber(row.createdAtMs)) };
}

/** What a successful sign-in, sign-up or refresh hands to the transport. */
export interface AuthSuccess {
  user: PublicUser;
  session: { id: string; expiresAt: string };
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  /** When the refresh token stops working at the latest (absolute session lifetime), ms. */
  refreshTokenExpiresAtMs: number;
  /** Known-device token for this account (sign-in and sign-up only); see device.ts. */
  deviceToken?: string;
}

/** The `amr` of a session begun with a password alone. */
export const PASSWORD_AMR: readonly string[] = ["pwd"];

/** Longest chain walk when proving that an old token belongs to a session (≈ 1 µs per step). */
const MAX_CHAIN_WALK = 50_000;

/**
 * Builds a new session: its id, first refresh token and the values of its row. The caller inserts
 * the row inside its own statement (login and register write session and audit in one round trip).
 */
export function newSession(deps: Deps, meta: RequestMeta, userId: string) {
  const now = deps.clock.now();
  const id = uuidv7(now);
  const token = newRefreshToken(id);
  const absoluteExpiresAt = now + deps.config.sessionAbsoluteTtlSeconds * 1000;
  const idleExpiresAt = Math.min(now + deps.config.sessionIdleTtlSeconds * 1000, absoluteExpiresAt);
  return {
    token,
    absoluteExpiresAt,
    row: {
      id,
      userId,
      createdAt: toIso(now),
      idleExpiresAt: toIso(idleExpiresAt),
      absoluteExpiresAt: toIso(absoluteExpiresAt),
      userAgent: meta.userAgent,
      ip: meta.ip,
      refreshHash: hashRefreshSecret(token.secret),
    },
  };
}

/**
 * The `INSERT INTO sessions` for a row made by `newSession`, as a CTE body. With `from`, the row
 * is inserted once per row of that source (none when, say, the user insert hit a conflict).
 */
export function insertSessionSql(row: ReturnType<typeof newSession>["row"], from?: SQL, amr: readonly string[] = PASSWORD_AMR) {
  return sql`INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_expires_at, absolute_expires_at,
      user_agent, ip, refresh_hash, refresh_generation, amr)
    SELECT ${row.id}::uuid, ${row.userId}::uuid, ${row.createdAt}::timestamptz, ${row.createdAt}::timestamptz,
      ${row.idleExpiresAt}::timestamptz, ${row.absoluteExpiresAt}::timestamptz, ${row.userAgent}::text,
      ${row.ip}::text, ${row.refreshHash}::bytea, 0, ${`{${amr.join(",")}}`}::text[] ${from ?? sql``}`;
}

/** An `INSERT INTO audit_events ... SELECT` over `source`, as a CTE body. */
export function insertAuditSql(
  deps: Deps,
  meta: RequestMeta,
  type: AuditEventType,
  columns: { userId: SQL; sessionId: SQL; subject?: string; from?: SQL },
  details?: Record<string, unknown>,
) {
  const now = deps.clock.now();
  return sql`INSERT INTO audit_events (id, type, user_id, session_id, subject, ip, user_agent, request_id, created_at, details)
    SELECT ${uuidv7(now)}::uuid, ${type}::text, ${columns.userId}, ${columns.sessionId}, ${columns.subject ?? null}::text, ${meta.ip}::text,
      ${meta.userAgent}::text, ${meta.requestId}::text, ${toIso(now)}::timestamptz,
      ${details ? JSON.stringify(details) : null}::jsonb ${columns.from ?? sql``}`;
}

/** Signs the access token and packs everything a sign-in returns. */
export async function completeSignIn(
  deps: Deps,
  user: PublicUser,
  token: RefreshToken,
  refreshTokenExpiresAtMs: number,
  /** When the user signed in to this session: now for a sign-in, the session's start for a refresh. */
  authTimeMs?: number,
  /** How the user proved who they are (RFC 8176 `amr` values); a password alone by default. */
  amr: readonly string[] = PASSWORD_AMR,
): Promise<AuthSuccess> {
  const now = deps.clock.now();
  const access = await signAccessToken(
    deps.keys,
    accessTokenOptions(deps.config),
    { userId: user.id, sessionId: token.sessionId, email: user.email, emailVerified: user.emailVerified, authTime: authTimeMs ?? now, amr },
    now,
  );
  return {
    user,
    session: { id: token.sessionId, expiresAt: toIso(refreshTokenExpiresAtMs) },
    accessToken: access.token,
    accessTokenExpiresAt: toIso(access.expiresAt),
    refreshToken: encodeRefreshToken(deps.hmacKey, token),
    refreshTokenExpiresAtMs,
  };
}

interface RotatedRow {
  id: string;
  user_id: string;
  email: string;
  name: string | null;
  email_verified: boolean;
  user_created_ms: number | string;
  absolute_expires_ms: number | string;
  created_ms: number | string;
  amr: string[];
}

export type RefreshError = "INVALID_REFRESH_TOKEN" | "REFRESH_TOKEN_REUSED" | "RATE_LIMITED";

/**
 * Rotates a refresh token (docs/security.md §16–18).
 *
 * The winner is decided by one statement: an UPDATE that matches only the current hash and
 * generation, writing the child's hash and the audit event in the same round trip. Concurrent
 * refreshes of the same token block on the row lock, match nothing once the winner commits, then
 * find that the presented token is the current one's parent, rotated less than the grace window
 * ago, and answer with the same child (derived, not stored). After the window, or for any genuine
 * older ancestor, the session is revoked: the token family was replayed.
 */
export async function rotateRefreshToken(
  deps: Deps,
  meta: RequestMeta,
  presentedText: string,
): Promise<Result<AuthSuccess, RefreshError>> {
  // A token this service did not issue fails here, on its MAC, before any counter or query.
  const presented = decodeRefreshToken(deps.hmacKey, presentedText);
  if (!presented) return fail("INVALID_REFRESH_TOKEN");

  const now = deps.clock.now();
  const nowIso = toIso(now);
  const { refreshPerSession } = deps.config.rateLimits;
  const windowStartIso = toIso(now - refreshPerSession.windowSeconds * 1000);
  const newWindow = sql`(s.refresh_window_started_at IS NULL OR s.refresh_window_started_at <= ${windowStartIso}::timestamptz)`;
  const child = deriveChild(deps.hmacKey, presented);
  // One statement: rotate (only the current token of a live session, within its rate limit),
  // count the rotation, and record it. No Redis round trip on this path.
  const rows = await queryRows<RotatedRow>(
    deps.db,
    sql`WITH rotated AS (
      UPDATE sessions AS s
         SET refresh_hash = ${hashRefreshSecret(child.secret)}::bytea,
             refresh_generation = ${child.generation}::int,
             rotated_at = ${nowIso}::timestamptz,
             last_used_at = ${nowIso}::timestamptz,
             idle_expires_at = LEAST(${toIso(now + deps.config.sessionIdleTtlSeconds * 1000)}::timestamptz, s.absolute_expires_at),
             ip = ${meta.ip}::text,
             user_agent = ${meta.userAgent}::text,
             refresh_window_started_at = CASE WHEN ${newWindow} THEN ${nowIso}::timestamptz ELSE s.refresh_window_started_at END,
             refresh_window_count = CASE WHEN ${newWindow} THEN 1 ELSE s.refresh_window_count + 1 END
        FROM users AS u
       WHERE s.id = ${presented.sessionId}::uuid
         AND s.refresh_generation = ${presented.generation}::int
         AND s.refresh_hash = ${hashRefreshSecret(presented.secret)}::bytea
         AND s.revoked_at IS NULL
         AND s.idle_expires_at > ${nowIso}::timestamptz
         AND s.absolute_expires_at > ${nowIso}::timestamptz
         AND (${newWindow} OR s.refresh_window_count < ${refreshPerSession.limit}::int)
         AND u.id = s.user_id
         AND u.disabled_at IS NULL
      RETURNING s.id, s.user_id, u.email, u.name, u.email_verified_at IS NOT NULL AS email_verified,
        (extract(epoch FROM u.created_at) * 1000)::float8 AS user_created_ms,
        (extract(epoch FROM s.absolute_expires_at) * 1000)::float8 AS absolute_expires_ms,
        (extract(epoch FROM s.created_at) * 1000)::float8 AS created_ms, s.amr
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.refreshed, { userId: sql`user_id`, sessionId: sql`id`, from: sql`FROM rotated` }, { generation: child.generation })}
    )
    SELECT * FROM rotated`,
  );
  const rotated = rows[0];
  if (rotated) {
    const user = toPublicUser({ ...rotated, id: rotated.user_id, emailVerified: rotated.email_verified, createdAtMs: rotated.user_created_ms });
    return ok(await completeSignIn(deps, user, child, toNumber(rotated.absolute_expires_ms), toNumber(rotated.created_ms), rotated.amr));
  }
  return resolveLostRotation(deps, meta, presented);
}

/**
 * The presented token did not rotate: it is the parent in its grace window, the current token of
 * a session over its refresh rate, a replay, or a token of a session that ended. Failures count
 * against the caller's IP.
 */
async function resolveLostRotation(
  deps: Deps,
  meta: RequestMeta,
  presented: RefreshToken,
): Promise<Result<AuthSuccess, RefreshError>> {
  const failuresKey = `refresh:failures:ip:${rateLimitIp(meta.ip)}`;
  const { refreshFailuresPerIp, refreshPerSession } = deps.config.rateLimits;
  const limits = await checkLimits(deps, [{ key: failuresKey, limit: refreshFailuresPerIp, by: 0 }]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  const failed = async <C extends RefreshError>(code: C) => {
    await countFailure(deps, failuresKey, refreshFailuresPerIp);
    return fail(code);
  };

  const [row] = await deps.db
    .select({
      refreshHash: sessions.refreshHash,
      generation: sessions.refreshGeneration,
      rotatedAt: sessions.rotatedAt,
      revokedAt: sessions.revokedAt,
      idleExpiresAt: sessions.idleExpiresAt,
      absoluteExpiresAt: sessions.absoluteExpiresAt,
      createdAt: sessions.createdAt,
      windowStartedAt: sessions.refreshWindowStartedAt,
      amr: sessions.amr,
      userId: users.id,
      email: users.email,
      name: users.name,
      emailVerifiedAt: users.emailVerifiedAt,
      userCreatedAt: users.createdAt,
      disabledAt: users.disabledAt,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, presented.sessionId))
    .limit(1);
  const now = deps.clock.now();
  if (
    !row ||
    row.revokedAt ||
    row.disabledAt ||
    row.idleExpiresAt.getTime() <= now ||
    row.absoluteExpiresAt.getTime() <= now
  ) {
    return failed("INVALID_REFRESH_TOKEN");
  }
  // The current token that did not rotate: its session is over its refresh rate.
  if (row.generation === presented.generation && bytesEqual(hashRefreshSecret(presented.secret), row.refreshHash)) {
    const resetAt = (row.windowStartedAt?.getTime() ?? now) + refreshPerSession.windowSeconds * 1000;
    return fail("RATE_LIMITED", Math.max(1, Math.ceil((resetAt - now) / 1000)));
  }
  // Only a token that really belongs to this session's chain counts.
  const current = descendTo(deps.hmacKey, presented, row.generation, row.refreshHash, MAX_CHAIN_WALK);
  if (!current) return failed("INVALID_REFRESH_TOKEN");

  const isParent = row.generation === presented.generation + 1;
  const rotatedAgoMs = row.rotatedAt ? now - row.rotatedAt.getTime() : Number.POSITIVE_INFINITY;
  if (isParent && rotatedAgoMs <= deps.config.refreshGraceSeconds * 1000) {
    const user = toPublicUser({ ...row, id: row.userId, emailVerified: row.emailVerifiedAt !== null, createdAtMs: row.userCreatedAt.getTime() });
    return ok(await completeSignIn(deps, user, current, row.absoluteExpiresAt.getTime(), row.createdAt.getTime(), row.amr));
  }

  await revokeSessions(deps, meta, {
    userId: row.userId,
    sessionIds: [presented.sessionId],
    reason: "refresh_token_reuse",
    audit: AuditEvent.reuseDetected,
    details: { presentedGeneration: presented.generation, currentGeneration: row.generation },
  });
  deps.log.warn("session.reuse_detected", {
    requestId: meta.requestId,
    ip: meta.ip,
    userAgent: meta.userAgent,
    sessionId: presented.sessionId,
    userId: row.userId,
    presentedGeneration: presented.generation,
    currentGeneration: row.generation,
  });
  return failed("REFRESH_TOKEN_REUSED");
}

/**
 * Revokes sessions of one user (all of them when `sessionIds` is "all"), records one audit event
 * per session, then publishes the ids to the revocation list so their access tokens die at once.
 * Returns the ids that were active and are now revoked.
 */
export async function revokeSessions(
  deps: Deps,
  meta: RequestMeta,
  options: {
    userId: string;
    /** Which sessions: these ids, every one, or every one except `keep`. */
    sessionIds: readonly string[] | "all";
    keep?: string;
    reason: string;
    audit: AuditEventType;
    details?: Record<string, unknown>;
  },
): Promise<string[]> {
  const now = deps.clock.now();
  const idFilter =
    options.sessionIds === "all"
      ? sql`TRUE`
      : options.sessionIds.length === 0
        ? sql`FALSE`
        : sql`s.id IN (${sql.join(
            options.sessionIds.map((id) => sql`${id}::uuid`),
            sql`, `,
          )})`;
  const rows = await queryRows<{ id: string }>(
    deps.db,
    sql`WITH revoked AS (
      UPDATE sessions AS s SET revoked_at = ${toIso(now)}::timestamptz, revoked_reason = ${options.reason}::text
       WHERE s.user_id = ${options.userId}::uuid AND s.revoked_at IS NULL AND ${idFilter}
         AND s.id <> ${options.keep ?? "00000000-0000-0000-0000-000000000000"}::uuid
      RETURNING s.id, s.user_id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, session_id, ip, user_agent, request_id, created_at, details)
      SELECT gen_random_uuid(), ${options.audit}::text, user_id, id, ${meta.ip}::text, ${meta.userAgent}::text,
        ${meta.requestId}::text, ${toIso(now)}::timestamptz, ${JSON.stringify({ reason: options.reason, ...options.details })}::jsonb
        FROM revoked
    )
    SELECT id FROM revoked`,
  );
  const ids = rows.map((r) => r.id);
  await deps.revocations.publish(ids);
  return ids;
}

export interface SessionInfo {
  id: string;
  userAgent: string | null;
  ip: string | null;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  current: boolean;
}

/** The user's active sessions, most recently used first (docs/security.md §20). */
export async function listSessions(deps: Deps, userId: string, currentSessionId: string): Promise<SessionInfo[]> {
  const now = new Date(deps.clock.now());
  const rows = await deps.db
    .select({
      id: sessions.id,
      userAgent: sessions.userAgent,
      ip: sessions.ip,
      createdAt: sessions.createdAt,
      lastUsedAt: sessions.lastUsedAt,
      idleExpiresAt: sessions.idleExpiresAt,
    })
    .from(sessions)
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.revokedAt),
        gt(sessions.idleExpiresAt, now),
        gt(sessions.absoluteExpiresAt, now),
      ),
    )
    .orderBy(desc(sessions.lastUsedAt))
    .limit(200);
  return rows.map((r) => ({
    id: r.id,
    userAgent: r.userAgent,
    ip: r.ip,
    createdAt: r.createdAt.toISOString(),
    lastUsedAt: r.lastUsedAt.toISOString(),
    expiresAt: r.idleExpiresAt.toISOString(),
    current: r.id === currentSessionId,
  }));
}

/**
 * The session a refresh token belongs to, if the token is genuine (the current one or an ancestor
 * in its chain) and the session still active. Used by logout, which must not let a forged token
 * carrying someone else's session id end that session.
 */
export async function findSessionByRefreshToken(
  deps: Deps,
  text: string,
): Promise<{ sessionId: string; userId: string } | null> {
  const presented = decodeRefreshToken(deps.hmacKey, text);
  if (!presented) return null;
  const [row] = await deps.db
    .select({ userId: sessions.userId, refreshHash: sessions.refreshHash, generation: sessions.refreshGeneration })
    .from(sessions)
    .where(and(eq(sessions.id, presented.sessionId), isNull(sessions.revokedAt)))
    .limit(1);
  if (!row) return null;
  const genuine =
    row.generation === presented.generation
      ? bytesEqual(hashRefreshSecret(presented.secret), row.refreshHash)
      : descendTo(deps.hmacKey, presented, row.generation, row.refreshHash, MAX_CHAIN_WALK) !== null;
  return genuine ? { sessionId: presented.sessionId, userId: row.userId } : null;
}
