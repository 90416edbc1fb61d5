import { createHash } from "node:crypto";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";

/**
 * A small Redis client: RESP2 over one TCP (or TLS) connection, for the handful of commands the
 * store sends (SET/MGET/DEL/PING, MULTI…EXEC, EVALSHA).
 *
 * Why not ioredis: loading it costs ≈ 25 ms of a Lambda cold start (measured: a bundle of
 * postgres.js + ioredis starts 28 ms slower than postgres.js alone; its Commander builds ~500
 * command methods and their garbage at import), where the whole budget is 80 ms, and the store
 * needs none of its cluster, sentinel, pub/sub or streaming machinery. What it did need is here:
 * pipelining (commands issued in the same tick share one write), a timeout on every command, a
 * bounded connect, no offline queue (a command while disconnected fails at once), reconnection
 * with backoff in the background, AUTH (user and password from the URL), SELECT, and TLS
 * (`rediss://`, as ElastiCache with encryption in transit requires).
 *
 * A command that times out also drops the connection: after a Lambda thaw the socket may be
 * half-open (the far end long gone, no FIN seen), and every later command on it would wait for
 * its own timeout. The next command after reconnection goes to a fresh socket.
 */

export type RespValue = string | number | null | RedisReplyError | RespValue[];

/** An error reply from the server (`-ERR ...`), returned in place inside pipelines and EXEC. */
export class RedisReplyError extends Error {
  override name = "RedisReplyError";
}

/** The connection failed, closed, or did not answer in time. */
export class RedisConnectionError extends Error {
  override name = "RedisConnectionError";
}

export interface RespClientOptions {
  /** redis://[user:password@]host[:port][/db], or rediss:// for TLS. */
  url: string;
  /** Overrides the scheme: true (or options) for TLS, false for plain TCP. */
  tls?: boolean | ConnectionOptions;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Delay before reconnection attempt `attempt` (1, 2, ...). */
  retryDelayMs?: (attempt: number) => number;
}

export type RespStatus = "idle" | "connecting" | "ready" | "reconnecting" | "closed";

type Argument = string | number;

interface Pending {
  resolve(value: RespValue): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
  /** Settled by a timeout: its reply, if it ever comes, is read and dropped. */
  done: boolean;
}

const CRLF = "\r\n";
/** The store's replies are tiny; anything this large unanswered is a broken or hostile peer. */
const MAX_PENDING_REPLY_BYTES = 1024 * 1024;
const INCOMPLETE = Symbol("incomplete");

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly Argument[]): string {
  let out = `*${args.length}${CRLF}`;
  for (const arg of args) {
    const text = typeof arg === "number" ? String(arg) : arg;
    out += `$${Buffer.byteLength(text)}${CRLF}${text}${CRLF}`;
  }
  return out;
}

/**
 * Reads one RESP2 value from `buffer` at `start`. Returns the value and where it ends, or
 * INCOMPLETE when the buffer does not hold all of it yet. Throws on bytes that are not RESP.
 */
export function parseReply(buffer: Buffer, start: number): { value: RespValue; end: number } | typeof INCOMPLETE {
  const lineEnd = buffer.indexOf(CRLF, start + 1);
  if (lineEnd === -1) return INCOMPLETE;
  const type = buffer[start];
  const line = buffer.toString("utf8", start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b: // +
      return { value: line, end: next };
    case 0x2d: // -
      return { value: new RedisReplyError(line), end: next };
    case 0x3a: // :
      return { value: Number(line), end: next };
    case 0x24: {
      // $
      const length = Number(line);
      if (length === -1) return { value: null, end: next };
      if (!Number.isInteger(length) || length < 0) throw new RedisConnectionError("Protocol error: bad bulk length");
      if (buffer.length < next + length + 2) return INCOMPLETE;
      return { value: buffer.toString("utf8", next, next + length), end: next + length + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count === -1) return { value: null, end: next };
      if (!Number.isInteger(count) || count < 0) throw new RedisConnectionError("Protocol error: bad array length");
      const items: RespValue[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, position);
        if (item === INCOMPLETE) return INCOMPLETE;
        items.push(item.value);
        position = item.end;
      }
      return { value: items, end: position };
    }
    default:
      throw new RedisConnectionError("Protocol error: unexpected reply type");
  }
}

interface Endpoint {
  host: string;
  port: number;
  tls: ConnectionOptions | null;
  username: string | null;
  password: string | null;
  db: number;
}

