import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import tollgateRateLimit, { type TollgateRateLimitOptions } from '../../src/index.js'

/** A controllable clock in epoch ms, starting on a round minute (so sub-windows are predictable). */
export class TestClock {
  ms = 1_800_000_000_000
  readonly now = (): number => this.ms
  advance (ms: number): void { this.ms += ms }
}

/** A Fastify app with the plugin and `routes`, ready, closed on teardown. */
export async function buildApp (
  t: Test,
  options: TollgateRateLimitOptions,
  routes: (app: FastifyInstance) => void,
  serverOptions: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...serverOptions })
  await app.register(tollgateRateLimit, options)
  routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Status codes of `count` sequential GETs to `url`. */
export async function statuses (app: FastifyInstance, url: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    const response = await app.inject({ method: 'GET', url, headers })
    out.push(response.statusCode)
  }
  return out
}
