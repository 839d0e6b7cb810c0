/**
 * DBOS Transact (@dbos-inc/dbos-sdk): durable workflows with checkpointed steps, its system
 * database on the cell's database. Tasks are workflows enqueued on a DBOS queue with
 * `DBOSClient.enqueue` before the executor launches; the executor's queue runner polls the
 * queue every `minPollingIntervalMs` and starts up to `workerConcurrency` workflows.
 */
import pg from 'pg';
import {
  FANOUT_CHILDREN, inParallel, installedVersion, LastEnds, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter,
} from './types.js';

const APP = 'bench';
const VERSION = 'bench-1';
const QUEUE = 'bench';

async function loadDbos(): Promise<any> {
  return import('@dbos-inc/dbos-sdk');
}

async function client(databaseUrl: string): Promise<any> {
  const { DBOSClient } = await loadDbos();
  return DBOSClient.create({ systemDatabaseUrl: databaseUrl, applicationName: APP });
}

async function prepareQueue(databaseUrl: string, settings: CellContext['settings'], n: number, steps: number): Promise<void> {
  const { DBOS } = await loadDbos();
  await DBOS.migrate(databaseUrl);
  const dbos = await client(databaseUrl);
  try {
    await dbos.registerQueue(QUEUE, queueParameters(settings));
    await inParallel(n, 200, () => dbos.enqueue({ queueName: QUEUE, workflowName: 'steps', appVersion: VERSION }, steps));
  } finally {
    await dbos.destroy();
  }
}

function queueParameters(settings: CellContext['settings']) {
  return {
    workerConcurrency: Number(settings.workerConcurrency ?? 100),
    minPollingIntervalMs: Number(settings.minPollingIntervalMs ?? 1000),
  };
}

interface Hooks {
  start(): void;
  end(): void;
  picked(i: number): void;
}

/** The executor, with a `steps` workflow (the drains) and a `pickup` workflow (the latency). */
async function launch(databaseUrl: string, hooks: Hooks): Promise<any> {
  const { DBOS } = await loadDbos();
  DBOS.setConfig({ name: APP, applicationVersion: VERSION, systemDatabaseUrl: databaseUrl, logLevel: 'error' });
  const steps = DBOS.registerWorkflow(async (count: number) => {
    hooks.start();
    for (let i = 0; i < count; i += 1) await DBOS.runStep(async () => i, { name: `s${i}` });
    hooks.end();
    return null;
  }, { name: 'steps' });
  const pickup = DBOS.registerWorkflow(async (i: number) => {
    hooks.picked(i);
    return null;
  }, { name: 'pickup' });
  await DBOS.launch();
  return { DBOS, steps, pickup };
}

async function allSucceeded(databaseUrl: string, n: number): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    for (;;) {
      const { rows } = await db.query(`select count(*)::int as n from dbos.workflow_status where status = 'SUCCESS' and queue_name = $1`, [QUEUE]);
      if (rows[0].n >= n) return;
      await sleep(5);
    }
  } finally {
    await db.end();
  }
}

function drain(steps: number) {
  return (ctx: CellContext): Cell => {
    let DBOS: any;
    return {
      prepare: () => prepareQueue(ctx.databaseUrl, ctx.settings, ctx.n, steps),
      async run() {
        ({ DBOS } = await launch(ctx.databaseUrl, { start: () => ctx.probe.started(), end: () => ctx.probe.finished(), picked: () => undefined }));
        await ctx.probe.done;
        await allSucceeded(ctx.databaseUrl, ctx.n);
      },
      close: async () => DBOS?.shutdown(),
    };
  };
}

function pickup(ctx: CellContext): Cell {
  let DBOS: any;
  const started = new Signals<number>();
  return {
    prepare: () => prepareQueue(ctx.databaseUrl, ctx.settings, 0, 0),
    async run() {
      const launched = await launch(ctx.databaseUrl, { start: () => undefined, end: () => undefined, picked: (i) => started.signal(i, now()) });
      DBOS = launched.DBOS;
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await DBOS.startWorkflow(launched.pickup, { queueName: QUEUE })(i);
        samples.push((await started.wait(i)) - t0);
        // A random pause, so that enqueues do not fall at one phase of the polling loop.
        await sleep(5 + Math.random() * queueParameters(ctx.settings).minPollingIntervalMs);
      }
      return samples;
    },
    close: async () => DBOS?.shutdown(),
  };
}

