import { pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey(),
    /** As the user typed it (trimmed, NFC): where mail goes. */
    email: text("email").notNull(),
    /** Case-folded form; uniqueness and look-ups use this one. */
    emailCanonical: text("email_canonical").notNull(),
    emailVerifiedAt: timestamptz("email_verified_at"),
    /** argon2id PHC string; its parameters travel with it. */
    passwordHash: text("password_hash").notNull(),
    name: text("name"),
    createdAt: timestamptz("created_at").notNull(),
    updatedAt: timestamptz("updated_at").notNull(),
    disabledAt: timestamptz("disabled_at"),
  },
  (t) => [uniqueIndex("users_email_canonical_key").on(t.emailCanonical)],
);

export type UserRow = typeof users.$inferSelect;
