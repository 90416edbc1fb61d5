import { queryRows } from "@authlith/core/db/client";
import { DEFAULT_PASSWORD_POLICY, passwordProblem } from "@authlith/core/password-policy";
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { randomInt } from "node:crypto";
import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { PROCEDURE_TYPES, type ProcedurePath } from "../src/procedures";
import { appRouter } from "../src/router";
import { authedProcedure, publicProcedure } from "../src/trpc";
import { APP_ORIGIN, bearer, startTestApp, tokenTransport, uniqueEmail, type Reply, type RequestOptions, type TestApp } from "./support/app";
import { softAuthenticator, type SoftCredential } from "./support/authenticator";

/**
 * Property-based inputs for every procedure of the router, sent through the HTTP handler the
 * Lambda and the dev server call (issue 14). Whatever arrives, the answer is never a 5xx, never
 * carries a stack, a path, SQL or a driver message, every error is one of the typed tRPC codes
 * with the details the API promises (field errors, Retry-After, WWW-Authenticate, Allow), and an
 * error leaves the user data exactly as it was: only the audit trail and the failure counters
 * may record it.
 *
 * Each procedure gets 12 fixed runs (its valid call in every fixture variant) and FUZZ_RUNS
 * random ones (default 12); the malformed-request property gets 8 × FUZZ_RUNS. FUZZ_SEED=<n>
 * replays a run (the failure message names it); FUZZ_STATS=1 prints each property's statuses.
 * The server's randomness (tokens, ids) is not replayed, so a failure that depends on it shows up
 * as the same input meeting a state of the same shape.
 */

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31 - 1);
const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const MALFORMED_RUNS = RUNS * 8;
const MAX_BODY_BYTES = 16 * 1024; // config.ts: http.maxBodyBytes
const EVIL_ORIGIN = "https://evil.example.test";

// ---------------------------------------------------------------------------------------------
// The router, as the server sees it: every procedure, its type, whether it needs a token, its input parsers.

interface ProcedureDef {
  _def: { type: "query" | "mutation" | "subscription"; inputs: unknown[]; middlewares: unknown[] };
}
const ROUTER = (appRouter._def as unknown as { procedures: Record<string, ProcedureDef> }).procedures;
const PATHS = Object.keys(ROUTER).sort();
const PUBLIC_MIDDLEWARES = (publicProcedure as unknown as ProcedureDef)._def.middlewares;
const AUTH_MIDDLEWARES = (authedProcedure as unknown as ProcedureDef)._def.middlewares.filter((m) => !PUBLIC_MIDDLEWARES.includes(m));
const procedureDef = (path: string): ProcedureDef["_def"] => ROUTER[path]!._def;
const isAuthed = (path: string) => procedureDef(path).middlewares.some((m) => AUTH_MIDDLEWARES.includes(m));
const hasInput = (path: string) => procedureDef(path).inputs.length > 0;
const methodOf = (path: string) => (procedureDef(path).type === "query" ? "GET" : "POST");

/** Whether the procedure's own input schema refuses `value` (what the server must answer with field errors). */
async function schemaRejects(path: string, value: unknown): Promise<boolean> {
  for (const parser of procedureDef(path).inputs) {
    const standard = (parser as { "~standard"?: { validate(value: unknown): unknown } })["~standard"];
    if (!standard) throw new Error(`${path}: an input parser without the Standard Schema interface`);
    const result = (await standard.validate(value)) as { issues?: unknown };
    if (result.issues) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// What every answer must look like.

/** The codes the server answers with, and their statuses. PARSE_ERROR is not one: malformed JSON is a BAD_REQUEST. */
const TYPED_CODES: Record<string, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_SUPPORTED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
};
const ERROR_KEYS = new Set(["message", "code", "data"]);
const DATA_KEYS = new Set(["code", "httpStatus", "path", "reason", "retryAfterSeconds", "fieldErrors", "attemptsLeft"]);
const AUTH_REASONS = new Set(["MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED", "SESSION_REVOKED"]);
/** BAD_REQUEST messages that need neither a reason nor field errors: a body or URL that could not be read. */
const UNREADABLE_REQUEST = new Set(["Malformed JSON", "Invalid request"]);

/** What must never reach a client: stack frames, file paths, SQL, driver and runtime messages. */
const LEAKS: RegExp[] = [
  /\bat\s+(?:async\s+)?[\w$.<>]+\s+\(/, // "at fn (file:1:2)"
  /\bat\s+(?:file:|node:|\/)/,
  /[\w-]+\.(?:ts|js|mjs|cjs|tsx)\b/,
  /(?:^|[\s"'(])\/(?:work|home|root|usr|tmp|var|opt|app|src|packages|node_modules)\//,
  /node_modules|file:\/\/|node:internal/,
  /\b(?:select|insert|update|delete)\b[\s\S]*\b(?:from|into|set|where|returning)\b/i,
  /\b(?:relation|column|constraint|duplicate key|syntax error at|violates|sqlstate|pg_catalog|42P01|23505)\b/i,
  /\b(?:postgres|pglite|drizzle|ioredis|redis|ECONNREFUSED|ETIMEDOUT|ECONNRESET|argon2|zod|trpc)\b/i,
  /\b(?:TypeError|ReferenceError|RangeError|SyntaxError|AggregateError|Unexpected token|Cannot read propert|is not a function|is not defined|Maximum call stack)\b/,
  /\bstack\b/i,
];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The strings a client sent (keys and values), which an answer may legitimately repeat (an unknown field's name). */
function reflectedStrings(value: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 40 || out.length > 2000) return out;
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const item of value) reflectedStrings(item, out, depth + 1);
  else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      out.push(key, key.slice(0, 64));
      reflectedStrings(item, out, depth + 1);
    }
  }
  return out;
}

function leakIn(text: string, reflected: readonly string[]): string | null {
  let rest = text;
  for (const sent of reflected) if (sent.length >= 4 && rest.includes(sent)) rest = rest.split(sent).join("‹input›");
  const pattern = LEAKS.find((leak) => leak.test(rest));
  return pattern ? `${JSON.stringify(text.slice(0, 200))} matches ${pattern}` : null;
}

interface Expectation {
  /** The procedure path(s) called, decoded. */
  paths: string[];
  batch: boolean;
  method: string;
  reflected: string[];
  /** Field names an answer may report: the input's own keys, the valid input's keys and `_input`. */
  fieldNames?: Set<string>;
}

/** Problems with one tRPC envelope (a call's answer). */
function envelopeProblems(envelope: unknown, where: string, expect: Expectation): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(`${where}: ${message}`);
  if (!isObject(envelope)) return [`${where}: not an object`];
  if ("result" in envelope) {
    if (Object.keys(envelope).length !== 1 || !isObject(envelope.result) || !("data" in envelope.result)) fail("a malformed result");
    return problems;
  }
  const error = envelope.error;
  if (Object.keys(envelope).length !== 1 || !isObject(error)) return [`${where}: neither a result nor an error`];
  for (const key of Object.keys(error)) if (!ERROR_KEYS.has(key)) fail(`unexpected error member ${JSON.stringify(key)}`);
  const data = error.data;
  if (!isObject(data)) return [...problems, `${where}: error without data`];
  for (const key of Object.keys(data)) if (!DATA_KEYS.has(key)) fail(`unexpected data member ${JSON.stringify(key)}`);
  const code = String(data.code);
  if (!Object.hasOwn(TYPED_CODES, code)) fail(`code ${code} is not one of the typed codes`);
  else {
    if (data.httpStatus !== TYPED_CODES[code]) fail(`${code} with httpStatus ${String(data.httpStatus)}`);
    if (error.code !== TRPC_ERROR_CODES_BY_KEY[code as keyof typeof TRPC_ERROR_CODES_BY_KEY]) fail(`${code} with JSON-RPC code ${String(error.code)}`);
  }
  const message = error.message;
  if (typeof message !== "string" || message.length === 0 || message.length > 200) fail(`message ${JSON.stringify(message)}`);
  else {
    const leak = leakIn(message, expect.reflected);
    if (leak) fail(`message leaks: ${leak}`);
  }
  if (data.path !== undefined && !expect.paths.includes(String(data.path))) fail(`path ${JSON.stringify(data.path)} was not called`);
  if (data.reason !== undefined && !(typeof data.reason === "string" && /^[A-Z][A-Z_]{2,40}$/.test(data.reason))) fail(`reason ${JSON.stringify(data.reason)}`);
  if (data.attemptsLeft !== undefined && !(Number.isInteger(data.attemptsLeft) && (data.attemptsLeft as number) >= 0)) fail(`attemptsLeft ${String(data.attemptsLeft)}`);
  const fieldErrors = data.fieldErrors;
  if (fieldErrors !== undefined) {
    if (code !== "BAD_REQUEST") fail(`field errors on ${code}`);
    if (!isObject(fieldErrors) || Object.keys(fieldErrors).length === 0 || Object.keys(fieldErrors).length > 20) fail(`field errors ${JSON.stringify(fieldErrors)}`);
    else {
      for (const [field, messages] of Object.entries(fieldErrors)) {
        if (field.length > 64) fail(`field error key longer than 64: ${JSON.stringify(field)}`);
        if (expect.fieldNames && !expect.fieldNames.has(field)) fail(`field error on ${JSON.stringify(field)}, which was neither sent nor expected`);
        if (!Array.isArray(messages) || messages.length === 0) fail(`field ${JSON.stringify(field)}: ${JSON.stringify(messages)}`);
        else {
          for (const text of messages) {
            if (typeof text !== "string" || text.length === 0 || text.length > 300) fail(`field ${JSON.stringify(field)} message ${JSON.stringify(text)}`);
            else {
              const leak = leakIn(text, expect.reflected);
              if (leak) fail(`field ${JSON.stringify(field)} leaks: ${leak}`);
            }
          }
        }
      }
    }
  }
  if (code === "BAD_REQUEST" && data.reason === undefined && fieldErrors === undefined && !UNREADABLE_REQUEST.has(String(message))) {
    fail(`BAD_REQUEST ${JSON.stringify(message)} with neither a reason nor field errors`);
  }
  if (message === "Invalid input" && fieldErrors === undefined) fail(`"Invalid input" without field errors`);
  if (code === "TOO_MANY_REQUESTS" && !(Number.isInteger(data.retryAfterSeconds) && (data.retryAfterSeconds as number) > 0)) {
    fail(`TOO_MANY_REQUESTS with retryAfterSeconds ${String(data.retryAfterSeconds)}`);
  }
  return problems;
}

