// The worker process's side of devkit/processes.ts: announce readiness, shut down on SIGTERM.

/**
 * Prints `ready <pid>` (what the parent waits for) and, on SIGTERM, runs `close` (the app closes,
 * its worker drains) and exits 0.
 */
export function readyUntilSigterm(close: () => Promise<void>): void {
  process.once('SIGTERM', () => {
    void (async () => {
      await close();
      process.exit(0);
    })();
  });
  process.stdout.write(`ready ${process.pid}\n`);
}
