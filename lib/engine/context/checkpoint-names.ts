/**
 * Names the checkpoints of one execution: `<kind>:<name>`, then `<kind>:<name>#2`, `#3`, ...
 * when a name repeats, skipping names this execution already used. The kind prefix keeps a
 * step, a sleep, an event and an emit of the same name apart; the same calls in the same order
 * give the same names on every replay.
 */
export class CheckpointNames {
  private readonly calls = new Map<string, number>();
  private readonly used = new Set<string>();

  next(kind: string, name: string): string {
    const base = `${kind}:${name}`;
    let count = this.calls.get(base) ?? 0;
    let key: string;
    do {
      count += 1;
      key = count === 1 ? base : `${base}#${count}`;
    } while (this.used.has(key));
    this.calls.set(base, count);
    this.used.add(key);
    return key;
  }
}
