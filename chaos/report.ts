/** The chaos suite's figures as Markdown tables (readable in a terminal, pasteable in an issue). */
import type { StormReport } from './crash-storm.js';
import type { OutageReport } from './database-outage.js';
import type { FanOutReport } from './fan-out.js';
import type { FencingReport } from './lease-fencing.js';
import { mb, type LoadReport } from './load.js';
import type { PoisonReport } from './poison.js';
import type { ContentionReport } from './spawn-contention.js';
import type { SuspendStormReport } from './suspend-storm.js';
import type { TimeoutStormReport } from './timeout-storm.js';

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padStart(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((width) => `${'-'.repeat(width + 1)}:`).join('|')}|`, ...rows.map((row) => line(row.map(String)))].join('\n');
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function formatStorm(report: StormReport): string {
  return [
    markdownTable(
      ['tasks', 'steps', 'kills', 'duration', 're-executed steps', 'bound (kills x concurrency)', 'unexplained', 'lost tasks', 'double completions'],
      [[report.tasks, report.steps, report.kills, seconds(report.durationMs), report.reExecutedSteps,
        `${report.bound} (${report.kills} x ${report.concurrency})`, report.unexplained, report.lostTasks, report.doubleCompletions]],
    ),
    markdownTable(
      ['workers started', 'done at last kill', 'lease expiries (of killed)', 'wrong results', 'bad checkpoints', 'escaped errors', 'seed'],
      [[report.workersStarted, report.completedAtLastKill, `${report.leaseExpiries} (${report.leaseExpiriesOfKilled})`,
        report.wrongResults, report.badCheckpoints, report.escaped, report.seed]],
    ),
  ].join('\n\n');
}

export function formatOutage(report: OutageReport): string {
  return [
    markdownTable(
      ['tasks', 'outage', 'spawns while down', 'rejected (DatabaseUnavailableError)', 'slowest rejection', 'stored anyway', 'recovery after restart'],
      [[report.tasks, seconds(report.outageMs), report.probes, report.probesRejected, `${report.slowestRejectionMs} ms`, report.probesStored,
        seconds(report.recoveryMs)]],
    ),
    markdownTable(
      ['re-executed steps', 'bound (workers x concurrency)', 'unexplained', 'lost tasks', 'double completions', 'bad checkpoints', 'process restarts', 'escaped errors', 'reconnect log lines', 'claim backoff up to'],
      [[report.reExecutedSteps, report.bound, report.unexplained, report.lostTasks, report.doubleCompletions, report.badCheckpoints,
        report.restarts, report.escaped, report.reconnectLogLines, `${report.maxBackoffMs} ms`]],
    ),
    ...(report.logSample.length > 0
      ? [`A worker's log while the database was gone (first lines):\n${report.logSample.map((line) => `    ${line.trim()}`).join('\n')}`]
      : []),
  ].join('\n\n');
}

export function formatFencing(report: FencingReport): string {
  const by = (result: unknown) => (result as { by?: string } | null)?.by ?? JSON.stringify(result);
  return markdownTable(
    ['X result by', 'Y result by', "A's execution of X ended", "A's late completion of Y refused", "A's late checkpoint writes", 'A works again'],
    [[by(report.results.x), by(report.results.y), /lease-lost/.test(report.aStoppedX) ? 'stopped: lease-lost' : report.aStoppedX,
      report.lateCompletionRefused ? 'yes' : 'NO', report.lateCheckpointWrites, report.aRecovered ? 'yes' : 'NO']],
  );
}

