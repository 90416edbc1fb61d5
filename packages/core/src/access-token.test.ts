import { createPrivateKey, createPublicKey, createSign, createVerify, randomBytes } from "node:crypto";
import {
  base64url,
  decodeProtectedHeader,
  decodeJwt,
  exportJWK,
  exportSPKI,
  importJWK,
  SignJWT,
  type JWTHeaderParameters,
  type JWTPayload,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ACCESS_TOKEN_TYPE, signAccessToken, verifyAccessToken, type AccessTokenOptions } from "./access-token";
import { uuidv7 } from "./ids";
import { generateSigningKey, loadKeySet, type KeySet, type SigningKeySetJson } from "./keys";

type SigningJwk = SigningKeySetJson["keys"][number];

const OPTIONS: AccessTokenOptions = {
  issuer: "https://auth.test.invalid",
  audience: "https://api.test.invalid",
  ttlSeconds: 300,
  clockToleranceSeconds: 5,
};
const RETAIN_MS = 600_000;
// A whole second, so iat (seconds) and nowMs (milliseconds) line up exactly.
const NOW = Math.floor(Date.now() / 1000) * 1000;
const NOW_S = NOW / 1000;

const INVALID = { ok: false, code: "INVALID_TOKEN" };
const EXPIRED = { ok: false, code: "TOKEN_EXPIRED" };

let esJwk: SigningJwk;
let rsJwk: SigningJwk;
let esKeys: KeySet;
let rsKeys: KeySet;
let esPrivate: CryptoKey;
let rsPrivate: CryptoKey;

beforeAll(async () => {
  [esJwk, rsJwk] = await Promise.all([generateSigningKey("ES256"), generateSigningKey("RS256")]);
  esKeys = await loadKeySet({ keys: [esJwk] }, { signingAlg: "ES256", retainAfterSupersededMs: RETAIN_MS });
  rsKeys = await loadKeySet({ keys: [rsJwk] }, { signingAlg: "RS256", retainAfterSupersededMs: RETAIN_MS });
  esPrivate = (await importJWK(esJwk, "ES256")) as CryptoKey;
  rsPrivate = (await importJWK(rsJwk, "RS256")) as CryptoKey;
});

const subject = () => ({ userId: uuidv7(NOW), sessionId: uuidv7(NOW), email: "user@example.test", emailVerified: true, authTime: NOW - 60_000 });

/** The claims a genuine token carries; tests remove or change one at a time. */
function validClaims(overrides: Record<string, unknown> = {}): JWTPayload {
  return {
    iss: OPTIONS.issuer,
    aud: OPTIONS.audience,
    sub: uuidv7(NOW),
    sid: uuidv7(NOW),
    jti: base64url.encode(randomBytes(16)),
    email: "user@example.test",
    email_verified: false,
    iat: NOW_S,
    exp: NOW_S + OPTIONS.ttlSeconds,
    ...overrides,
  };
}

function without(claim: string): JWTPayload {
  const claims = validClaims();
  delete claims[claim];
  return claims;
}

/** Signs arbitrary claims and header with the service's own ES256 key (or another key). */
async function craft(
  payload: JWTPayload,
  header: Partial<JWTHeaderParameters> = {},
  key: CryptoKey | Uint8Array = esPrivate,
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE, ...header } as JWTHeaderParameters)
    .sign(key);
}

/** A compact token from raw JSON parts and a raw signature part. */
const assemble = (header: unknown, payload: unknown, signature = ""): string =>
  `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}.${signature}`;

const verify = (token: string, nowMs = NOW, keys: KeySet = esKeys, options: AccessTokenOptions = OPTIONS) =>
  verifyAccessToken(keys, options, token, nowMs);

