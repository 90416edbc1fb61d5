import { DEVICE_TOKEN_TTL_SECONDS, type AuthSuccess } from "@authlith/core";
import { clearRefreshCookie, deviceCookie, refreshCookie } from "./http/cookies";
import { publicError, type Context } from "./trpc";

/**
 * How the refresh token travels (docs/security.md §21). Browsers: an HttpOnly cookie, never the body.
 * Native apps and servers opt in to the body with this request header.
 */
export const TRANSPORT_HEADER = "x-authlith-transport";

export type Transport = "cookie" | "token";

export const requestedTransport = (ctx: Context): Transport =>
  ctx.headers.get(TRANSPORT_HEADER)?.trim().toLowerCase() === "token" ? "token" : "cookie";

/** What sign-in, sign-up and refresh return. `refreshToken` only for the token transport. */
export interface TokenResponse {
  user: AuthSuccess["user"];
  session: AuthSuccess["session"];
  tokenType: "Bearer";
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken?: string;
  /** Token transport, sign-in and sign-up: send it back as `deviceToken` on later sign-ins. */
  deviceToken?: string;
}

export function deliverTokens(ctx: Context, result: AuthSuccess, transport: Transport): TokenResponse {
  const body: TokenResponse = {
    user: result.user,
    session: result.session,
    tokenType: "Bearer",
    accessToken: result.accessToken,
    accessTokenExpiresAt: result.accessTokenExpiresAt,
  };
  if (transport === "token") {
    return { ...body, refreshToken: result.refreshToken, ...(result.deviceToken ? { deviceToken: result.deviceToken } : {}) };
  }
  const maxAgeSeconds = (result.refreshTokenExpiresAtMs - ctx.deps.clock.now()) / 1000;
  ctx.responseHeaders.append("set-cookie", refreshCookie(ctx.http.cookie, result.refreshToken, maxAgeSeconds));
  if (result.deviceToken) {
    ctx.responseHeaders.append("set-cookie", deviceCookie(ctx.http.cookie.deviceName, result.deviceToken, DEVICE_TOKEN_TTL_SECONDS));
  }
  return body;
}

export function clearCookie(ctx: Context): void {
  ctx.responseHeaders.append("set-cookie", clearRefreshCookie(ctx.http.cookie));
}

/**
 * The refresh token a request carries: from the input (token transport), else from the cookie.
 * A cookie is a credential the browser attaches by itself, so using it requires an allowed
 * `Origin` (CSRF, docs/security.md §21); JSON-only bodies and CORS preflights are the other half.
 */
export function presentedRefreshToken(
  ctx: Context,
  inputToken: string | undefined,
): { token: string; transport: Transport } | null {
  if (inputToken) return { token: inputToken, transport: "token" };
  const cookie = ctx.cookies.get(ctx.http.cookie.name);
  if (!cookie) return null;
  if (!ctx.origin.value || !ctx.origin.allowed) {
    throw publicError("FORBIDDEN", "Cookie-authenticated requests must come from an allowed origin", {
      reason: "ORIGIN_NOT_ALLOWED",
    });
  }
  return { token: cookie, transport: "cookie" };
}
