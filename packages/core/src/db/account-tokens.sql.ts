import { index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { bytea } from "./types";
import { users } from "./users.sql";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * Single-use tokens sent by mail (password reset; later email verification and change). The
 * token itself is never stored: only the SHA-256 of its purpose and secret, so a token is bound
 * to what it was issued for. `used_at` is set once, by the statement that redeems it.
 */
export const accountTokens = pgTable(
  "account_tokens",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose").notNull(),
    /** The address a token is about, when that is not the account's own (an email change's new address). */
    email: text("email"),
    tokenHash: bytea("token_hash").notNull(),
    createdAt: timestamptz("created_at").notNull(),
    expiresAt: timestamptz("expires_at").notNull(),
    usedAt: timestamptz("used_at"),
  },
  (t) => [
    uniqueIndex("account_tokens_token_hash_key").on(t.tokenHash),
    index("account_tokens_user_purpose_idx").on(t.userId, t.purpose),
    // The purge deletes by expiry.
    index("account_tokens_expires_at_idx").on(t.expiresAt),
  ],
);

export type AccountTokenRow = typeof accountTokens.$inferSelect;
