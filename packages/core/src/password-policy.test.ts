import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { blocklistSource, BLOCKLIST_SHAPE } from "../scripts/blocklist-source";
import { bloomFalsePositiveRate, bloomMembership, buildBloomFilter } from "./password-blocklist-filter";
import { PASSWORD_BLOCKLIST } from "./password-blocklist.data";
import {
  DEFAULT_PASSWORD_POLICY,
  hasLoneSurrogate,
  normalizePassword,
  passwordContextWords,
  passwordMessage,
  passwordProblem,
  passwordShapeProblem,
} from "./password-policy";

const policy = DEFAULT_PASSWORD_POLICY;
const strong = () => `${randomBytes(9).toString("base64url")}-x`;

describe("password length (docs/security.md §1)", () => {
  const check = (password: string, minLength = 8) => passwordShapeProblem(password, minLength);

  it("defaults to a minimum of 8 code points, and accepts 8 and 256 but not 7 or 257", () => {
    expect(DEFAULT_PASSWORD_POLICY).toEqual({ minLength: 8 });
    expect(check("a".repeat(7))).toBe("TOO_SHORT");
    expect(check("a".repeat(8))).toBeNull();
    expect(check("a".repeat(256))).toBeNull();
    expect(check("a".repeat(257))).toBe("TOO_LONG");
    expect(check("")).toBe("TOO_SHORT");
  });

  it("counts code points, not UTF-16 units: an emoji is one", () => {
    const emoji = "😀";
    expect(emoji).toHaveLength(2);
    expect(check(emoji.repeat(7))).toBe("TOO_SHORT");
    expect(check(emoji.repeat(8))).toBeNull();
    expect(check(emoji.repeat(256))).toBeNull();
    expect(check(emoji.repeat(257))).toBe("TOO_LONG");
    expect(check("a".repeat(255) + emoji)).toBeNull();
    expect(check("a".repeat(256) + emoji)).toBe("TOO_LONG");
  });

  it("counts after NFKC", () => {
    // "ﬁ" is one code point that NFKC expands to two; a decomposed accent composes to one.
    expect(check("ﬁ".repeat(4))).toBeNull();
    expect(check("ﬁ".repeat(3))).toBe("TOO_SHORT");
    expect(check("e\u0301".repeat(7))).toBe("TOO_SHORT");
    expect(check("e\u0301".repeat(8))).toBeNull();
  });

  it("honours a configured minimum", () => {
    expect(check("a".repeat(11), 12)).toBe("TOO_SHORT");
    expect(check("a".repeat(12), 12)).toBeNull();
  });

  it("NFKC makes the ligature equal fi, composed equal decomposed, full-width equal ASCII, and keeps case", () => {
    expect(normalizePassword("ﬁnance")).toBe(normalizePassword("finance"));
    expect(normalizePassword("caf\u00e9")).toBe(normalizePassword("cafe\u0301"));
    expect(normalizePassword("ｐａｓｓ１２３")).toBe("pass123");
    expect(normalizePassword("Password")).not.toBe(normalizePassword("password"));
  });
});

describe("lone surrogates", () => {
  it("are refused with their own message, so two different inputs never become one password", () => {
    for (const password of ["abcdefgh\ud800", "abcdefgh\udfff", "\udc00abcdefgh", "abcd\ud800efgh"]) {
      expect(hasLoneSurrogate(password), JSON.stringify(password)).toBe(true);
      expect(passwordShapeProblem(password)).toBe("INVALID_CHARACTER");
    }
    // Both would encode to the same bytes: that is why they are refused, not repaired.
    expect(Buffer.from("abcdefgh\ud800").equals(Buffer.from("abcdefgh\udfff"))).toBe(true);
    expect(passwordMessage("INVALID_CHARACTER")).toMatch(/invalid character/);
  });

  it("are not confused with a surrogate pair (an astral character)", () => {
    expect(hasLoneSurrogate("abcdefgh😀")).toBe(false);
    expect(passwordShapeProblem("abcdefg😀")).toBeNull();
  });
});

