/**
 * The choices sst.config.ts makes per stage and from deploy-time configuration, in a plain module
 * (no SST, no Pulumi) so that sst.config.ts and the tests read the very same values, and the
 * dependency test runs on a laptop without `sst install`.
 */

/** Stages deployed as production: managed NAT, Multi-AZ, RDS Proxy, retained and protected data. */
export const PRODUCTION_STAGES: readonly string[] = ["prod", "production"];

export const isProductionStage = (stage: string | undefined): boolean => stage !== undefined && PRODUCTION_STAGES.includes(stage);

/**
 * Packages SST installs into the function's node_modules (for the target architecture) instead
 * of bundling: native addons. Their versions come from packages/functions/package.json.
 */
export const NATIVE_PACKAGES = ["@node-rs/argon2"] as const;

/**
 * Packages the Lambda Node.js runtime provides (its AWS SDK v3), left out of the API bundle: the
 * SES client is ≈ 400 KiB minified and loaded only when a mail is sent, so bundling it would make
 * every cold start parse it for nothing.
 */
export const RUNTIME_PROVIDED = ["@aws-sdk/client-sesv2"] as const;

/** Handlers, relative to the repository root (SST resolves them from there). */
export const HANDLERS = {
  api: "packages/functions/src/handler.handler",
  migrate: "packages/functions/src/migrate-handler.handler",
  purge: "packages/functions/src/purge.handler",
} as const;

/** The migrator and the purge job: I/O-bound, no argon2. */
export const JOB_FUNCTION = {
  runtime: "nodejs22.x",
  architecture: "arm64",
  memory: "512 MB",
} as const;

/** `sst dev` links to these local servers instead of creating RDS and ElastiCache (README "Deploy"). */
export const LOCAL_POSTGRES = { host: "localhost", port: 5432, username: "postgres", password: "postgres", database: "authlith" } as const;
export const LOCAL_REDIS = { host: "localhost", port: 6379 } as const;

export interface StageSettings {
  production: boolean;
  /** "ec2" is a t4g.nano fck-nat instance per AZ that doubles as the bastion; "managed" is NAT Gateway. */
  nat: "ec2" | "managed";
  postgres: {
    instance: string;
    multiAz: boolean;
    /** RDS Proxy: pools connections across Lambda containers and shortens Multi-AZ failover. */
    proxy: boolean;
    backupRetentionDays: number;
    deletionProtection: boolean;
  };
  redis: { instance: string };
  logRetention: "1 week" | "3 months";
  /** How often the purge job runs. */
  purgeSchedule: "rate(1 hour)" | "rate(1 day)";
  /**
   * Caps on cost and abuse (README "Deploy": the arithmetic). API Gateway throttles the stage
   * (requests per second, steady and burst) before anything runs; the Auth function's reserved
   * concurrency bounds how many argon2 hashes can run at once, however many IPs a flood uses.
   */
  limits: { apiRatePerSecond: number; apiBurst: number; authConcurrency: number };
}

/** Production's caps: 200 requests per second steady, bursts of 400, 50 functions at once. */
export const PRODUCTION_LIMITS = { apiRatePerSecond: 200, apiBurst: 400, authConcurrency: 50 } as const;
/** A personal stage's: enough for a developer and the browser tests, a tenth of production. */
export const PERSONAL_LIMITS = { apiRatePerSecond: 20, apiBurst: 40, authConcurrency: 5 } as const;

export function stageSettings(stage: string): StageSettings {
  const production = isProductionStage(stage);
  return production
    ? {
        production,
        nat: "managed",
        postgres: { instance: "t4g.small", multiAz: true, proxy: true, backupRetentionDays: 14, deletionProtection: true },
        redis: { instance: "t4g.micro" },
        logRetention: "3 months",
        purgeSchedule: "rate(1 hour)",
        limits: { ...PRODUCTION_LIMITS },
      }
    : {
        production,
        nat: "ec2",
        postgres: { instance: "t4g.micro", multiAz: false, proxy: false, backupRetentionDays: 1, deletionProtection: false },
        redis: { instance: "t4g.micro" },
        logRetention: "1 week",
        purgeSchedule: "rate(1 day)",
        limits: { ...PERSONAL_LIMITS },
      };
}

export interface DeployConfig {
  /** Origins allowed to call with credentials (AUTHLITH_ALLOWED_ORIGINS), normalised. */
  allowedOrigins: string[];
  /** Custom domain for the API (AUTHLITH_DOMAIN), with a certificate when DNS is not on Route 53. */
  domain?: { name: string; certArn?: string };
  signingAlg: "ES256" | "RS256";
  /** Mail through SES (AUTHLITH_MAIL_SENDER): an address, or a domain SST verifies in Route 53. Unset: no mail is sent, each one is logged as failed. */
  mail?: { sender: string };
  /** Where links in mails point (AUTHLITH_APP_URL); the function defaults it to the first allowed origin. */
  appUrl?: string;
  /** Who the alarms mail (AUTHLITH_ALARM_EMAIL), through an SNS email subscription they confirm once. */
  alarmEmail?: string;
  /**
   * Networks allowed to SSH to the bastion for `sst tunnel` (AUTHLITH_BASTION_CIDRS, comma
   * separated). Empty (the default): no SSH at all, and no tunnel.
   */
  bastionCidrs: string[];
}

/** The VPC's address range (sst.aws.Vpc's default; the graph test checks it). */
export const VPC_CIDR = "10.0.0.0/16";

