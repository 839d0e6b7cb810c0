/** A delay that `wake()` ends early; its timer never keeps the process alive on its own. */
export class Wakeable {
  private wakeUp: (() => void) | undefined;
  private woken = false;

  /** Resolves after `ms` with false, or with true when `wake()` ends it (at once if it was called since the last wait). */
  wait(ms: number): Promise<boolean> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timerMs(ms));
      const self = this;
      function done(woken: boolean) {
        clearTimeout(timer);
        self.wakeUp = undefined;
        resolve(woken);
      }
      this.wakeUp = () => done(true);
    });
  }

  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.woken = true;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, timerMs(ms)));
}

/** Node fires timers longer than 2^31-1 ms at once; cap them instead (about 24.8 days). */
export function timerMs(ms: number): number {
  return Math.min(Math.max(0, ms), 2 ** 31 - 1);
}
