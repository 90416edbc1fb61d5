import { randomBytes } from "node:crypto";

/**
 * 32 random bytes, base64url, never starting with "-": printed as a command-line argument
 * (`sst secret set HmacSecret <value>`), such a value would be read as an option.
 */
export function newHmacSecret(): string {
  for (;;) {
    const secret = randomBytes(32).toString("base64url");
    if (!secret.startsWith("-")) return secret;
  }
}
