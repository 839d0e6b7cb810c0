/**
 * databaseUrl (issue 13, item 7): every connection string pg's own parser accepts under
 * postgres:// or postgresql:// is accepted (unix sockets, no host, percent-encoded passwords, a
 * password in the query), garbage is refused with the same InvalidArgumentError, and no message
 * repeats the URL (no database here; test/hostile/secrets.spec.ts connects through a socket).
 */
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { passwordOf } from '../../lib/engine/db/connection.js';

const INVALID = 'databaseUrl is not a valid URL (expected postgres://user:password@host:port/database)';

describe('passwordOf accepts what pg accepts', () => {
  const valid: [string, string | undefined][] = [
    ['postgres://u:p@/db?host=/var/run/postgresql', 'p'],
    ['postgres://u:p@/db?host=%2Fvar%2Frun%2Fpostgresql&port=5433', 'p'],
    ['postgres://u:p@%2Fvar%2Frun%2Fpostgresql/db', 'p'],
    ['postgres:///db', undefined],
    ['postgres://', undefined],
    ['postgresql://localhost', undefined],
    ['POSTGRES://u:secret@localhost:5432/db', 'secret'],
    ['postgres://u:p%40ss%2Fw%3Ard%25@localhost/db', 'p@ss/w:rd%'],
    ['postgres://u:%E2%82%AC-pw@localhost/db', '€-pw'],
    ['postgres://u@localhost/db?password=in%20query&sslmode=disable', 'in query'],
    ['postgres://u:p@[::1]:5432/db', 'p'],
    ['postgres://u:p@localhost/db%20name?application_name=x', 'p'],
  ];

  it.each(valid)('%s', (url, password) => {
    expect(passwordOf(url)).toBe(password);
  });
});

describe('passwordOf refuses garbage, without repeating it', () => {
  const garbage: [string, string][] = [
    ['not a URL', 's3cr3t-not-a-url'],
    ['another scheme', 'mysql://u:s3cr3t-pw@localhost/db'],
    ['a bad host', 'postgres://u:s3cr3t-pw@[bad'],
    ['a raw reserved character in the password', 'postgres://u:s3cr3t/pw:@#%@127.0.0.1:1/db'],
    ['a port out of range', 'postgres://u:s3cr3t-pw@127.0.0.1:99999/db'],
    ['a bad percent-escape', 'postgres://u:s3cr3t%ZZpw@127.0.0.1:1/db'],
    ['a socket path alone', '/var/run/postgresql s3cr3t-db'],
  ];

  it.each(garbage)('%s', (_what, url) => {
    const error = catchError(() => passwordOf(url));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toBe(INVALID);
    expect(String((error as Error).stack)).not.toContain('s3cr3t');
  });

  it('several hosts: refused, saying why', () => {
    const error = catchError(() => passwordOf('postgresql://u:s3cr3t@host1:5432,host2:5433/db'));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toBe(`${INVALID}: it names several hosts, and node-postgres connects to one`);
    expect(catchError(() => passwordOf('postgresql://u@host1,host2/db'))).toBeInstanceOf(InvalidArgumentError);
    // A comma in the password is not a host list.
    expect(passwordOf('postgresql://u:a,b@host1/db')).toBe('a,b');
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal, but nothing was thrown');
}
