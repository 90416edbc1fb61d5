/** Parses a Cookie header into a map; the first occurrence of a name wins, malformed pairs are skipped. */
export function parseCookies(header: string | null | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq < 1) continue;
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

export interface RefreshCookieOptions {
  /** `__Host-` prefix: Secure, Path=/, no Domain, so no sibling subdomain can set or shadow it. */
  name: string;
  sameSite: "Lax" | "Strict";
}

/** The refresh-token cookie (docs/security.md §21): HttpOnly, Secure, SameSite, Path=/, no Domain. */
export function refreshCookie(options: RefreshCookieOptions, value: string, maxAgeSeconds: number): string {
  return `${options.name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; HttpOnly; Secure; SameSite=${options.sameSite}`;
}

export const clearRefreshCookie = (options: RefreshCookieOptions): string => refreshCookie(options, "", 0);

/**
 * The known-device cookie: HttpOnly, Secure, SameSite=Strict (only ever needed on a same-site
 * sign-in), a year long. It is not a credential: it only picks the failure budget a sign-in
 * attempt counts against.
 */
export function deviceCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Max-Age=${Math.floor(maxAgeSeconds)}; HttpOnly; Secure; SameSite=Strict`;
}