/** Problems with a whole reply: status, headers, envelopes. */
function replyProblems(reply: Reply, expect: Expectation): string[] {
  const problems: string[] = [];
  if (reply.status >= 500) problems.push(`status ${reply.status}`);
  if (expect.method === "OPTIONS") {
    if (![204, 403].includes(reply.status) || reply.raw !== "") problems.push(`a preflight answered ${reply.status} ${reply.raw.slice(0, 100)}`);
    return problems;
  }
  if (reply.headers["content-type"] !== "application/json") problems.push(`content-type ${reply.headers["content-type"]}`);
  if (reply.body === undefined) return [...problems, `the body is not JSON: ${reply.raw.slice(0, 300)}`];
  const batchAnswer = Array.isArray(reply.body);
  if (batchAnswer && !expect.batch) problems.push("an array answered a single call");
  if (batchAnswer && reply.body.length !== expect.paths.length) problems.push(`${reply.body.length} answers to ${expect.paths.length} calls`);
  const envelopes: unknown[] = batchAnswer ? reply.body : [reply.body];
  envelopes.forEach((envelope, i) => problems.push(...envelopeProblems(envelope, batchAnswer ? `call ${i}` : "answer", expect)));
  if (problems.length) return problems;

  const errors = envelopes.map((e) => (e as { error?: { data: { code: string; httpStatus: number; retryAfterSeconds?: number } } }).error?.data);
  const statuses = errors.map((data) => data?.httpStatus ?? 200);
  const status = statuses.every((s) => s === statuses[0]) ? statuses[0] : 207;
  if (reply.status !== status) problems.push(`status ${reply.status} for calls answering ${statuses.join(", ")}`);
  const limited = errors.filter((data) => data?.code === "TOO_MANY_REQUESTS");
  if (limited.length) {
    const retryAfter = Number(reply.headers["retry-after"]);
    const longest = Math.max(...limited.map((data) => data!.retryAfterSeconds ?? 0));
    if (!(Number.isInteger(retryAfter) && retryAfter >= longest && retryAfter > 0)) problems.push(`Retry-After ${reply.headers["retry-after"]} for a wait of ${longest}`);
  }
  if (errors.some((data) => data?.code === "UNAUTHORIZED") && reply.headers["www-authenticate"] !== 'Bearer realm="authlith"') {
    problems.push(`UNAUTHORIZED without WWW-Authenticate`);
  }
  if (errors.some((data) => data?.code === "METHOD_NOT_SUPPORTED") && ["GET", "POST"].includes(expect.method) && !["GET", "POST"].includes(reply.headers.allow ?? "")) {
    problems.push(`405 with Allow ${reply.headers.allow}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The user data: what an error must leave as it was.

/**
 * The user data, all of it: every table of the schema (a table added later is covered too) but
 * those that record failures: `audit_events` and `mfa_failures` (the per-account count of wrong
 * codes). A row is known by the MD5 of its text; its content (JSON) is read once, the first time
 * that version of it is seen, so that a row an error changed can be shown as it was and as it became.
 */
const FAILURE_RECORDS = ["audit_events", "mfa_failures"];
const KNOWN_USER_TABLES = ["users", "sessions", "account_tokens", "totp_factors", "recovery_codes", "passkeys", "mfa_challenges"];
type Table = string;
type Snapshot = Record<Table, string[]>;

type Row = Record<string, unknown>;

/**
 * What an error may change, and when (the key pairs a row's two versions; `was` or `now` is null
 * for a row an error deleted or inserted):
 * - a second-factor challenge counts the codes tried against it and is spent at the last one,
 *   and a WebAuthn challenge is spent once presented, whatever it proves;
 * - a refresh token presented after its successor's grace window revokes its session (reuse detection);
 * - a sign-in refused because the address is not confirmed mails a fresh link, superseding the older ones.
 */
const ALLOWED_CHANGES: Partial<Record<Table, { key: string; allowed(was: Row | null, now: Row | null, changed: string[], reasons: ReadonlySet<string>): boolean }>> = {
  mfa_challenges: { key: "id_hash", allowed: (was, now, changed) => was !== null && now !== null && changed.every((column) => column === "attempts" || column === "consumed_at") },
  sessions: {
    key: "id",
    allowed: (was, now, changed, reasons) =>
      reasons.has("INVALID_REFRESH_TOKEN") &&
      was?.revoked_at === null &&
      now?.revoked_reason === "refresh_token_reuse" &&
      changed.every((column) => column === "revoked_at" || column === "revoked_reason"),
  },
  account_tokens: {
    key: "id",
    allowed: (was, now, changed, reasons) =>
      reasons.has("EMAIL_NOT_VERIFIED") && changed.length === 0 && (was ?? now)!.purpose === "email_verification" && (was === null || was.used_at === null),
  },
};

class UserData {
  /** `table:md5` → the row as JSON. */
  private readonly contents = new Map<string, string>();
  private readonly app: TestApp;
  private tables: string[] = [];
  constructor(app: TestApp) {
    this.app = app;
  }

  async init() {
    const rows = await queryRows<{ name: string }>(this.app.runtime.deps.db, sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`);
    this.tables = rows.map((row) => row.name).filter((name) => !FAILURE_RECORDS.includes(name));
    const missing = KNOWN_USER_TABLES.filter((name) => !this.tables.includes(name));
    if (missing.length) throw new Error(`the user-data tables ${missing.join(", ")} are not in the schema`);
  }

  async snapshot(): Promise<Snapshot> {
    const db = this.app.runtime.deps.db;
    const select = this.tables.map((t, i) => `(SELECT coalesce(array_agg(md5(t::text)), '{}') FROM "${t}" t) AS t${i}`).join(", ");
    const [aggregates] = await queryRows<Record<string, string[]>>(db, sql.raw(`SELECT ${select}`));
    const row: Snapshot = Object.fromEntries(this.tables.map((t, i) => [t, aggregates![`t${i}`]!]));
    for (const table of this.tables) {
      const unseen = row[table]!.filter((hash) => !this.contents.has(`${table}:${hash}`));
      if (unseen.length === 0) continue;
      const rows = await queryRows<{ hash: string; content: string }>(
        db,
        sql`SELECT md5(t::text) AS hash, to_jsonb(t)::text AS content FROM ${sql.identifier(table)} t WHERE md5(t::text) IN (SELECT jsonb_array_elements_text(${JSON.stringify(unseen)}::jsonb))`,
      );
      for (const { hash, content } of rows) this.contents.set(`${table}:${hash}`, content);
    }
    return row;
  }

  /** The rows an error changed, less what `ALLOWED_CHANGES` lets it change. */
  unexpectedWrites(before: Snapshot, after: Snapshot, reasons: ReadonlySet<string>): string[] {
    const changes: string[] = [];
    for (const table of this.tables) {
      const left = new Map<string, number>();
      for (const hash of before[table] ?? []) left.set(hash, (left.get(hash) ?? 0) + 1);
      const added: string[] = [];
      for (const hash of after[table] ?? []) {
        const n = left.get(hash) ?? 0;
        if (n > 0) left.set(hash, n - 1);
        else added.push(hash);
      }
      const removed = [...left].flatMap(([hash, n]) => Array.from({ length: n }, () => hash));
      if (removed.length === 0 && added.length === 0) continue;
      const parse = (hash: string) => JSON.parse(this.contents.get(`${table}:${hash}`) ?? "null") as Row | null;
      const was = removed.map(parse);
      const now = added.map(parse);
      const rule = ALLOWED_CHANGES[table];
      if (rule) {
        // Pair the versions of a row; what is left unpaired was inserted or deleted.
        const pairs: [Row | null, Row | null][] = [];
        for (const row of now) {
          const j = was.findIndex((old) => old !== null && row !== null && JSON.stringify(old[rule.key]) === JSON.stringify(row[rule.key]));
          pairs.push([j < 0 ? null : was.splice(j, 1)[0]!, row]);
        }
        for (const row of was) pairs.push([row, null]);
        was.length = 0;
        now.length = 0;
        for (const [old, row] of pairs) {
          const changed = old && row ? Object.keys(row).filter((column) => JSON.stringify(row[column]) !== JSON.stringify(old[column])) : [];
          if (rule.allowed(old, row, changed, reasons)) continue;
          if (old) was.push(old);
          if (row) now.push(row);
        }
      }
      for (const row of was) changes.push(`${table}: a row removed or changed, was ${JSON.stringify(row)}`);
      for (const row of now) changes.push(`${table}: a row added or changed, now ${JSON.stringify(row)}`);
    }
    return changes;
  }
}

