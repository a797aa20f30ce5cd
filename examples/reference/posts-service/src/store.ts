import { randomUUID } from 'node:crypto'

/** The internal model: richer than anything the public API shows. */
export interface Post {
  id: string
  title: string
  body: string
  ownerId: string
  author: string
  createdAt: string
  updatedAt: string
  /** A ranking signal for internal use (here: views); never public. */
  internalScore: number
  status: 'published' | 'hidden'
  moderationNotes: Array<{ by: string, action: 'hide' | 'restore', note: string, at: string }>
}

/**
 * In memory, per process. The two instances of the reference deployment each have
 * their own posts: the example shows load balancing, not replication (a real service
 * would share a database).
 */
export class PostStore {
  private readonly posts = new Map<string, Post>()

  constructor (private readonly now: () => Date = () => new Date()) {}

  list (options: { includeHidden: boolean, limit: number, offset: number }): Post[] {
    return [...this.posts.values()]
      .filter((post) => options.includeHidden || post.status === 'published')
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id))
      .slice(options.offset, options.offset + options.limit)
  }

  get (id: string): Post | undefined {
    return this.posts.get(id)
  }

  create (input: { title: string, body: string, ownerId: string, author: string }): Post {
    const at = this.now().toISOString()
    const post: Post = { id: randomUUID(), ...input, createdAt: at, updatedAt: at, internalScore: 0, status: 'published', moderationNotes: [] }
    this.posts.set(post.id, post)
    return post
  }

  update (post: Post, changes: { title?: string, body?: string }): Post {
    if (changes.title !== undefined) post.title = changes.title
    if (changes.body !== undefined) post.body = changes.body
    post.updatedAt = this.now().toISOString()
    return post
  }

  moderate (post: Post, by: string, action: 'hide' | 'restore', note: string): Post {
    post.status = action === 'hide' ? 'hidden' : 'published'
    post.moderationNotes.push({ by, action, note, at: this.now().toISOString() })
    return post
  }

  delete (id: string): boolean {
    return this.posts.delete(id)
  }
}
