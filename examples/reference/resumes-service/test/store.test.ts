import t from 'tap'
import { ResumeStore } from '../src/store.js'

function clock (): () => Date {
  let at = Date.parse('2026-01-01T00:00:00Z')
  return () => new Date(at += 1000)
}

t.test('each owner sees only their resumes, newest first, paged', async (t) => {
  const store = new ResumeStore(clock())
  const first = store.create('ada', { title: 'first', summary: '', skills: [] }, 'created')
  const second = store.create('ada', { title: 'second', summary: '', skills: [] }, 'created')
  const bobs = store.create('bob', { title: 'bob', summary: '', skills: [] }, 'created')
  t.same(store.list('ada', { limit: 10, offset: 0 }).map((r) => r.title), ['second', 'first'])
  t.same(store.list('ada', { limit: 1, offset: 1 }), [first])
  t.same(store.list('bob', { limit: 10, offset: 0 }), [bobs])
  t.equal(store.get('bob', first.id), undefined, 'another owner\'s id is not found')
  t.equal(store.get('ada', second.id), second)
  t.equal(store.count('ada'), 2)
  store.delete(first)
  t.equal(store.count('ada'), 1)
  t.equal(store.get('ada', first.id), undefined)
  store.delete(second)
  t.same(store.list('ada', { limit: 10, offset: 0 }), [])
})

t.test('updates bump the version and the time; audit notes keep the last 20', async (t) => {
  const store = new ResumeStore(clock())
  const resume = store.create('ada', { title: 'draft', summary: '', skills: [] }, 'created')
  t.equal(resume.version, 1)
  store.update(resume, { skills: ['Go'] }, 'updated')
  t.match(resume, { title: 'draft', skills: ['Go'], version: 2 })
  t.ok(resume.updatedAt > resume.createdAt)
  for (let i = 0; i < 30; i++) store.update(resume, { summary: String(i) }, `update ${i}`)
  t.equal(resume.internalNotes.length, 20)
  t.match(resume.internalNotes.at(-1), / update 29$/)
  t.equal(resume.version, 32)
  store.viewed(resume)
  t.equal(resume.views, 1)
})
