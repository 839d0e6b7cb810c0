import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { DatabaseUnavailableError, DurableError, InvalidArgumentError, TaskNotFoundError } from 'nestjs-durable';

/** Turns durable's errors into HTTP answers: bad input is 400, an unknown task 404, no database 503. */
@Catch(DurableError)
export class DurableErrorFilter implements ExceptionFilter<DurableError> {
  catch(error: DurableError, host: ArgumentsHost): void {
    const status =
      error instanceof InvalidArgumentError ? HttpStatus.BAD_REQUEST
      : error instanceof TaskNotFoundError ? HttpStatus.NOT_FOUND
      : error instanceof DatabaseUnavailableError ? HttpStatus.SERVICE_UNAVAILABLE
      : HttpStatus.INTERNAL_SERVER_ERROR;
    const response = host.switchToHttp().getResponse<ServerResponse>();
    response.statusCode = status;
    response.setHeader('Content-Type', 'application/json; charset=utf-8');
    response.end(JSON.stringify({ statusCode: status, error: error.name, message: error.message }));
  }
}