// ---------------------------------------------------------------------------------------------
// The fixtures: signed-up accounts with the factors each kind of call needs.

type Profile = "plain" | "both" | "totp" | "passkey";
const PROFILES: readonly Profile[] = ["plain", "both", "totp", "passkey"];
type ProofKind = "code" | "passkey" | "recoveryCode";
const PROOF_KINDS: readonly ProofKind[] = ["code", "passkey", "recoveryCode"];

interface Account {
  profile: Profile;
  email: string;
  password: string;
  userId: string;
  /** The account's main session (not the ones made for a single call). */
  accessToken: string;
  sessionId: string;
  issuedAt: number;
  totpSecret: string | null;
  /** Codes not yet handed to any request. */
  recoveryCodes: string[];
  authenticator: ReturnType<typeof softAuthenticator>;
  credential: SoftCredential | null;
  passkeyId: string | null;
  /** No longer usable as a fixture (deleted, password changed, sessions ended, factors changed). */
  spent: boolean;
}

interface Session {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

/** Picks among variants from one number, so fast-check generates and shrinks a single value. */
class Choice {
  private rest: number;
  constructor(seed: number) {
    this.rest = seed;
  }
  pick<T>(options: readonly T[]): T {
    const i = this.rest % options.length;
    this.rest = Math.floor(this.rest / options.length);
    return options[i]!;
  }
}

class World {
  private readonly shared = new Map<Profile, Account>();
  private otherAccount: Account | undefined;
  revokedToken = "";
  private ips = 0;
  private passwords = 0;
  readonly app: TestApp;

  constructor(app: TestApp) {
    this.app = app;
  }

  now() {
    return this.app.clock.now();
  }

  /** A source address of its own for each setup call, so per-IP limits never refuse one. */
  setupIp() {
    const n = ++this.ips;
    return `198.${18 + ((n >> 16) & 1)}.${(n >> 8) & 255}.${n & 255}`;
  }

  /** A password the policy accepts (its blocklist refuses one uncommon password in a thousand) and no other account has. */
  newPassword(): string {
    for (;;) {
      const password = `quiet river ${++this.passwords} lamp orbit`;
      if (!passwordProblem(password, DEFAULT_PASSWORD_POLICY)) return password;
    }
  }

  /** A setup call (token transport, its own address); throws unless it succeeds. */
  async call(procedure: ProcedurePath, input?: unknown, token?: string): Promise<any> {
    const client = this.app.client({ origin: null, ip: this.setupIp() });
    const headers = { ...tokenTransport, ...(token ? bearer(token) : {}) };
    const reply = PROCEDURE_TYPES[procedure] === "query" ? await client.query(procedure, input, headers) : await client.mutate(procedure, input, headers);
    if (reply.status !== 200 || !reply.body?.result) throw new Error(`setup: ${procedure} answered ${reply.status} ${reply.raw.slice(0, 300)}`);
    return reply.body.result.data;
  }

  /** The authenticator app's code at a time step no earlier request used (the clock moves 30 s). */
  code(secret: string): string {
    this.app.clock.advance(30_000);
    return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({ timestamp: this.now() });
  }

  mailedToken(address: string, kind: "password_reset" | "email_verification" | "email_change"): string {
    const link = this.app.runtime.outbox!.lastTo(address, kind)?.link;
    if (!link) throw new Error(`setup: no ${kind} mail to ${address}`);
    return decodeURIComponent(link.split("#token=")[1]!);
  }

  async create(profile: Profile): Promise<Account> {
    const email = uniqueEmail(`fuzz-${profile}`);
    const password = this.newPassword();
    const registered = await this.call("auth.register", { email, password });
    const account: Account = {
      profile,
      email,
      password,
      userId: registered.user.id,
      accessToken: registered.accessToken,
      sessionId: registered.session.id,
      issuedAt: this.now(),
      totpSecret: null,
      recoveryCodes: [],
      authenticator: softAuthenticator({ origin: APP_ORIGIN }),
      credential: null,
      passkeyId: null,
      spent: false,
    };
    if (profile === "both" || profile === "totp") {
      const enrolment = await this.call("mfa.totp.enroll", undefined, account.accessToken);
      const confirmed = await this.call("mfa.totp.confirm", { code: this.code(enrolment.secret) }, account.accessToken);
      account.totpSecret = enrolment.secret;
      account.recoveryCodes = confirmed.recoveryCodes;
    }
    if (profile === "both" || profile === "passkey") {
      const started = await this.call("mfa.passkey.registrationOptions", undefined, account.accessToken);
      const response = account.authenticator.create(started.options);
      const added = await this.call("mfa.passkey.verifyRegistration", { challengeId: started.challengeId, response, name: "Fuzz key" }, account.accessToken);
      account.credential = account.authenticator.credentials.at(-1)!;
      account.passkeyId = added.passkey.id;
      if (added.recoveryCodes) account.recoveryCodes = added.recoveryCodes;
    }
    return account;
  }

  /** A sign-in's second factor: of the kind asked for if the account has it, else another. */
  loginProof(account: Account, started: { passkeyOptions?: never }, kind: ProofKind): Record<string, unknown> {
    for (const k of [kind, ...PROOF_KINDS]) {
      if (k === "code" && account.totpSecret) return { code: this.code(account.totpSecret) };
      if (k === "passkey" && account.credential && started.passkeyOptions) {
        return { passkey: account.authenticator.get(started.passkeyOptions, { credential: account.credential }) };
      }
      if (k === "recoveryCode" && account.recoveryCodes.length) return { recoveryCode: account.recoveryCodes.shift() };
    }
    return {};
  }

