import { sql, type SQL } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { renderSVG } from "uqr";
import { AuditEvent } from "../audit";
import { toIso } from "../clock";
import { randomSecret } from "../crypto";
import { queryRows, toNumber } from "../db/client";
import type { Deps, RequestMeta } from "../deps";
import { deliver } from "../mail/deliver";
import { factorAddedMail } from "../mail/templates";
import { fail, ok, type Result } from "../result";
import { insertAuditSql } from "../sessions";
import { authorizeMfaChange, type StepUpError, type StepUpInput } from "./step-up";
import { insertRecoveryCodesSql, newRecoveryCodes } from "./recovery-codes";

/**
 * TOTP (RFC 6238) through otpauth: SHA-1, 6 digits, 30-second steps, the parameters every
 * authenticator app supports. Secrets are 160 bits from the CSPRNG (RFC 4226's recommendation),
 * stored encrypted (secret-box.ts). A code is accepted within ±1 step of now, and only for a step
 * later than the last one accepted (`last_used_step`, advanced by a conditional UPDATE), so a code
 * works once, even when two requests carry it at the same moment.
 */
const PERIOD_SECONDS = 30;
const DIGITS = 6;
const SECRET_BYTES = 20;
/** How long an enrolment waits for its first code. */
const ENROLMENT_TTL_SECONDS = 15 * 60;

const totpFor = (deps: Deps, secret: Uint8Array, label = "") =>
  new TOTP({
    issuer: deps.config.mail.serviceName,
    label,
    algorithm: "SHA1",
    digits: DIGITS,
    period: PERIOD_SECONDS,
    secret: new Secret({ buffer: new Uint8Array(secret).buffer }),
  });

/** The time step a code belongs to (now ± 1 step), or null if it is not a current code. */
export function matchTotpStep(deps: Deps, secret: Uint8Array, code: string): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const totp = totpFor(deps, secret);
  const timestamp = deps.clock.now();
  const delta = totp.validate({ token: code, timestamp, window: 1 });
  return delta === null ? null : totp.counter({ timestamp }) + delta;
}

interface TotpRow {
  secret_ciphertext: Uint8Array;
  key_id: string;
  confirmed: boolean;
  created_ms: number | string;
  last_used_step: number | string | null;
}

/** An account's TOTP factor with its secret decrypted, or null. */
export async function readTotp(deps: Deps, userId: string) {
  const [row] = await queryRows<TotpRow>(
    deps.db,
    sql`SELECT secret_ciphertext, key_id, confirmed_at IS NOT NULL AS confirmed,
        (extract(epoch FROM created_at) * 1000)::float8 AS created_ms, last_used_step
      FROM totp_factors WHERE user_id = ${userId}::uuid`,
  );
  if (!row) return null;
  const secret = deps.secretBox.open(row.secret_ciphertext, row.key_id, userId);
  if (!secret) {
    deps.log.error("totp.secret_unreadable", { userId, keyId: row.key_id });
    return null;
  }
  return { secret, keyId: row.key_id, ciphertext: Buffer.from(row.secret_ciphertext), confirmed: row.confirmed, createdAtMs: toNumber(row.created_ms) };
}

/**
 * Advances the last used step to `step` if it is later (a CTE body returning `user_id`). A secret
 * still under an older key is re-encrypted under the current one in the same write.
 */
export function useTotpStepSql(deps: Deps, userId: string, factor: { secret: Uint8Array; keyId: string; ciphertext: Buffer }, step: number): SQL {
  const rotate = factor.keyId !== deps.secretBox.keyId;
  const reseal = rotate ? sql`, secret_ciphertext = ${deps.secretBox.seal(factor.secret, userId)}::bytea, key_id = ${deps.secretBox.keyId}::text` : sql``;
  return sql`UPDATE totp_factors SET last_used_step = ${step}::bigint ${reseal}
    WHERE user_id = ${userId}::uuid AND confirmed_at IS NOT NULL AND secret_ciphertext = ${factor.ciphertext}::bytea
      AND (last_used_step IS NULL OR last_used_step < ${step}::bigint)
    RETURNING user_id`;
}

export type EnrollTotpError = StepUpError | "TOTP_ALREADY_ENABLED";

export interface TotpEnrolment {
  /** Base32, for typing into an app by hand. */
  secret: string;
  /** The `otpauth://totp/...` URI the QR code carries. */
  uri: string;
  /** The QR code of `uri`, as an SVG data URL (for an `<img src>`: no markup to inject). */
  qrCode: string;
}

