import type { PasswordCheckError } from "@authlith/core";
import { publicError } from "../trpc";

/** A refusal by a rate limit, with when to retry. */
export const tooManyRequests = (retryAfterSeconds: number | undefined) =>
  publicError("TOO_MANY_REQUESTS", "Too many attempts; try again later", { reason: "RATE_LIMITED", retryAfterSeconds: retryAfterSeconds ?? 60 });

/** A wrong password for a sensitive operation is FORBIDDEN, not UNAUTHORIZED: the session is fine, the proof is not. */
export function passwordCheckError(code: PasswordCheckError | "REAUTHENTICATION_REQUIRED", retryAfterSeconds: number | undefined) {
  if (code === "RATE_LIMITED") return tooManyRequests(retryAfterSeconds);
  if (code === "REAUTHENTICATION_REQUIRED") {
    return publicError("FORBIDDEN", "Sign in again, or confirm with your password", { reason: "REAUTHENTICATION_REQUIRED" });
  }
  return publicError("FORBIDDEN", "The password is not correct", { reason: "INVALID_PASSWORD" });
}
