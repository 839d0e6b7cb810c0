/**
 * CheckpointNames: `<kind>:<name>`, then `#2`, `#3` when a name repeats, never a name already
 * used in the execution, and the same names for the same calls on every replay.
 */
import { CheckpointNames } from '../../lib/engine/context/checkpoint-names.js';

describe('CheckpointNames', () => {
  it('numbers repeated names from #2', () => {
    const names = new CheckpointNames();
    expect([names.next('step', 'a'), names.next('step', 'a'), names.next('step', 'a')]).toEqual(['step:a', 'step:a#2', 'step:a#3']);
  });

  it('counts each name on its own', () => {
    const names = new CheckpointNames();
    expect([names.next('step', 'a'), names.next('step', 'b'), names.next('step', 'a'), names.next('step', 'b')])
      .toEqual(['step:a', 'step:b', 'step:a#2', 'step:b#2']);
  });

  it('keeps kinds apart', () => {
    const names = new CheckpointNames();
    expect([names.next('step', 'x'), names.next('sleep', 'x'), names.next('event', 'x'), names.next('emit', 'x')])
      .toEqual(['step:x', 'sleep:x', 'event:x', 'emit:x']);
  });

  it('skips a generated name that a user step already took', () => {
    const names = new CheckpointNames();
    expect(names.next('step', 'a')).toBe('step:a');
    expect(names.next('step', 'a#2')).toBe('step:a#2');
    expect(names.next('step', 'a')).toBe('step:a#3');
    expect(names.next('step', 'a')).toBe('step:a#4');
  });

  it('gives a user step named like a generated one a name of its own', () => {
    const names = new CheckpointNames();
    const generated = [names.next('step', 'a'), names.next('step', 'a')];
    const literal = names.next('step', 'a#2');
    expect(generated).toEqual(['step:a', 'step:a#2']);
    expect(literal).toBe('step:a#2#2');
  });

  it('never hands out a name twice', () => {
    const names = new CheckpointNames();
    const calls = ['a', 'a#2', 'a', 'a#3', 'a', 'a#2', 'a', 'a#2#2', 'a#2'];
    const given = calls.map((name) => names.next('step', name));
    expect(new Set(given).size).toBe(calls.length);
  });

  it('is deterministic: the same calls give the same names', () => {
    const calls: [string, string][] = [
      ['step', 'a'], ['sleep', 'a'], ['step', 'a#2'], ['step', 'a'], ['event', 'paid'], ['step', 'a'], ['event', 'paid'],
    ];
    const run = () => {
      const names = new CheckpointNames();
      return calls.map(([kind, name]) => names.next(kind, name));
    };
    const first = run();
    expect(run()).toEqual(first);
    expect(first).toEqual(['step:a', 'sleep:a', 'step:a#2', 'step:a#3', 'event:paid', 'step:a#4', 'event:paid#2']);
  });
});
