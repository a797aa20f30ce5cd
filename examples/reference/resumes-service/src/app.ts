import { ConsoleLogger, Module, type DynamicModule, type INestMicroservice, type LogLevel } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { Transport, type MicroserviceOptions } from '@nestjs/microservices'
import { ResumesController } from './controller.js'
import { ResumeStore } from './store.js'

@Module({ controllers: [ResumesController] })
export class ResumesModule {
  /** The module with its store: a fresh, empty one unless given. */
  static withStore (store: ResumeStore = new ResumeStore()): DynamicModule {
    return { module: ResumesModule, providers: [{ provide: ResumeStore, useValue: store }] }
  }
}

// The other services take pino's level names in LOG_LEVEL; NestJS has its own, most verbose first.
const NEST_LEVELS: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal']
const PINO_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** The NestJS log levels enabled at a pino level name (`info` → log, warn, error, fatal); `false` for `silent`. */
export function nestLogLevels (level: string): LogLevel[] | false {
  const index = PINO_LEVELS.indexOf(level)
  if (index === -1) throw new Error(`LOG_LEVEL must be one of ${PINO_LEVELS.join(', ')} (got "${level}")`)
  return level === 'silent' ? false : NEST_LEVELS.slice(index)
}

export interface ResumesServiceOptions {
  host: string
  port: number
  /** A pino level name, as LOG_LEVEL is for the other services. Default `info`. */
  logLevel?: string
  store?: ResumeStore
}

/** The NestJS microservice on `Transport.TCP`, not yet listening. Logs are JSON lines, like the other services'. */
export async function createResumesService (options: ResumesServiceOptions): Promise<INestMicroservice> {
  const levels = nestLogLevels(options.logLevel ?? 'info')
  return await NestFactory.createMicroservice<MicroserviceOptions>(ResumesModule.withStore(options.store), {
    transport: Transport.TCP,
    options: { host: options.host, port: options.port },
    logger: levels === false ? false : new ConsoleLogger({ json: true, logLevels: levels })
  })
}
