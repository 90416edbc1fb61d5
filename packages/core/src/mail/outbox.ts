import type { Mailer, MailMessage } from "./types";

export interface OutboxMail extends MailMessage {
  sentAt: string;
}

export interface DevOutbox extends Mailer {
  /** Mails sent, oldest first (at most `capacity`). */
  list(): OutboxMail[];
  /** The last mail to an address (case-insensitive), optionally of one kind. */
  lastTo(address: string, kind?: MailMessage["kind"]): OutboxMail | undefined;
  clear(): void;
}

/**
 * The development outbox: keeps mails in memory (the dev server lists them at GET /dev/mail,
 * tests read them) and prints one line per mail with its link. Never used on Lambda.
 */
export function createDevOutbox(options: { print?: (line: string) => void; capacity?: number; now?: () => number } = {}): DevOutbox {
  const mails: OutboxMail[] = [];
  const capacity = options.capacity ?? 500;
  const now = options.now ?? Date.now;
  return {
    async send(message) {
      mails.push({ ...message, sentAt: new Date(now()).toISOString() });
      if (mails.length > capacity) mails.splice(0, mails.length - capacity);
      options.print?.(`mail ${message.kind} to ${message.to}: ${message.subject}${message.link ? ` ${message.link}` : ""}`);
    },
    list: () => [...mails],
    lastTo(address, kind) {
      const to = address.toLowerCase();
      for (let i = mails.length - 1; i >= 0; i--) {
        const mail = mails[i]!;
        if (mail.to.toLowerCase() === to && (!kind || mail.kind === kind)) return mail;
      }
      return undefined;
    },
    clear: () => void mails.splice(0),
  };
}
