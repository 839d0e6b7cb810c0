/**
 * DurableExplorer (through real Nest DI, no database) finds the @DurableTask providers, and the
 * HandlerRegistry built from them checks them: a run() method, unique names per queue,
 * singleton scope. Also the decorator's own refusals at decoration time.
 */
import 'reflect-metadata';
import { Inject, Injectable, Scope, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { HandlerRegistry } from '../../lib/engine/registry/handler-registry.js';
import { DurableExplorer } from '../../lib/nest/durable.explorer.js';
import { DurableTask } from '../../lib/nest/durable-task.decorator.js';

@DurableTask({ name: 'send-email', maxAttempts: 3 })
class SendEmailTask {
  run() {
    return 'email';
  }
}

@DurableTask({ name: 'send-email', queue: 'bulk' })
class BulkEmailTask {
  run() {
    return 'bulk';
  }
}

@DurableTask({ name: 'send-email' })
class OtherEmailTask {
  run() {
    return 'other';
  }
}

@DurableTask({ name: 'no-run' })
class NoRunTask {}

@Injectable()
class PlainService {
  run() {
    return 'plain';
  }
}

@Injectable({ scope: Scope.REQUEST })
class RequestScopedService {}

@DurableTask({ name: 'needs-request' })
class NeedsRequestTask {
  constructor(@Inject(RequestScopedService) readonly service: RequestScopedService) {}
  run() {}
}

// @DurableTask above @Injectable({ scope }): the decorator must keep the scope, not reset it.
@DurableTask({ name: 'scoped-below' })
@Injectable({ scope: Scope.REQUEST })
class ScopedBelowTask {
  run() {}
}

async function explore(providers: Provider[]) {
  const moduleRef = await Test.createTestingModule({ imports: [DiscoveryModule], providers: [DurableExplorer, ...providers] }).compile();
  await moduleRef.init();
  try {
    return { moduleRef, found: moduleRef.get(DurableExplorer).explore() };
  } finally {
    await moduleRef.close();
  }
}

describe('DurableExplorer + HandlerRegistry', () => {
  it('finds the decorated providers only, with their instances', async () => {
    const { moduleRef, found } = await explore([SendEmailTask, BulkEmailTask, PlainService]);
    expect(found.map((f) => f.className).sort()).toEqual(['BulkEmailTask', 'SendEmailTask']);
    const send = found.find((f) => f.className === 'SendEmailTask')!;
    expect(send.handler).toBe(moduleRef.get(SendEmailTask));
    expect(send.options).toEqual({ name: 'send-email', maxAttempts: 3 });
  });

  it('lets the same name live on different queues and gets each one by queue', async () => {
    const { moduleRef, found } = await explore([SendEmailTask, BulkEmailTask]);
    const registry = new HandlerRegistry(found, 'default');
    expect(registry.get('default', 'send-email')).toBe(moduleRef.get(SendEmailTask));
    expect(registry.get('bulk', 'send-email')).toBe(moduleRef.get(BulkEmailTask));
    expect(registry.get('default', 'missing')).toBeUndefined();
    expect(registry.get('elsewhere', 'send-email')).toBeUndefined();
  });

  it('puts tasks without a queue on the default queue it is given', async () => {
    const { found } = await explore([SendEmailTask]);
    const registry = new HandlerRegistry(found, 'mail');
    expect(registry.get('mail', 'send-email')).toBeDefined();
    expect(registry.get('default', 'send-email')).toBeUndefined();
  });

  it('refuses a task without run(params, ctx)', async () => {
    const { found } = await explore([NoRunTask]);
    expect(() => new HandlerRegistry(found, 'default')).toThrow(InvalidArgumentError);
    expect(() => new HandlerRegistry(found, 'default')).toThrow(/NoRunTask .*run\(params, ctx\)/);
  });

  it('refuses two classes with the same name on the same queue, naming both', async () => {
    const { found } = await explore([SendEmailTask, OtherEmailTask]);
    const refusal = catchError(() => new HandlerRegistry(found, 'default'));
    expect(refusal).toBeInstanceOf(InvalidArgumentError);
    expect((refusal as Error).message).toMatch(/OtherEmailTask/);
    expect((refusal as Error).message).toMatch(/SendEmailTask/);
    expect((refusal as Error).message).toMatch(/"send-email" on queue "default"/);
  });

  it('refuses a request-scoped task provider as not a singleton', async () => {
    const refusal = explore([{ provide: SendEmailTask, useClass: SendEmailTask, scope: Scope.REQUEST }]);
    await expect(refusal).rejects.toThrow(InvalidArgumentError);
    await expect(refusal).rejects.toThrow(/SendEmailTask: a @DurableTask handler must be a singleton/);
  });

  it('refuses a task that depends on a request-scoped provider', async () => {
    await expect(explore([RequestScopedService, NeedsRequestTask]))
      .rejects.toThrow(/NeedsRequestTask: a @DurableTask handler must be a singleton/);
  });

  it('refuses a task whose own @Injectable below @DurableTask makes it request-scoped', async () => {
    await expect(explore([ScopedBelowTask])).rejects.toThrow(/ScopedBelowTask: a @DurableTask handler must be a singleton/);
  });

  it('refuses a transient-scoped task provider as not a singleton', async () => {
    await expect(explore([{ provide: SendEmailTask, useClass: SendEmailTask, scope: Scope.TRANSIENT }]).then(({ found }) => found))
      .rejects.toThrow(/SendEmailTask: a @DurableTask handler must be a singleton/);
  });

  it('lists the @DurableTask options of every handler', async () => {
    const { found } = await explore([SendEmailTask, BulkEmailTask]);
    const definitions = new HandlerRegistry(found, 'default').definitions();
    expect(definitions).toHaveLength(2);
    expect(definitions).toEqual(expect.arrayContaining([
      { name: 'send-email', maxAttempts: 3 },
      { name: 'send-email', queue: 'bulk' },
    ]));
  });

  it('warns about handlers on queues the worker does not poll, naming them', async () => {
    const { found } = await explore([SendEmailTask, BulkEmailTask]);
    const registry = new HandlerRegistry(found, 'default');
    const warnings = registry.unpolled(['default']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^BulkEmailTask handles "send-email" on queue "bulk", which this worker does not poll/);
    expect(registry.unpolled(['default', 'bulk'])).toEqual([]);
  });
});

describe('@DurableTask refusals at decoration time', () => {
  it.each([
    ['an empty name', { name: '' }, /@DurableTask name on Decorated must be a non-empty string/],
    ['a name with NUL', { name: 'a\u0000b' }, /@DurableTask name on Decorated must not contain a NUL/],
    ['an empty queue', { name: 'ok', queue: '' }, /@DurableTask queue on Decorated must be a non-empty string/],
    ['a queue with a lone surrogate', { name: 'ok', queue: '\uD800' }, /@DurableTask queue on Decorated must not contain a lone surrogate/],
  ])('refuses %s', (_label, options, message) => {
    const decorate = () => {
      @DurableTask(options)
      class Decorated {
        run() {}
      }
      return Decorated;
    };
    const refusal = catchError(decorate);
    expect(refusal).toBeInstanceOf(InvalidArgumentError);
    expect((refusal as Error).message).toMatch(message);
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
