/**
 * The statement-timeout storm's saboteur (chaos/timeout-storm.ts): bursts, one at a time, of
 * - locks that durable's statements need, held past their timeouts: `durable.runs` in ACCESS
 *   EXCLUSIVE mode (even reads wait), `durable.tasks` or `durable.checkpoints` in EXCLUSIVE mode
 *   (writes wait), rows of live tasks FOR UPDATE;
 * - a freeze of one process's TCP proxy (devkit/tcp-proxy.ts) past the client's backstop: what
 *   it sent before is answered into the void (OutcomeUnknownError), what it sends meanwhile never
 *   arrives, and the restore cuts its connections (DatabaseUnavailableError). A quiet second
 *   follows, so that the runs of a claim whose answer was lost are put back before the next burst.
 */
import pg from 'pg';
import type { TcpProxy } from '../devkit/tcp-proxy.js';
import { sleep } from '../devkit/wait.js';

export interface SaboteurOptions {
  databaseUrl: string;
  /** The workers' proxies (one is frozen at a time) and the spawner's. */
  workers: TcpProxy[];
  spawner: TcpProxy;
  /** How long a lock is held and a freeze lasts: random in [min, max). */
  lockMs: [number, number];
  freezeMs: [number, number];
  /** [min, max) -> a random integer. */
  between(min: number, max: number): number;
}

export class Saboteur {
  /** Bursts so far, by kind. */
  readonly bursts: Record<string, number> = {};
  private readonly client: pg.Client;

  constructor(private readonly options: SaboteurOptions) {
    this.client = new pg.Client({ connectionString: options.databaseUrl, application_name: 'chaos-saboteur' });
    this.client.on('error', () => undefined);
  }

  async connect(): Promise<void> {
    await this.client.connect();
    await this.client.query(`set lock_timeout = '5s'`); // its own wait for a lock
  }

  /** Bursts with short pauses until `end`, each kind in turn from a random one, each at least once. */
  async run(end: number): Promise<void> {
    const { between, lockMs, freezeMs, workers, spawner } = this.options;
    const kinds: [string, () => Promise<void>][] = [
      ['runs table', () => this.hold('lock table durable.runs in access exclusive mode', between(...lockMs))],
      ['tasks table', () => this.hold('lock table durable.tasks in exclusive mode', between(...lockMs))],
      ['checkpoints table', () => this.hold('lock table durable.checkpoints in exclusive mode', between(...lockMs))],
      ['task rows', () => this.hold(
        `select id from durable.tasks where state in ('pending', 'running', 'sleeping') order by random() limit 20 for update skip locked`,
        between(...lockMs),
      )],
      ['worker frozen', () => freeze(workers[between(0, workers.length)], between(...freezeMs))],
      ['spawner frozen', () => freeze(spawner, between(...freezeMs))],
    ];
    const first = between(0, kinds.length);
    for (let k = first; Date.now() < end || k < first + kinds.length; k++) {
      await sleep(between(100, 600));
      const [kind, burst] = kinds[k % kinds.length];
      this.bursts[kind] = (this.bursts[kind] ?? 0) + 1;
      await burst();
    }
  }

  async end(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async hold(sql: string, ms: number): Promise<void> {
    await this.client.query('begin');
    try {
      await this.client.query(sql);
      await sleep(ms);
    } finally {
      await this.client.query('commit');
    }
  }
}

async function freeze(proxy: TcpProxy, ms: number): Promise<void> {
  proxy.freeze();
  await sleep(ms);
  proxy.restore();
  await sleep(1000);
}
