import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { bytea } from "./types";
import { users } from "./users.sql";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * An account's authenticator app (TOTP, RFC 6238). The secret is stored encrypted (AES-256-GCM,
 * bound to the account by its associated data) under the key named by `key_id`; `last_used_step`
 * is the time step of the last code accepted, so no code is accepted twice. Unconfirmed until the
 * first code proves the app has the secret.
 */
export const totpFactors = pgTable("totp_factors", {
  userId: uuid("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secretCiphertext: bytea("secret_ciphertext").notNull(),
  keyId: text("key_id").notNull(),
  createdAt: timestamptz("created_at").notNull(),
  confirmedAt: timestamptz("confirmed_at"),
  lastUsedStep: bigint("last_used_step", { mode: "number" }),
});

/** Single-use recovery codes: only a keyed hash of each is stored; `used_at` is set once. */
export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    codeHash: bytea("code_hash").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    usedAt: timestamptz("used_at"),
  },
  (t) => [primaryKey({ columns: [t.userId, t.codeHash] })],
);

/** WebAuthn credentials (passkeys). The credential id is unique across accounts. */
export const passkeys = pgTable(
  "passkeys",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    credentialId: bytea("credential_id").notNull(),
    publicKey: bytea("public_key").notNull(),
    /** The authenticator's signature counter: must grow with each use unless it stays 0 (synced passkeys). */
    counter: bigint("counter", { mode: "number" }).notNull().default(0),
    transports: text("transports").array().notNull().default(sql`'{}'::text[]`),
    deviceType: text("device_type").notNull(),
    backedUp: boolean("backed_up").notNull(),
    name: text("name").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    lastUsedAt: timestamptz("last_used_at"),
  },
  (t) => [uniqueIndex("passkeys_credential_id_key").on(t.credentialId), index("passkeys_user_id_idx").on(t.userId)],
);

/**
 * Short-lived, single-use challenges: a sign-in waiting for its second factor (`login`), a passkey
 * sign-in (`passkey_login`) and a passkey registration (`passkey_register`). The id handed out is
 * a random secret; only its SHA-256 is stored. `attempts` counts the codes tried against it.
 */
export const mfaChallenges = pgTable(
  "mfa_challenges",
  {
    idHash: bytea("id_hash").primaryKey(),
    purpose: text("purpose").notNull(),
    userId: uuid("user_id").references(() => users.id, { onDelete: "cascade" }),
    /** The WebAuthn challenge (base64url), for the passkey ceremonies and a login that offers one. */
    webauthnChallenge: text("webauthn_challenge"),
    /** The factors already proven (a login's password: `{pwd}`). */
    amr: text("amr").array().notNull().default(sql`'{}'::text[]`),
    /** The known device that proved the password, if any (its failures were counted apart). */
    deviceId: text("device_id"),
    attempts: integer("attempts").notNull().default(0),
    createdAt: timestamptz("created_at").notNull(),
    expiresAt: timestamptz("expires_at").notNull(),
    consumedAt: timestamptz("consumed_at"),
  },
  (t) => [index("mfa_challenges_expires_at_idx").on(t.expiresAt)],
);

/**
 * Second-factor codes tried per account, across challenges, in the current window: an attacker
 * who has the password cannot open challenge after challenge to guess codes. A success clears it.
 */
export const mfaFailures = pgTable("mfa_failures", {
  userId: uuid("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  windowStartedAt: timestamptz("window_started_at").notNull(),
  attempts: integer("attempts").notNull(),
});
