/**
 * Thrown by a context call to unwind a handler that must stop: the run suspended, was
 * cancelled, lost its lease, or its worker shut down. Catching it changes nothing: the context stays stopped, every
 * later call throws again, and the worker ignores whatever the handler returns or throws.
 */
export class ControlSignal extends Error {
  constructor(readonly reason: StopReason) {
    super(`durable: this execution has stopped (${reason}); rethrow this signal, do not swallow it`);
    this.name = 'DurableControlSignal';
  }
}

/** `shutdown`: the worker stopped and gave up on this execution after `shutdownTimeoutMs`. */
export type StopReason = 'suspended' | 'cancelled' | 'lease-lost' | 'shutdown';
