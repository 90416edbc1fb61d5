import { createHash } from "node:crypto";
import { decodeRefreshToken } from "../../packages/core/src/refresh-token";
import { caller, dataOf, loopback, reasonOf, type Answer, type Caller } from "./http";
import { SETTINGS, type Environment } from "./env";

export const PASSWORD = "fault suite: correct horse battery staple";
const ALLOWED = new Set([200, 401, 429, 503]);

/** Every answer the load got during one scenario, and what broke an invariant. */
export class Recorder {
  readonly answers: { at: number; procedure: string; status: number; ms: number }[] = [];
  readonly violations: string[] = [];
  private readonly counts = new Map<string, number>();

  record(procedure: string, answer: Answer): Answer {
    this.answers.push({ at: performance.now(), procedure, status: answer.status, ms: answer.ms });
    if (!ALLOWED.has(answer.status)) this.violate(`${procedure} answered ${answer.status === 0 ? "nothing (reset or deadline)" : answer.status}`);
    if (answer.status === 503 && !(Number(answer.retryAfter) > 0)) this.violate(`${procedure} answered 503 without Retry-After`);
    if (answer.ms > SETTINGS.requestTimeoutMs + SETTINGS.latencyMarginMs) this.violate(`${procedure} took ${Math.round(answer.ms)} ms`);
    return answer;
  }

  /** One line per kind of violation, with how often it happened. */
  violate(what: string): void {
    const seen = this.counts.get(what) ?? 0;
    this.counts.set(what, seen + 1);
    if (seen === 0) this.violations.push(what);
  }

  /** What happened to sessions lost after a 503 (allowed, reported): reason → count. */
  readonly afterUnavailable: Record<string, number> = {};

  summary(): string[] {
    return this.violations.map((what) => `${what}${(this.counts.get(what) ?? 1) > 1 ? ` (×${this.counts.get(what)})` : ""}`);
  }
}

interface Session {
  id: string;
  accessToken: string;
  refreshToken: string;
}

/**
 * One simulated user on one device: its own address, its own IP, its own refresh chain. Every
 * answer is checked against what the client knows: a refresh refused for a session it never
 * ended is a lost session, unless its last answer was a 503 (whose effect it cannot know).
 */
export class SimClient {
  session: Session | null = null;
  deviceToken: string | undefined;
  /** The last answer about the current session was a 503: its state is not known to the client. */
  uncertain = false;
  /** Retry-After of its last 503 or 429, in ms: its next step waits that long. */
  backoffMs = 0;
  /** A logout answered 503: the next step retries it. */
  loggingOut = false;
  /** Sessions it ended itself (logout answered 200): must stay ended. */
  readonly ended: Session[] = [];
  lost = 0;
  lostAfter503 = 0;
  private readonly callers: Caller[];
  readonly email: string;
  readonly ip: string;

  constructor(email: string, ip: string, urls: string[]) {
    this.email = email;
    this.ip = ip;
    this.callers = urls.map((url) => caller(url, ip));
  }

  /** A server chosen per request, as a load balancer would (Lambda instances are interchangeable). */
  private get http(): Caller {
    return this.callers[Math.floor(Math.random() * this.callers.length)]!;
  }