const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;

export type DeployEnv = Record<string, string | undefined>;

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/** A URL a browser opens: https, or http outside production; the error names the variable. */
function webUrl(variable: string, value: string, production: boolean) {
  const url = (() => {
    try {
      return new URL(value);
    } catch {
      throw new Error(`${variable}: "${value}" is not a URL`);
    }
  })();
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !production)) {
    throw new Error(`${variable}: "${value}" must be https${production ? "" : " (or http outside production)"}`);
  }
  return url;
}

/**
 * Reads and validates the deploy-time configuration (environment variables of `sst deploy`, or
 * `.env.<stage>`, which SST loads). A production stage must state its allowed origins (an empty
 * value is allowed and means API-only): a deploy that forgot them would cut every browser off.
 */
export function readDeployConfig(env: DeployEnv, stage: string): DeployConfig {
  const production = isProductionStage(stage);
  const rawOrigins = env.AUTHLITH_ALLOWED_ORIGINS;
  if (production && rawOrigins === undefined) {
    throw new Error(
      `AUTHLITH_ALLOWED_ORIGINS is not set for stage "${stage}". Set it to the comma-separated origins of your app ` +
        `(e.g. https://app.example.com), or to an empty string for an API without browser clients.`,
    );
  }
  const allowedOrigins = (rawOrigins ?? "http://localhost:5173")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((value) => webUrl("AUTHLITH_ALLOWED_ORIGINS", value, production).origin);

  const domainName = env.AUTHLITH_DOMAIN?.trim();
  if (domainName && !HOST_NAME.test(domainName)) {
    throw new Error(`AUTHLITH_DOMAIN: "${domainName}" is not a host name`);
  }
  const certArn = env.AUTHLITH_DOMAIN_CERT_ARN?.trim() || undefined;
  if (certArn && !domainName) throw new Error("AUTHLITH_DOMAIN_CERT_ARN is set without AUTHLITH_DOMAIN");

  const signingAlg = env.AUTHLITH_SIGNING_ALG ?? "ES256";
  if (signingAlg !== "ES256" && signingAlg !== "RS256") throw new Error("AUTHLITH_SIGNING_ALG must be ES256 or RS256");

  const sender = env.AUTHLITH_MAIL_SENDER?.trim() || undefined;
  if (sender && !/^[^@\s<>]+@[^@\s<>]+\.[a-z]{2,63}$/i.test(sender) && !HOST_NAME.test(sender)) {
    throw new Error(`AUTHLITH_MAIL_SENDER: "${sender}" is neither an email address nor a domain`);
  }
  const alarmEmail = env.AUTHLITH_ALARM_EMAIL?.trim() || undefined;
  if (alarmEmail && !/^[^@\s<>]+@[^@\s<>]+\.[a-z]{2,63}$/i.test(alarmEmail)) throw new Error(`AUTHLITH_ALARM_EMAIL: "${alarmEmail}" is not an email address`);
  const bastionCidrs = (env.AUTHLITH_BASTION_CIDRS ?? "").split(",").map((c) => c.trim()).filter(Boolean);
  for (const cidr of bastionCidrs) {
    if (!IPV4_CIDR.test(cidr)) throw new Error(`AUTHLITH_BASTION_CIDRS: "${cidr}" is not an IPv4 CIDR block`);
    if (cidr.endsWith("/0")) throw new Error(`AUTHLITH_BASTION_CIDRS: "${cidr}" would open SSH to the whole internet`);
  }
  const rawAppUrl = env.AUTHLITH_APP_URL?.trim() || undefined;
  const appUrl = rawAppUrl ? webUrl("AUTHLITH_APP_URL", rawAppUrl, production).toString().replace(/\/+$/, "") : undefined;

  return {
    allowedOrigins: [...new Set(allowedOrigins)],
    domain: domainName ? { name: domainName.toLowerCase(), certArn } : undefined,
    signingAlg,
    ...(sender ? { mail: { sender: sender.toLowerCase() } } : {}),
    ...(appUrl ? { appUrl } : {}),
    ...(alarmEmail ? { alarmEmail } : {}),
    bastionCidrs,
  };
}

/**
 * What production is watched for (CloudWatch alarms to an SNS topic; README "Deploy"): thresholds
 * per 5-minute period unless said otherwise. Also created on a personal stage that sets
 * AUTHLITH_ALARM_EMAIL.
 */
export const ALARMS = {
  /** Invocations of Auth that failed (a 500 or a crash; answers like 401 and 503 are not errors). */
  authErrors: 5,
  /** Invocations refused because the reserved concurrency was reached. */
  authThrottles: 1,
  /** p99 duration of Auth, milliseconds, three periods in a row. */
  authP99Ms: 1500,
  /** 5xx answers of the API (its own 503s and API Gateway's). */
  api5xx: 10,
  /** RDS CPU, percent, three periods in a row. */
  databaseCpuPercent: 80,
  /** RDS free storage below this (bytes): 2 GiB of the 20 GB volume. */
  databaseFreeStorageBytes: 2 * 1024 ** 3,
  /** RDS connections above this: most of a t4g.micro's (≈ 85) and well under a t4g.small's. */
  databaseConnections: 70,
  /** Redis memory used, percent of the node's. */
  redisMemoryPercent: 80,
  /** Any failed run of the migrator or the purge. */
  jobErrors: 1,
} as const;
