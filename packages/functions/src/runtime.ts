import {
  createDeps,
  createLogger,
  createMemoryStore,
  createPostgresDb,
  createRedisStore,
  createDevOutbox,
  createSesMailer,
  type Clock,
  type DevOutbox,
  type Mailer,
  type Db,
  type Logger,
  type Deps,
  type EphemeralStore,
} from "@authlith/core";
import { createApiHandler, type ApiHandler } from "./app";
import type { RuntimeConfig } from "./config";

export interface Runtime {
  deps: Deps;
  /** The development outbox, when mail is not sent through SES (dev server, tests). */
  outbox: DevOutbox | null;
  handle: ApiHandler;
  close(): Promise<void>;
}

/**
 * Builds clients and dependencies from configuration: once per Lambda container, once per dev
 * server. `db` and `store` may be supplied (PGlite and the in-process store on a laptop, test
 * databases in tests); otherwise postgres.js and the Redis client are created from the configuration.
 */
export async function createRuntime(
  config: RuntimeConfig,
  provided: { db?: { db: Db; close(): Promise<void> }; store?: EphemeralStore; clock?: Clock; log?: Logger; mailer?: Mailer; outbox?: DevOutbox } = {},
): Promise<Runtime> {
  const log = provided.log ?? createLogger({ level: config.logLevel, base: { service: "authlith" } });
  if (!provided.db && !config.database) throw new Error("authlith: DATABASE_URL (or a linked Database) is required");
  const database = provided.db ?? createPostgresDb(config.database!);
  const store =
    provided.store ??
    (config.redis
      ? createRedisStore({ url: config.redis.url, keyPrefix: config.redis.keyPrefix })
      : createMemoryStore({ clock: provided.clock }));
  const outbox =
    provided.outbox ?? (provided.mailer || config.mail || config.lambda ? null : createDevOutbox({ print: (line) => log.info("mail.outbox", { line }) }));
  const mailer = provided.mailer ?? (config.mail ? createSesMailer({ from: config.mail.from }) : (outbox ?? unconfiguredMailer));
  // Connect while the keys are imported; a failure here is not fatal (each request has fallbacks).
  void store.ping().catch(() => log.warn("startup.redis_unavailable"));
  const deps = await createDeps({
    config: config.auth,
    signingKeys: config.secrets.signingKeys,
    hmacSecret: config.secrets.hmacSecret,
    ...(config.secrets.mfaSecrets ? { mfaSecrets: config.secrets.mfaSecrets } : {}),
    db: database.db,
    store,
    log,
    clock: provided.clock,
    mailer,
    // One connection stays free of sign-ins holding theirs across the hash (accounts.ts).
    concurrentSignIns: Math.max(1, (config.database?.maxConnections ?? 2) - 1),
  });
  return {
    deps,
    outbox,
    handle: createApiHandler(deps, config.http),
    async close() {
      await Promise.allSettled([store.close(), database.close()]);
    },
  };
}

/** On Lambda without AUTHLITH_MAIL_FROM: every mail fails, and is logged as mail.failed. */
const unconfiguredMailer: Mailer = {
  send: async () => {
    throw new Error("mail is not configured (AUTHLITH_MAIL_FROM)");
  },
};
