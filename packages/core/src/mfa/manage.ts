import { sql } from "drizzle-orm";
import { AuditEvent } from "../audit";
import { toIso } from "../clock";
import { queryRows, toNumber } from "../db/client";
import type { Deps, RequestMeta } from "../deps";
import { uuidv7 } from "../ids";
import { deliver } from "../mail/deliver";
import { factorAddedMail, factorRemovedMail, recoveryCodesRegeneratedMail } from "../mail/templates";
import { fail, ok, type Result } from "../result";
import { insertAuditSql } from "../sessions";
import { consumeChallenge, newChallenge, storeChallenge } from "./challenges";
import { insertRecoveryCodesSql, newRecoveryCodes } from "./recovery-codes";
import { passkeysOf } from "./sign-in";
import { authorizeMfaChange, type StepUpError, type StepUpInput } from "./step-up";
import {
  authenticationOptions,
  checkRegistration,
  registrationOptions,
  type PasskeyCreationOptions,
  type PasskeyRequestOptions,
  type RegistrationResponseJSON,
} from "./webauthn";

export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** `multiDevice`: synced between devices by its provider; `singleDevice`: bound to one authenticator. */
  deviceType: string;
  backedUp: boolean;
}

export interface MfaStatus {
  /** Whether sign-in asks for a second factor. */
  enabled: boolean;
  totp: { enabled: boolean; enabledAt: string | null };
  passkeys: PasskeyInfo[];
  recoveryCodesLeft: number;
}

type PasskeyRow = { id: string; name: string; created_ms: number | string; last_used_ms: number | string | null; device_type: string; backed_up: boolean };
const toPasskeyInfo = (row: PasskeyRow): PasskeyInfo => ({
  id: row.id,
  name: row.name,
  createdAt: toIso(toNumber(row.created_ms)),
  lastUsedAt: row.last_used_ms === null ? null : toIso(toNumber(row.last_used_ms)),
  deviceType: row.device_type,
  backedUp: row.backed_up,
});

export async function listPasskeys(deps: Deps, userId: string): Promise<PasskeyInfo[]> {
  const rows = await queryRows<PasskeyRow>(
    deps.db,
    sql`SELECT id, name, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
        (extract(epoch FROM last_used_at) * 1000)::float8 AS last_used_ms, device_type, backed_up
      FROM passkeys WHERE user_id = ${userId}::uuid ORDER BY created_at`,
  );
  return rows.map(toPasskeyInfo);
}

/** The account's second factors, for its security settings. */
export async function mfaStatus(deps: Deps, userId: string): Promise<MfaStatus> {
  const [[row], passkeys] = await Promise.all([
    queryRows<{ totp_ms: number | string | null; codes_left: number | string }>(
      deps.db,
      sql`SELECT (SELECT (extract(epoch FROM confirmed_at) * 1000)::float8 FROM totp_factors WHERE user_id = ${userId}::uuid AND confirmed_at IS NOT NULL) AS totp_ms,
        (SELECT count(*) FROM recovery_codes WHERE user_id = ${userId}::uuid AND used_at IS NULL) AS codes_left`,
    ),
    listPasskeys(deps, userId),
  ]);
  const totpAt = row?.totp_ms ?? null;
  return {
    enabled: totpAt !== null || passkeys.length > 0,
    totp: { enabled: totpAt !== null, enabledAt: totpAt === null ? null : toIso(toNumber(totpAt)) },
    passkeys,
    recoveryCodesLeft: toNumber(row?.codes_left ?? 0),
  };
}

/** A challenge for proving a passkey before removing a factor (`StepUpProof.passkey`). */
export async function stepUpOptions(
  deps: Deps,
  userId: string,
): Promise<Result<{ challengeId: string; options: PasskeyRequestOptions }, "NO_PASSKEYS">> {
  const passkeys = await passkeysOf(deps, userId);
  if (passkeys.length === 0) return fail("NO_PASSKEYS");
  const challenge = newChallenge(deps, "step_up", { userId, webauthn: true });
  await storeChallenge(deps, challenge);
  return ok({ challengeId: challenge.id, options: await authenticationOptions(deps, challenge.webauthnChallenge!, passkeys, "preferred") });
}

/**
 * A new set of ten recovery codes, returned once; the old ones stop working. Needs a second
 * factor to exist (there is nothing to recover otherwise) and the proofs of `authorizeMfaChange`.
 */
