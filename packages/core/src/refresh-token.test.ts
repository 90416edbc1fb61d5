import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { uuidv7 } from "./ids";
import {
  decodeRefreshToken,
  deriveChild,
  descendTo,
  encodeRefreshToken,
  hashRefreshSecret,
  MAX_GENERATION,
  newRefreshToken,
  type RefreshToken,
} from "./refresh-token";

const TOKEN_LENGTH = 91;

const newKey = (): Buffer => randomBytes(32);

/** chain[0] is a fresh token, chain[i] the result of rotating it i times. */
function chain(key: Uint8Array, length: number, sessionId = uuidv7()): RefreshToken[] {
  const tokens = [newRefreshToken(sessionId)];
  for (let i = 1; i < length; i++) tokens.push(deriveChild(key, tokens[i - 1]!));
  return tokens;
}

/** Replaces one character of `text`. */
const replaceAt = (text: string, index: number, char: string): string =>
  text.slice(0, index) + char + text.slice(index + 1);

describe("encodeRefreshToken / decodeRefreshToken", () => {
  const key = newKey();
  const encode = (token: RefreshToken) => encodeRefreshToken(key, token);
  const decode = (text: string) => decodeRefreshToken(key, text);

  it("round-trips a fresh token", () => {
    const token = newRefreshToken(uuidv7());
    const text = encode(token);
    expect(text).toHaveLength(TOKEN_LENGTH);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    const decoded = decode(text);
    expect(decoded).not.toBeNull();
    expect(decoded!.sessionId).toBe(token.sessionId);
    expect(decoded!.generation).toBe(0);
    expect(decoded!.secret.equals(token.secret)).toBe(true);
  });

  it.each([1, 255, 256, 65_536, MAX_GENERATION - 1])("round-trips generation %i", (generation) => {
    const token: RefreshToken = { sessionId: uuidv7(), generation, secret: randomBytes(32) };
    expect(decode(encode(token))).toEqual(token);
  });

  it("refuses generations that do not fit the database column, even when correctly tagged", () => {
    for (const generation of [MAX_GENERATION, 0xffffffff]) {
      expect(decode(encode({ sessionId: uuidv7(), generation, secret: randomBytes(32) }))).toBeNull();
    }
  });

  it("round-trips a derived token", () => {
    const [, , child] = chain(newKey(), 3);
    expect(decode(encode(child!))).toEqual(child);
  });

  it("gives different texts for different secrets of the same session", () => {
    const sessionId = uuidv7();
    expect(encode(newRefreshToken(sessionId))).not.toBe(encode(newRefreshToken(sessionId)));
  });

  it("refuses a token issued under another key (the tag authenticates it)", () => {
    const text = encode(newRefreshToken(uuidv7()));
    expect(decodeRefreshToken(newKey(), text)).toBeNull();
  });

  it("refuses any change to the session id, generation, secret or tag", () => {
    const bytes = Buffer.from(encode(newRefreshToken(uuidv7())), "base64url");
    for (const offset of [0, 15, 16, 19, 20, 51, 52, 67]) {
      const forged = Buffer.from(bytes);
      forged[offset] = forged[offset]! ^ 0x01;
      expect(decode(forged.toString("base64url")), `byte ${offset}`).toBeNull();
    }
    expect(decode(bytes.toString("base64url"))).not.toBeNull();
  });

  it("rejects the wrong length", () => {
    const text = encode(newRefreshToken(uuidv7()));
    expect(decode("")).toBeNull();
    expect(decode(text.slice(0, -1))).toBeNull();
    expect(decode(text + "A")).toBeNull();
    expect(decode(text + text)).toBeNull();
    expect(decode(text.slice(0, 70))).toBeNull();
  });

  it("rejects characters outside the base64url alphabet", () => {
    const text = encode(newRefreshToken(uuidv7()));
    for (const char of ["+", "/", ".", " ", "\n", "%", "!", "é", "\u0000"]) {
      expect(decode(replaceAt(text, 10, char)), JSON.stringify(char)).toBeNull();
    }
  });

  it("rejects standard base64 of the same bytes when it uses + or /", () => {
    let standard: string;
    do {
      standard = Buffer.from(encode(newRefreshToken(uuidv7())), "base64url").toString("base64").replace(/=+$/, "");
    } while (!/[+/]/.test(standard));
    expect(standard).toHaveLength(TOKEN_LENGTH);
    expect(decode(standard)).toBeNull();
  });

  it("accepts exactly one spelling of a token (no ignored trailing bits)", () => {
    const text = encode(newRefreshToken(uuidv7()));
    const last = text.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const variants = [...alphabet].filter((c) => c !== last).map((c) => replaceAt(text, text.length - 1, c));
    expect(variants.filter((variant) => decode(variant) !== null)).toEqual([]);
  });

  it("rejects padding", () => {
    const text = encode(newRefreshToken(uuidv7()));
    expect(decode(text + "=")).toBeNull();
    expect(decode(text.slice(0, -1) + "=")).toBeNull();
  });
});

