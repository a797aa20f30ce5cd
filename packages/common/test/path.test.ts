import t from 'tap'
import { pathProblem } from '../src/index.js'

t.test('normal paths pass, with any query string', async (t) => {
  for (const url of ['/', '/api/posts', '/api/posts/', '/api/posts/1?x=../..&y=%2f', '/api/posts/hello%20world', '/a/b.c/..d/.e']) {
    t.equal(pathProblem(url), null, url)
  }
})

t.test('every prefix-escape form is refused', async (t) => {
  const forms = [
    '/api/posts/../admin', '/api/posts/./x', '/api/posts/..', '/api/posts/%2e%2e/admin', '/api/posts/%2E%2e/admin',
    '/api/posts/.%2e/admin', '/api/posts%2f..%2fadmin', '/api/posts%2F..%2Fadmin', '/api/posts/%5c../admin',
    '/api/posts\\..\\admin', '//api/posts', '/api//posts', '/api/posts/..;/admin', '/api/posts;x=1',
    '/api/%70osts', '/api/%61uth', '/api/posts/%00', '/api/posts/%zz', '/api/posts/%', 'api/posts', '*',
    '/api/posts/#x', '/api/posts/\u00e9'
  ]
  for (const url of forms) t.type(pathProblem(url), 'string', url)
})

t.test('a path with several problems always gets the same message, whatever their order in it', async (t) => {
  t.equal(pathProblem('/a/../b;c'), 'path must not contain ";" parameters')
  t.equal(pathProblem('/a;b/../c'), 'path must not contain ";" parameters')
  t.equal(pathProblem('/a/./%2e'), 'path contains a percent-encoded separator, dot or unreserved character')
  t.equal(pathProblem('/a\\b//c'), 'path must not contain a backslash')
  t.equal(pathProblem('/a//b\\c'), 'path must not contain a backslash')
  t.equal(pathProblem('/x/..?q=;#//'), 'path must not contain dot segments', 'the query is not part of the path')
  t.equal(pathProblem('?x'), 'path must start with "/"')
})
