import { describe, expect, it } from "vitest";
import { createLogger, describeError } from "./log";

function capture(level?: "debug" | "info" | "warn" | "error") {
  const writes: string[] = [];
  return { writes, log: createLogger({ level, write: (line) => writes.push(line) }) };
}

describe("createLogger", () => {
  it("writes one JSON object per call, on one line, whatever the values contain", () => {
    const { writes, log } = capture();
    const hostile = 'a\nb\r\nc\u2028d\u2029e\u0000f\u001b[31m{"event":"forged"}';
    log.warn("login.locked", { userAgent: hostile, requestId: "r-1" });
    expect(writes).toHaveLength(1);
    expect(writes[0]).not.toMatch(/[\n\r\u2028\u2029\u0000\u001b]/);
    expect(JSON.parse(writes[0]!)).toMatchObject({ level: "warn", event: "login.locked", userAgent: hostile, requestId: "r-1" });
  });

  it("drops lines below its level", () => {
    const { writes, log } = capture("warn");
    log.debug("a");
    log.info("b");
    log.warn("c");
    log.error("d");
    expect(writes.map((line) => JSON.parse(line).event)).toEqual(["c", "d"]);
  });
});

describe("describeError", () => {
  it("names the error and its codes, never its message or stack", () => {
    const cause = Object.assign(new Error('relation "users" does not exist'), { code: "42P01" });
    const error = Object.assign(new Error("Failed query: select * from users where email = 'x'", { cause }), { code: "X1" });
    const fields = describeError(error);
    expect(fields).toEqual({ errorName: "Error", errorCode: "X1", causeName: "Error", causeCode: "42P01" });
    expect(JSON.stringify(fields)).not.toMatch(/select|relation|users/);
  });
});
