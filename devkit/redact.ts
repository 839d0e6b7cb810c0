// Server URLs go into logs and reports: without their password.

/** `url` with its password replaced by `***` (the whole URL hidden if it does not parse). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable url)';
  }
}
