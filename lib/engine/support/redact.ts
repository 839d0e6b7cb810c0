// Server URLs go into logs, reports and the CLI's messages: without their password.

/** `url` with its password replaced by `***` (the whole URL hidden if it does not parse). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString().replace('password=%2A%2A%2A', 'password=***');
  } catch {
    return '(unparsable url)';
  }
}
