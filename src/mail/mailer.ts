import { createTransport } from 'nodemailer';

/**
 * Outgoing mail over SMTP (nodemailer), configured by `SMTP_URL` and `MAIL_FROM`. Plain-text
 * messages only. Without `SMTP_URL` there is no mailer and the features that need one say so.
 */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** Sends one message; rejects when the server does not accept it (the caller's job is retried). */
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export function createSmtpMailer(options: { url: string; from: string }): Mailer {
  const transport = createTransport(
    {
      // smtp:// upgrades with STARTTLS when the server offers it; smtps:// is TLS from the start.
      url: options.url,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      // Messages are built here from plain strings: never let an address or attachment reach files or URLs.
      disableFileAccess: true,
      disableUrlAccess: true,
      // nodemailer's own logging would print the SMTP dialogue (and with it the message).
      logger: false,
      debug: false,
    },
    { from: options.from },
  );
  return {
    async send(message) {
      await transport.sendMail({ to: message.to, subject: message.subject, text: message.text });
    },
    close() {
      transport.close();
    },
  };
}

/** The mailer the configuration asks for, if any. */
export function createConfiguredMailer(config: { SMTP_URL?: string; MAIL_FROM?: string }): Mailer | undefined {
  if (!config.SMTP_URL || !config.MAIL_FROM) return undefined;
  return createSmtpMailer({ url: config.SMTP_URL, from: config.MAIL_FROM });
}
