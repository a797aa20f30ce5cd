import t from 'tap'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import Fastify, { type FastifyRequest } from 'fastify'
import ts from 'typescript'
import { tollgateRuntime, type TollgateIdentity } from '../../src/index.js'

// `request.tollgateIdentity` was typed `TollgateIdentity | null` in every app using a Tollgate
// package, but only @tollgate/auth decorates it: in an app with @tollgate/proxy (or rate-limit,
// metrics) alone it is `undefined`, and `id === null ? 'anonymous' : id.roles` type-checked and
// then failed with a 500 "Cannot read properties of undefined". The type now says `undefined`.

// Checked by `tsc -p packages/common/tsconfig.test.json`: fails to compile with the old type.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const declared: Equals<FastifyRequest['tollgateIdentity'], TollgateIdentity | null | undefined> = true

t.test('without @tollgate/auth the identity is undefined at run time, as its type now says', async (t) => {
  t.equal(declared, true)
  const app = Fastify()
  t.teardown(() => app.close())
  tollgateRuntime(app) // what every Tollgate plugin does at registration
  app.get('/local', async (request) => ({ absent: request.tollgateIdentity === undefined, decorated: app.hasRequestDecorator('tollgateIdentity') }))
  t.same((await app.inject('/local')).json(), { absent: true, decorated: false })
})

t.test('the audit’s null-only check no longer type-checks in a user’s app', async (t) => {
  const entry = fileURLToPath(new URL('../../src/index.js', import.meta.url))
  const dir = t.testdir({
    'app.mts': [
      "import Fastify from 'fastify'",
      `import type {} from ${JSON.stringify(entry)}`,
      'const app = Fastify()',
      "app.get('/local', async (request) => {",
      '  const id = request.tollgateIdentity',
      "  const roles = id === null ? 'anonymous' : id.roles.join(',')",
      "  const safe: string = id == null ? 'anonymous' : id.roles.join(',')",
      '  return { roles, safe }',
      '})',
      ''
    ].join('\n')
  })
  const program = ts.createProgram([join(dir, 'app.mts')], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node']
  })
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ({
    code: d.code,
    file: d.file === undefined ? undefined : d.file.fileName.endsWith('app.mts') ? 'app.mts' : d.file.fileName,
    line: d.file === undefined || d.start === undefined ? undefined : d.file.getLineAndCharacterOfPosition(d.start).line + 1,
    message: ts.flattenDiagnosticMessageText(d.messageText, '\n')
  }))
  // Exactly one error: `id.roles` where `id` may be undefined (TS18048), on the null-only line.
  t.same(diagnostics.map(({ code, file, line }) => ({ code, file, line })), [{ code: 18048, file: 'app.mts', line: 6 }], JSON.stringify(diagnostics))
})
