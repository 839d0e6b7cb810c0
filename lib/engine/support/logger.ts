/** What the engine logs through; Nest's `Logger` fits it. */
export interface DurableLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}

export const consoleLogger: DurableLogger = {
  log: (message) => console.log(`[durable] ${message}`),
  warn: (message) => console.warn(`[durable] ${message}`),
  error: (message, stack) => console.error(`[durable] ${message}${stack ? `\n${stack}` : ''}`),
};
