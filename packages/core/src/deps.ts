import { accessTokenOptions, createAccessTokenVerifier, type AccessTokenVerifier } from "./access-token";
import type { Clock } from "./clock";
import { systemClock } from "./clock";
import { AuthConfigSchema, type AuthConfig, type AuthConfigInput } from "./config";
import type { Db } from "./db/client";
import { loadKeySet, type KeySet } from "./keys";
import type { Mailer } from "./mail/types";
import { createLogger, type Logger } from "./log";
import { createArgon2Hasher, type PasswordHasher } from "./password";
import { createRevocationList, type RevocationList } from "./revocation";
import type { EphemeralStore } from "./store/types";
import { createSecretBox, type SecretBox } from "./mfa/secret-box";
import { createSlots, type Slots } from "./slots";

/** What every core function receives: built once per cold start, passed in, never global. */
export interface Deps {
  config: AuthConfig;
  db: Db;
  store: EphemeralStore;
  keys: KeySet;
  /** Verifies access tokens (with a per-instance cache of verified tokens). */
  accessTokens: AccessTokenVerifier;
  hasher: PasswordHasher;
  /** Server-held key for refresh-token derivation and pseudonymous identifiers (≥ 32 bytes). */
  hmacKey: Buffer;
  clock: Clock;
  log: Logger;
  revocations: RevocationList;
  mailer: Mailer;
  /** Encrypts second-factor secrets at rest. */
  secretBox: SecretBox;
  /** Sign-ins that may hold a database connection across their hash at once (accounts.ts). */
  signInSlots: Slots;
}

/** Who is asking: from API Gateway's request context, never from client-controlled headers. */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
  requestId: string;
}

export interface DepsInput {
  config: AuthConfigInput | AuthConfig;
  /** The signing key set (JWK Set with private keys), as parsed JSON. */
  signingKeys: unknown;
  /** At least 32 bytes of secret key material, base64url. */
  hmacSecret: string;
  /**
   * Secrets (base64url, ≥ 32 bytes each, newest first) that second-factor secrets are encrypted
   * under; the first encrypts, all decrypt. Default: one derived from `hmacSecret`.
   */
  mfaSecrets?: readonly string[];
  db: Db;
  store: EphemeralStore;
  clock?: Clock;
  log?: Logger;
  hasher?: PasswordHasher;
  mailer: Mailer;
  /**
   * Sign-ins at once that hold a connection across their hash: one less than the pool's
   * connections (at least 1), so one is always left for everything else. Default 1.
   */
  concurrentSignIns?: number;
}

export async function createDeps(input: DepsInput): Promise<Deps> {
  const config = AuthConfigSchema.parse(input.config);
  const hmacKey = Buffer.from(input.hmacSecret, "base64url");
  if (hmacKey.length < 32) throw new Error("hmac secret: expected at least 32 bytes, base64url-encoded");
  const keys = await loadKeySet(input.signingKeys, {
    signingAlg: config.signingAlg,
    retainAfterSupersededMs: (config.accessTokenTtlSeconds + config.clockToleranceSeconds) * 1000 + 60_000,
  });
  const clock = input.clock ?? systemClock;
  const log = input.log ?? createLogger();
  const base = { config, db: input.db, store: input.store, keys, hmacKey, clock, log };
  return {
    ...base,
    accessTokens: createAccessTokenVerifier(keys, accessTokenOptions(config)),
    hasher: input.hasher ?? createArgon2Hasher(config.argon2),
    revocations: createRevocationList(base),
    mailer: input.mailer,
    secretBox: createSecretBox((input.mfaSecrets ?? [input.hmacSecret]).map((secret) => Buffer.from(secret, "base64url"))),
    signInSlots: createSlots(input.concurrentSignIns ?? 1),
  };
}
