/**
 * A child process of the scale test, in one of two roles (BENCH_WORKER, JSON):
 * - `{ role: 'prefill', databaseUrl, n, steps }`: applies the migrations, spawns n tasks, exits;
 * - `{ role: 'worker', databaseUrl, concurrency, poolSize?, workerId }`: one worker process, a
 *   Nest application context with DurableModule and its worker as an app runs it.
 * A worker loads everything first and says 'ready'; on 'go' (sent to all processes at once) it
 * boots the application, whose worker starts claiming; it reports 'progress' (count, first
 * start, last end) every 25 ms while that changes; on 'stop' it reports its CPU and peak RSS
 * ('stopped'), closes the application and exits.
 */
import { now, Probe } from './systems/types.js';

export type WorkerMessage =
  | { type: 'ready'; at: number }
  | { type: 'prefilled'; seconds: number }
  | { type: 'progress'; count: number; firstStart: number | undefined; lastEnd: number | undefined }
  | { type: 'stopped'; nodeCpuSeconds: number; peakRssBytes: number }
  | { type: 'error'; message: string };

type Spec =
  | { role: 'prefill'; databaseUrl: string; n: number; steps: number }
  | { role: 'worker'; databaseUrl: string; concurrency: number; poolSize?: number; workerId: string };

const send = (message: WorkerMessage) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

const received = (type: string) =>
  new Promise<void>((resolve) => process.on('message', (message: { type: string }) => message?.type === type && resolve()));

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.BENCH_WORKER ?? '{}') as Spec;
  const durable = await import('./systems/durable.js');
  if (spec.role === 'prefill') {
    const t0 = now();
    await durable.prefill(spec.databaseUrl, spec.n, spec.steps);
    await send({ type: 'prefilled', seconds: (now() - t0) / 1000 });
    return;
  }
  const go = received('go');
  const stop = received('stop');
  // Never reaches its target: the orchestrator decides when all processes together are done.
  const probe = new Probe(Number.MAX_SAFE_INTEGER);
  durable.setProbe(probe);
  await send({ type: 'ready', at: now() });
  await go;
  const cpu0 = process.cpuUsage();
  let peakRss = process.memoryUsage.rss();
  const app = await durable.startApp(spec.databaseUrl, { concurrency: spec.concurrency, workerId: spec.workerId }, spec.poolSize);
  let reported = -1;
  const ticker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    if (probe.count === reported) return;
    reported = probe.count;
    void send({ type: 'progress', count: probe.count, firstStart: probe.firstStart, lastEnd: probe.lastEnd });
  }, 25);
  await stop;
  clearInterval(ticker);
  const cpu = process.cpuUsage(cpu0);
  await send({ type: 'stopped', nodeCpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: Math.max(peakRss, process.memoryUsage.rss()) });
  await app.close();
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).catch(() => undefined);
    process.exit(1);
  },
);
