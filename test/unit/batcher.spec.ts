/**
 * Batcher (group commit): items added in one turn share a batch, maxBatch splits, maxInFlight
 * bounds concurrent sends, exclusiveKey keeps equal keys apart, and every item settles with its
 * own outcome. The send function is resolved by hand; no timers are involved.
 */
import { Batcher, type BatcherOptions } from '../../lib/engine/support/batcher.js';

interface Send<I, O> {
  items: I[];
  resolve(results: PromiseSettledResult<O>[]): void;
  reject(error: unknown): void;
}

/** A send function whose calls are recorded and settled by the test; it counts concurrent calls. */
function controlledSend<I, O>() {
  const calls: Send<I, O>[] = [];
  let open = 0;
  let maxOpen = 0;
  const send = (items: I[]) =>
    new Promise<PromiseSettledResult<O>[]>((resolve, reject) => {
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      const done = () => (open -= 1);
      calls.push({ items, resolve: (r) => (done(), resolve(r)), reject: (e) => (done(), reject(e)) });
    });
  return { send, calls, maxOpen: () => maxOpen, open: () => open };
}

const ok = <O>(value: O): PromiseFulfilledResult<O> => ({ status: 'fulfilled', value });
const fail = (reason: unknown): PromiseRejectedResult => ({ status: 'rejected', reason });
const echo = <I>(items: I[]) => items.map((item) => ok(item));

/** Lets the event loop run a few turns (setImmediate flushes and promise callbacks). */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function batcher<I, O>(options: Partial<BatcherOptions<I>> = {}) {
  const control = controlledSend<I, O>();
  const b = new Batcher<I, O>(control.send, { maxBatch: 100, maxInFlight: 1, ...options });
  return { ...control, batcher: b };
}

describe('Batcher', () => {
  it('sends the items added in the same turn as one batch', async () => {
    const { batcher: b, calls } = batcher<string, string>();
    const results = ['a', 'b', 'c'].map((item) => b.add(item));
    expect(calls).toHaveLength(0); // nothing goes out within the turn
    await turns();
    expect(calls.map((c) => c.items)).toEqual([['a', 'b', 'c']]);
    calls[0].resolve(echo(calls[0].items));
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c']);
  });

  it('splits a backlog into batches of at most maxBatch, in order', async () => {
    const { batcher: b, calls } = batcher<number, number>({ maxBatch: 2 });
    const results = [1, 2, 3, 4, 5].map((item) => b.add(item));
    for (let i = 0; i < 3; i++) {
      await turns();
      expect(calls).toHaveLength(i + 1);
      calls[i].resolve(echo(calls[i].items));
    }
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
    await expect(Promise.all(results)).resolves.toEqual([1, 2, 3, 4, 5]);
  });

  it('never has more than maxInFlight sends on their way', async () => {
    const { batcher: b, calls, maxOpen, open } = batcher<string, string>({ maxBatch: 1, maxInFlight: 2 });
    const results: Promise<string>[] = [];
    for (const item of ['a', 'b', 'c', 'd']) {
      results.push(b.add(item));
      await turns();
    }
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b']]);
    expect(open()).toBe(2);
    calls[0].resolve(echo(calls[0].items));
    await turns();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b'], ['c']]);
    calls[1].resolve(echo(calls[1].items));
    calls[2].resolve(echo(calls[2].items));
    await turns();
    calls[3].resolve(echo(calls[3].items));
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c', 'd']);
    expect(calls).toHaveLength(4);
    expect(maxOpen()).toBe(2);
  });

  it('keeps items with equal exclusive keys out of one batch', async () => {
    type Item = { key: string; n: number };
    const { batcher: b, calls } = batcher<Item, number>({ exclusiveKey: (item) => item.key });
    const items: Item[] = [{ key: 'x', n: 1 }, { key: 'x', n: 2 }, { key: 'y', n: 3 }, { key: 'x', n: 4 }];
    const results = items.map((item) => b.add(item));
    await turns();
    expect(calls.map((c) => c.items.map((i) => i.n))).toEqual([[1, 3]]);
    calls[0].resolve(calls[0].items.map((i) => ok(i.n)));
    await turns();
    expect(calls.map((c) => c.items.map((i) => i.n))).toEqual([[1, 3], [2]]);
    calls[1].resolve(calls[1].items.map((i) => ok(i.n)));
    await turns();
    calls[2].resolve(calls[2].items.map((i) => ok(i.n)));
    expect(calls.map((c) => c.items.map((i) => i.n))).toEqual([[1, 3], [2], [4]]);
    await expect(Promise.all(results)).resolves.toEqual([1, 2, 3, 4]);
  });

  it('settles each item with its own result', async () => {
    const { batcher: b, calls } = batcher<string, string>();
    const results = ['a', 'b', 'c'].map((item) => b.add(item));
    await turns();
    const boom = new Error('b failed');
    calls[0].resolve([ok('A'), fail(boom), ok('C')]);
    await expect(Promise.allSettled(results)).resolves.toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: boom },
      { status: 'fulfilled', value: 'C' },
    ]);
  });

  it('rejects every item of a batch whose send throws, and only of that batch', async () => {
    const { batcher: b, calls } = batcher<string, string>({ maxInFlight: 2 });
    const first = ['a', 'b'].map((item) => b.add(item));
    await turns();
    const second = ['c', 'd'].map((item) => b.add(item));
    await turns();
    expect(calls.map((c) => c.items)).toEqual([['a', 'b'], ['c', 'd']]);
    const down = new Error('connection lost');
    calls[0].reject(down);
    calls[1].resolve(echo(calls[1].items));
    const settled = await Promise.allSettled([...first, ...second]);
    expect(settled).toEqual([
      { status: 'rejected', reason: down },
      { status: 'rejected', reason: down },
      { status: 'fulfilled', value: 'c' },
      { status: 'fulfilled', value: 'd' },
    ]);
  });

  it('goes on sending after a failed batch', async () => {
    const sent: string[][] = [];
    const b = new Batcher<string, string>(async (items) => {
      sent.push(items);
      if (items.includes('bad')) throw new Error('refused');
      return echo(items);
    }, { maxBatch: 10, maxInFlight: 1 });
    await expect(b.add('bad')).rejects.toThrow('refused');
    await expect(Promise.all([b.add('x'), b.add('y')])).resolves.toEqual(['x', 'y']);
    expect(sent).toEqual([['bad'], ['x', 'y']]);
  });
});
