import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../sample-app/src/config.js';
import { redactUrl } from '../../sample-app/src/database/redact-url.js';

describe('sample app configuration', () => {
  it('has defaults: port 3000, embedded database in sample-app/data, 5 min pack timeout', () => {
    const config = loadConfig({});
    expect(config).toEqual({
      port: 3000,
      databaseUrl: undefined,
      dataDir: expect.any(String),
      packTimeoutMs: 300_000,
      confirmDelayMs: 5_000,
      failFirstPayment: false,
    });
    expect(isAbsolute(config.dataDir)).toBe(true);
    expect(config.dataDir).toBe(resolve(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sample-app', 'data')));
  });

  it('reads every variable', () => {
    expect(loadConfig({
      PORT: '8080',
      DURABLE_DATABASE_URL: ' postgres://u:p@db:5432/app ',
      SAMPLE_DATA_DIR: 'relative/dir',
      ORDER_PACK_TIMEOUT_MS: '1500',
      ORDER_CONFIRM_DELAY_MS: '0',
      FAIL_FIRST_PAYMENT: '1',
    })).toEqual({
      port: 8080,
      databaseUrl: 'postgres://u:p@db:5432/app',
      dataDir: resolve('relative/dir'),
      packTimeoutMs: 1500,
      confirmDelayMs: 0,
      failFirstPayment: true,
    });
    expect(loadConfig({ FAIL_FIRST_PAYMENT: 'true', DURABLE_DATABASE_URL: '  ' })).toMatchObject({ failFirstPayment: true, databaseUrl: undefined });
    expect(loadConfig({ FAIL_FIRST_PAYMENT: '0' }).failFirstPayment).toBe(false);
  });

  it('refuses bad values, naming the variable', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow('PORT must be a whole number from 0 to 65535, got "abc"');
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/^PORT must be/);
    expect(() => loadConfig({ ORDER_PACK_TIMEOUT_MS: '0' })).toThrow(/^ORDER_PACK_TIMEOUT_MS must be a whole number from 1/);
    expect(() => loadConfig({ ORDER_CONFIRM_DELAY_MS: '-5' })).toThrow(/^ORDER_CONFIRM_DELAY_MS must be/);
    expect(() => loadConfig({ FAIL_FIRST_PAYMENT: 'yes' })).toThrow('FAIL_FIRST_PAYMENT must be 1 or 0 (or true or false), got "yes"');
  });

  it('hides the database password when printing the URL', () => {
    expect(redactUrl('postgres://postgres:s3cret@127.0.0.1:5433/postgres')).toBe('postgres://postgres:*****@127.0.0.1:5433/postgres');
    expect(redactUrl('postgres://app@db/app')).toBe('postgres://app@db/app');
    expect(redactUrl('host=db password=s3cret')).not.toContain('s3cret');
  });
});
