import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DurableModuleOptions } from './interfaces/durable-options.interface.js';

export const {
  ConfigurableModuleClass: DurableConfigurableModule,
  MODULE_OPTIONS_TOKEN: DURABLE_MODULE_OPTIONS,
  OPTIONS_TYPE: DURABLE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DURABLE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DurableModuleOptions>().setClassMethodName('forRoot').build();

/** Injection token of the module's `DurableConnection`. */
export const DURABLE_CONNECTION = Symbol('DURABLE_CONNECTION');

/** Injection token of the module's options after `resolveOptions`. */
export const DURABLE_RESOLVED_OPTIONS = Symbol('DURABLE_RESOLVED_OPTIONS');
