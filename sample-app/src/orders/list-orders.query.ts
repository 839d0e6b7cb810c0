import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';
import type { TaskState } from 'nestjs-durable';

const STATES: TaskState[] = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'];

/** The query of `GET /orders`. */
export class ListOrdersQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @IsOptional()
  @IsIn(STATES)
  state?: TaskState;

  /** The last id of the previous page. */
  @IsOptional()
  @IsUUID()
  cursor?: string;
}
