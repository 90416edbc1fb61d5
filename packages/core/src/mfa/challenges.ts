import { sql, type SQL } from "drizzle-orm";
import { toIso } from "../clock";
import { randomSecret, sha256, toBase64Url } from "../crypto";
import { queryRows } from "../db/client";
import type { Deps } from "../deps";

/**
 * Short-lived, single-use challenges (table `mfa_challenges`): a sign-in waiting for its second
 * factor, a passkey sign-in, a passkey registration, and a step-up proof for removing a factor.
 * The id handed out is 256 random bits; only its hash is stored, so a database reader cannot
 * finish someone's sign-in.
 */
export type ChallengePurpose = "login" | "passkey_login" | "passkey_register" | "step_up";

export const CHALLENGE_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const challengeHash = (id: string): Buffer => sha256(`authlith mfa challenge\n${id}`);

export interface NewChallenge {
  /** What the client holds (`challengeId`). */
  id: string;
  /** The WebAuthn challenge (base64url) for ceremonies that use one. */
  webauthnChallenge: string | null;
  expiresAtMs: number;
  insert: (from?: SQL) => SQL;
}

/**
 * A challenge's id and the `INSERT` (a CTE body) that stores it; with `from`, one row per row of
 * that source (none when, say, the sign-in it belongs to did not check out).
 */
export function newChallenge(
  deps: Deps,
  purpose: ChallengePurpose,
  options: { userId?: string | null | SQL; amr?: readonly string[]; deviceId?: string | null; webauthn?: boolean } = {},
): NewChallenge {
  const now = deps.clock.now();
  const id = toBase64Url(randomSecret(32));
  const webauthnChallenge = options.webauthn ? toBase64Url(randomSecret(32)) : null;
  const expiresAtMs = now + deps.config.mfa.challengeTtlSeconds * 1000;
  const userId = options.userId === undefined || options.userId === null ? sql`NULL::uuid` : typeof options.userId === "string" ? sql`${options.userId}::uuid` : options.userId;
  const amr = `{${(options.amr ?? []).join(",")}}`;
  return {
    id,
    webauthnChallenge,
    expiresAtMs,
    insert: (from?: SQL) => sql`INSERT INTO mfa_challenges (id_hash, purpose, user_id, webauthn_challenge, amr, device_id, attempts, created_at, expires_at)
      SELECT ${challengeHash(id)}::bytea, ${purpose}::text, ${userId}, ${webauthnChallenge}::text, ${amr}::text[],
        ${options.deviceId ?? null}::text, 0, ${toIso(now)}::timestamptz, ${toIso(expiresAtMs)}::timestamptz ${from ?? sql``}`,
  };
}

/** Stores a challenge on its own. */
export async function storeChallenge(deps: Deps, challenge: NewChallenge): Promise<void> {
  await queryRows(deps.db, challenge.insert());
}

export interface ConsumedChallenge {
  user_id: string | null;
  webauthn_challenge: string | null;
  amr: string[];
  device_id: string | null;
}

/**
 * Spends a WebAuthn ceremony's challenge: at most once, before it expires, only for its purpose
 * (and its user, when it has one). Whatever the answer then proves, the challenge is gone.
 */
export async function consumeChallenge(
  deps: Deps,
  id: string,
  purpose: ChallengePurpose,
  userId?: string,
): Promise<ConsumedChallenge | null> {
  if (!CHALLENGE_ID_PATTERN.test(id)) return null;
  const now = toIso(deps.clock.now());
  const [row] = await queryRows<ConsumedChallenge>(
    deps.db,
    sql`UPDATE mfa_challenges SET consumed_at = ${now}::timestamptz
      WHERE id_hash = ${challengeHash(id)}::bytea AND purpose = ${purpose}::text AND consumed_at IS NULL
        AND expires_at > ${now}::timestamptz ${userId ? sql`AND user_id = ${userId}::uuid` : sql``}
      RETURNING user_id, webauthn_challenge, amr, device_id`,
  );
  return row ?? null;
}
