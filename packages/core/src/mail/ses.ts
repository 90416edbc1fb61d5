import type { Mailer } from "./types";

export interface SesMailerOptions {
  /** The sender, e.g. `Example <no-reply@example.com>`: an SES identity (sst.aws.Email). */
  from: string;
  region?: string;
}

/**
 * Mail through Amazon SES (API v2). The SDK is imported on the first send, so a cold start that
 * sends nothing never loads it.
 */
export function createSesMailer(options: SesMailerOptions): Mailer {
  let client: Promise<{ send(message: Parameters<Mailer["send"]>[0]): Promise<void> }> | undefined;
  const connect = async () => {
    const { SESv2Client, SendEmailCommand } = await import("@aws-sdk/client-sesv2");
    const ses = new SESv2Client({ region: options.region, maxAttempts: 2 });
    return {
      async send(message: Parameters<Mailer["send"]>[0]) {
        await ses.send(
          new SendEmailCommand({
            FromEmailAddress: options.from,
            Destination: { ToAddresses: [message.to] },
            Content: {
              Simple: {
                Subject: { Data: message.subject, Charset: "UTF-8" },
                Body: { Text: { Data: message.text, Charset: "UTF-8" }, Html: { Data: message.html, Charset: "UTF-8" } },
              },
            },
          }),
        );
      },
    };
  };
  return {
    async send(message) {
      client ??= connect().catch((error: unknown) => {
        client = undefined;
        throw error;
      });
      await (await client).send(message);
    },
  };
}
