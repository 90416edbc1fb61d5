import { sql } from "drizzle-orm";
import { index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { users } from "./users.sql";

/** Security-relevant events, kept in Postgres (ASVS 16): who, what, from where, in which request. */
export const auditEvents = pgTable(
  "audit_events",
  {
    id: uuid("id").primaryKey(),
    type: text("type").notNull(),
    userId: uuid("user_id").references(() => users.id, { onDelete: "set null" }),
    sessionId: uuid("session_id"),
    /**
     * HMAC of the case-folded email for sign-in attempts, known or not: lets the per-account
     * failure count fall back to Postgres when Redis is down, without storing unknown addresses.
     */
    subject: text("subject"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
    details: jsonb("details").$type<Record<string, unknown>>(),
  },
  (t) => [
    index("audit_events_user_id_created_at_idx").on(t.userId, t.createdAt),
    index("audit_events_subject_created_at_idx")
      .on(t.subject, t.createdAt)
      .where(sql`${t.subject} is not null`),
    index("audit_events_created_at_idx").on(t.createdAt),
  ],
);
