import { sql, type SQL } from "drizzle-orm";
import { toIso } from "./clock";
import { randomSecret, sha256, toBase64Url } from "./crypto";
import { queryRows, type Db } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { uuidv7 } from "./ids";
import { rateLimitIp, type LimitCheck } from "./rate-limit";

/**
 * Tokens sent by mail (docs/security.md §23): 256 bits from the CSPRNG, stored only as SHA-256 of purpose
 * and token, so a token issued for one purpose is unknown to every other. One live token per user
 * and purpose: issuing one deletes the older ones. Redeeming is one conditional UPDATE, so of two
 * concurrent redemptions exactly one wins.
 */
export type AccountTokenPurpose = "password_reset" | "email_change" | "email_verification";

export const ACCOUNT_TOKEN_TTL_SECONDS: Record<AccountTokenPurpose, number> = {
  password_reset: 30 * 60,
  email_change: 24 * 60 * 60,
  email_verification: 24 * 60 * 60,
};

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export const accountTokenHash = (purpose: AccountTokenPurpose, token: string): Buffer => sha256(`${purpose}\n${token}`);

/** A fresh token and the row that records it (not yet written). */
export function newAccountToken(purpose: AccountTokenPurpose, userId: string, nowMs: number, email: string | null = null) {
  const token = toBase64Url(randomSecret());
  return {
    token,
    row: {
      id: uuidv7(nowMs),
      userId,
      purpose,
      email,
      tokenHash: accountTokenHash(purpose, token),
      createdAt: toIso(nowMs),
      expiresAt: toIso(nowMs + ACCOUNT_TOKEN_TTL_SECONDS[purpose] * 1000),
    },
  };
}

/** SQL (CTEs, to be followed by the caller's final statement) that replaces the user's live tokens of this purpose with `row`. */
export function issueAccountTokenCtes(row: ReturnType<typeof newAccountToken>["row"]): SQL {
  return sql`superseded AS (
      DELETE FROM account_tokens WHERE user_id = ${row.userId}::uuid AND purpose = ${row.purpose}::text AND used_at IS NULL
    ), issued AS (
      INSERT INTO account_tokens (id, user_id, purpose, email, token_hash, created_at, expires_at)
      VALUES (${row.id}::uuid, ${row.userId}::uuid, ${row.purpose}::text, ${row.email}::text, ${row.tokenHash}::bytea,
        ${row.createdAt}::timestamptz, ${row.expiresAt}::timestamptz)
      RETURNING id
    )`;
}

/** Whether a presented string could be a token at all (malformed ones cost no database read). */
export const isWellFormedAccountToken = (token: string): boolean => TOKEN_SHAPE.test(token);

/** SQL (a CTE named `redeemed`, with `user_id` and `email`) that marks a live token used, if it is one. */
export function redeemAccountTokenCte(purpose: AccountTokenPurpose, token: string, nowMs: number): SQL {
  return sql`redeemed AS (
      UPDATE account_tokens SET used_at = ${toIso(nowMs)}::timestamptz
       WHERE token_hash = ${accountTokenHash(purpose, token)}::bytea AND purpose = ${purpose}::text
         AND used_at IS NULL AND expires_at > ${toIso(nowMs)}::timestamptz
      RETURNING user_id, email
    )`;
}

/** The per-IP limit on redeeming mailed tokens (reset, verification, email change). */
export const redeemLimit = (deps: Deps, meta: RequestMeta): LimitCheck => ({
  key: `token:redeem:ip:${rateLimitIp(meta.ip)}`,
  limit: deps.config.rateLimits.tokenRedeemPerIp,
  by: 1,
});

/**
 * The enabled account a live token of `purpose` belongs to (unspent, unexpired), read without
 * spending the token: `columns` of `users u`. Null when the token is no such token.
 */
export async function liveTokenOwner<T extends Record<string, unknown>>(
  db: Db,
  purpose: AccountTokenPurpose,
  token: string,
  nowMs: number,
  columns: SQL,
): Promise<T | null> {
  const [row] = await queryRows<T>(
    db,
    sql`SELECT ${columns} FROM account_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ${accountTokenHash(purpose, token)}::bytea AND t.purpose = ${purpose}::text
           AND t.used_at IS NULL AND t.expires_at > ${toIso(nowMs)}::timestamptz AND u.disabled_at IS NULL`,
  );
  return row ?? null;
}