  async register(recorder: Recorder): Promise<void> {
    const answer = recorder.record("register", await this.http.mutate("auth.register", { email: this.email, password: PASSWORD }));
    if (answer.status !== 200) throw new Error(`sign-up of ${this.email} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    this.adopt(dataOf(answer));
  }

  private heed(answer: Answer): Answer {
    if (answer.status === 503 || answer.status === 429) this.backoffMs = Math.min(Number(answer.retryAfter) || 1, 5) * 1000;
    return answer;
  }

  private adopt(data: any): void {
    this.session = { id: data.session.id, accessToken: data.accessToken, refreshToken: data.refreshToken };
    if (data.deviceToken) this.deviceToken = data.deviceToken;
    this.uncertain = false;
  }

  async login(recorder: Recorder, options: { password?: string; deviceToken?: boolean } = {}): Promise<Answer> {
    const input: Record<string, string> = { email: this.email, password: options.password ?? PASSWORD };
    if (options.deviceToken !== false && this.deviceToken) input.deviceToken = this.deviceToken;
    const answer = this.heed(recorder.record("login", await this.http.mutate("auth.login", input)));
    if (answer.status === 200) this.adopt(dataOf(answer));
    return answer;
  }

  async me(recorder: Recorder): Promise<void> {
    if (!this.session) return;
    const answer = recorder.record("me", await this.http.query("auth.me", { authorization: `Bearer ${this.session.accessToken}` }));
    if (answer.status === 401 && reasonOf(answer) === "TOKEN_EXPIRED") await this.refresh(recorder);
    else if (answer.status === 401) this.loseSession(recorder, `me refused the access token (${reasonOf(answer)})`);
  }

  async refresh(recorder: Recorder): Promise<void> {
    if (!this.session) return;
    const answer = this.heed(recorder.record("refresh", await this.http.mutate("auth.refresh", { refreshToken: this.session.refreshToken })));
    if (answer.status === 200) {
      const data = dataOf(answer);
      if (data.session.id !== this.session.id) recorder.violate("refresh answered another session");
      this.adopt(data);
    } else if (answer.status === 503) {
      this.uncertain = true;
    } else if (answer.status === 401) {
      this.loseSession(recorder, `refresh refused (${reasonOf(answer)})`);
    }
  }

  async logout(recorder: Recorder): Promise<void> {
    if (!this.session) return;
    const answer = this.heed(recorder.record("logout", await this.http.mutate("auth.logout", undefined, { authorization: `Bearer ${this.session.accessToken}` })));
    if (answer.status === 200 || (answer.status === 401 && this.loggingOut && reasonOf(answer) === "SESSION_REVOKED")) {
      // A logout retried after a 503 may find the first one done: the session is ended either way.
      this.ended.push(this.session);
      this.session = null;
      this.loggingOut = false;
      this.uncertain = false;
    } else if (answer.status === 503) {
      // The logout may have taken effect or not: the user still wants out, so the client retries.
      this.loggingOut = true;
      this.uncertain = true;
    } else if (answer.status === 401) {
      this.loseSession(recorder, `logout refused (${reasonOf(answer)})`);
    }
  }

  private loseSession(recorder: Recorder, why: string): void {
    if (this.uncertain) {
      this.lostAfter503++;
      recorder.afterUnavailable[why] = (recorder.afterUnavailable[why] ?? 0) + 1;
    } else {
      this.lost++;
      recorder.violate(`a session was lost: ${why}`);
    }
    this.session = null;
    this.uncertain = false;
    this.loggingOut = false;
  }

  /** What a user does: mostly `me`, sometimes a refresh, now and then signing out and in again. */
  async step(recorder: Recorder): Promise<void> {
    if (!this.session) {
      const answer = await this.login(recorder);
      if (answer.status !== 200 && answer.status !== 503 && answer.status !== 429) recorder.violate(`login with the right password answered ${answer.status} (${reasonOf(answer)})`);
      return;
    }
    if (this.loggingOut) return this.logout(recorder);
    // A refresh answered 503 is retried next, as @authlith/client does after Retry-After: its
    // outcome is unknown, and the grace window covers a prompt retry of the same token.
    if (this.uncertain) return this.refresh(recorder);
    const roll = Math.random();
    if (roll < 0.75) await this.me(recorder);
    else if (roll < 0.95) await this.refresh(recorder);
    else await this.logout(recorder);
  }

  close(): void {
    for (const http of this.callers) http.close();
  }

  /** The refresh token's generation and the SHA-256 of its secret, as the sessions table stores them. */
  tokenState(hmacKey: Buffer): { generation: number; hash: string } | null {
    if (!this.session) return null;
    const token = decodeRefreshToken(hmacKey, this.session.refreshToken);
    if (!token) return null;
    return { generation: token.generation, hash: createHash("sha256").update(token.secret).digest("hex") };
  }
}

export function makeClients(count: number, block: number, urls: string[], label: string): SimClient[] {
  const run = Date.now().toString(36);
  return Array.from({ length: count }, (_, i) => new SimClient(`${label}-${run}-${i}@faults.test`, loopback(block, i + 1), urls));
}

/** Runs each client's loop until `stop()`: a pause of 300–900 ms between a client's requests. */
export function runLoad(clients: SimClient[], recorder: Recorder) {
  let running = true;
  const loops = clients.map(async (client) => {
    await sleep(Math.random() * 500);
    while (running) {
      await client.step(recorder);
      const wait = client.backoffMs || 300 + Math.random() * 600;
      client.backoffMs = 0;
      await sleep(wait);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After a scenario: every session a client was issued exists, each client's token is the one the
 * table stores (unless its last answer was a 503, when the table may be ahead), sessions it ended
 * stay ended. Returns how many clients were checked.
 */
export async function checkRecords(env: Environment, clients: SimClient[], recorder: Recorder): Promise<number> {
  const ids = clients.flatMap((c) => [...(c.session ? [c.session.id] : []), ...c.ended.map((s) => s.id)]);
  if (!ids.length) return 0;
  const rows = await env.sql<{ id: string; refresh_generation: number; refresh_hash: Buffer; revoked_at: Date | null }[]>`
    select id, refresh_generation, refresh_hash, revoked_at from sessions where id = any(${ids}::uuid[])`;
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const client of clients) {
    for (const ended of client.ended) {
      const row = byId.get(ended.id);
      if (!row) recorder.violate("a session ended by logout is missing from the table");
      else if (!row.revoked_at) recorder.violate("a logout answered 200 but the session is not revoked");
    }
    if (!client.session) continue;
    const row = byId.get(client.session.id);
    if (!row) {
      recorder.violate("a session that was answered with 200 does not exist");
      continue;
    }
    if (row.revoked_at) {
      if (!client.uncertain) recorder.violate("a live client's session is revoked in the table");
      continue;
    }
    const state = client.tokenState(env.hmacKey);
    if (!state) {
      recorder.violate("a client holds a refresh token the service cannot read");
      continue;
    }
    const stored = { generation: row.refresh_generation, hash: row.refresh_hash.toString("hex") };
    if (client.uncertain) {
      if (stored.generation < state.generation) recorder.violate("the table is behind a token that was answered");
    } else if (stored.generation !== state.generation || stored.hash !== state.hash) {
      recorder.violate("an answered rotation is not the one stored");
    }
  }
  return ids.length;
}

/**
 * The end of a scenario: every client's current refresh token must still rotate (zero lost
 * sessions); a client whose last answer was a 503 tries too and is counted apart.
 */
export async function rotateAll(clients: SimClient[], recorder: Recorder): Promise<{ rotated: number; lost: number; lostAfter503: number }> {
  let rotated = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let attempt = 0; attempt < 3 && client.loggingOut; attempt++) await client.logout(recorder);
      if (!client.session) return;
      for (let attempt = 0; attempt < 3; attempt++) {
        await client.refresh(recorder);
        if (!client.uncertain) break;
        await sleep(500);
      }
      if (client.session && !client.uncertain) rotated++;
    }),
  );
  const lost = clients.reduce((n, c) => n + c.lost, 0);
  const lostAfter503 = clients.reduce((n, c) => n + c.lostAfter503, 0);
  return { rotated, lost, lostAfter503 };
}

/** Sessions signed out before a fault: their tokens must stay refused during and after it. */
export class Revoked {
  private readonly tokens: { access: string; refresh: string }[] = [];

  static async prepare(clients: SimClient[], recorder: Recorder): Promise<Revoked> {
    const revoked = new Revoked();
    for (const client of clients) {
      if (!client.session) await client.login(recorder);
      const session = client.session;
      if (!session) continue;
      await client.logout(recorder);
      if (client.session === null && client.ended.includes(session)) {
        revoked.tokens.push({ access: session.accessToken, refresh: session.refreshToken });
      }
    }
    return revoked;
  }

  /** Sends each revoked token once through `urls`; any 200 is a violation. */
  async probe(urls: string[], recorder: Recorder): Promise<number> {
    let probes = 0;
    await Promise.all(
      this.tokens.map(async ({ access, refresh }, i) => {
        const http = caller(urls[i % urls.length]!, loopback(250, i + 1));
        try {
          const me = await http.query("auth.me", { authorization: `Bearer ${access}` });
          const rotated = await http.mutate("auth.refresh", { refreshToken: refresh });
          probes += 2;
          if (me.status === 200) recorder.violate("a revoked session's access token was accepted");
          if (rotated.status === 200) recorder.violate("a revoked session's refresh token rotated");
          for (const [name, answer] of [["me (revoked)", me], ["refresh (revoked)", rotated]] as const) {
            if (!ALLOWED.has(answer.status)) recorder.violate(`${name} answered ${answer.status}`);
          }
        } finally {
          http.close();
        }
      }),
    );
    return probes;
  }

  get size(): number {
    return this.tokens.length;
  }
}
