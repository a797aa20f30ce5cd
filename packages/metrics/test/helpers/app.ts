import { Writable } from 'node:stream'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import tollgateMetrics, { genReqId, loggerOptions, type TollgateLoggerOptions, type TollgateMetricsOptions } from '../../src/index.js'

/** Every line the app's logger wrote, parsed. */
export class LogCapture extends Writable {
  readonly raw: string[] = []

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.length > 0) this.raw.push(line)
    }
    callback()
  }

  get lines (): Array<Record<string, unknown>> {
    return this.raw.map((line) => JSON.parse(line) as Record<string, unknown>)
  }

  get text (): string {
    return this.raw.join('\n')
  }

  requestLines (): Array<Record<string, unknown>> {
    return this.lines.filter((line) => line.msg === 'request completed')
  }
}

export interface Built {
  app: FastifyInstance
  logs: LogCapture
}

/** An app wired as the gateway wires it: our logger options, genReqId, Fastify's request logging off. */
export function build (t: Test, options: TollgateMetricsOptions = {}, logger: TollgateLoggerOptions = {}, server: FastifyServerOptions = {}): Built {
  const logs = new LogCapture()
  const app = Fastify({
    logger: { ...loggerOptions({ level: 'info', ...logger }), stream: logs },
    genReqId,
    requestIdHeader: false,
    logController: new LogController({ disableRequestLogging: true }),
    ...server
  })
  t.teardown(async () => { await app.close() })
  void app.register(tollgateMetrics, options)
  return { app, logs }
}

/** The value of one sample line of an exposition (`undefined` when absent). */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1]!] = pair[2]!
    }
    const expected = Object.entries(labels)
    if (Object.keys(found).length === expected.length && expected.every(([key, value]) => found[key] === value)) {
      return Number(match[3])
    }
  }
  return undefined
}

/** Every distinct value of `label` among the samples of `name`. */
export function labelValues (text: string, name: string, label: string): Set<string> {
  const values = new Set<string>()
  const pattern = new RegExp(`${label}="((?:[^"\\\\]|\\\\.)*)"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const match = pattern.exec(line)
    if (match !== null) values.add(match[1]!)
  }
  return values
}
