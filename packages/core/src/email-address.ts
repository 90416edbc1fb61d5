import { hmacSha256 } from "./crypto";
import type { Deps } from "./deps";

/** The form of an email used for uniqueness and look-ups. */
export const canonicalEmail = (email: string): string => email.trim().normalize("NFC").toLowerCase();

/** An address as stored and mailed: trimmed and NFC, its case kept. */
export const storedEmail = (email: string): string => email.trim().normalize("NFC");

/**
 * A pseudonymous, stable identifier for an email, for rate-limit keys and audit records of
 * sign-in attempts: the same for known and unknown addresses, and not reversible without the key.
 */
export const emailSubject = (deps: Pick<Deps, "hmacKey">, canonical: string): string =>
  hmacSha256(deps.hmacKey, "authlith/subject/email\0", canonical).toString("base64url").slice(0, 32);
