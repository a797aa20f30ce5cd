import t from 'tap'
import Fastify from 'fastify'
import tollgateAuth, { errors, resolveOptions, type AuthOptions, type OptionProblem } from '../../src/index.js'

// Registered with no options, the plugin failed with ": configure at least one of jwt, apiKeys
// or forward ...": a problem with the options object as a whole had an empty path (and, under
// a prefix, `auth.`). It is now named like every other option problem.

const problemsOf = (run: () => unknown): OptionProblem[] => {
  try {
    run()
  } catch (error) {
    return (error as { problems: OptionProblem[] }).problems
  }
  throw new Error('expected resolveOptions to throw')
}

t.test('registering without options fails naming the options, not an empty path', async (t) => {
  for (const [name, options] of Object.entries({ 'no options': undefined, 'empty options': {} })) {
    const app = Fastify()
    t.teardown(() => app.close())
    const error = await app.register(tollgateAuth, options as AuthOptions).ready().then(() => undefined, (err: unknown) => err)
    t.ok(error instanceof errors.InvalidOptionError, name)
    t.equal((error as Error).message, 'options: configure at least one of jwt, apiKeys or forward (or set defaultRoute: "public")', name)
  }
})

t.test('a problem with the whole options object is reported under the prefix, or `options`', async (t) => {
  t.same(problemsOf(() => resolveOptions({})).map((p) => p.path), ['options'])
  t.same(problemsOf(() => resolveOptions({}, { path: 'auth' })).map((p) => p.path), ['auth'])
  t.throws(() => resolveOptions({}, { path: 'auth' }), /^auth: configure at least one of jwt, apiKeys or forward/)
  t.throws(() => resolveOptions('jwt' as unknown as AuthOptions), { message: 'options: must be an object' })
  t.throws(() => resolveOptions([] as unknown as AuthOptions, { path: 'auth' }), { message: 'auth: must be an object' })
  // Problems with one option keep their own path.
  t.same(problemsOf(() => resolveOptions({ typo: 1 } as unknown as AuthOptions)).map((p) => p.path), ['typo', 'options'])
})
