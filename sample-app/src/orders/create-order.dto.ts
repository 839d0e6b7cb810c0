import { Type } from 'class-transformer';
import {
  ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsEmail, IsInt, IsOptional, IsString, Length, Max, Min, ValidateNested,
} from 'class-validator';

export class OrderItemDto {
  @IsString()
  @Length(1, 64)
  sku!: string;

  @IsInt()
  @Min(1)
  @Max(1000)
  quantity!: number;

  @IsInt()
  @Min(0)
  @Max(10_000_000)
  unitPriceCents!: number;
}

/** The body of `POST /orders`. */
export class CreateOrderDto {
  @IsEmail()
  customerEmail!: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => OrderItemDto)
  items!: OrderItemDto[];

  /** Make this order's payment step fail on its first attempt, to watch a retry. */
  @IsOptional()
  @IsBoolean()
  failFirstPayment?: boolean;
}
