/** The connection string with its password masked, for logs. */
export function redactUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '*****';
    return url.toString();
  } catch {
    // Not a URL (a key=value string, say): show nothing of it rather than risk the password.
    return '(a connection string that is not a URL)';
  }
}
