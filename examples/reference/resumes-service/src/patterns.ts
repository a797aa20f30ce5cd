/**
 * The service's message and event patterns. Objects rather than strings: NestJS routes
 * them by their JSON with keys sorted, and so does the gateway, so the manifest may
 * write the keys in any order (examples/reference/gateway/tollgate.yaml writes
 * `{ cmd, service }`, this file `{ service, cmd }`).
 */
export const patterns = {
  list: { service: 'resumes', cmd: 'list_resumes' },
  get: { service: 'resumes', cmd: 'get_resume' },
  create: { service: 'resumes', cmd: 'create_resume' },
  update: { service: 'resumes', cmd: 'update_resume' },
  delete: { service: 'resumes', cmd: 'delete_resume' },
  /** An event: fire and forget, no reply. */
  viewed: { service: 'resumes', event: 'resume_viewed' }
} as const
