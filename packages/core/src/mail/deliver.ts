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