export function formatLoad(report: LoadReport): string {
  const { burst, suspended } = report;
  return [
    markdownTable(
      ['burst tasks', 'completed', 'wrong results', 'duration', 'tasks/s'],
      [[burst.tasks, burst.completed, burst.wrongResults, seconds(burst.durationMs), burst.tasksPerSecond]],
    ),
    markdownTable(
      ['worker', 'tasks processed', 'peak RSS 1st half', 'peak RSS 2nd half', 'peak RSS', 'live heap at 1/4', 'live heap at end'],
      burst.workers.map((w) => [w.pid, w.processed, mb(w.peakRssFirstHalf), mb(w.peakRssSecondHalf), mb(w.peakRss), mb(w.heapAtQuarter), mb(w.heapAtEnd)]),
    ),
    markdownTable(
      ['suspended tasks', 'asleep/waiting', 'time to suspend', 'runs running', 'quick tasks done meanwhile', 'heap per task', 'RSS per task', 'all resumed and completed in'],
      [[suspended.tasks, suspended.sleeping, seconds(suspended.timeToSuspendMs), suspended.runningRuns,
        `${suspended.quickTasks} in ${suspended.quickTasksMs} ms`, `${suspended.heapBytesPerTask} B`, `${suspended.rssBytesPerTask} B`,
        `${suspended.completed} in ${seconds(suspended.resumedMs)}`]],
    ),
    markdownTable(
      ['worker', 'suspended by it', 'handlers executing', 'worker in-flight', 'live heap before', 'after', 'RSS before', 'after'],
      suspended.workers.map((w) => [w.pid, w.suspendedHere, w.executing, w.workerInFlight ?? 'n/a', mb(w.before.heapUsed), mb(w.after.heapUsed),
        mb(w.before.rss), mb(w.after.rss)]),
    ),
  ].join('\n\n');
}

export function formatContention(report: ContentionReport): string {
  return [
    markdownTable(
      ['unrelated spawns', 'failed', 'lost', 'p50', 'p99', 'max latency', 'duration'],
      [[report.spawns, report.failed, report.lost, `${report.p50Ms} ms`, `${report.p99Ms} ms`, `${report.maxMs} ms`, seconds(report.durationMs)]],
    ),
    markdownTable(
      ['holds (rolled back)', 'colliding spawns', 'waited for their holder', 'failed', 'wrong outcomes', 'slowest after its holder ended'],
      [[`${report.holds} (${report.rolledBack})`, report.colliding, report.waited, report.collidingFailed, report.wrongOutcomes,
        `${report.maxAfterHolderMs} ms`]],
    ),
  ].join('\n\n');
}

export function formatSuspendStorm(report: SuspendStormReport): string {
  return [
    markdownTable(
      ['tasks', 'executions', 'claims', 'resumed by the same worker id', 'kills (workers started)', 'done at last kill', 'duration', 'lost tasks', 'double completions', 'wrong results'],
      [[report.tasks, report.executions, report.claims, report.sameWorkerResumes, `${report.kills} (${report.workersStarted})`, report.completedAtLastKill, seconds(report.durationMs),
        report.lost, report.doubleCompletions, report.wrongResults]],
    ),
    markdownTable(
      ['checkpoints replaced', 'bad checkpoints', 'values returned != stored', 'stale writes accepted', 'late steps refused (by the database)'],
      [[report.checkpointsReplaced, report.badCheckpoints, report.seenNotStored, report.staleWrites, `${report.lateRefused} (${report.lateRefusedByDatabase})`]],
    ),
    markdownTable(
      ['re-run steps', 'in flight at a suspension', 'by kills', 'bound (kills x concurrency)', 'unexplained', 'lease expiries', 'unexecuted claims', 'escaped errors', 'seed'],
      [[report.reExecutedSteps, report.bySuspension, report.byKill, `${report.killBound} (${report.kills} x ${report.concurrency})`, report.unexplained,
        report.leaseExpiries, report.unexecutedClaims, report.escaped, report.seed]],
    ),
  ].join('\n\n');
}

export function formatPoison(report: PoisonReport): string {
  return [
    markdownTable(
      ['healthy tasks', 'duration', 'tasks/s', 'lost', 'double completions', 'wrong results', 'bad checkpoints', 're-run steps (bound 0)'],
      [[report.healthy, seconds(report.durationMs), report.tasksPerSecond, report.lostTasks, report.doubleCompletions, report.wrongResults,
        report.badCheckpoints, report.reExecutedSteps]],
    ),
    markdownTable(
      ['poison rows', 'factor 0: completed on attempt 2', 'corrupt: failed alone (SweepFailed)', 'claim errors logged', 'other log lines', 'escaped errors'],
      [[2 * report.poisonEach, `${report.zeroFactorRetried} of ${report.poisonEach}`, `${report.corruptFailed} of ${report.poisonEach}`, report.claimErrors,
        report.otherLogLines, report.escaped]],
    ),
    ...(report.logSample.length > 0 ? [`The workers' log (first lines):\n${report.logSample.map((line) => `    ${line.trim()}`).join('\n')}`] : []),
  ].join('\n\n');
}

