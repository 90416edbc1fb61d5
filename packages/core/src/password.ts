import { createRequire } from "node:module";
import { randomSecret } from "./crypto";

type Argon2 = typeof import("@node-rs/argon2");
let argon2: Argon2 | undefined;
/**
 * The native argon2 addon, loaded on first use with `require`: a cold start that only verifies
 * tokens never pays for it, and `require` skips the ESM loader's CommonJS translation (≈ 20 ms
 * against ≈ 4 ms). It stays outside the bundle (SST installs it for the Lambda's architecture).
 */
const loadArgon2 = (): Argon2 => (argon2 ??= createRequire(import.meta.url)("@node-rs/argon2") as Argon2);
const hash: Argon2["hash"] = (...args) => loadArgon2().hash(...args);
const verify: Argon2["verify"] = (...args) => loadArgon2().verify(...args);

/** argon2id cost. OWASP's second recommended set; passed explicitly (the library's defaults differ). */
export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const DEFAULT_ARGON2: Argon2Params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Never throws on a malformed stored hash: that is a failed verification. */
  verify(storedHash: string, password: string): Promise<boolean>;
  /** Whether a stored hash was made with weaker (or other) parameters than the current ones. */
  needsRehash(storedHash: string): boolean;
  /**
   * Verifies against a hash of a random password made with the current parameters: what an
   * unknown email costs, so it takes as long as a known one (docs/security.md §6).
   */
  burn(password: string): Promise<void>;
}

// A hash of a random, discarded password at DEFAULT_ARGON2. Precomputed so that a cold start does
// not pay for one; it matches nothing, it only makes unknown emails cost one real verification.
export const DUMMY_HASH_DEFAULT =
  "$argon2id$v=19$m=19456,t=2,p=1$pM8tarbJmZkWXf46gVgquA$XV7a+shuyLKz+NR7I5cbJG/iDrztBv9sIX3StfPzHBI";

export function createArgon2Hasher(params: Argon2Params = DEFAULT_ARGON2): PasswordHasher {
  // Algorithm.Argon2id is an ambient const enum (2), which isolated modules cannot read.
  const options = { algorithm: 2 as const, ...params, outputLen: 32 };
  const isDefault =
    params.memoryCost === DEFAULT_ARGON2.memoryCost &&
    params.timeCost === DEFAULT_ARGON2.timeCost &&
    params.parallelism === DEFAULT_ARGON2.parallelism;
  let dummy: Promise<string> | null = isDefault ? Promise.resolve(DUMMY_HASH_DEFAULT) : null;

  const verifySafely = async (storedHash: string, password: string) => {
    try {
      return await verify(storedHash, password);
    } catch {
      return false;
    }
  };

  return {
    hash: (password) => hash(password, options),
    verify: verifySafely,
    needsRehash(storedHash) {
      const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
      if (!match) return true;
      return (
        Number(match[1]) !== params.memoryCost ||
        Number(match[2]) !== params.timeCost ||
        Number(match[3]) !== params.parallelism
      );
    },
    async burn(password) {
      dummy ??= hash(randomSecret(16).toString("base64url"), options);
      await verifySafely(await dummy, password);
    },
  };
}
