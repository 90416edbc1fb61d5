/** The claims the client reads from its own access token: never to trust it, only to schedule. */
interface ScheduleClaims {
  sid?: unknown;
  iat?: unknown;
  exp?: unknown;
}

function decodeClaims(token: string): ScheduleClaims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    // Byte-wise is enough: the claims read here are numbers and an ASCII id (and this runs where
    // TextDecoder may be missing, e.g. some React Native engines).
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof claims === "object" && claims !== null ? (claims as ScheduleClaims) : null;
  } catch {
    return null;
  }
}

export interface AccessTokenTimes {
  /** When this client received the token, by its own clock. */
  receivedAtMs: number;
  /** When the token expires, by this client's clock. */
  expiresAtMs: number;
  /** The session the token belongs to (`sid`), when readable. */
  sessionId: string | null;
}

/**
 * Expiry by the local clock: the token's lifetime (`exp - iat`) counted from when it arrived. A
 * device whose clock is minutes off would otherwise refresh on every call (clock ahead) or keep
 * sending expired tokens (clock behind). Falls back to the server's `accessTokenExpiresAt`.
 */
export function accessTokenTimes(token: string, expiresAtIso: string, receivedAtMs: number): AccessTokenTimes {
  const claims = decodeClaims(token);
  const sessionId = typeof claims?.sid === "string" ? claims.sid : null;
  const { iat, exp } = claims ?? {};
  if (typeof iat === "number" && typeof exp === "number" && exp > iat) {
    return { receivedAtMs, expiresAtMs: receivedAtMs + (exp - iat) * 1000, sessionId };
  }
  const expiresAtMs = Date.parse(expiresAtIso);
  return { receivedAtMs, expiresAtMs: Number.isNaN(expiresAtMs) ? receivedAtMs : expiresAtMs, sessionId };
}