function parseUrl(url: string, tlsOption: RespClientOptions["tls"]): Endpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not the URL error itself: it carries the whole input, password included, and Lambda logs
    // every field of an error that escapes the handler.
    throw new Error("Redis URL is not a valid URL");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") throw new Error("Redis URL must start with redis:// or rediss://");
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const useTls = tlsOption === undefined ? parsed.protocol === "rediss:" : tlsOption !== false;
  const tls: ConnectionOptions | null = useTls
    ? { ...(isIP(host) ? {} : { servername: host }), ...(typeof tlsOption === "object" ? tlsOption : {}) }
    : null;
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error("Redis URL: the database must be a number");
  return {
    host,
    port: parsed.port ? Number(parsed.port) : 6379,
    tls,
    username: parsed.username ? decodeURIComponent(parsed.username) : null,
    password: parsed.password ? decodeURIComponent(parsed.password) : null,
    db,
  };
}

export class RespClient {
  #status: RespStatus = "idle";
  readonly #endpoint: Endpoint;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #retryDelayMs: (attempt: number) => number;
  #socket: Socket | null = null;
  #pending: Pending[] = [];
  #received: Buffer | null = null;
  #outgoing: string[] = [];
  #flushScheduled = false;
  #connecting: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** When the next reconnection attempt is due (wall clock: a frozen Lambda runs no timers). */
  #retryAt = 0;
  #attempt = 0;

  constructor(options: RespClientOptions) {
    this.#endpoint = parseUrl(options.url, options.tls);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 500;
    this.#retryDelayMs = options.retryDelayMs ?? ((attempt) => Math.min(50 * 2 ** attempt, 2000));
  }

  get status(): RespStatus {
    return this.#status;
  }

