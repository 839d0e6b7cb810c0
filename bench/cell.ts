/**
 * One measurement in its own process, driven by bench/run.ts over IPC:
 *   child: prepare() -> 'ready'; parent reads the meters -> 'go';
 *   child: run(); the first handler start -> 'started' (parent reads the Postgres CPU meter);
 *   child: -> 'done' with its figures; parent reads the CPU meter again -> 'stop';
 *   child: close() -> 'closed', exits.
 * The spec comes in BENCH_CELL (JSON).
 */
import { SYSTEMS } from './systems/index.js';
import { now, Probe, type Settings } from './systems/types.js';

export interface CellSpec {
  system: string;
  scenario: string;
  databaseUrl: string;
  /** The URL run() uses when it differs (the distance rows: through the delaying proxy). */
  runDatabaseUrl?: string;
  redisUrl?: string;
  n: number;
  settings: Settings;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'started'; at: number }
  | { type: 'done'; result: CellResult }
  | { type: 'closed' }
  | { type: 'error'; message: string };

export interface CellResult {
  /** First handler start (or the start of the spawn loop), epoch ms. */
  startedAt: number | undefined;
  /** When run() returned (all completions committed), epoch ms. */
  endedAt: number | undefined;
  count: number;
  /** Node CPU seconds of this process over the window. */
  nodeCpuSeconds: number;
  /** Largest RSS seen during run(), bytes. */
  peakRssBytes: number;
  samples?: number[];
  /** `fanout`: the whole fan-out of each repetition, ms. */
  totals?: number[];
  extra?: Record<string, number>;
}

const send = (message: ChildMessage) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

const waitFor = (type: string) => new Promise<void>((resolve) => {
  const listener = (message: { type: string }) => {
    if (message?.type === type) {
      process.off('message', listener);
      resolve();
    }
  };
  process.on('message', listener);
});

async function main(): Promise<void> {
  // Peers' own chatter (migration notices, deprecation warnings) would drown the progress lines.
  if (!process.env.BENCH_VERBOSE) {
    console.log = () => undefined;
    console.info = () => undefined;
    process.noDeprecation = true;
  }
  const spec = JSON.parse(process.env.BENCH_CELL ?? '{}') as CellSpec;
  const load = SYSTEMS[spec.system];
  if (!load) throw new Error(`unknown system ${spec.system}`);
  const system = await load();
  const factory = system.cells[spec.scenario as keyof typeof system.cells];
  if (!factory) throw new Error(`${spec.system} has no scenario ${spec.scenario}`);
  const probe = new Probe(spec.n, () => void send({ type: 'started', at: now() }));
  const context = {
    databaseUrl: spec.databaseUrl,
    redisUrl: spec.redisUrl,
    n: spec.n,
    settings: spec.settings,
    probe,
    log: (line: string) => process.stdout.write(`  [${spec.system}] ${line}\n`),
  };
  const cell = factory(context);
  const go = waitFor('go');
  await cell.prepare();
  // prepare() on the database itself; the measured work through the proxy, if there is one.
  if (spec.runDatabaseUrl) context.databaseUrl = spec.runDatabaseUrl;
  await send({ type: 'ready' });
  await go;
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const outcome = (await cell.run()) ?? undefined;
  const samples = Array.isArray(outcome) ? outcome : outcome?.samples;
  const totals = Array.isArray(outcome) ? undefined : outcome?.totals;
  const extra = Array.isArray(outcome) || !outcome || !('extra' in outcome) ? undefined : outcome.extra;
  const endedAt = Array.isArray(outcome) || !outcome || !('endedAt' in outcome) ? undefined : outcome.endedAt;
  const t1 = now();
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  const cpu = process.cpuUsage(cpu0);
  const stop = waitFor('stop');
  await send({
    type: 'done',
    result: {
      startedAt: probe.firstStart ?? t0,
      // After run() returned: drains return once every task is completed as stored.
      endedAt: endedAt ?? t1,
      count: samples ? samples.length : probe.count,
      // Drains: from the first start to the last end; latency cells: the whole run.
      nodeCpuSeconds: probe.cpuAtEnd ? probe.cpuSeconds : (cpu.user + cpu.system) / 1e6,
      peakRssBytes: peakRss,
      samples,
      totals,
      extra,
    },
  });
  await stop;
  await cell.close();
  await send({ type: 'closed' });
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).catch(() => undefined);
    process.exit(1);
  },
);
