import { describe, expect, it } from "vitest";
import { fail, isServiceUnavailable, ok, ServiceUnavailableError } from "./result";

/** An error as the postgres driver raises it: a SQLSTATE in `code`. */
const pgError = (code: string, message = `pg error ${code}`) => Object.assign(new Error(message), { code });
/** As drizzle raises it: its own error with the driver's in `cause`. */
const drizzleWrapped = (cause: unknown) => new Error("Failed query: select 1\nparams: ", { cause });

describe("ok / fail", () => {
  it("builds values, omitting retryAfterSeconds unless given", () => {
    expect(ok(42)).toEqual({ ok: true, value: 42 });
    expect(fail("RATE_LIMITED")).toEqual({ ok: false, code: "RATE_LIMITED" });
    expect(fail("RATE_LIMITED")).not.toHaveProperty("retryAfterSeconds");
    expect(fail("RATE_LIMITED", 30)).toEqual({ ok: false, code: "RATE_LIMITED", retryAfterSeconds: 30 });
    expect(fail("RATE_LIMITED", 0)).toEqual({ ok: false, code: "RATE_LIMITED", retryAfterSeconds: 0 });
  });
});

describe("ServiceUnavailableError", () => {
  it("names the dependency and keeps the cause", () => {
    const cause = new Error("boom");
    const error = new ServiceUnavailableError("postgres", { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("ServiceUnavailableError");
    expect(error.dependency).toBe("postgres");
    expect(error.message).toBe("postgres unavailable");
    expect(error.cause).toBe(cause);
    expect(new ServiceUnavailableError("redis").dependency).toBe("redis");
  });
});

describe("isServiceUnavailable", () => {
  it("is true for a ServiceUnavailableError", () => {
    expect(isServiceUnavailable(new ServiceUnavailableError("redis"))).toBe(true);
    expect(isServiceUnavailable(new ServiceUnavailableError("postgres", { cause: new Error("x") }))).toBe(true);
  });

  it.each(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECT_TIMEOUT", "CONNECTION_CLOSED"])(
    "is true for a connection error with code %s",
    (code) => {
      expect(isServiceUnavailable(Object.assign(new Error("connect failed"), { code }))).toBe(true);
    },
  );

  it.each([
    ["57014", "statement timeout / query canceled"],
    ["57P01", "admin shutdown"],
    ["57P03", "cannot connect now"],
    ["08006", "connection failure"],
    ["08001", "unable to establish connection"],
    ["53300", "too many connections"],
    ["53200", "out of memory"],
    ["55P03", "lock not available"],
    ["40001", "serialization failure"],
    ["40P01", "deadlock detected"],
  ])("is true for SQLSTATE %s (%s)", (code) => {
    expect(isServiceUnavailable(pgError(code))).toBe(true);
  });

  it.each(["57014", "57P01", "08006", "53300", "ECONNREFUSED"])(
    "is true when %s is nested in cause (drizzle wraps driver errors)",
    (code) => {
      const driver = pgError(code);
      expect(isServiceUnavailable(drizzleWrapped(driver))).toBe(true);
      // Two levels deep, as when a caller wraps drizzle's error again.
      expect(isServiceUnavailable(new Error("sign-in failed", { cause: drizzleWrapped(driver) }))).toBe(true);
    },
  );

  it("is true for a ServiceUnavailableError nested in cause", () => {
    expect(isServiceUnavailable(new Error("outer", { cause: new ServiceUnavailableError("redis") }))).toBe(true);
  });

  it.each([
    ["23505", "unique violation"],
    ["23503", "foreign key violation"],
    ["42P01", "undefined table"],
    ["42601", "syntax error"],
    ["22P02", "invalid text representation"],
    ["40002", "integrity constraint violation (transaction rollback)"],
    ["55000", "object not in prerequisite state"],
  ])("is false for SQLSTATE %s (%s), also when nested", (code) => {
    expect(isServiceUnavailable(pgError(code))).toBe(false);
    expect(isServiceUnavailable(drizzleWrapped(pgError(code)))).toBe(false);
  });

  it("is false for plain errors and non-errors", () => {
    expect(isServiceUnavailable(new Error("something broke"))).toBe(false);
    expect(isServiceUnavailable(new TypeError("x is not a function"))).toBe(false);
    expect(isServiceUnavailable(drizzleWrapped(new Error("no code")))).toBe(false);
    expect(isServiceUnavailable(undefined)).toBe(false);
    expect(isServiceUnavailable(null)).toBe(false);
    expect(isServiceUnavailable("ECONNREFUSED")).toBe(false);
    expect(isServiceUnavailable(0)).toBe(false);
    expect(isServiceUnavailable({})).toBe(false);
  });

  it("ignores a code that is not a string", () => {
    expect(isServiceUnavailable({ code: 57014 })).toBe(false);
    expect(isServiceUnavailable({ code: null, cause: { code: ["ECONNREFUSED"] } })).toBe(false);
  });

  it("does not match SQLSTATE prefixes or node codes loosely", () => {
    expect(isServiceUnavailable(pgError("ECONNREFUSED_X"))).toBe(false);
    expect(isServiceUnavailable(pgError("40001X"))).toBe(false);
    expect(isServiceUnavailable(pgError("155P03"))).toBe(false);
    expect(isServiceUnavailable(pgError("econnrefused"))).toBe(false);
  });

  it("terminates on a cyclic cause chain", () => {
    const a: Error & { cause?: unknown } = new Error("a");
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(isServiceUnavailable(a)).toBe(false);
  });
});