describe("the blocklist (docs/security.md §2)", () => {
  it("refuses common and breached passwords, in any case and width", () => {
    for (const password of ["password", "12345678", "iloveyou", "PASSWORD", "Qwertyuiop", "ｐａｓｓｗｏｒｄ", "trustno1", "football1"]) {
      expect(passwordProblem(password, policy), password).toBe("COMMON");
    }
    expect(passwordMessage("COMMON")).toMatch(/too common/);
  });

  it("lets uncommon passwords through", () => {
    for (const password of ["correct horse battery staple", "Tr0ub4dor&3-but-longer", strong(), "मेरा पासवर्ड लंबा है"]) {
      expect(passwordProblem(password, policy), password).toBeNull();
    }
  });

  it("holds every entry of the source list (no false negatives), and is built from it as committed", async () => {
    const { entries } = await blocklistSource();
    expect(entries.length).toBeGreaterThan(40_000);
    const member = bloomMembership(PASSWORD_BLOCKLIST);
    expect(entries.filter((entry) => !member(entry))).toEqual([]);
    // The committed data is what the build script produces from the pinned package today.
    const rebuilt = buildBloomFilter(entries, BLOCKLIST_SHAPE);
    expect({ bits: rebuilt.bits, hashes: rebuilt.hashes }).toEqual({ bits: PASSWORD_BLOCKLIST.bits, hashes: PASSWORD_BLOCKLIST.hashes });
    expect(rebuilt.data === PASSWORD_BLOCKLIST.data).toBe(true);
  });

  it("refuses random strings at about the rate it states (≈ 0.1 %)", () => {
    const stated = bloomFalsePositiveRate(PASSWORD_BLOCKLIST, PASSWORD_BLOCKLIST.entries);
    expect(stated).toBeLessThan(0.0015);
    const member = bloomMembership(PASSWORD_BLOCKLIST);
    const trials = 40_000;
    let hits = 0;
    for (let i = 0; i < trials; i++) if (member(randomBytes(12).toString("base64url"))) hits += 1;
    // Expected ≈ 40 at 0.1 %; a generous bound, the test is against a broken filter (e.g. all ones).
    expect(hits / trials).toBeLessThan(stated * 4);
  });

  it("states its shape in the generated file's header", () => {
    const header = readFileSync(new URL("./password-blocklist.data.ts", import.meta.url), "utf8").split("\n").slice(0, 2).join("\n");
    expect(header).toContain(`${PASSWORD_BLOCKLIST.entries} passwords`);
    expect(header).toMatch(/false-positive rate of 0\.\d+ %/);
  });
});

describe("context words (docs/security.md §2)", () => {
  const context = passwordContextWords({ email: "Alice.Smith@Example.com", name: "Alice Smith" });

  it("are the email's local part and its pieces, the domain's names, the user's name and the service's name", () => {
    expect(context).toEqual(expect.arrayContaining(["alice.smith", "alice", "smith", "example", "authlith"]));
    expect(context).not.toContain("com");
    expect(context.map((w) => [...w].length)).toEqual([...context.map((w) => [...w].length)].sort((a, b) => b - a));
  });

  it("refuses a password that is little more than them", () => {
    for (const password of ["alice.smith", "AliceSmith1", "alice2024!", "smith-alice", "authlith123", "example!!1"]) {
      expect(passwordProblem(password, policy, context), password).toBe("CONTEXT");
    }
    expect(passwordMessage("CONTEXT")).toMatch(/email address/);
  });

  it("allows a passphrase that happens to contain one", () => {
    expect(passwordProblem("alice likes purple thunderstorms", policy, context)).toBeNull();
    expect(passwordProblem(`smith-${strong()}`, policy, context)).toBeNull();
  });

  it("ignores context words shorter than three characters", () => {
    const short = passwordContextWords({ email: "al@x.io", service: [] });
    expect(short).toEqual([]);
  });
});