/** Signs any header with the service's ES256 key, bypassing jose's own checks on what it signs. */
function signRaw(header: unknown, payload: unknown): string {
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}`;
  const key = createPrivateKey({ key: esJwk as never, format: "jwk" });
  const signature = createSign("SHA256").update(input).sign({ key, dsaEncoding: "ieee-p1363" });
  return `${input}.${base64url.encode(signature)}`;
}

/** DER encoding of an ECDSA (r, s) signature given as the JOSE r ‖ s concatenation. */
function rawToDer(raw: Uint8Array): Buffer {
  const integer = (bytes: Uint8Array) => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    let body = Buffer.from(bytes.subarray(start));
    if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const half = raw.length / 2;
  const content = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, content.length]), content]);
}

describe("signAccessToken / verifyAccessToken: genuine tokens", () => {
  it("signs an at+jwt with the signing key's kid and verifies it back to the claims", async () => {
    const who = subject();
    const { token, expiresAt } = await signAccessToken(esKeys, OPTIONS, who, NOW + 123);
    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: esJwk.kid, typ: "at+jwt" });
    const payload = decodeJwt(token);
    expect(payload).toMatchObject({ iss: OPTIONS.issuer, aud: OPTIONS.audience, sub: who.userId, sid: who.sessionId });
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(payload.auth_time).toBe(Math.floor((NOW - 60_000) / 1000));
    expect(expiresAt).toBe(NOW + OPTIONS.ttlSeconds * 1000);

    const result = await verify(token, NOW + 1000);
    expect(result).toEqual({
      ok: true,
      value: {
        userId: who.userId,
        sessionId: who.sessionId,
        email: who.email,
        emailVerified: true,
        authTime: NOW - 60_000,
        amr: ["pwd"],
        issuedAt: NOW,
        expiresAt: NOW + OPTIONS.ttlSeconds * 1000,
      },
    });
    expect(payload.amr).toEqual(["pwd"]);
  });

  it("gives every token its own jti", async () => {
    const who = subject();
    const a = await signAccessToken(esKeys, OPTIONS, who, NOW);
    const b = await signAccessToken(esKeys, OPTIONS, who, NOW);
    expect(decodeJwt(a.token).jti).not.toBe(decodeJwt(b.token).jti);
  });

  it("signs and verifies with RS256", async () => {
    const who = { ...subject(), emailVerified: false };
    const { token } = await signAccessToken(rsKeys, OPTIONS, who, NOW);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "RS256", kid: rsJwk.kid });
    const result = await verify(token, NOW, rsKeys);
    expect(result.ok && result.value).toMatchObject({ userId: who.userId, sessionId: who.sessionId, emailVerified: false });
  });

  it("control: a token crafted by the test helper with the real key verifies", async () => {
    // Proves the hostile variants below fail for the one thing they change.
    const result = await verify(await craft(validClaims()));
    expect(result.ok).toBe(true);
  });
});

describe("verifyAccessToken: expiry and clock tolerance", () => {
  it("returns TOKEN_EXPIRED once past exp plus the tolerance", async () => {
    const { token } = await signAccessToken(esKeys, OPTIONS, subject(), NOW);
    const exp = NOW + OPTIONS.ttlSeconds * 1000;
    const tolerance = OPTIONS.clockToleranceSeconds * 1000;
    expect(await verify(token, exp + tolerance)).toEqual(EXPIRED);
    expect(await verify(token, exp + 3_600_000)).toEqual(EXPIRED);
  });

  it("still accepts a token expired by less than clockToleranceSeconds", async () => {
    const { token } = await signAccessToken(esKeys, OPTIONS, subject(), NOW);
    const exp = NOW + OPTIONS.ttlSeconds * 1000;
    expect((await verify(token, exp - 1)).ok).toBe(true);
    expect((await verify(token, exp)).ok).toBe(true);
    expect((await verify(token, exp + OPTIONS.clockToleranceSeconds * 1000 - 1000)).ok).toBe(true);
  });

  it("caps the tolerance at 30 seconds", async () => {
    const lenient = { ...OPTIONS, clockToleranceSeconds: 3600 };
    const { token } = await signAccessToken(esKeys, lenient, subject(), NOW);
    const exp = NOW + OPTIONS.ttlSeconds * 1000;
    expect((await verify(token, exp + 29_000, esKeys, lenient)).ok).toBe(true);
    expect(await verify(token, exp + 31_000, esKeys, lenient)).toEqual(EXPIRED);
  });

  it("refuses a token whose exp reaches past the TTL once it is older than the TTL", async () => {
    const token = await craft(validClaims({ exp: NOW_S + 86_400 }));
    expect((await verify(token)).ok).toBe(true);
    expect(await verify(token, NOW + 3_600_000)).toEqual(EXPIRED);
  });

  it("refuses nbf in the future beyond the tolerance, accepts it within", async () => {
    expect(await verify(await craft(validClaims({ nbf: NOW_S + 60 })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ nbf: NOW_S + OPTIONS.clockToleranceSeconds + 1 })))).toEqual(INVALID);
    expect((await verify(await craft(validClaims({ nbf: NOW_S + 3 })))).ok).toBe(true);
  });

  it("refuses iat in the future beyond the tolerance", async () => {
    const token = await craft(validClaims({ iat: NOW_S + 60, exp: NOW_S + 60 + OPTIONS.ttlSeconds }));
    expect(await verify(token)).toEqual(INVALID);
  });
});

describe("verifyAccessToken: key rotation", () => {
  it("verifies a token of a superseded key during retention and refuses it after", async () => {
    const [oldJwk, newJwk] = await Promise.all([generateSigningKey("ES256"), generateSigningKey("ES256")]);
    const retainMs = 60_000;
    const keys = await loadKeySet(
      { keys: [{ ...oldJwk, active_from: NOW_S - 3600 }, { ...newJwk, active_from: NOW_S }] },
      { signingAlg: "ES256", retainAfterSupersededMs: retainMs },
    );
    const { token } = await signAccessToken(keys, OPTIONS, subject(), NOW - 1000);
    expect(decodeProtectedHeader(token).kid).toBe(oldJwk.kid);
    const fresh = await signAccessToken(keys, OPTIONS, subject(), NOW + 1000);
    expect(decodeProtectedHeader(fresh.token).kid).toBe(newJwk.kid);

    expect((await verify(token, NOW + 1000, keys)).ok).toBe(true);
    expect((await verify(token, NOW + retainMs - 1, keys)).ok).toBe(true);
    // Not yet expired (TTL 300 s), but its key is no longer published.
    expect(await verify(token, NOW + retainMs, keys)).toEqual(INVALID);
    expect((await verify(fresh.token, NOW + retainMs, keys)).ok).toBe(true);
  });
});

describe("verifyAccessToken: hostile tokens are INVALID_TOKEN values, never exceptions", () => {
  it('refuses alg "none"', async () => {
    const header = { alg: "none", kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE };
    expect(await verify(assemble(header, validClaims()))).toEqual(INVALID);
    // With the signature of a genuine token attached.
    const genuine = (await craft(validClaims())).split(".")[2]!;
    expect(await verify(assemble(header, validClaims(), genuine))).toEqual(INVALID);
    expect(await verify(assemble({ ...header, alg: "None" }, validClaims()))).toEqual(INVALID);
    expect(await verify(assemble({ alg: "none" }, validClaims()))).toEqual(INVALID);
  });

  it("refuses HS256 keyed with the ES256 public key (key confusion)", async () => {
    const publicJwk = esKeys.publicJwks(NOW).keys[0]!;
    const publicKey = esKeys.verificationKey(esJwk.kid, NOW)!.key;
    const secrets = [
      JSON.stringify(publicJwk),
      await exportSPKI(publicKey),
      (await exportSPKI(publicKey)).trim(),
      Buffer.from(JSON.stringify(await exportJWK(publicKey))).toString(),
    ];
    for (const secret of secrets) {
      const token = await craft(validClaims(), { alg: "HS256" }, new TextEncoder().encode(secret));
      expect(await verify(token)).toEqual(INVALID);
    }
  });

  it("refuses HS256 keyed with the RS256 public key (key confusion)", async () => {
    const pem = createPublicKey({ key: rsJwk as never, format: "jwk" }).export({ type: "spki", format: "pem" }) as string;
    const pkcs1 = createPublicKey({ key: rsJwk as never, format: "jwk" }).export({ type: "pkcs1", format: "pem" }) as string;
    for (const secret of [pem, pkcs1, JSON.stringify(rsKeys.publicJwks(NOW).keys[0])]) {
      const token = await craft(validClaims(), { alg: "HS256", kid: rsJwk.kid }, new TextEncoder().encode(secret));
      expect(await verify(token, NOW, rsKeys)).toEqual(INVALID);
    }
  });

  it("refuses a token whose header alg differs from the key's (RS256 key, ES256 header)", async () => {
    const both = await loadKeySet({ keys: [esJwk, rsJwk] }, { signingAlg: "ES256", retainAfterSupersededMs: RETAIN_MS });
    // Signed by the RSA key but claiming the EC key's kid.
    const token = await craft(validClaims(), { alg: "RS256", kid: esJwk.kid }, rsPrivate);
    expect(await verify(token, NOW, both)).toEqual(INVALID);
    // Control: with its own kid it verifies.
    const genuine = await craft(validClaims(), { alg: "RS256", kid: rsJwk.kid }, rsPrivate);
    expect((await verify(genuine, NOW, both)).ok).toBe(true);
  });

  it("refuses a wrong iss", async () => {
    expect(await verify(await craft(validClaims({ iss: "https://evil.test.invalid" })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ iss: `${OPTIONS.issuer}/` })))).toEqual(INVALID);
  });

  it("refuses a wrong aud", async () => {
    expect(await verify(await craft(validClaims({ aud: "https://other.test.invalid" })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ aud: [] })))).toEqual(INVALID);
  });

  it("refuses a wrong or missing typ", async () => {
    expect(await verify(await craft(validClaims(), { typ: "JWT" }))).toEqual(INVALID);
    expect(await verify(await craft(validClaims(), { typ: "id+jwt" }))).toEqual(INVALID);
    expect(await verify(await craft(validClaims(), { typ: undefined }))).toEqual(INVALID);
  });

  it.each(["sid", "jti", "sub", "exp", "iat", "iss", "aud", "email", "email_verified"])(
    "refuses a token without %s",
    async (claim) => {
      expect(await verify(await craft(without(claim)))).toEqual(INVALID);
    },
  );

  it("refuses a sid or sub that is not a UUID", async () => {
    expect(await verify(await craft(validClaims({ sid: "not-a-uuid" })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ sid: "" })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ sid: 42 })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ sid: `${uuidv7(NOW)}x` })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ sub: "admin" })))).toEqual(INVALID);
  });

  it("refuses claims of the wrong type", async () => {
    expect(await verify(await craft(validClaims({ email_verified: "true" })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ email: ["a@b.test"] })))).toEqual(INVALID);
    expect(await verify(await craft(validClaims({ exp: String(NOW_S + 60) })))).toEqual(INVALID);
  });

  it("refuses a token signed by a foreign key under the service's kid", async () => {
    const foreign = await generateSigningKey("ES256");
    const foreignKey = (await importJWK(foreign, "ES256")) as CryptoKey;
    expect(await verify(await craft(validClaims(), { kid: esJwk.kid }, foreignKey))).toEqual(INVALID);
  });

  it("refuses an unknown or missing kid", async () => {
    expect(await verify(await craft(validClaims(), { kid: "unknown-kid" }))).toEqual(INVALID);
    expect(await verify(await craft(validClaims(), { kid: undefined }))).toEqual(INVALID);
    expect(await verify(await craft(validClaims(), { kid: 7 as never }))).toEqual(INVALID);
  });

  it("refuses a tampered payload or signature", async () => {
    const token = await craft(validClaims());
    const [header, , signature] = token.split(".");
    const forged = base64url.encode(JSON.stringify(validClaims({ sub: uuidv7(NOW) })));
    expect(await verify(`${header}.${forged}.${signature}`)).toEqual(INVALID);
    // One flipped bit in the signature.
    const bytes = Buffer.from(base64url.decode(signature!));
    bytes[10]! ^= 1;
    expect(await verify(`${header}.${token.split(".")[1]}.${base64url.encode(bytes)}`)).toEqual(INVALID);
  });

  it("refuses a truncated token", async () => {
    const token = await craft(validClaims());
    const [header, payload] = token.split(".");
    for (const truncated of [
      token.slice(0, -1),
      token.slice(0, -10),
      token.slice(0, token.length / 2),
      `${header}.${payload}.`,
      `${header}.${payload}`,
      `${header}.`,
      header!,
    ]) {
      expect(await verify(truncated), truncated.slice(-20)).toEqual(INVALID);
    }
  });

  it("refuses an ECDSA signature converted to DER", async () => {
    const token = await craft(validClaims());
    const [header, payload, signature] = token.split(".");
    const der = rawToDer(base64url.decode(signature!));
    // Sanity: the DER form is a valid signature of the same input, just in the wrong encoding.
    const publicKey = createPublicKey({ key: esKeys.publicJwks(NOW).keys[0] as never, format: "jwk" });
    const ok = createVerify("SHA256").update(`${header}.${payload}`).verify({ key: publicKey, dsaEncoding: "der" }, der);
    expect(ok).toBe(true);
    expect(await verify(`${header}.${payload}.${base64url.encode(der)}`)).toEqual(INVALID);
  });

  it.each(["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"])(
    "refuses a genuinely signed token whose header carries %s",
    async (member) => {
      const publicJwk = esKeys.publicJwks(NOW).keys[0]!;
      const values: Record<string, unknown> = {
        jwk: publicJwk,
        jku: "https://evil.test.invalid/jwks.json",
        x5u: "https://evil.test.invalid/cert.pem",
        x5c: [randomBytes(64).toString("base64")],
        x5t: base64url.encode(randomBytes(20)),
        "x5t#S256": base64url.encode(randomBytes(32)),
      };
      const token = await craft(validClaims(), { [member]: values[member] });
      expect(await verify(token)).toEqual(INVALID);
    },
  );

  it("refuses a token over 4096 characters, even a genuine one", async () => {
    // The largest genuine token of at most 4096 characters verifies; the next size up does not.
    const claims = validClaims();
    const padded = (length: number) => craft({ ...claims, pad: "x".repeat(length) });
    let length = 2000;
    let under = await padded(length);
    let over = under;
    while (over.length <= 4096) {
      under = over;
      over = await padded(++length);
    }
    expect(under.length).toBeGreaterThan(4090);
    expect(under.length).toBeLessThanOrEqual(4096);
    expect((await verify(under)).ok).toBe(true);
    expect(over.length).toBeGreaterThan(4096);
    expect(await verify(over)).toEqual(INVALID);
    expect(await verify("a".repeat(1_000_000))).toEqual(INVALID);
  });

  it("refuses the empty string", async () => {
    expect(await verify("")).toEqual(INVALID);
  });

  it("refuses garbage strings", async () => {
    const token = await craft(validClaims());
    const garbage = [
      "a",
      ".",
      "..",
      "...",
      "a.b.c",
      "a.b.c.d.e",
      "Bearer " + token,
      token + ".",
      ` ${token}`,
      token.replace(/\./g, ""),
      "eyJhbGciOiJFUzI1NiJ9.e30.",
      "null.null.null",
      assemble(null, validClaims(), "x"),
      assemble([], validClaims(), "x"),
      assemble("ES256", validClaims(), "x"),
      assemble({ alg: 42, kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE }, validClaims(), "x"),
      assemble({ alg: "ES256", kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE, crit: ["exp"] }, validClaims(), "x"),
      `${base64url.encode("{not json")}.${base64url.encode("{}")}.AAAA`,
      `${token.split(".")[0]}.${base64url.encode("not json")}.${token.split(".")[2]}`,
      `${token.split(".")[0]}.${base64url.encode("[]")}.${token.split(".")[2]}`,
      "\u0000\u0001\u0002",
      "é.é.é",
      "💥.💥.💥",
      Array.from({ length: 20 }, () => base64url.encode(randomBytes(30))).join("."),
    ];
    for (let i = 0; i < 50; i++) {
      garbage.push([randomBytes(20), randomBytes(40), randomBytes(64)].map((b) => base64url.encode(b)).join("."));
      garbage.push(randomBytes(1 + (i % 40)).toString("latin1"));
    }
    for (const text of garbage) {
      expect(await verify(text), JSON.stringify(text).slice(0, 60)).toEqual(INVALID);
    }
  });

  it("refuses a critical header extension it does not understand", async () => {
    const header = { alg: "ES256", kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE };
    // Control: the raw signer produces tokens that verify.
    expect((await verify(signRaw(header, validClaims()))).ok).toBe(true);
    const critical = { ...header, crit: ["urn:example:unknown"], "urn:example:unknown": true };
    expect(await verify(signRaw(critical, validClaims()))).toEqual(INVALID);
  });

  it("refuses an unencoded payload (b64: false)", async () => {
    const header = { alg: "ES256", kid: esJwk.kid, typ: ACCESS_TOKEN_TYPE, b64: false, crit: ["b64"] };
    expect(await verify(signRaw(header, validClaims()))).toEqual(INVALID);
  });
});