  /** A step-up proof (a factor change's second factor): of the kind asked for if the account has it, else another, else none. */
  async stepUpProof(account: Account, kind: ProofKind): Promise<Record<string, unknown>> {
    for (const k of [kind, ...PROOF_KINDS]) {
      if (k === "code" && account.totpSecret) return { code: this.code(account.totpSecret) };
      if (k === "passkey" && account.credential) {
        const started = await this.call("mfa.stepUpOptions", undefined, account.accessToken);
        return { passkey: { challengeId: started.challengeId, response: account.authenticator.get(started.options, { credential: account.credential }) } };
      }
      if (k === "recoveryCode" && account.recoveryCodes.length) return { recoveryCode: account.recoveryCodes.shift() };
    }
    return {};
  }

  /** A new session of the account, its main one untouched. */
  async session(account: Account): Promise<Session> {
    let signedIn = await this.call("auth.login", { email: account.email, password: account.password });
    if (signedIn.mfaRequired) signedIn = await this.call("auth.verifyMfa", { challengeId: signedIn.challengeId, ...this.loginProof(account, signedIn, "passkey") });
    return { accessToken: signedIn.accessToken, refreshToken: signedIn.refreshToken, sessionId: signedIn.session.id };
  }

  /** Signs the account in again when its access token is more than half-way through its 15 minutes. */
  async fresh(account: Account): Promise<Account> {
    if (this.now() - account.issuedAt > 7 * 60_000) {
      const session = await this.session(account);
      Object.assign(account, { accessToken: session.accessToken, sessionId: session.sessionId, issuedAt: this.now() });
    }
    return account;
  }

  /** The shared account of a profile, replaced once spent. */
  async account(profile: Profile): Promise<Account> {
    let account = this.shared.get(profile);
    if (!account || account.spent) {
      account = await this.create(profile);
      this.shared.set(profile, account);
    }
    return this.fresh(account);
  }

  /** Another user: calls made with its token aim at resources that are not its own. */
  async other(): Promise<Account> {
    if (!this.otherAccount || this.otherAccount.spent) this.otherAccount = await this.create("plain");
    return this.fresh(this.otherAccount);
  }

  async init() {
    for (const profile of PROFILES) await this.account(profile);
    await this.other();
    const doomed = await this.create("plain");
    await this.call("auth.logout", undefined, doomed.accessToken);
    this.revokedToken = doomed.accessToken;
  }
}

// ---------------------------------------------------------------------------------------------
// A valid call of each procedure: the base that near-valid inputs are mutated from.

interface Case {
  /** The bearer token the call carries as its own user; null for a call that needs none. */
  token: string | null;
  /** The account whose token that is, when the call may spend it. */
  caller?: Account;
  input: unknown;
  /** After a successful answer to this call as its own user. */
  onSuccess?: (data: any) => void;
}

interface Spec {
  /** The first option of every `pick` makes a call that succeeds. */
  valid(world: World, choice: Choice): Promise<Case>;
  /** A success leaves the calling account unusable as a fixture. */
  spendsCaller?: boolean;
}

const signedIn = async (world: World, choice: Choice, profiles: readonly Profile[] = PROFILES): Promise<Case & { caller: Account }> => {
  const account = await world.account(choice.pick(profiles));
  return { token: account.accessToken, caller: account, input: undefined };
};

/** `{ password, <second factor> }` for a factor change, or (a recent sign-in) nothing. */
const stepUpInput = async (world: World, account: Account, choice: Choice) => {
  const form = choice.pick(["proofs", "none", "password"] as const);
  if (form === "none") return undefined;
  if (form === "password") return { password: account.password };
  return { password: account.password, ...(await world.stepUpProof(account, choice.pick(PROOF_KINDS))) };
};

const SPECS: Record<ProcedurePath, Spec> = {
  "system.ping": { valid: async () => ({ token: null, input: undefined }) },

  "auth.register": {
    valid: async (world, choice) => ({
      token: null,
      input: { email: uniqueEmail("fuzz-new"), password: world.newPassword(), ...(choice.pick([true, false]) ? { name: "Ada Lovelace" } : {}) },
    }),
  },
  "auth.login": {
    valid: async (world, choice) => {
      const account = await world.account(choice.pick(PROFILES));
      return { token: null, input: { email: account.email, password: account.password } };
    },
  },
  "auth.verifyMfa": {
    valid: async (world, choice) => {
      const account = await world.account(choice.pick(["both", "totp", "passkey"] as const));
      const started = await world.call("auth.login", { email: account.email, password: account.password });
      return { token: null, input: { challengeId: started.challengeId, ...world.loginProof(account, started, choice.pick(PROOF_KINDS)) } };
    },
  },
  "auth.passkeyOptions": { valid: async () => ({ token: null, input: undefined }) },
  "auth.passkeyLogin": {
    valid: async (world, choice) => {
      const account = await world.account(choice.pick(["both", "passkey"] as const));
      const started = await world.call("auth.passkeyOptions");
      return { token: null, input: { challengeId: started.challengeId, response: account.authenticator.get(started.options, { credential: account.credential! }) } };
    },
  },
  "auth.refresh": {
    valid: async (world, choice) => {
      const session = await world.session(await world.account(choice.pick(PROFILES)));
      return { token: null, input: { refreshToken: session.refreshToken } };
    },
  },
  "auth.logout": {
    // Its own session: the call ends it.
    valid: async (world, choice) => {
      const session = await world.session(await world.account(choice.pick(PROFILES)));
      return { token: session.accessToken, input: choice.pick([{ refreshToken: session.refreshToken }, undefined]) };
    },
    spendsCaller: true,
  },
  "auth.logoutAll": { valid: (world, choice) => signedIn(world, choice), spendsCaller: true },
  "auth.me": { valid: (world, choice) => signedIn(world, choice) },

  "account.requestVerification": { valid: (world, choice) => signedIn(world, choice) },
  "account.verifyEmail": {
    valid: async (world, choice) => {
      let account = await world.account(choice.pick(PROFILES));
      let sent = await world.call("account.requestVerification", undefined, account.accessToken);
      if (sent.alreadyVerified) {
        account = await world.create("plain");
        sent = await world.call("account.requestVerification", undefined, account.accessToken);
      }
      return { token: null, input: { token: world.mailedToken(account.email, "email_verification"), password: account.password } };
    },
  },
  "account.changePassword": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice);
      return { ...call, input: { currentPassword: call.caller.password, newPassword: world.newPassword() } };
    },
    spendsCaller: true,
  },
  "account.changeEmail": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice);
      return { ...call, input: { password: call.caller.password, newEmail: uniqueEmail("fuzz-moved") } };
    },
  },
  "account.confirmEmailChange": {
    valid: async (world, choice) => {
      const account = await world.account(choice.pick(PROFILES));
      const newEmail = uniqueEmail("fuzz-moved");
      await world.call("account.changeEmail", { password: account.password, newEmail }, account.accessToken);
      return {
        token: null,
        input: { token: world.mailedToken(newEmail, "email_change") },
        onSuccess: () => {
          account.email = newEmail;
        },
      };
    },
  },
  "account.delete": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice);
      return { ...call, input: { password: call.caller.password } };
    },
    spendsCaller: true,
  },
  "account.requestPasswordReset": {
    valid: async (world, choice) => {
      const known = choice.pick([true, false]);
      return { token: null, input: { email: known ? (await world.account(choice.pick(PROFILES))).email : uniqueEmail("fuzz-nobody") } };
    },
  },
  "account.resetPassword": {
    valid: async (world, choice) => {
      const account = await world.account(choice.pick(PROFILES));
      await world.call("account.requestPasswordReset", { email: account.email });
      return {
        token: null,
        input: { token: world.mailedToken(account.email, "password_reset"), newPassword: world.newPassword() },
        onSuccess: () => {
          account.spent = true;
        },
      };
    },
  },

  "session.list": { valid: (world, choice) => signedIn(world, choice) },
  "session.revoke": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice);
      const other = await world.session(call.caller);
      return { ...call, input: { sessionId: other.sessionId } };
    },
  },
  "session.revokeOthers": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice);
      return { ...call, input: choice.pick([{ password: call.caller.password }, undefined]) };
    },
  },

  "mfa.status": { valid: (world, choice) => signedIn(world, choice) },
  "mfa.stepUpOptions": { valid: (world, choice) => signedIn(world, choice, ["both", "passkey", "totp", "plain"]) },
  "mfa.totp.enroll": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["plain", "passkey", "both", "totp"]);
      return { ...call, input: await stepUpInput(world, call.caller, choice) };
    },
  },
  "mfa.totp.confirm": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["plain", "passkey"]);
      const enrolment = await world.call("mfa.totp.enroll", { password: call.caller.password, ...(await world.stepUpProof(call.caller, "passkey")) }, call.token!);
      return {
        ...call,
        input: { code: world.code(enrolment.secret) },
        onSuccess: () => {
          call.caller.spent = true;
        },
      };
    },
  },
  "mfa.totp.disable": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "totp", "passkey", "plain"]);
      return { ...call, input: { password: call.caller.password, ...(await world.stepUpProof(call.caller, choice.pick(PROOF_KINDS))) } };
    },
    spendsCaller: true,
  },
  "mfa.recoveryCodes.regenerate": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "totp", "passkey", "plain"]);
      return {
        ...call,
        input: await stepUpInput(world, call.caller, choice),
        onSuccess: (data: { recoveryCodes: string[] }) => {
          call.caller.recoveryCodes = [...data.recoveryCodes];
        },
      };
    },
  },
  "mfa.passkey.registrationOptions": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "totp", "passkey", "plain"]);
      return { ...call, input: await stepUpInput(world, call.caller, choice) };
    },
  },
  "mfa.passkey.verifyRegistration": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "totp", "passkey", "plain"]);
      const proofs = { password: call.caller.password, ...(await world.stepUpProof(call.caller, choice.pick(PROOF_KINDS))) };
      const started = await world.call("mfa.passkey.registrationOptions", proofs, call.token!);
      // Another authenticator: the account's own passkey stays the one it signs in with.
      const response = softAuthenticator({ origin: APP_ORIGIN }).create(started.options);
      return {
        ...call,
        input: { challengeId: started.challengeId, response, ...choice.pick([{ name: "Desk key" }, {}]) },
        onSuccess: () => {
          // A first factor changes how the account signs in.
          if (call.caller.profile === "plain" || call.caller.profile === "totp") call.caller.spent = true;
        },
      };
    },
  },
  "mfa.passkey.list": { valid: (world, choice) => signedIn(world, choice) },
  "mfa.passkey.rename": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "passkey"]);
      return { ...call, input: { passkeyId: call.caller.passkeyId, name: choice.pick(["Renamed key", " Travel key "]) } };
    },
  },
  "mfa.passkey.delete": {
    valid: async (world, choice) => {
      const call = await signedIn(world, choice, ["both", "passkey"]);
      return { ...call, input: { passkeyId: call.caller.passkeyId, password: call.caller.password, ...(await world.stepUpProof(call.caller, choice.pick(PROOF_KINDS))) } };
    },
    spendsCaller: true,
  },
};