  /**
   * Connects (once; later calls share the attempt) and resolves when the connection is ready:
   * authenticated and on its database. Rejects with RedisConnectionError on failure or timeout,
   * after which reconnection goes on in the background.
   */
  connect(): Promise<void> {
    if (this.#status === "ready") return Promise.resolve();
    if (this.#status === "closed") return Promise.reject(new RedisConnectionError("Connection is closed"));
    this.#connecting ??= this.#open().finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  /**
   * Resolves once the connection is usable, or as soon as it is clear it is not: waits for a
   * first connection or an attempt in progress, and starts the next reconnection attempt itself
   * when its backoff has passed (after a Lambda thaw the retry timer has not had a chance to run).
   * Inside the backoff it returns at once, so an outage costs callers nothing but a failed call.
   */
  async ready(): Promise<void> {
    if (this.#status === "ready" || this.#status === "closed") return;
    if (this.#status === "reconnecting" && !this.#connecting) {
      if (Date.now() < this.#retryAt) return;
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    await this.connect().catch(() => {});
  }

  /** Sends one command; rejects at once unless the connection is ready (no offline queue). */
  async command(args: readonly Argument[]): Promise<RespValue> {
    const [reply] = await this.pipeline([args]);
    if (reply instanceof RedisReplyError) throw reply;
    return reply!;
  }

  /** Sends commands back to back in one write; error replies are returned in place, not thrown. */
  pipeline(commands: readonly (readonly Argument[])[]): Promise<RespValue[]> {
    if (this.#status !== "ready" || !this.#socket) {
      return Promise.reject(new RedisConnectionError(`Redis is not connected (${this.#status})`));
    }
    return Promise.all(commands.map((args) => this.#send(args)));
  }

  /** Runs a Lua script by its SHA-1, loading it with EVAL the first time the server lacks it. */
  async evalScript(script: string, keys: readonly string[], args: readonly Argument[]): Promise<RespValue> {
    const sha = scriptSha(script);
    const reply = (await this.pipeline([["EVALSHA", sha, keys.length, ...keys, ...args]]))[0]!;
    if (reply instanceof RedisReplyError && reply.message.startsWith("NOSCRIPT")) {
      return this.command(["EVAL", script, keys.length, ...keys, ...args]);
    }
    if (reply instanceof RedisReplyError) throw reply;
    return reply;
  }

  /** Closes the connection and stops reconnecting; pending commands are rejected. */
  close(): void {
    this.#status = "closed";
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#drop(new RedisConnectionError("Connection closed by the client"));
  }

  #send(args: readonly Argument[]): Promise<RespValue> {
    return new Promise<RespValue>((resolve, reject) => {
      const entry: Pending = { resolve, reject, timer: null, done: false };
      entry.timer = setTimeout(() => {
        entry.done = true;
        reject(new RedisConnectionError(`Redis command timed out after ${this.#commandTimeoutMs} ms`));
        // The connection may be half-open: start over on a fresh one.
        if (this.#status === "ready") this.#lost(new RedisConnectionError("Command timed out; reconnecting"));
      }, this.#commandTimeoutMs);
      entry.timer.unref?.();
      this.#pending.push(entry);
      this.#outgoing.push(encodeCommand(args));
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#outgoing.length === 0) return;
    const data = this.#outgoing.join("");
    this.#outgoing = [];
    this.#socket?.write(data);
  }

  async #open(): Promise<void> {
    this.#status = this.#attempt === 0 ? "connecting" : "reconnecting";
    const { host, port, tls } = this.#endpoint;
    const socket = tls ? tlsConnect({ host, port, ...tls }) : netConnect({ host, port });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.#socket = socket;
    this.#received = null;
    socket.on("data", (chunk: Buffer) => this.#onData(socket, chunk));
    let socketError: Error | undefined;
    socket.on("error", (error) => (socketError = error)); // surfaces as "close"
    socket.on("close", () => {
      if (this.#socket === socket) this.#lost(new RedisConnectionError("Connection to Redis closed"));
    });

    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RedisConnectionError(`Could not connect to Redis within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
      timer.unref?.();
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("close", () => {
        clearTimeout(timer);
        // The cause says why (refused, TLS certificate, ...); it holds no credentials.
        reject(new RedisConnectionError("Could not connect to Redis", socketError ? { cause: socketError } : undefined));
      });
    });
    try {
      await connected;
      // Handshake on the fresh socket; the status is not "ready" yet, so nobody else uses it.
      const handshake: Argument[][] = [];
      const { username, password, db } = this.#endpoint;
      if (password) handshake.push(username ? ["AUTH", username, password] : ["AUTH", password]);
      if (db) handshake.push(["SELECT", db]);
      if (handshake.length) {
        const replies = await Promise.all(handshake.map((args) => this.#send(args)));
        const refused = replies.find((reply) => reply instanceof RedisReplyError);
        if (refused) throw new RedisConnectionError(`Redis refused the handshake: ${(refused as RedisReplyError).message.split(" ")[0]}`);
      }
      if (this.#socket !== socket) throw new RedisConnectionError("Connection to Redis closed");
      this.#status = "ready";
      this.#attempt = 0;
    } catch (error) {
      if (this.#socket === socket) this.#lost(error instanceof Error ? error : new RedisConnectionError(String(error)));
      throw error instanceof RedisConnectionError ? error : new RedisConnectionError("Could not connect to Redis", { cause: error });
    }
  }

  #onData(socket: Socket, chunk: Buffer): void {
    if (this.#socket !== socket) return;
    let buffer = this.#received ? Buffer.concat([this.#received, chunk]) : chunk;
    if (buffer.length > MAX_PENDING_REPLY_BYTES) {
      this.#lost(new RedisConnectionError("Protocol error: reply too large"));
      return;
    }
    let position = 0;
    try {
      while (position < buffer.length) {
        const reply = parseReply(buffer, position);
        if (reply === INCOMPLETE) break;
        position = reply.end;
        const entry = this.#pending.shift();
        if (!entry) throw new RedisConnectionError("Protocol error: a reply nobody asked for");
        if (entry.timer) clearTimeout(entry.timer);
        if (!entry.done) {
          entry.done = true;
          entry.resolve(reply.value);
        }
      }
    } catch (error) {
      this.#lost(error instanceof Error ? error : new RedisConnectionError(String(error)));
      return;
    }
    buffer = buffer.subarray(position);
    this.#received = buffer.length ? buffer : null;
  }

  /** The connection is gone (closed, timed out, or spoke nonsense): fail what waits, retry later. */
  #lost(error: Error): void {
    this.#drop(error);
    if (this.#status === "closed") return;
    this.#status = "reconnecting";
    if (this.#retryTimer) return;
    this.#attempt += 1;
    const delay = this.#retryDelayMs(this.#attempt);
    this.#retryAt = Date.now() + delay;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#status === "closed") return;
      this.connect().catch(() => {});
    }, delay);
    this.#retryTimer.unref?.();
  }

  #drop(error: Error): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#received = null;
    this.#outgoing = [];
    socket?.destroy();
    const pending = this.#pending;
    this.#pending = [];
    for (const entry of pending) {
      if (entry.timer) clearTimeout(entry.timer);
      if (!entry.done) {
        entry.done = true;
        entry.reject(error);
      }
    }
  }
}

const shas = new Map<string, string>();
function scriptSha(script: string): string {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash("sha1").update(script).digest("hex");
    shas.set(script, sha);
  }
  return sha;
}
