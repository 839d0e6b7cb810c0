/**
 * The benchmark harness still runs (`npm run bench` itself is never part of `npm test`): a tiny
 * BENCH_QUICK pass of one row of ours and the hand-written limit through the real orchestrator,
 * child processes and meters, on the test server. Asserts the shape of what it prints and
 * writes, never a speed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminUrl } from '../helpers/test-database.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface BenchJson {
  rows: { system: string; scenario: string; notRun?: string; runs: { ok: boolean; n: number; commits?: number; walBytes?: number }[]; aggregate?: { tasksPerSec?: { median: number } } }[];
  targets: { target: string; verdict: string }[];
}

describe('npm run bench (smoke)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'durable-bench-smoke-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a quick pass and prints the markdown tables with the goals of issue 18', async () => {
    const out = join(dir, 'bench.json');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'bench', 'run.ts')], {
        cwd: ROOT,
        timeout: 150_000,
        env: {
          ...process.env,
          BENCH_DATABASE_URL: adminUrl(),
          BENCH_QUICK: '1',
          BENCH_N: '300',
          BENCH_SYSTEMS: 'durable,limit',
          BENCH_SCENARIOS: 'drain-1',
          BENCH_OUT: out,
        },
      }, (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
    });
    expect({ code, stderr: code === 0 ? '' : stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('| system | scenario | tasks/s |');
    expect(stdout).toMatch(/\| nestjs-durable \d+\.\d+\.\d+ \| drain, 1 step \| [\d,]+ \|/);
    expect(stdout).toContain('| goal (issue 18) | need | measured | ratio | verdict |');
    const json = JSON.parse(readFileSync(out, 'utf8')) as BenchJson;
    for (const system of ['durable', 'limit']) {
      const row = json.rows.find((r) => r.system === system && r.scenario === 'drain-1');
      expect(row?.notRun).toBeUndefined();
      expect(row!.runs).toHaveLength(1);
      expect(row!.runs[0]).toMatchObject({ ok: true, n: 300 });
      expect(row!.aggregate!.tasksPerSec!.median).toBeGreaterThan(0);
      // The meters ran: every drained task cost at least some commits and WAL.
      expect(row!.runs[0].commits).toBeGreaterThan(0);
      expect(row!.runs[0].walBytes).toBeGreaterThan(0);
    }
    expect(json.targets.find((t) => t.target.startsWith('commits/task'))?.verdict).toMatch(/^(PASS|MISS)$/);
  }, 180_000);

  it('runs flow rows of ours and prints the ratio of each to the unlimited drain (issue 15)', async () => {
    const out = join(dir, 'flow.json');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'bench', 'run.ts')], {
        cwd: ROOT,
        timeout: 150_000,
        env: {
          ...process.env,
          BENCH_DATABASE_URL: adminUrl(),
          BENCH_QUICK: '1',
          BENCH_N: '300',
          BENCH_SYSTEMS: 'durable',
          // One row by its variant, as BENCH_SCENARIOS allows.
          BENCH_SCENARIOS: 'flow unlimited,flow 50 groups x 2 at once + priorities',
          BENCH_OUT: out,
        },
      }, (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
    });
    expect({ code, stderr: code === 0 ? '' : stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/\| nestjs-durable \d+\.\d+\.\d+ \| drain, no-op, flow control \(unlimited\) \| [\d,]+ \|/);
    expect(stdout).toContain('Flow control (issue 15)');
    expect(stdout).toMatch(/nestjs-durable \d+\.\d+\.\d+ 50 groups x 2 at once \+ priorities: [\d.]+x \([\d,]+ vs [\d,]+ tasks\/s\)/);
    const json = JSON.parse(readFileSync(out, 'utf8')) as BenchJson;
    const flow = json.rows.filter((r) => r.scenario === 'flow');
    expect(flow).toHaveLength(2);
    for (const row of flow) expect(row.runs[0]).toMatchObject({ ok: true, n: 300 });
  }, 180_000);
});
