export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

/**
 * Structured logs: one JSON object per line. JSON escaping makes control characters in input
 * harmless (no forged lines). Callers pass ids and codes, never passwords, tokens or cookies.
 */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; base?: LogFields } = {},
): Logger {
  const threshold = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const emit = (level: LogLevel) => (event: string, fields?: LogFields) => {
    if (LEVELS[level] < threshold) return;
    // JSON escapes every control character except U+2028/U+2029, which some readers take for line
    // breaks: escape those too, so one call is always one line.
    const line = JSON.stringify({ time: new Date().toISOString(), level, event, ...options.base, ...fields });
    write(line.replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029"));
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** An error's name and code for a log line: no message (it may hold SQL or input), no stack. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { errorType: typeof error };
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const causeCode = (cause as { code?: unknown } | undefined)?.code;
  return {
    errorName: error.name,
    errorCode: typeof code === "string" ? code : undefined,
    causeName: cause?.name,
    causeCode: typeof causeCode === "string" ? causeCode : undefined,
  };
}
