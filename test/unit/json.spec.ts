/**
 * toJson: JSON semantics (undefined dropped, toJSON honoured, key order kept), refusal with a
 * SerializationError of what JSON would lose or PostgreSQL cannot store, and the byte limit.
 */
import { SerializationError } from '../../lib/errors/index.js';
import { toJson } from '../../lib/engine/support/json.js';

const LIMIT = 1024 * 1024;
const convert = (value: unknown, maxBytes = LIMIT) => toJson(value, 'params', maxBytes);

function refusal(value: unknown, maxBytes = LIMIT): SerializationError {
  try {
    convert(value, maxBytes);
  } catch (error) {
    expect(error).toBeInstanceOf(SerializationError);
    return error as SerializationError;
  }
  throw new Error('expected a SerializationError, but nothing was thrown');
}

describe('toJson conversions', () => {
  it('stands undefined for SQL NULL', () => {
    expect(convert(undefined)).toEqual({ text: null, value: undefined });
  });

  it('keeps null, numbers, booleans and strings', () => {
    expect(convert(null)).toEqual({ text: 'null', value: null });
    expect(convert(0)).toEqual({ text: '0', value: 0 });
    expect(convert(false)).toEqual({ text: 'false', value: false });
    expect(convert('hé')).toEqual({ text: '"hé"', value: 'hé' });
  });

  it('keeps the key order of objects', () => {
    const { text, value } = convert({ z: 1, a: 2, m: { y: 3, b: 4 } });
    expect(text).toBe('{"z":1,"a":2,"m":{"y":3,"b":4}}');
    expect(Object.keys(value as object)).toEqual(['z', 'a', 'm']);
  });

  it('drops undefined properties, as JSON does', () => {
    expect(convert({ a: 1, b: undefined, c: { d: undefined } }).text).toBe('{"a":1,"c":{}}');
  });

  it('honours toJSON, so a Date becomes its ISO string', () => {
    const at = new Date('2024-05-06T07:08:09.010Z');
    expect(convert({ at }).value).toEqual({ at: '2024-05-06T07:08:09.010Z' });
    expect(convert({ money: { toJSON: () => '12.50 EUR' } }).text).toBe('{"money":"12.50 EUR"}');
  });

  it('judges a boxed String by its content', () => {
    // eslint-disable-next-line no-new-wrappers
    expect(convert({ s: new String('boxed') }).text).toBe('{"s":"boxed"}');
    // eslint-disable-next-line no-new-wrappers
    expect(refusal({ s: new String('a\u0000b') }).message).toMatch(/a string with a NUL character or a lone surrogate/);
  });

  it('keeps well-formed surrogate pairs', () => {
    expect(convert({ '😀': '😀' }).value).toEqual({ '😀': '😀' });
  });
});

describe('toJson refusals', () => {
  it.each([
    ['a function', { f: () => 1 }, /^params contains a function at "f"/],
    ['a symbol', { s: Symbol('x') }, /^params contains a symbol at "s"/],
    ['a BigInt', { n: 10n }, /^params contains a BigInt at "n"/],
    ['a nested function', { a: [1, { deep: () => 1 }] }, /^params contains a function at "deep"/],
    ['a top-level function', () => 1, /^params contains a function/],
  ])('refuses %s, naming where', (_label, value, message) => {
    expect(refusal(value).message).toMatch(message);
  });

  it('refuses a cycle', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const error = refusal(cyclic);
    expect(error.message).toMatch(/^params is not JSON: .*circular/i);
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it.each([
    ['a NUL in a string', { s: 'a\u0000b' }, 'a string'],
    ['a lone high surrogate in a string', { s: 'x\uD800' }, 'a string'],
    ['a lone low surrogate in a string', ['\uDC00y'], 'a string'],
    ['a NUL in a key', { 'k\u0000': 1 }, 'a key'],
    ['a lone surrogate in a key', { '\uD83D': 1 }, 'a key'],
    ['a NUL in a top-level string', '\u0000', 'a string'],
  ])('refuses %s', (_label, value, where) => {
    expect(refusal(value).message).toBe(`params has ${where} with a NUL character or a lone surrogate, which PostgreSQL cannot store`);
  });

  it('enforces maxBytes in UTF-8 bytes, naming maxPayloadBytes', () => {
    // '"€€"' is 4 characters but 8 bytes of UTF-8.
    expect(convert('€€', 8).text).toBe('"€€"');
    const error = refusal('€€', 7);
    expect(error.message).toBe('params is 8 bytes of JSON, over the limit of 7 (maxPayloadBytes)');
  });

  it('names the value it was given in its messages', () => {
    expect(() => toJson({ f: () => 1 }, 'step "charge" result', LIMIT)).toThrow(/^step "charge" result contains a function/);
  });
});