describe("deriveChild", () => {
  it("is deterministic for the same key and parent", () => {
    const key = newKey();
    const parent = newRefreshToken(uuidv7());
    const a = deriveChild(key, parent);
    const b = deriveChild(Buffer.from(key), { ...parent, secret: Buffer.from(parent.secret) });
    expect(a.secret.equals(b.secret)).toBe(true);
    expect(a).toEqual(b);
  });

  it("differs for a different key", () => {
    const parent = newRefreshToken(uuidv7());
    const a = deriveChild(newKey(), parent);
    const b = deriveChild(newKey(), parent);
    expect(a.secret.equals(b.secret)).toBe(false);
  });

  it("increments the generation and keeps the session id", () => {
    const key = newKey();
    const tokens = chain(key, 5);
    tokens.forEach((token, i) => {
      expect(token.generation).toBe(i);
      expect(token.sessionId).toBe(tokens[0]!.sessionId);
      expect(token.secret).toHaveLength(32);
    });
    // Every secret in the chain is new.
    const secrets = new Set(tokens.map((t) => t.secret.toString("hex")));
    expect(secrets.size).toBe(tokens.length);
  });

  it("binds the child to the session id and the generation", () => {
    const key = newKey();
    const parent = newRefreshToken(uuidv7());
    const child = deriveChild(key, parent);
    const otherSession = deriveChild(key, { ...parent, sessionId: uuidv7() });
    const otherGeneration = deriveChild(key, { ...parent, generation: 1 });
    expect(otherSession.secret.equals(child.secret)).toBe(false);
    expect(otherGeneration.secret.equals(child.secret)).toBe(false);
  });
});

describe("descendTo", () => {
  const MAX_STEPS = 10;

  it("finds genuine ancestors 1..N steps back and returns the current token", () => {
    const key = newKey();
    const tokens = chain(key, 7);
    const current = tokens[6]!;
    const currentHash = hashRefreshSecret(current.secret);
    for (let steps = 1; steps <= 6; steps++) {
      const ancestor = tokens[6 - steps]!;
      // Through the wire format, as a client would present it.
      const presented = decodeRefreshToken(key, encodeRefreshToken(key, ancestor))!;
      const found = descendTo(key, presented, current.generation, currentHash, MAX_STEPS);
      expect(found, `${steps} steps back`).not.toBeNull();
      expect(found!.generation).toBe(current.generation);
      expect(found!.sessionId).toBe(current.sessionId);
      expect(found!.secret.equals(current.secret)).toBe(true);
    }
  });

  it("returns null for a garbage secret aimed at the session", () => {
    const key = newKey();
    const tokens = chain(key, 4);
    const current = tokens[3]!;
    const currentHash = hashRefreshSecret(current.secret);
    for (let generation = 0; generation < 3; generation++) {
      const garbage: RefreshToken = { sessionId: current.sessionId, generation, secret: randomBytes(32) };
      expect(descendTo(key, garbage, 3, currentHash, MAX_STEPS)).toBeNull();
    }
  });

  it("returns null for a genuine ancestor under another key", () => {
    const key = newKey();
    const tokens = chain(key, 3);
    const currentHash = hashRefreshSecret(tokens[2]!.secret);
    expect(descendTo(key, tokens[0]!, 2, currentHash, MAX_STEPS)).not.toBeNull();
    expect(descendTo(newKey(), tokens[0]!, 2, currentHash, MAX_STEPS)).toBeNull();
  });

  it("returns null for an ancestor's secret moved to another session", () => {
    const key = newKey();
    const tokens = chain(key, 3);
    const currentHash = hashRefreshSecret(tokens[2]!.secret);
    expect(descendTo(key, { ...tokens[0]!, sessionId: uuidv7() }, 2, currentHash, MAX_STEPS)).toBeNull();
  });

  it("returns null when the presented generation is the current one or later", () => {
    const key = newKey();
    const tokens = chain(key, 4);
    const current = tokens[3]!;
    const currentHash = hashRefreshSecret(current.secret);
    // Even the genuine current token: it is not an ancestor.
    expect(descendTo(key, current, 3, currentHash, MAX_STEPS)).toBeNull();
    const next = deriveChild(key, current);
    expect(descendTo(key, next, 3, currentHash, MAX_STEPS)).toBeNull();
    expect(descendTo(key, { ...current, generation: 0xffffffff }, 3, currentHash, MAX_STEPS)).toBeNull();
  });

  it("returns null when the walk would exceed maxSteps", () => {
    const key = newKey();
    const tokens = chain(key, 6);
    const current = tokens[5]!;
    const currentHash = hashRefreshSecret(current.secret);
    // Five steps: allowed at maxSteps 5, refused at 4.
    expect(descendTo(key, tokens[0]!, 5, currentHash, 5)).not.toBeNull();
    expect(descendTo(key, tokens[0]!, 5, currentHash, 4)).toBeNull();
    expect(descendTo(key, tokens[1]!, 5, currentHash, 4)).not.toBeNull();
  });

  it("returns null when the stored hash is not the hash of the descendant", () => {
    const key = newKey();
    const tokens = chain(key, 3);
    // The raw secret instead of its hash, and a hash of the wrong generation.
    expect(descendTo(key, tokens[0]!, 2, tokens[2]!.secret, MAX_STEPS)).toBeNull();
    expect(descendTo(key, tokens[0]!, 2, hashRefreshSecret(tokens[1]!.secret), MAX_STEPS)).toBeNull();
    expect(descendTo(key, tokens[0]!, 2, Buffer.alloc(0), MAX_STEPS)).toBeNull();
  });
});