// ---------------------------------------------------------------------------------------------
// Arbitraries: hostile values, and mutations of a valid input.

const NASTY_STRINGS = [
  "NaN", "-0", "0", "1e308", "1e-400", "Infinity", "-Infinity", "null", "undefined", "true", "[]", "{}", "0x1F",
  "' OR '1'='1", "'; DROP TABLE users; --", "\\", "\"", "<script>alert(1)</script>", "../../../../etc/passwd", "${7*7}", "{{7*7}}",
  "%00", "\u0000", "\ud800", "\udfff\ud800", "\u202eevil", "\ufeff", "\u2028", "\r\nSet-Cookie: x=1", "😀", "👩‍👩‍👧‍👦", "Å", "ﬃ", "İ",
  "ｅｍａｉｌ@ｅｘａｍｐｌｅ.ｃｏｍ", "a@b", "@", "a@b.c", "user@example.com\r\nBcc: x@example.com", "user@[127.0.0.1]", "\"a b\"@example.com",
  "__proto__", "constructor", "prototype", "toString", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "123456", "000000", "１２３４５６", "12345 6", "abcde-fghij", "eyJhbGciOiJub25lIn0.e30.", "public-key",
  "platform", "Bearer x", "", " ", "\t\n",
];
const RAW_TOKENS = ["-0", "1e308", "1e309", "-1e400", "1e-400", "123456789012345678901234567890", "0.0000000000000000000001", "\"\\ud800\"", "\"\\udfff\\ud800x\"", "\"\\u0000\"", "[]", "{}", "NaN", "undefined", "'single'", "{\"a\":1,}", "\"\\x41\""];
const NASTY_KEYS = [
  "__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "__defineGetter__", "then", "length", "0", "", " ",
  "email", "password", "newPassword", "code", "recoveryCode", "passkey", "refreshToken", "token", "role", "isAdmin", "userId", "emailVerified", "_input", "a".repeat(100),
];

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 4, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "😀", "\u0000", " ", "ß", "é"), fc.integer({ min: 100, max: 20_000 })).map(([c, n]) => c.repeat(n)) },
);
const nastyNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5e-324, 2 ** 31, -1));
const nastyKey = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...NASTY_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) });

/** An object with an own member of any name, `__proto__` included (as JSON.parse would make it). */
function own(entries: [string, unknown][]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

function nest(depth: number, arrays: boolean): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
  return value;
}

const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 20, max: 3000 }), fc.boolean()).map(([depth, arrays]) => nest(depth, arrays)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("__proto__", "constructor", "prototype"), fc.jsonValue({ maxDepth: 2 }))
      .map(([key, value]) => own([[key, own([["polluted", value], ["prototype", own([["polluted", true]])]])]])),
  },
  { weight: 1, arbitrary: fc.array(fc.tuple(nastyKey, fc.jsonValue({ maxDepth: 2 })), { maxLength: 30 }).map(own) },
);

type Mutation =
  | { op: "replace"; at: number; value: unknown }
  | { op: "raw"; at: number; token: string }
  | { op: "delete"; at: number }
  | { op: "add"; at: number; key: string; value: unknown }
  | { op: "retype"; at: number; how: number }
  | { op: "edit"; at: number; how: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("replace" as const), at: fc.nat(), value: junkValue }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("raw" as const), at: fc.nat(), token: fc.constantFrom(...RAW_TOKENS) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("add" as const), at: fc.nat(), key: nastyKey, value: junkValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("retype" as const), at: fc.nat(), how: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("edit" as const), at: fc.nat(), how: fc.nat(), text: nastyString }) },
);

type InputPlan = { kind: "valid" } | { kind: "mutated"; mutations: Mutation[] } | { kind: "junk"; value: unknown } | { kind: "absent" } | { kind: "text"; text: string };

const inputPlan: fc.Arbitrary<InputPlan> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: "valid" as const }) },
  { weight: 7, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }).map((mutations) => ({ kind: "mutated" as const, mutations })) },
  { weight: 3, arbitrary: junkValue.map((value) => ({ kind: "junk" as const, value })) },
  { weight: 1, arbitrary: fc.constant({ kind: "absent" as const }) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("{", "[", "{\"email\":", "\"", "nul", "{'a':1}", "\u0000", "{\"a\":1}}")).map((text) => ({ kind: "text" as const, text })) },
);

type Path = (string | number)[];

/** Every position in a value (the value itself first), to a bounded depth. */
function positions(value: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (path.length >= 12) return out;
  if (Array.isArray(value)) value.forEach((item, i) => positions(item, [...path, i], out));
  else if (isObject(value)) for (const key of Object.keys(value)) positions(value[key], [...path, key], out);
  return out;
}

function getAt(root: unknown, path: Path): unknown {
  let value = root;
  for (const key of path) value = (value as Record<string | number, unknown>)[key];
  return value;
}

