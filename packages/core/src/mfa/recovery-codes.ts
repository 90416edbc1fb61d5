import { sql, type SQL } from "drizzle-orm";
import { toIso } from "../clock";
import { hmacSha256, randomSecret } from "../crypto";
import type { Deps } from "../deps";

/**
 * Recovery codes (docs/security.md §28): ten per account, single use, shown once. Each is 50
 * random bits in Crockford's base32 (`xxxxx-xxxxx`: no I, L, O or U to misread); only an HMAC
 * under the server's key is stored, so a copy of the database alone cannot test guesses offline.
 * Online guesses spend the account's second-factor budget like TOTP codes.
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const CODE_LENGTH = 10;

export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    // 256 is a multiple of 32: each byte's low five bits are uniform.
    const chars = [...randomSecret(CODE_LENGTH)].map((byte) => ALPHABET[byte & 31]).join("");
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** A typed code in its canonical form (case, separators and look-alike letters forgiven), or null. */
export function normalizeRecoveryCode(input: string): string | null {
  const code = input
    .toLowerCase()
    .replace(/[\s-]/g, "")
    .replace(/[il]/g, "1")
    .replace(/o/g, "0");
  return code.length === CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : null;
}

export const recoveryCodeHash = (deps: Deps, userId: string, normalized: string): Buffer =>
  hmacSha256(deps.hmacKey, "authlith recovery code\0", userId, "\0", normalized);

/** `INSERT INTO recovery_codes` for a fresh set (a CTE body); with `condition`, only if it holds. */
export function insertRecoveryCodesSql(deps: Deps, userId: string, codes: readonly string[], condition: SQL = sql`TRUE`): SQL {
  const now = toIso(deps.clock.now());
  // Hex digits only: the array literal needs no quoting.
  const hashes = codes.map((code) => recoveryCodeHash(deps, userId, normalizeRecoveryCode(code)!).toString("hex"));
  return sql`INSERT INTO recovery_codes (user_id, code_hash, created_at)
    SELECT ${userId}::uuid, decode(h, 'hex'), ${now}::timestamptz FROM unnest(${`{${hashes.join(",")}}`}::text[]) AS h
    WHERE ${condition}`;
}

/** Marks one unused code used (a CTE body returning `user_id`): at most one request can. */
export function useRecoveryCodeSql(deps: Deps, userId: string, normalized: string): SQL {
  return sql`UPDATE recovery_codes SET used_at = ${toIso(deps.clock.now())}::timestamptz
    WHERE user_id = ${userId}::uuid AND code_hash = ${recoveryCodeHash(deps, userId, normalized)}::bytea AND used_at IS NULL
    RETURNING user_id`;
}
