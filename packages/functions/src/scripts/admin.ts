import { disableAccount, enableAccount, type Deps } from "@authlith/core";
import { randomUUID } from "node:crypto";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { lambdaEnv, parseEnvConfig } from "../config";
import { MIGRATIONS_FOLDER, withDevSecrets } from "../dev-server";
import { createRuntime } from "../runtime";

const USAGE = `usage: npm run admin -- disable <email> [reason...]
       npm run admin -- enable <email>`;

/**
 * The operator's commands. `disable` ends every session of the account at once (its access
 * tokens are refused on their next request) and keeps it from signing in or resetting its
 * password; `enable` lifts that. Returns the exit code; writes one line of outcome.
 */
export async function adminCommand(deps: Deps, argv: readonly string[], write: (line: string) => void): Promise<number> {
  const [command, email, ...rest] = argv;
  if ((command !== "disable" && command !== "enable") || !email) {
    write(USAGE);
    return 2;
  }
  const meta = { ip: "admin", userAgent: "authlith-admin", requestId: randomUUID() };
  const result = command === "disable" ? await disableAccount(deps, meta, { email, reason: rest.join(" ") || undefined }) : await enableAccount(deps, meta, { email });
  if (!result.ok) {
    write(`no account with the email ${email}`);
    return 1;
  }
  const { userId, changed, revokedSessions } = result.value;
  if (command === "disable") write(`${changed ? "disabled" : "already disabled:"} ${userId}; ${revokedSessions} session(s) ended`);
  else write(`${changed ? "enabled" : "already enabled:"} ${userId}`);
  return 0;
}

/**
 * With DATABASE_URL (and REDIS_URL), or the SST links under `sst shell --stage <stage>`, against
 * those; without, against the dev server's PGlite database in AUTHLITH_DATA_DIR (stop the dev
 * server first: PGlite serves one process). The dev server's in-process revocation list catches up
 * from Postgres within AUTHLITH_REVOCATION_RESYNC_SECONDS.
 */
async function main() {
  let env = lambdaEnv(["Database", "Redis", "SigningKeys", "HmacSecret"]);
  let embedded;
  if (!env.DATABASE_URL) {
    const dataDir = resolve(env.AUTHLITH_DATA_DIR ?? ".data");
    env = await withDevSecrets({ AUTHLITH_ISSUER: "http://localhost:3000", ...env }, dataDir);
    const { createPgliteDb } = await import("@authlith/core/db/pglite");
    const pglite = await createPgliteDb({ dataDir: join(dataDir, "pglite"), migrationsFolder: MIGRATIONS_FOLDER });
    embedded = { db: pglite.db, close: pglite.close };
  }
  const runtime = await createRuntime(parseEnvConfig({ LOG_LEVEL: "warn", ...env }), embedded ? { db: embedded } : {});
  try {
    process.exitCode = await adminCommand(runtime.deps, process.argv.slice(2), (line) => process.stdout.write(`${line}\n`));
  } finally {
    await runtime.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