function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  Object.defineProperty(parent, path.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

const RETYPES: ((value: unknown) => unknown)[] = [
  (v) => (typeof v === "string" ? v.length : JSON.stringify(v) ?? "undefined"),
  (v) => Number(v),
  (v) => [v],
  (v) => ({ value: v }),
  () => null,
  (v) => !v,
  () => ({}),
  (v) => (typeof v === "string" ? { toString: v } : String(v)),
];

const EDITS: ((s: string, text: string) => string)[] = [
  (s, t) => s + t,
  (s, t) => t + s,
  (s) => s.slice(0, Math.floor(s.length / 2)),
  (s) => s.toUpperCase(),
  (s) => (s.length ? `${s.slice(0, Math.floor(s.length / 2))}${s[Math.floor(s.length / 2)] === "A" ? "B" : "A"}${s.slice(Math.floor(s.length / 2) + 1)}` : "A"),
  (s) => ` ${s}\t`,
  (s) => s.normalize("NFD"),
  (s) => s + s,
  () => "",
  (s) => s.slice(1),
  (s, t) => `${s.slice(0, 3)}${t}${s.slice(3)}`,
];

/** A valid input with one (or two) of its members changed; raw JSON tokens are spliced into the text. */
function mutate(valid: unknown, mutations: readonly Mutation[]): { value: unknown; raw: Map<string, string> } {
  let value: unknown = valid === undefined ? undefined : structuredClone(valid);
  const raw = new Map<string, string>();
  for (const m of mutations) {
    const all = positions(value);
    const path = all[m.at % all.length]!;
    const current = getAt(value, path);
    switch (m.op) {
      case "replace":
        value = setAt(value, path, m.value);
        break;
      case "raw": {
        const placeholder = `\u0001raw${raw.size}\u0001`;
        raw.set(JSON.stringify(placeholder), m.token);
        value = setAt(value, path, placeholder);
        break;
      }
      case "delete":
        if (path.length === 0) value = undefined;
        else {
          const parent = getAt(value, path.slice(0, -1));
          if (Array.isArray(parent)) parent.splice(Number(path.at(-1)), 1);
          else delete (parent as Record<string, unknown>)[path.at(-1)!];
        }
        break;
      case "add": {
        const target = isObject(current) || Array.isArray(current) ? current : path.length ? getAt(value, path.slice(0, -1)) : undefined;
        if (Array.isArray(target)) target.push(m.value);
        else if (isObject(target)) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
        else value = own([[m.key, m.value]]);
        break;
      }
      case "retype":
        value = setAt(value, path, RETYPES[m.how % RETYPES.length]!(current));
        break;
      case "edit":
        value = setAt(value, path, typeof current === "string" ? EDITS[m.how % EDITS.length]!(current, m.text) : RETYPES[m.how % RETYPES.length]!(current));
        break;
    }
  }
  return { value, raw };
}

/** The request body (or query input) for a plan: JSON text, or undefined for none. */
function inputText(valid: unknown, plan: InputPlan): string | undefined {
  switch (plan.kind) {
    case "valid":
      return valid === undefined ? undefined : JSON.stringify(valid);
    case "absent":
      return undefined;
    case "text":
      return plan.text;
    case "junk":
      return JSON.stringify(plan.value);
    case "mutated": {
      const { value, raw } = mutate(valid, plan.mutations);
      let text = value === undefined ? undefined : JSON.stringify(value);
      for (const [placeholder, token] of raw) text = text?.split(placeholder).join(token);
      return text;
    }
  }
}

type Identity = "own" | "none" | "other" | "tampered" | "revoked" | "junk";
const identity = fc.oneof(
  { weight: 14, arbitrary: fc.constant<Identity>("own") },
  { weight: 2, arbitrary: fc.constant<Identity>("none") },
  { weight: 2, arbitrary: fc.constant<Identity>("other") },
  { weight: 1, arbitrary: fc.constant<Identity>("tampered") },
  { weight: 1, arbitrary: fc.constant<Identity>("revoked") },
  { weight: 1, arbitrary: fc.constant<Identity>("junk") },
);
const junkAuthorization = fc.oneof(
  fc.constantFrom("Bearer", "Bearer ", "bearer x.y.z", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer a b", "Token abc", "Bearer \u0000"),
  nastyString.map((s) => `Bearer ${s}`),
  nastyString,
);
const origin = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | null>(null) },
  { weight: 3, arbitrary: fc.constant<string | null>(APP_ORIGIN) },
  { weight: 1, arbitrary: fc.constantFrom<string | null>(EVIL_ORIGIN, "null", `${APP_ORIGIN}.evil.test`, APP_ORIGIN.toUpperCase()) },
);
/** Source addresses: mostly one of its own per request; some from two busy addresses (their per-IP limits apply). */
const address = fc.oneof({ weight: 5, arbitrary: fc.constant("fresh" as const) }, { weight: 1, arbitrary: fc.constantFrom("203.0.113.1", "2001:db8:1::1") });
const junkCookies = fc.option(
  fc.array(
    fc.oneof(
      nastyString.map((s) => `__Host-authlith_rt=${s}`),
      nastyString.map((s) => `__Host-authlith_device=${s}`),
      fc.constantFrom("a", "=", "; ;", "__Host-authlith_rt=", "__proto__=1", "x=%E0%A4%A"),
    ),
    { minLength: 1, maxLength: 3 },
  ),
  { nil: undefined },
);

interface Run {
  variant: number;
  input: InputPlan;
  identity: Identity;
  junkAuthorization: string;
  origin: string | null;
  tokenTransport: boolean;
  wrongMethod: boolean;
  address: "fresh" | string;
  cookies: string[] | undefined;
  /** Email verification required (the default configuration) for this request; the fixtures are set up without. */
  verification: boolean;
}

