import type { Deps } from "../deps";
import { describeError } from "../log";
import type { MailMessage } from "./types";

/**
 * Sends a mail for a flow. A failure never changes what the caller answers (that would tell an
 * attacker which addresses have accounts): it is logged as `mail.failed` with the kind and the
 * request id, never the address, and the flow goes on.
 */
export async function deliver(deps: Pick<Deps, "mailer" | "log">, requestId: string, message: MailMessage): Promise<boolean> {
  try {
    await deps.mailer.send(message);
    return true;
  } catch (error) {
    deps.log.error("mail.failed", { requestId, kind: message.kind, ...describeError(error) });
    return false;
  }
}

/**
 * Runs `work` (which mails some callers and not others) and answers no sooner than `floorMs` after
 * it began, on every path: a slow mailer does not tell the paths apart (docs/security.md §7).
 */
export async function withMailAnswerFloor<T>(floorMs: number, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    const wait = floorMs - (performance.now() - started);
    if (wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, wait));
  }
}
