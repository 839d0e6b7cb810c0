import { Controller, type MessageEvent, NotFoundException, Param, ParseUUIDPipe, Sse } from '@nestjs/common';
import { DurableClient } from 'nestjs-durable';
import { map, type Observable } from 'rxjs';

/**
 * `GET /orders/:id/events`: the order's task, live, as Server-Sent Events: its snapshot at once,
 * then one event on each change of state, attempts or progress, and the stream ends after the
 * order finished. An unknown order is a 404, before any event.
 */
@Controller('orders')
export class OrderEventsController {
  constructor(private readonly durable: DurableClient) {}

  @Sse(':id/events')
  async events(@Param('id', ParseUUIDPipe) id: string): Promise<Observable<MessageEvent>> {
    // Checked before the stream starts, so that an unknown order is a plain 404 response.
    if (!(await this.durable.getTask(id))) throw new NotFoundException(`order ${id} not found`);
    return this.durable.watch(id).pipe(
      map((task) => ({
        id: `${task.state}:${task.attempts}:${task.updatedAt.toISOString()}`,
        data: {
          id: task.taskId, state: task.state, attempts: task.attempts, progress: task.progress,
          ...(task.result === undefined ? {} : { result: task.result }),
          ...(task.error === undefined ? {} : { error: { name: task.error.name, message: task.error.message } }),
          updatedAt: task.updatedAt.toISOString(),
        },
      })),
    );
  }
}
