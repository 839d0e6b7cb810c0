import {
  applyDecorators, BadRequestException, Get, Header, HttpCode, Inject, NotFoundException, Param, Post, Query, Req, Sse, UseGuards, type MessageEvent,
} from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { DurableClient } from '../engine/client/durable-client.js';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { TaskNotFoundError } from '../errors/task-not-found.error.js';
import { TASK_STATES, type QueueStats, type TaskSnapshot, type TaskState } from '../interfaces/task-snapshot.interface.js';
import type { TaskDetail } from '../interfaces/task-detail.interface.js';
import { DASHBOARD_SCRIPT } from './assets/dashboard.script.js';
import { DASHBOARD_STYLE } from './assets/dashboard.style.js';
import { mountedAt, renderShell } from './assets/dashboard.shell.js';
import { DashboardActionsGuard } from './dashboard-actions.guard.js';
import type { ResolvedDashboardOptions } from './dashboard-options.interface.js';
import { DashboardStatsSampler, type StatsSample } from './dashboard-stats.sampler.js';
import { DASHBOARD_OPTIONS } from './dashboard.constants.js';
import { DashboardStreams } from './dashboard-streams.js';

/** A page of `GET api/tasks`: `nextCursor` is the last task's id when there may be more. */
export interface DashboardTaskPage {
  tasks: TaskSnapshot[];
  nextCursor: string | null;
}

export interface DashboardQueues {
  now: string;
  queues: QueueStats[];
  /** The last hour of samples (see `DashboardStatsSampler`), oldest first. */
  samples: StatsSample[];
  sampleIntervalMs: number;
}

const PAGE_SIZE = 50;

/** What the pages read of a request, on Express and Fastify alike. */
interface PageRequest {
  originalUrl?: string;
  url?: string;
}
/** The page's policy: only its own script and style, no frames; user data is never markup. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** A route that answers the HTML shell, with the headers every page carries. */
const Page = (path?: string) => applyDecorators(
  Get(path),
  Header('Content-Type', 'text/html; charset=utf-8'),
  Header('Cache-Control', 'no-store'),
  Header('Content-Security-Policy', PAGE_CSP),
  Header('X-Frame-Options', 'DENY'),
  Header('X-Content-Type-Options', 'nosniff'),
);

/**
 * The dashboard's routes, relative to its path. `DurableDashboardModule.register` subclasses
 * this with `@Controller(path)` and the user's guard. The pages are one static shell that
 * renders the JSON routes in the browser; every read and action goes through `DurableClient`.
 */
export class DashboardControllerBase {
  constructor(
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DashboardStatsSampler) private readonly sampler: DashboardStatsSampler,
    @Inject(DASHBOARD_OPTIONS) private readonly options: ResolvedDashboardOptions,
    @Inject(DashboardStreams) private readonly streams: DashboardStreams,
  ) {}

  @Page()
  queuesPage(@Req() request: PageRequest): string {
    return this.shell(request);
  }

  @Page('tasks')
  tasksPage(@Req() request: PageRequest): string {
    return this.shell(request);
  }

  @Page('tasks/:taskId')
  taskPage(@Req() request: PageRequest): string {
    return this.shell(request);
  }

  private shell(request: PageRequest): string {
    // As the browser sees it: a global prefix or a proxy's path stays in the links.
    return renderShell(mountedAt(request.originalUrl ?? request.url ?? '', this.options.route));
  }

  @Get('assets/dashboard.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  script(): string {
    return DASHBOARD_SCRIPT;
  }

  @Get('assets/dashboard.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  @Header('X-Content-Type-Options', 'nosniff')
  style(): string {
    return DASHBOARD_STYLE;
  }

  @Get('api/queues')
  @Header('Cache-Control', 'no-store')
  async queues(): Promise<DashboardQueues> {
    const queues = await this.client.stats();
    return { now: new Date().toISOString(), queues, samples: this.sampler.samples(), sampleIntervalMs: this.options.sampleIntervalMs };
  }

  @Get('api/tasks')
  @Header('Cache-Control', 'no-store')
  async tasks(
    @Query('queue') queue?: string, @Query('state') state?: string, @Query('name') name?: string,
    @Query('parent') parent?: string, @Query('cursor') cursor?: string,
  ): Promise<DashboardTaskPage> {
    if (state && !TASK_STATES.includes(state as TaskState)) throw new BadRequestException(`state must be one of ${TASK_STATES.join(', ')}`);
    // One more than a page tells whether a next page exists, without a count.
    const tasks = await answer(() => this.client.listTasks({
      queue: text(queue), state: text(state) as TaskState | undefined, name: text(name),
      parentTaskId: text(parent), cursor: text(cursor), limit: PAGE_SIZE + 1,
    }));
    const more = tasks.length > PAGE_SIZE;
    const page = more ? tasks.slice(0, PAGE_SIZE) : tasks;
    return { tasks: page, nextCursor: more ? page[page.length - 1].taskId : null };
  }

  @Get('api/tasks/:taskId')
  @Header('Cache-Control', 'no-store')
  async task(@Param('taskId') taskId: string): Promise<TaskDetail> {
    const detail = await answer(() => this.client.inspectTask(taskId));
    if (!detail) throw new NotFoundException(`no task ${taskId}`);
    return detail;
  }

  /** Server-Sent Events: the task's snapshot now and on each change (`client.watch`), ending after a terminal state. */
  @Sse('api/tasks/:taskId/watch')
  async watch(@Param('taskId') taskId: string): Promise<Observable<MessageEvent>> {
    // Checked first, so that an unknown id is a 404 rather than a stream that ends at once.
    if (!(await answer(() => this.client.getTask(taskId)))) throw new NotFoundException(`no task ${taskId}`);
    return this.streams.untilShutdown(this.client.watch(taskId)).pipe(map((task): MessageEvent => ({ type: 'task', data: task })));
  }

  @Post('api/tasks/:taskId/retry')
  @HttpCode(200)
  @UseGuards(DashboardActionsGuard)
  async retry(@Param('taskId') taskId: string): Promise<{ ok: true }> {
    await answer(() => this.client.retry(taskId));
    return { ok: true };
  }

  @Post('api/tasks/:taskId/cancel')
  @HttpCode(200)
  @UseGuards(DashboardActionsGuard)
  async cancel(@Param('taskId') taskId: string): Promise<{ ok: true }> {
    await answer(() => this.client.cancel(taskId));
    return { ok: true };
  }
}

function text(value: string | undefined): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The client's typed errors as HTTP answers: bad input 400, unknown task 404. */
async function answer<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof TaskNotFoundError) throw new NotFoundException(error.message);
    if (error instanceof InvalidArgumentError) throw new BadRequestException(error.message);
    throw error;
  }
}