/**
 * Starts TOTP enrolment (recent authentication required, step-up.ts): a fresh secret, its URI and QR code.
 * Nothing changes at sign-in until `confirmTotp` proves an app holds the secret; a second call
 * replaces an unconfirmed secret.
 */
export async function enrollTotp(
  deps: Deps,
  meta: RequestMeta,
  input: StepUpInput,
): Promise<Result<TotpEnrolment, EnrollTotpError>> {
  const authorized = await authorizeMfaChange(deps, meta, input, "add", (f) => (f.totp ? "TOTP_ALREADY_ENABLED" : null));
  if (!authorized.ok) return authorized;
  const secret = randomSecret(SECRET_BYTES);
  const now = toIso(deps.clock.now());
  const rows = await queryRows<{ email: string }>(
    deps.db,
    sql`WITH factor AS (${authorized.value.factor}), owner AS (
      SELECT id, email FROM users WHERE id = ${input.userId}::uuid AND disabled_at IS NULL AND EXISTS (SELECT 1 FROM factor)
    ), stored AS (
      INSERT INTO totp_factors (user_id, secret_ciphertext, key_id, created_at)
      SELECT id, ${deps.secretBox.seal(secret, input.userId)}::bytea, ${deps.secretBox.keyId}::text, ${now}::timestamptz FROM owner
      ON CONFLICT (user_id) DO UPDATE SET secret_ciphertext = EXCLUDED.secret_ciphertext, key_id = EXCLUDED.key_id,
        created_at = EXCLUDED.created_at, last_used_step = NULL
        WHERE totp_factors.confirmed_at IS NULL
      RETURNING user_id
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.totpEnrolled, { userId: sql`user_id`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM stored` })}
    )
    SELECT owner.email FROM owner JOIN stored ON stored.user_id = owner.id`,
  );
  if (rows.length === 0) return fail("TOTP_ALREADY_ENABLED");
  const totp = totpFor(deps, secret, rows[0]!.email);
  const uri = totp.toString();
  const svg = renderSVG(uri, { border: 2 });
  return ok({ secret: totp.secret.base32, uri, qrCode: `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}` });
}

export type ConfirmTotpError = "INVALID_CODE" | "NO_ENROLMENT";

/**
 * Activates TOTP with a first code. If the account had no unused recovery codes, it gets its ten
 * now, returned once.
 */
export async function confirmTotp(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; sessionId: string; code: string },
): Promise<Result<{ recoveryCodes: string[] | null }, ConfirmTotpError>> {
  const factor = await readTotp(deps, input.userId);
  const now = deps.clock.now();
  if (!factor || factor.confirmed || factor.createdAtMs + ENROLMENT_TTL_SECONDS * 1000 <= now) return fail("NO_ENROLMENT");
  const step = matchTotpStep(deps, factor.secret, input.code);
  if (step === null) return fail("INVALID_CODE");
  const codes = newRecoveryCodes();
  const rows = await queryRows<{ email: string; codes_issued: number | string }>(
    deps.db,
    sql`WITH confirmed AS (
      UPDATE totp_factors SET confirmed_at = ${toIso(now)}::timestamptz, last_used_step = ${step}::bigint
       WHERE user_id = ${input.userId}::uuid AND confirmed_at IS NULL AND secret_ciphertext = ${factor.ciphertext}::bytea
      RETURNING user_id
    ), codes AS (
      ${insertRecoveryCodesSql(
        deps,
        input.userId,
        codes,
        sql`EXISTS (SELECT 1 FROM confirmed) AND NOT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = ${input.userId}::uuid AND used_at IS NULL)`,
      )}
      RETURNING 1
    ), audit AS (
      ${insertAuditSql(deps, meta, AuditEvent.totpEnabled, { userId: sql`user_id`, sessionId: sql`${input.sessionId}::uuid`, from: sql`FROM confirmed` })}
    )
    SELECT u.email, (SELECT count(*) FROM codes) AS codes_issued FROM confirmed JOIN users u ON u.id = confirmed.user_id`,
  );
  if (rows.length === 0) return fail("NO_ENROLMENT");
  await deliver(deps, meta.requestId, factorAddedMail(deps.config.mail, rows[0]!.email, "totp"));
  return ok({ recoveryCodes: toNumber(rows[0]!.codes_issued) > 0 ? codes : null });
}
