import type { PasswordHasher } from "./password";
import { bloomMembership } from "./password-blocklist-filter";
import { PASSWORD_BLOCKLIST } from "./password-blocklist.data";

/**
 * The one password policy (docs/security.md §1–2), applied at sign-up, reset and change; the input schemas
 * and the error messages are built from it. Length counts code points after NFKC, with a
 * configurable minimum (8–64) and a fixed maximum; no composition rules; no truncation. A lone
 * surrogate is refused outright: text encoding would turn it into U+FFFD, so two different
 * inputs would become one password. A password on the offline blocklist (≈ 49,000 common and
 * breached passwords) is refused, and so is one that is little more than the user's email, name
 * or the service's name.
 */
export const PASSWORD_LENGTH = { min: 8, max: 256, configurableMinUpTo: 64 } as const;

export type PasswordProblem = "TOO_SHORT" | "TOO_LONG" | "INVALID_CHARACTER" | "COMMON" | "CONTEXT";

export interface PasswordPolicy {
  /** Minimum length in code points, within [8, 64]. */
  minLength: number;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { minLength: PASSWORD_LENGTH.min };

const LONE_SURROGATE = /\p{Cs}/u;
const codePoints = (text: string) => [...text].length;

/** NFKC, so the same password typed on two keyboards is the same password. Hash and verify this. */
export const normalizePassword = (password: string): string => password.normalize("NFKC");

/** Whether the input holds text that has no encoding of its own (an unpaired UTF-16 surrogate). */
export const hasLoneSurrogate = (password: string): boolean => LONE_SURROGATE.test(password);

/** What can be judged without context: characters and length. The input schemas use this. */
export function passwordShapeProblem(password: string, minLength: number = PASSWORD_LENGTH.min): PasswordProblem | null {
  if (hasLoneSurrogate(password)) return "INVALID_CHARACTER";
  const length = codePoints(normalizePassword(password));
  if (length < minLength) return "TOO_SHORT";
  if (length > PASSWORD_LENGTH.max) return "TOO_LONG";
  return null;
}

const isBlocklisted = bloomMembership(PASSWORD_BLOCKLIST);

/** Words a password must not be built from: the email's local part and its pieces, the domain's names, the user's name, the service's name. */
export function passwordContextWords(input: { email: string; name?: string | null; service?: readonly string[] }): string[] {
  const lower = (text: string) => text.normalize("NFKC").toLowerCase();
  const email = lower(input.email.trim());
  const at = email.lastIndexOf("@");
  const local = at === -1 ? email : email.slice(0, at);
  const domain = at === -1 ? "" : email.slice(at + 1);
  const words = [
    local,
    ...local.split(/[^\p{L}\p{N}]+/u),
    ...domain.split(".").slice(0, -1),
    ...(input.name ? lower(input.name).split(/[^\p{L}\p{N}]+/u) : []),
    ...(input.service ?? ["authlith"]).map(lower),
  ];
  // Longest first, so "alice.smith" is taken out whole before "alice".
  return [...new Set(words.filter((word) => codePoints(word) >= 3))].sort((a, b) => codePoints(b) - codePoints(a));
}

/**
 * The full policy. A password is "built from context" when what is left after taking out every
 * context word is shorter than the minimum: `alice2024!` for alice@example.com is, and a
 * passphrase that happens to contain a name is not.
 */
export function passwordProblem(password: string, policy: PasswordPolicy, context: readonly string[] = []): PasswordProblem | null {
  const shape = passwordShapeProblem(password, policy.minLength);
  if (shape) return shape;
  const normalized = normalizePassword(password);
  if (isBlocklisted(normalized)) return "COMMON";
  let rest = normalized.toLowerCase();
  for (const word of context) rest = rest.split(word).join("");
  if (context.length && codePoints(rest) < policy.minLength) return "CONTEXT";
  return null;
}

/** The message a client sees for each problem (field `password`). */
export function passwordMessage(problem: PasswordProblem, minLength: number = PASSWORD_LENGTH.min): string {
  switch (problem) {
    case "TOO_SHORT":
      return `Password must be at least ${minLength} characters`;
    case "TOO_LONG":
      return `Password must be at most ${PASSWORD_LENGTH.max} characters`;
    case "INVALID_CHARACTER":
      return "Password contains an invalid character (an unpaired surrogate)";
    case "COMMON":
      return "This password is too common: choose one that is harder to guess";
    case "CONTEXT":
      return "Password must not be made from your email address, your name or the service's name";
  }
}

/**
 * Whether `password` is the one `hash` was made from, normalised as it was when set. A lone
 * surrogate never matches: no password can hold one (the policy refuses it), and text encoding
 * would otherwise make it equal to U+FFFD and to every other lone surrogate. The hash is verified
 * either way, so both answers cost the same.
 */
export async function passwordMatches(hasher: Pick<PasswordHasher, "verify">, hash: string, password: string): Promise<boolean> {
  const valid = await hasher.verify(hash, normalizePassword(password));
  return valid && !hasLoneSurrogate(password);
}
