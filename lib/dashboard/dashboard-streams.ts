import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { ReplaySubject, takeUntil, type Observable } from 'rxjs';

/**
 * Ends the live-update streams when the app shuts down: an open Server-Sent Events response (a
 * dashboard tab left open) would otherwise keep the HTTP server from closing. Streams end after
 * the worker has drained (their last events show it), before the server closes; one opened
 * later (a tab reconnecting) ends at once.
 */
@Injectable()
export class DashboardStreams implements BeforeApplicationShutdown {
  private readonly closing = new ReplaySubject<void>(1);

  untilShutdown<T>(source: Observable<T>): Observable<T> {
    return source.pipe(takeUntil(this.closing));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.closing.next();
    // Let the ended responses finish, so that the server's close finds their connections idle
    // and closes them at once rather than after their keep-alive timeout.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
