import t from 'tap'
import { decodeUnreserved, pathProblem } from '../src/index.js'

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

t.test('decodeUnreserved decodes letters, digits and - . _ ~ in the path only, and nothing else', async (t) => {
  t.equal(decodeUnreserved('/api/%70osts/%7Euser?q=%41'), '/api/posts/~user?q=%41', 'the query is left as sent')
  t.equal(decodeUnreserved('/%41%5a%61%7a%30%39%2d%2e%5f%7e'), '/AZaz09-._~')
  t.equal(decodeUnreserved('/a%2fb%5c%00%25%20%3b'), '/a%2fb%5c%00%25%20%3b', 'separators, NUL, % itself, space and ; stay encoded')
  t.equal(decodeUnreserved('/plain?x=%7e'), '/plain?x=%7e', 'no percent in the path: the same string')
  const same = '/nothing/to/do'
  t.equal(decodeUnreserved(same), same)
  t.equal(decodeUnreserved('/%2%61'), '/%2%61', 'a malformed encoding is left for the router, never turned into a valid one')
  t.equal(pathProblem(decodeUnreserved('/api/%2e%2e/admin')), 'path must not contain dot segments', 'an encoded dot segment is still refused, as the dot segment it is')
})