/**
 * The fan-out: a workflow that starts its child workflows one after another with
 * DBOS.startWorkflow (no queue: they start at once in this executor) and awaits their handles.
 */
function fanout(ctx: CellContext): Cell {
  let DBOS: any;
  const ends = new LastEnds();
  const fanIn = new Signals<number>();
  return {
    prepare: async () => {
      const { DBOS: dbos } = await loadDbos();
      await dbos.migrate(ctx.databaseUrl);
    },
    async run() {
      ({ DBOS } = await loadDbos());
      DBOS.setConfig({ name: APP, applicationVersion: VERSION, systemDatabaseUrl: ctx.databaseUrl, logLevel: 'error' });
      const child = DBOS.registerWorkflow(async (rep: number) => {
        await DBOS.runStep(async () => 1, { name: 'work' });
        ends.ended(rep);
        return 1;
      }, { name: 'fanChild' });
      const parent = DBOS.registerWorkflow(async (rep: number, children: number) => {
        const handles: any[] = [];
        for (let i = 0; i < children; i += 1) handles.push(await DBOS.startWorkflow(child)(rep));
        let sum = 0;
        // Each getResult is a step of the parent (its result recorded); it polls every
        // pollingIntervalMs (DBOS's default: 1000) until the child is done.
        const polling = ctx.settings.pollingIntervalMs === undefined ? undefined : { pollingIntervalMs: Number(ctx.settings.pollingIntervalMs) };
        for (const handle of handles) sum += await handle.getResult(polling);
        fanIn.signal(rep, now());
        return sum;
      }, { name: 'fanParent' });
      await DBOS.launch();
      await sleep(300);
      const samples: number[] = [];
      const totals: number[] = [];
      for (let rep = 0; rep < ctx.n; rep += 1) {
        const t0 = now();
        await DBOS.startWorkflow(parent)(rep, FANOUT_CHILDREN);
        const resumedAt = await fanIn.wait(rep, 600_000);
        samples.push(resumedAt - ends.of(rep));
        totals.push(resumedAt - t0);
        await sleep(200);
      }
      return { samples, totals };
    },
    close: async () => DBOS?.shutdown(),
  };
}

export const system: SystemAdapter = {
  id: 'dbos',
  title: 'DBOS Transact',
  note: 'DBOS: workflows of 1 or 3 DBOS.runStep steps on a DBOS queue (workerConcurrency, minPollingIntervalMs); enqueued with DBOSClient before launch; pickup at the drain settings; ' +
    'fan-out: children started with DBOS.startWorkflow (no queue) and awaited with handle.getResult() one by one, at its default polling (1 s) and at 10 ms',
  async availability() {
    const version = await installedVersion('@dbos-inc/dbos-sdk');
    return version ? { label: `@dbos-inc/dbos-sdk ${version}` } : { label: 'DBOS Transact', notRun: '@dbos-inc/dbos-sdk is not installed (npm install)' };
  },
  cells: { 'drain-1': drain(1), 'drain-3': drain(3), pickup, fanout },
  rows: [
    {
      scenario: 'drain-1', maxN: 2000,
      candidates: [
        { workerConcurrency: 100, minPollingIntervalMs: 50 },
        { workerConcurrency: 500, minPollingIntervalMs: 10 },
      ],
    },
    { scenario: 'drain-3', maxN: 2000, settingsOf: 'drain-1' },
    { scenario: 'pickup', maxN: 200, settingsOf: 'drain-1' },
    { scenario: 'fanout', maxN: 5 },
    { scenario: 'fanout', variant: 'getResult polling 10 ms', maxN: 5, candidates: [{ pollingIntervalMs: 10 }] },
  ],
};
