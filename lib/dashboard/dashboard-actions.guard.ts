import { ForbiddenException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ACTION_HEADER } from './dashboard.constants.js';

type Headers = Record<string, string | string[] | undefined>;

/**
 * Refuses an action (POST) that a page of another site could have sent: it must carry the
 * `x-durable-dashboard` header (an HTML form cannot set one, and a cross-origin fetch that sets
 * one is preflighted, which the dashboard never approves), and a browser's `Origin` /
 * `Sec-Fetch-Site`, when present, must name this same host.
 */
export class DashboardActionsGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const headers = context.switchToHttp().getRequest<{ headers: Headers }>().headers;
    if (first(headers[ACTION_HEADER]) !== '1') {
      throw new ForbiddenException(`a dashboard action must be sent with the header ${ACTION_HEADER}: 1`);
    }
    const site = first(headers['sec-fetch-site']);
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new ForbiddenException('cross-site dashboard action refused');
    const origin = first(headers.origin);
    if (origin !== undefined && origin !== 'null') {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        throw new ForbiddenException('cross-site dashboard action refused');
      }
      const hosts = [first(headers.host), ...(first(headers['x-forwarded-host'])?.split(',') ?? [])].map((h) => h?.trim());
      if (!hosts.includes(host)) throw new ForbiddenException('cross-site dashboard action refused');
    } else if (origin === 'null') {
      throw new ForbiddenException('cross-site dashboard action refused');
    }
    return true;
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
