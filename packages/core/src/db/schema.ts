export * from "./users.sql";
export * from "./sessions.sql";
export * from "./audit.sql";
export * from "./account-tokens.sql";
export * from "./mfa.sql";
