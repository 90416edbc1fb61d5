import { createPostgresDb, waitForPostgres } from "@authlith/core";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TLSSocket } from "node:tls";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasRealServices, TEST_DATABASE_URL } from "../../core/test/support";
import { parseDatabaseConfig } from "../src/config";

/**
 * Verified TLS to Postgres (docs/security.md §37), offline: a Postgres that speaks TLS with a
 * certificate from a CA made here (openssl), as RDS does with its own CA. The server is the real
 * local Postgres behind a TLS-terminating front that answers Postgres's SSLRequest.
 */
const SSL_REQUEST = 80877103;

function openssl(dir: string, ...args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** A CA and a server certificate it signed for `host`. */
function makeCertificates(dir: string, name: string, host: string) {
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", `/CN=${name} test CA`, "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`);
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${host}`, "-keyout", `${name}-server.key`, "-out", `${name}-server.csr`);
  execFileSync("sh", ["-c", `printf 'subjectAltName=DNS:${host}' > ${name}.ext`], { cwd: dir });
  openssl(dir, "x509", "-req", "-in", `${name}-server.csr`, "-CA", `${name}-ca.pem`, "-CAkey", `${name}-ca.key`, "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}-server.pem`);
  return { ca: join(dir, `${name}-ca.pem`), key: join(dir, `${name}-server.key`), cert: join(dir, `${name}-server.pem`) };
}

/** Postgres with TLS: answers SSLRequest with 'S', terminates TLS with `cert`, forwards to the real server. */
async function tlsPostgres(target: URL, key: string, cert: string) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    client.once("data", (first) => {
      if (first.length < 8 || first.readInt32BE(4) !== SSL_REQUEST) return void client.destroy();
      client.write("S");
      const secure = new TLSSocket(client, { isServer: true, key, cert });
      secure.on("error", () => client.destroy());
      const upstream = connect(Number(target.port || 5432), target.hostname);
      upstream.on("error", () => secure.destroy());
      secure.pipe(upstream).pipe(secure);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.runIf(hasRealServices)("verified TLS to Postgres", () => {
  let dir: string;
  let good: ReturnType<typeof makeCertificates>;
  let other: ReturnType<typeof makeCertificates>;
  let front: Awaited<ReturnType<typeof tlsPostgres>>;
  let misnamed: Awaited<ReturnType<typeof tlsPostgres>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "authlith-pg-tls-"));
    good = makeCertificates(dir, "good", "localhost");
    other = makeCertificates(dir, "other", "db.example.test");
    const target = new URL(TEST_DATABASE_URL!);
    front = await tlsPostgres(target, await readFile(good.key, "utf8"), await readFile(good.cert, "utf8"));
    misnamed = await tlsPostgres(target, await readFile(other.key, "utf8"), await readFile(other.cert, "utf8"));
  });
  afterAll(async () => {
    await front?.close();
    await misnamed?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const urlFor = (port: number) => {
    const url = new URL(TEST_DATABASE_URL!);
    url.host = `localhost:${port}`;
    return url.toString();
  };
  async function query(env: Record<string, string>): Promise<unknown> {
    const { db, close } = createPostgresDb({ ...parseDatabaseConfig(env), connectTimeoutSeconds: 5 });
    try {
      return await db.execute(sql`select 1 as ok`);
    } finally {
      await close();
    }
  }
  /** The TLS failure's code (drizzle wraps the driver's error as its cause). */
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => null,
      (error: { code?: string; cause?: { code?: string } }) => ({ code: error.cause?.code ?? error.code }),
    );

  it("connects when the server's certificate chains to the trusted CA and names the host", async () => {
    const rows = await query({ DATABASE_URL: urlFor(front.port), DATABASE_SSL: "verify-full", DATABASE_SSL_CA: good.ca });
    expect(rows).toEqual([{ ok: 1 }]);
  });

  it("refuses a server whose certificate another CA signed (here: the RDS bundle does not know it)", async () => {
    const error = await failure(query({ DATABASE_URL: urlFor(front.port), DATABASE_SSL: "verify-full" }));
    expect(error?.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    const wrongCa = await failure(query({ DATABASE_URL: urlFor(front.port), DATABASE_SSL: "verify-full", DATABASE_SSL_CA: other.ca }));
    expect(wrongCa?.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
  });

  it("refuses a certificate for another host name, even from the trusted CA", async () => {
    const error = await failure(query({ DATABASE_URL: urlFor(misnamed.port), DATABASE_SSL: "verify-full", DATABASE_SSL_CA: other.ca }));
    expect(error?.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("shows why `require` is not enough: it connects to the server nobody vouches for", async () => {
    expect(await query({ DATABASE_URL: urlFor(misnamed.port), DATABASE_SSL: "require" })).toEqual([{ ok: 1 }]);
  });

  it("the migrator's wait uses the same verified TLS", async () => {
    const { url, ssl } = parseDatabaseConfig({ DATABASE_URL: urlFor(front.port), DATABASE_SSL: "verify-full", DATABASE_SSL_CA: good.ca });
    expect((await waitForPostgres(url, { deadlineMs: 5000, ssl })).attempts).toBe(1);
    const refused = await failure(waitForPostgres(url, { deadlineMs: 5000, ssl: { ca: await readFile(other.ca, "utf8"), rejectUnauthorized: true } }));
    expect(refused?.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });
});
