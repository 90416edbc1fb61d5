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
 * Waits until `floorMs` have passed since `startedMs` (performance.now()): the requests that mail
 * some callers and not others end here on every path, so a slow mailer does not tell them apart.
 */
export async function answerNoSoonerThan(floorMs: number, startedMs: number): Promise<void> {
  const wait = floorMs - (performance.now() - startedMs);
  if (wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, wait));
}