const run: fc.Arbitrary<Run> = fc.record({
  variant: fc.nat(),
  input: inputPlan,
  identity,
  junkAuthorization,
  origin,
  tokenTransport: fc.boolean(),
  wrongMethod: fc.oneof({ weight: 11, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  address,
  cookies: junkCookies,
  verification: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

/**
 * The first runs of every property, then the random ones: the valid call, as its user, nothing
 * hostile, for the first twelve variants (each account profile with each of the three options
 * picked after it: the kind of second factor, or the form of the step-up proofs).
 */
const VALID_RUNS: Run[] = Array.from({ length: 12 }, (_, variant) => ({
  variant,
  input: { kind: "valid" },
  identity: "own",
  junkAuthorization: "",
  origin: null,
  tokenTransport: true,
  wrongMethod: false,
  address: "fresh",
  cookies: undefined,
  verification: false,
}));

/** A token with one character of its payload changed: its signature no longer matches. */
function tampered(token: string): string {
  const [header, payload, signature] = token.split(".");
  if (!payload) return `${token}x`;
  const i = Math.floor(payload.length / 2);
  return `${header}.${payload.slice(0, i)}${payload[i] === "A" ? "B" : "A"}${payload.slice(i + 1)}.${signature}`;
}

const allowedOrigin = (value: string | null) => value === null || value === APP_ORIGIN;

function failure(problems: string[], request: RequestOptions, reply: Reply): Error {
  const shown = { ...request, body: request.body && request.body.length > 600 ? `${request.body.slice(0, 600)}… (${request.body.length} chars)` : request.body };
  return new Error(`${problems.join("\n")}\nrequest: ${JSON.stringify(shown).slice(0, 2000)}\nreply: ${reply.status} ${JSON.stringify(reply.headers)} ${reply.raw.slice(0, 1500)}`);
}

/** Runs a property with a seed of its own, derived from FUZZ_SEED and its name: the examples, then `runs` random values. */
async function assertProperty<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, runs: number, examples: T[] = []) {
  let seed = SEED;
  for (const c of name) seed = (Math.imul(seed, 31) + c.charCodeAt(0)) | 0;
  try {
    // fast-check counts the examples among numRuns.
    await fc.assert(fc.asyncProperty(arbitrary, predicate), { seed, numRuns: examples.length + runs, examples: examples.map((e) => [e] as [T]) });
  } catch (error) {
    (error as Error).message = `(replay the whole file with FUZZ_SEED=${SEED})\n${(error as Error).message}`;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------

/** `200×5 400×9 …`: how far the runs of a property got (printed with FUZZ_STATS=1). */
const histogram = (statuses: number[]) =>
  [...statuses.reduce((counts, s) => counts.set(s, (counts.get(s) ?? 0) + 1), new Map<number, number>())]
    .sort(([a], [b]) => a - b)
    .map(([status, n]) => `${status}×${n}`)
    .join(" ");

const PROTOTYPE_MEMBERS = Object.getOwnPropertyNames(Object.prototype).join();
const GENEROUS = { limit: 1_000_000, windowSeconds: 60 };
const BUSY = { limit: 3, windowSeconds: 3600 };

describe.each(backends)("fuzzing every procedure through the HTTP handler on $name", (backend) => {
  let app: TestApp;
  let world: World;
  let userData: UserData;
  let addresses = 0;
  const freshAddress = () => {
    const n = ++addresses;
    return n % 4 === 0 ? `2001:db8:${(n >> 8).toString(16)}:${(n & 255).toString(16)}::1` : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  };

  beforeAll(async () => {
    app = await startTestApp(
      backend,
      {},
      {
        // Per-account limits out of the way (the fixtures' accounts take thousands of calls). Per-IP
        // limits small: every request has an address of its own but those from the two busy ones,
        // which are refused soon (so 429 answers are checked too).
        rateLimits: {
          loginPerIp: BUSY,
          registerPerIp: BUSY,
          refreshFailuresPerIp: BUSY,
          resetRequestPerIp: BUSY,
          tokenRedeemPerIp: BUSY,
          passkeyChallengesPerIp: BUSY,
          loginFailuresPerAccount: GENEROUS,
          loginConsecutiveFailures: GENEROUS,
          registerPerAddress: GENEROUS,
          refreshPerSession: GENEROUS,
          resetRequestPerAccount: GENEROUS,
          verificationMailPerAccount: GENEROUS,
          mfaFailuresPerAccount: GENEROUS,
        },
        // Fuzzing is about answers, not hashing cost: the cheapest parameters argon2id allows here.
        argon2: { memoryCost: 8192, timeCost: 1, parallelism: 1 },
      },
    );
    world = new World(app);
    await world.init();
    userData = new UserData(app);
    await userData.init();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
  });

  it("has an arbitrary for every procedure of the router, and the router is what the HTTP path serves", () => {
    expect(PATHS.length).toBeGreaterThan(0);
    const missing = PATHS.filter((path) => !Object.hasOwn(SPECS, path));
    expect(missing, "procedures without an arbitrary").toEqual([]);
    expect(Object.keys(SPECS).filter((path) => !Object.hasOwn(ROUTER, path)), "arbitraries for procedures that do not exist").toEqual([]);
    for (const path of PATHS) expect(PROCEDURE_TYPES[path as ProcedurePath], path).toBe(procedureDef(path).type);
  });

  it.each(PATHS)("%s: any input, any caller, never a 5xx, a leak, an untyped error or a partial write", async (path) => {
    const spec = SPECS[path as ProcedurePath];
    if (!spec) throw new Error(`no arbitrary for ${path}: add one to SPECS`);
    const authed = isAuthed(path);
    const statuses: number[] = [];

    await assertProperty(
      path,
      run,
      async (r) => {
        const call = await spec.valid(world, new Choice(r.variant));
        if (authed && !call.token) throw new Error(`${path}: the valid call of an authenticated procedure has no token`);
        const other = r.identity === "other" ? await world.other() : null;
        const authorization: Record<string, string> =
          r.identity === "own" && call.token
            ? bearer(call.token)
            : r.identity === "other"
              ? bearer(other!.accessToken)
              : r.identity === "tampered"
                ? bearer(tampered(call.token ?? world.revokedToken))
                : r.identity === "revoked"
                  ? bearer(world.revokedToken)
                  : r.identity === "junk"
                    ? { authorization: r.junkAuthorization }
                    : {};
        const text = inputText(call.input, r.input);
        const right = methodOf(path);
        const method = r.wrongMethod ? (right === "GET" ? "POST" : "GET") : right;
        const headers = { ...authorization, ...(r.tokenTransport ? tokenTransport : {}), ...(method === "POST" ? { "content-type": "application/json" } : {}) };
        const request: RequestOptions =
          method === "GET"
            ? { method, path: `/trpc/${path}`, headers, ...(text === undefined ? {} : { query: `input=${encodeURIComponent(text)}` }), ...(r.cookies ? { cookies: r.cookies } : {}) }
            : { method, path: `/trpc/${path}`, headers, ...(text === undefined ? {} : { body: text }), ...(r.cookies ? { cookies: r.cookies } : {}) };

        // As the server reads it: an empty body or `input=` is no input.
        let parsed: unknown;
        let parses = true;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parses = false;
        }
        const reflected = [...reflectedStrings(parsed), ...(parses ? [] : [text!])];
        const fieldNames = new Set(["_input", ...Object.keys(isObject(call.input) ? call.input : {}), ...(isObject(parsed) ? Object.keys(parsed).map((k) => k.slice(0, 64)) : [])]);
        // What this request must be answered, whatever else happens, in the order the server checks.
        const oversized = method === "POST" && text !== undefined && Buffer.byteLength(text) > MAX_BODY_BYTES;
        const identified = !authed || (r.identity === "own" && call.token !== null) || r.identity === "other";
        type WireError = { message: string; data: Record<string, unknown> };
        let expected: { status: number; code: string; check?: (error: WireError) => string | null } | null = null;
        if (!allowedOrigin(r.origin)) expected = { status: 403, code: "FORBIDDEN", check: (e) => (e.data.reason === "ORIGIN_NOT_ALLOWED" ? null : `reason ${String(e.data.reason)}`) };
        else if (oversized) expected = { status: 413, code: "PAYLOAD_TOO_LARGE" };
        else if (r.wrongMethod) expected = { status: 405, code: "METHOD_NOT_SUPPORTED" };
        else if (!identified) expected = { status: 401, code: "UNAUTHORIZED", check: (e) => (AUTH_REASONS.has(String(e.data.reason)) ? null : `reason ${String(e.data.reason)}`) };
        else if (hasInput(path) && !parses) expected = { status: 400, code: "BAD_REQUEST", check: (e) => (e.message === "Malformed JSON" ? null : `message ${JSON.stringify(e.message)}`) };
        else if (hasInput(path) && (await schemaRejects(path, parsed))) {
          expected = { status: 400, code: "BAD_REQUEST", check: (e) => (isObject(e.data.fieldErrors) ? null : "no field errors for an input its schema refuses") };
        }

        const client = app.client({ origin: r.origin, ip: r.address === "fresh" ? freshAddress() : r.address });
        const before = await userData.snapshot();
        const config = app.runtime.deps.config as { requireEmailVerification: boolean };
        config.requireEmailVerification = r.verification;
        let reply: Reply;
        try {
          reply = await client.request(request);
        } finally {
          config.requireEmailVerification = false;
        }
        statuses.push(reply.status);

        const problems = replyProblems(reply, { paths: [path], batch: false, method, reflected, fieldNames });
        if (Object.getOwnPropertyNames(Object.prototype).join() !== PROTOTYPE_MEMBERS) problems.push("Object.prototype was polluted");
        const error = reply.body?.error?.data as Record<string, unknown> | undefined;
        if (expected) {
          if (reply.status !== expected.status || error?.code !== expected.code) problems.push(`expected ${expected.status} ${expected.code}, got ${reply.status} ${String(error?.code ?? "a result")}`);
          else {
            const problem = expected.check?.(reply.body.error as WireError);
            if (problem) problems.push(`${expected.code}: ${problem}`);
          }
        }
        if (error) {
          const after = await userData.snapshot();
          problems.push(...userData.unexpectedWrites(before, after, new Set([String(error.reason)])).map((change) => `an error wrote: ${change}`));
        }
        if (problems.length) throw failure(problems, request, reply);

        if (reply.status === 200) {
          // A public procedure acts on its input whoever calls; an authenticated one on its caller.
          if (!authed || r.identity === "own") call.onSuccess?.(reply.body.result.data);
          if (r.identity === "own" && spec.spendsCaller && call.caller) call.caller.spent = true;
          // Another user's successful change may have ended its session or changed its password.
          if (other && method === "POST") other.spent = true;
        }
      },
      RUNS,
      VALID_RUNS,
    );

    if (process.env.FUZZ_STATS) console.info(`${path}: ${histogram(statuses)}`);
    // The valid call succeeded, and the limits did not turn the fuzz into a wall of 429s.
    expect(statuses.filter((s) => s === 200).length, `successes among ${statuses.join(",")}`).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s !== 429).length / statuses.length, `statuses ${statuses.join(",")}`).toBeGreaterThanOrEqual(0.5);
  }, 180_000);

  it("malformed requests: bodies, content types, methods, paths, streaming, batches of junk", async () => {
    const JUNK_PATHS = ["", "nope", "auth.", ".", "auth.login.x", "__proto__", "constructor", "toString", "auth.__proto__", "%E0%A4%A", "%2e%2e", "system%2Eping", "auth%2Elogin", "ａｕｔｈ.ｌｏｇｉｎ", "auth/login", "..%2F..%2Fetc"];
    const CONTENT_TYPES = [undefined, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-8", "APPLICATION/JSON", "application/jsonl", "", "application/json, text/plain", "application/json;", "text/json", "application/vnd.api+json"];
    const PLAUSIBLE: unknown[] = [
      { email: "someone@example.com", password: "hunter2 hunter2" },
      { refreshToken: "x" },
      {},
      null,
      { sessionId: "00000000-0000-4000-8000-000000000000" },
      { challengeId: "A".repeat(43), code: "123456" },
      { token: "x", newPassword: "quiet river 0 lamp orbit" },
    ];
    const body = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("json" as const), value: fc.oneof(junkValue, fc.constantFrom(...PLAUSIBLE)) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("inputs" as const), inputs: fc.array(fc.tuple(fc.oneof(fc.nat(12), fc.constantFrom("-1", "1.5", "__proto__", "x")), fc.oneof(junkValue, fc.constantFrom(...PLAUSIBLE))), { maxLength: 12 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("text" as const), text: fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom("{", "[", "{\"0\":", "\u0000", "{\"0\":{}}}", "a=1&b=2", "--x\r\nContent-Disposition: form-data\r\n\r\n1")) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("huge" as const), bytes: fc.integer({ min: MAX_BODY_BYTES - 64, max: MAX_BODY_BYTES * 4 }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
    );
    const request = fc.record({
      batch: fc.boolean(),
      paths: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...PATHS) }, { weight: 2, arbitrary: fc.constantFrom(...JUNK_PATHS) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }), { minLength: 1, maxLength: 12 }),
      method: fc.oneof({ weight: 10, arbitrary: fc.constantFrom("GET", "POST") }, { weight: 1, arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "post", "CONNECT") }),
      contentType: fc.oneof({ weight: 4, arbitrary: fc.constant<string | undefined>("application/json") }, { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
      body,
      base64: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      extraQuery: fc.option(fc.constantFrom("batch=true", "batch=0", "batch=1&batch=0", "input=%7B", "input=%E0%A4%A", "input=", "input=null", "input=[1]", "%=&&=", "input=%7B%7D&input=%5B%5D"), { nil: undefined }),
      streaming: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      signedIn: fc.boolean(),
      junkAuthorization: fc.option(junkAuthorization, { nil: undefined }),
      origin,
      address,
      cookies: junkCookies,
    });
    let account = await world.create("plain");
    const statuses: number[] = [];

    await assertProperty(
      "malformed",
      request,
      async (r) => {
        if (account.spent) account = await world.create("plain");
        await world.fresh(account);
        const method = r.method.toUpperCase();
        const paths = r.batch ? r.paths : r.paths.slice(0, 1);
        let text: string | undefined;
        if (r.body.kind === "json") text = JSON.stringify(r.body.value);
        else if (r.body.kind === "inputs") text = JSON.stringify(own(r.body.inputs.map(([key, value]) => [String(key), value])));
        else if (r.body.kind === "text") text = r.body.text;
        else if (r.body.kind === "huge") text = JSON.stringify({ 0: { email: "x".repeat(r.body.bytes) } });
        const inBody = method !== "GET" && method !== "HEAD";
        const query = [r.batch ? "batch=1" : "", r.extraQuery ?? "", !inBody && text !== undefined ? `input=${encodeURIComponent(text)}` : ""].filter(Boolean).join("&");
        const headers: Record<string, string> = {
          ...(r.contentType === undefined ? {} : { "content-type": r.contentType }),
          ...(r.signedIn ? bearer(account.accessToken) : {}),
          ...(r.junkAuthorization === undefined ? {} : { authorization: r.junkAuthorization }),
          ...(r.streaming ? { "trpc-accept": "application/jsonl" } : {}),
        };
        const req: RequestOptions = {
          method: r.method,
          path: `/trpc/${paths.join(",")}`,
          query,
          headers,
          ...(inBody && text !== undefined ? { body: text, base64: r.base64 } : {}),
          ...(r.cookies ? { cookies: r.cookies } : {}),
        };
        // The calls as the server splits them: a batch if the first `batch` parameter says so, the
        // whole path decoded once, then split at commas.
        const batch = new URLSearchParams(query).get("batch") === "1";
        let decoded: string[];
        try {
          const whole = decodeURIComponent(paths.join(","));
          decoded = batch ? whole.split(",") : [whole];
        } catch {
          decoded = [paths.join(",")];
        }
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = text;
        }
        const reflected = [...reflectedStrings(parsed), ...decoded, ...paths, query];

        // What the server checks before any procedure runs, in its order.
        const bytes = inBody && text !== undefined ? Buffer.byteLength(text) : 0;
        const contentType = r.contentType?.split(";")[0]?.trim().toLowerCase();
        let expected: { status: number; code?: string } | null = null;
        if (method === "OPTIONS") expected = { status: r.origin === APP_ORIGIN ? 204 : 403 };
        else if (!allowedOrigin(r.origin)) expected = { status: 403, code: "FORBIDDEN" };
        else if (bytes > MAX_BODY_BYTES) expected = { status: 413, code: "PAYLOAD_TOO_LARGE" };
        else if (r.streaming) expected = { status: 400, code: "BAD_REQUEST" };
        else if (method === "POST" && contentType !== "application/json") expected = { status: 415, code: "UNSUPPORTED_MEDIA_TYPE" };
        else if (method !== "GET" && method !== "POST") expected = { status: 405, code: "METHOD_NOT_SUPPORTED" };

        const client = app.client({ origin: r.origin, ip: r.address === "fresh" ? freshAddress() : r.address });
        const before = await userData.snapshot();
        const reply = await client.request(req);
        statuses.push(reply.status);
        const problems = replyProblems(reply, { paths: decoded, batch, method, reflected });
        if (Object.getOwnPropertyNames(Object.prototype).join() !== PROTOTYPE_MEMBERS) problems.push("Object.prototype was polluted");
        if (expected) {
          const code = reply.body?.error?.data?.code;
          if (reply.status !== expected.status || (expected.code && code !== expected.code)) problems.push(`expected ${expected.status} ${expected.code ?? ""}, got ${reply.status} ${String(code)}`);
        }
        const envelopes: any[] = Array.isArray(reply.body) ? reply.body : [reply.body];
        const succeeded = envelopes.some((e) => e?.result);
        if (!succeeded && method !== "OPTIONS") {
          const reasons = new Set(envelopes.map((e) => String(e?.error?.data?.reason)));
          problems.push(...userData.unexpectedWrites(before, await userData.snapshot(), reasons).map((change) => `an error wrote: ${change}`));
        }
        if (problems.length) throw failure(problems, req, reply);
        // A call that went through may have ended the account's sessions (logoutAll, revokeOthers…).
        if (succeeded && method === "POST") account.spent = true;
      },
      MALFORMED_RUNS,
    );
    if (process.env.FUZZ_STATS) console.info(`malformed: ${histogram(statuses)}`);
    expect(statuses.filter((s) => s !== 429).length / statuses.length, `statuses ${statuses.join(",")}`).toBeGreaterThanOrEqual(0.5);
  }, 300_000);
});