export function formatTimeoutStorm(report: TimeoutStormReport): string {
  const errors = (c: TimeoutStormReport['spawnErrors']) => [c.DatabaseTimeoutError, c.OutcomeUnknownError, c.DatabaseUnavailableError];
  const committed = (by: Record<string, number>) => Object.entries(by).map(([name, n]) => `${n} ${name}`).join(', ') || 'none';
  return [
    markdownTable(
      ['side', 'DatabaseTimeoutError', 'OutcomeUnknownError', 'DatabaseUnavailableError', 'lease lost', 'also'],
      [
        ['spawners', ...errors(report.spawnErrors), '', `${report.spawnCalls} calls for ${report.keys} keys (${report.respawned} spawned again); committed though failed: ${committed(report.spawnCommittedAfter)}`],
        ['workers (log lines)', ...errors(report.workerLines), '',
          `${report.workerLines.claimFailed} claims failed, ${report.workerLines.notRecorded} outcomes not recorded, ${report.workerLines.putBack} runs put back`],
        ['handlers (ctx calls)', ...errors(report.handlerErrors), report.handlerErrors['lease-lost'],
          `${report.failedExecutions} failed executions; step writes committed though failed: ${committed(report.committedAfterError)}`],
      ],
    ),
    markdownTable(
      ['sabotage bursts', 'duration', 'tasks', 'lost', 'keys with 2+ tasks', 'double completions', 'wrong results', 'checkpoints replaced', 'bad checkpoints'],
      [[Object.entries(report.sabotage).map(([kind, n]) => `${n} ${kind}`).join(', '), seconds(report.durationMs), report.tasks, report.lost,
        report.duplicateKeys, report.doubleCompletions, report.wrongResults, report.checkpointsReplaced, report.badCheckpoints]],
    ),
    markdownTable(
      ['re-run steps', 'after a failed execution', 'in flight at a suspension', 'unexplained', 'lease expiries', 'claims unexecuted (put back)', 'stranded claims', 'stranded after the storm', 'escaped', 'seed'],
      [[report.reExecutedSteps, report.byFailure, report.bySuspension, report.unexplained, report.leaseExpiries,
        `${report.unexecutedClaims} (${report.putBack})`, report.stranded, report.strandedAfter, report.escaped, report.seed]],
    ),
  ].join('\n\n');
}

export function formatFanOut(report: FanOutReport): string {
  return [
    markdownTable(
      ['parents', 'children each', 'kills', 'duration', 'lost children', 'second children', 'lost parents', 'wrong fan-ins', 'double completions', 'parent suspensions (max per parent)'],
      [[report.parents, report.children, report.kills, seconds(report.durationMs), report.lostChildren, report.secondChildren, report.lostParents,
        report.wrongParentResults, report.doubleCompletions, `${report.parentSuspensions} (${report.maxParentSuspensions})`]],
    ),
    markdownTable(
      ['parent attempts', 'children done at last kill', 're-executed steps', 'bound (kills x concurrency)', 'unexplained', 'lost/wrong children', 'bad checkpoints (spawn, join, child)', 'escaped errors', 'seed'],
      [[report.parentAttempts, report.completedAtLastKill, report.reExecutedSteps, `${report.bound} (${report.kills} x ${report.concurrency})`,
        report.unexplained, `${report.lostTasks}/${report.wrongResults}`, `${report.badSpawnCheckpoints}, ${report.badJoins}, ${report.badCheckpoints}`,
        report.escaped, report.seed]],
    ),
  ].join('\n\n');
}