export async function regenerateRecoveryCodes(
  deps: Deps,
  meta: RequestMeta,
  input: StepUpInput,
): Promise<Result<{ recoveryCodes: string[] }, StepUpError | "MFA_NOT_ENABLED">> {
  const authorized = await authorizeMfaChange(deps, meta, input, "add", (f) => (!f.totp && f.passkeys === 0 ? "MFA_NOT_ENABLED" : null));
  if (!authorized.ok) return authorized;
  const { owner } = authorized.value;
  const codes = newRecoveryCodes();
  const rows = await queryRows<{ done: boolean }>(
    deps.db,
    sql`WITH factor AS (${authorized.value.factor}), removed AS (
      DELETE FROM recovery_codes WHERE user_id = ${owner.id}::uuid AND EXISTS (SELECT 1 FROM factor)
    ), inserted AS (
      ${insertRecoveryCodesSql(deps, owner.id, codes, sql`EXISTS (SELECT 1 FROM factor)`)} RETURNING 1
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.recoveryCodesRegenerated, { userId: sql`user_id`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM factor` })}
    )
    SELECT true AS done FROM factor`,
  );
  if (rows.length === 0) return fail("INVALID_CODE");
  await deliver(deps, meta.requestId, recoveryCodesRegeneratedMail(deps.config.mail, owner.email));
  return ok({ recoveryCodes: codes });
}

/**
 * Removes the authenticator app: a second factor always, and the password too if it is the last
 * factor (then the recovery codes go with it). The owner is mailed.
 */
export async function disableTotp(deps: Deps, meta: RequestMeta, input: StepUpInput): Promise<Result<{ mfaEnabled: boolean }, StepUpError | "TOTP_NOT_ENABLED">> {
  const authorized = await authorizeMfaChange(
    deps,
    meta,
    input,
    (f) => (f.passkeys === 0 ? "remove_last" : "remove"),
    (f) => (f.totp ? null : "TOTP_NOT_ENABLED"),
  );
  if (!authorized.ok) return authorized;
  const { owner, factors } = authorized.value;
  const last = factors.passkeys === 0;
  const rows = await queryRows<{ removed: number | string }>(
    deps.db,
    sql`WITH factor AS (${authorized.value.factor}), removed AS (
      DELETE FROM totp_factors WHERE user_id = ${owner.id}::uuid AND EXISTS (SELECT 1 FROM factor) RETURNING user_id
    ), codes AS (
      DELETE FROM recovery_codes WHERE user_id = ${owner.id}::uuid AND ${last}::boolean AND EXISTS (SELECT 1 FROM removed)
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.totpDisabled, { userId: sql`user_id`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM removed` }, { proof: authorized.value.method })}
    )
    SELECT (SELECT count(*) FROM factor) AS proved, (SELECT count(*) FROM removed) AS removed`,
  );
  const removed = toNumber(rows[0]?.removed ?? 0) > 0;
  if (!removed) return fail("INVALID_CODE");
  await deliver(deps, meta.requestId, factorRemovedMail(deps.config.mail, owner.email, "totp", undefined, factors.passkeys));
  return ok({ mfaEnabled: !last });
}

/** Options for `navigator.credentials.create` to add a passkey (the proofs of `authorizeMfaChange`). */
export async function passkeyRegistrationOptions(
  deps: Deps,
  meta: RequestMeta,
  input: StepUpInput,
): Promise<Result<{ challengeId: string; options: PasskeyCreationOptions }, StepUpError>> {
  const authorized = await authorizeMfaChange(deps, meta, input, "add");
  if (!authorized.ok) return authorized;
  const { owner } = authorized.value;
  const challenge = newChallenge(deps, "passkey_register", { userId: owner.id, webauthn: true });
  // A step-up code, if one was needed, is spent with the challenge.
  const rows = await queryRows(deps.db, sql`WITH factor AS (${authorized.value.factor}), c AS (${challenge.insert(sql`FROM factor`)} RETURNING 1) SELECT 1 FROM c`);
  if (rows.length === 0) return fail("INVALID_CODE");
  const options = await registrationOptions(deps, owner, await passkeysOf(deps, owner.id), challenge.webauthnChallenge!);
  return ok({ challengeId: challenge.id, options });
}

export type VerifyRegistrationError = "INVALID_CHALLENGE" | "PASSKEY_REJECTED" | "PASSKEY_EXISTS";

/**
 * Stores a new passkey from the browser's answer (challenge single use, origin and RP ID checked).
 * If the account had no unused recovery codes, it gets its ten now, returned once.
 */
