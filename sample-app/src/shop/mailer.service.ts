import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ActivityLog } from './activity-log.service.js';

export interface Email {
  idempotencyKey: string;
  orderId: string;
  to: string;
  subject: string;
}

/** A fake email provider: "sends" by writing to `sample.emails`, once per idempotency key. */
@Injectable()
export class MailerService {
  private readonly logger = new Logger(MailerService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly activity: ActivityLog,
  ) {}

  async send(email: Email): Promise<{ messageId: string }> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(
        `insert into sample.emails (idempotency_key, order_id, recipient, subject)
         values ($1, $2, $3, $4) on conflict (idempotency_key) do nothing`,
        [email.idempotencyKey, email.orderId, email.to, email.subject],
      );
      const [sent]: Array<{ id: string }> = await manager.query('select id from sample.emails where idempotency_key = $1', [
        email.idempotencyKey,
      ]);
      const messageId = `msg_${sent.id}`;
      await this.activity.record(manager, email.orderId, 'email.send', { messageId, to: email.to, subject: email.subject });
      this.logger.log(`order ${email.orderId}: "${email.subject}" sent to ${email.to} (${messageId})`);
      return { messageId };
    });
  }
}
