import { sql } from "drizzle-orm";
import { index, integer, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { bytea } from "./types";
import { users } from "./users.sql";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * One row per signed-in device. The refresh token is never stored: only the SHA-256 of its secret
 * and its generation, which is enough to rotate it, to recognise its immediate parent inside the
 * grace window, and to prove that an older token belongs to this session's chain (reuse detection).
 */
export const sessions = pgTable(
  "sessions",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: timestamptz("created_at").notNull(),
    lastUsedAt: timestamptz("last_used_at").notNull(),
    idleExpiresAt: timestamptz("idle_expires_at").notNull(),
    absoluteExpiresAt: timestamptz("absolute_expires_at").notNull(),
    revokedAt: timestamptz("revoked_at"),
    revokedReason: text("revoked_reason"),
    userAgent: text("user_agent"),
    ip: text("ip"),
    refreshHash: bytea("refresh_hash").notNull(),
    refreshGeneration: integer("refresh_generation").notNull().default(0),
    rotatedAt: timestamptz("rotated_at"),
    /**
     * Per-session refresh rate limit, counted by the same UPDATE that rotates (no extra round trip):
     * rotations since `refresh_window_started_at`, refused past the configured limit.
     */
    refreshWindowStartedAt: timestamptz("refresh_window_started_at"),
    refreshWindowCount: integer("refresh_window_count").notNull().default(0),
    /** How the user proved who they are when the session began (RFC 8176 values): the tokens' `amr`. */
    amr: text("amr").array().notNull().default(sql`'{pwd}'::text[]`),
  },
  (t) => [
    index("sessions_user_id_idx").on(t.userId),
    // Rebuilding the Redis revocation list reads the recently revoked sessions.
    index("sessions_revoked_at_idx").on(t.revokedAt).where(sql`${t.revokedAt} is not null`),
    // The purge job deletes by absolute expiry.
    index("sessions_absolute_expires_at_idx").on(t.absoluteExpiresAt),
  ],
);

export type SessionRow = typeof sessions.$inferSelect;