export async function verifyPasskeyRegistration(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; sessionId: string; challengeId: string; response: RegistrationResponseJSON; name?: string | undefined },
): Promise<Result<{ passkey: PasskeyInfo; recoveryCodes: string[] | null }, VerifyRegistrationError>> {
  const challenge = await consumeChallenge(deps, input.challengeId, "passkey_register", input.userId);
  if (!challenge?.webauthn_challenge) return fail("INVALID_CHALLENGE");
  const passkey = await checkRegistration(deps, input.response, challenge.webauthn_challenge);
  if (!passkey) return fail("PASSKEY_REJECTED");
  const now = deps.clock.now();
  const id = uuidv7(now);
  const name = input.name?.trim() || defaultPasskeyName(passkey.deviceType, input.response.authenticatorAttachment);
  const codes = newRecoveryCodes();
  const rows = await queryRows<PasskeyRow & { email: string; codes_issued: number | string }>(
    deps.db,
    sql`WITH owner AS (
      SELECT id, email FROM users WHERE id = ${input.userId}::uuid AND disabled_at IS NULL
    ), added AS (
      INSERT INTO passkeys (id, user_id, credential_id, public_key, counter, transports, device_type, backed_up, name, created_at)
      SELECT ${id}::uuid, owner.id, ${passkey.credentialId}::bytea, ${passkey.publicKey}::bytea, ${passkey.counter}::bigint,
        ${`{${passkey.transports.filter((t) => /^[a-z-]+$/.test(t)).join(",")}}`}::text[], ${passkey.deviceType}::text,
        ${passkey.backedUp}::boolean, ${name}::text, ${toIso(now)}::timestamptz FROM owner
      ON CONFLICT (credential_id) DO NOTHING
      RETURNING id, name, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms, NULL::float8 AS last_used_ms, device_type, backed_up
    ), codes AS (
      ${insertRecoveryCodesSql(
        deps,
        input.userId,
        codes,
        sql`EXISTS (SELECT 1 FROM added) AND NOT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = ${input.userId}::uuid AND used_at IS NULL)`,
      )}
      RETURNING 1
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.passkeyAdded, { userId: sql`${input.userId}::uuid`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM added` }, { passkeyId: id, deviceType: passkey.deviceType })}
    )
    SELECT added.*, owner.email, (SELECT count(*) FROM codes) AS codes_issued FROM added, owner`,
  );
  const row = rows[0];
  if (!row) return fail("PASSKEY_EXISTS");
  await deliver(deps, meta.requestId, factorAddedMail(deps.config.mail, row.email, "passkey", row.name));
  return ok({ passkey: toPasskeyInfo(row), recoveryCodes: toNumber(row.codes_issued) > 0 ? codes : null });
}

const defaultPasskeyName = (deviceType: string, attachment: string | undefined) =>
  attachment === "cross-platform" ? "Security key" : deviceType === "multiDevice" ? "Synced passkey" : "Passkey on this device";

/** Renames one of the user's passkeys (someone else's and an unknown one look the same). */
export async function renamePasskey(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; sessionId: string; passkeyId: string; name: string },
): Promise<Result<{ passkey: PasskeyInfo }, "PASSKEY_NOT_FOUND">> {
  const rows = await queryRows<PasskeyRow>(
    deps.db,
    sql`WITH renamed AS (
      UPDATE passkeys SET name = ${input.name.trim()}::text WHERE id = ${input.passkeyId}::uuid AND user_id = ${input.userId}::uuid
      RETURNING id, name, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
        (extract(epoch FROM last_used_at) * 1000)::float8 AS last_used_ms, device_type, backed_up
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.passkeyRenamed, { userId: sql`${input.userId}::uuid`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM renamed` }, { passkeyId: input.passkeyId })}
    )
    SELECT * FROM renamed`,
  );
  return rows[0] ? ok({ passkey: toPasskeyInfo(rows[0]) }) : fail("PASSKEY_NOT_FOUND");
}

/**
 * Deletes one of the user's passkeys: a second factor always (the passkey itself will do), and
 * the password too if it is the account's last factor (then the recovery codes go with it).
 */
export async function deletePasskey(
  deps: Deps,
  meta: RequestMeta,
  input: StepUpInput & { passkeyId: string },
): Promise<Result<{ mfaEnabled: boolean }, StepUpError | "PASSKEY_NOT_FOUND">> {
  const [target] = await queryRows<{ name: string }>(
    deps.db,
    sql`SELECT name FROM passkeys WHERE id = ${input.passkeyId}::uuid AND user_id = ${input.userId}::uuid`,
  );
  if (!target) return fail("PASSKEY_NOT_FOUND");
  const authorized = await authorizeMfaChange(deps, meta, input, (f) => (!f.totp && f.passkeys <= 1 ? "remove_last" : "remove"));
  if (!authorized.ok) return authorized;
  const { owner, factors } = authorized.value;
  const last = !factors.totp && factors.passkeys <= 1;
  const rows = await queryRows<{ removed: number | string }>(
    deps.db,
    sql`WITH factor AS (${authorized.value.factor}), removed AS (
      DELETE FROM passkeys WHERE id = ${input.passkeyId}::uuid AND user_id = ${owner.id}::uuid AND EXISTS (SELECT 1 FROM factor) RETURNING id
    ), codes AS (
      DELETE FROM recovery_codes WHERE user_id = ${owner.id}::uuid AND ${last}::boolean AND EXISTS (SELECT 1 FROM removed)
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.passkeyDeleted, { userId: sql`${owner.id}::uuid`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM removed` }, { passkeyId: input.passkeyId, proof: authorized.value.method })}
    )
    SELECT (SELECT count(*) FROM removed) AS removed, (SELECT count(*) FROM factor) AS proved`,
  );
  if (toNumber(rows[0]?.removed ?? 0) === 0) return fail("INVALID_CODE");
  const remaining = (factors.totp ? 1 : 0) + factors.passkeys - 1;
  await deliver(deps, meta.requestId, factorRemovedMail(deps.config.mail, owner.email, "passkey", target.name, remaining));
  return ok({ mfaEnabled: !last });
}
