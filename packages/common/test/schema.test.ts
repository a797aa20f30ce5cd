import t from 'tap'
import { compileRequestSchemas, requestProblems } from '../src/index.js'

class OptionError extends Error {}

t.test('problems are reported as path: message, every one of them', async (t) => {
  const validators = compileRequestSchemas({
    body: { type: 'object', required: ['items'], additionalProperties: false, properties: { items: { type: 'array', items: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } } } } },
    querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 50 } } },
    headers: { type: 'object', required: ['X-Tenant'] }
  }, 'POST', 'routes[0].validate.POST', OptionError)
  const request = { params: {}, query: { limit: '99' }, headers: {} }
  t.same(requestProblems(validators, request, { items: [{ title: 1 }, {}], 'a/b~c': true }), [
    'querystring.limit: must be <= 50',
    'headers.x-tenant: is required',
    'body.a/b~c: is not allowed',
    'body.items[0].title: must be string',
    'body.items[1].title: is required'
  ])
  t.same(request.query, { limit: '99' }, 'coercion never rewrites the request')
  t.same(requestProblems(validators, { params: {}, query: { limit: '10' }, headers: { 'x-tenant': 'a' } }, { items: [] }), [], '"10" passes type integer')
})

t.test('a bad schema fails with the option path, in the caller\'s error class', async (t) => {
  t.throws(() => compileRequestSchemas({ body: { type: 'objekt' } }, 'POST', 'x.validate', OptionError), { constructor: OptionError, message: /^x\.validate\.body: invalid JSON Schema/ })
  t.throws(() => compileRequestSchemas({ cookies: {} }, 'POST', 'x.validate', OptionError), { message: 'x.validate.cookies: unknown key (use params, querystring, headers, body)' })
  t.throws(() => compileRequestSchemas({ body: 'nope' }, 'POST', 'x.validate', OptionError), { message: 'x.validate.body: must be a JSON Schema object' })
  t.throws(() => compileRequestSchemas([], 'POST', 'x.validate', OptionError), { message: 'x.validate: must be an object with body, querystring, params or headers' })
})
