// Decorator syntax, as NestJS services are written: this package alone is compiled with
// `experimentalDecorators` (see tsconfig.json), so the code reads like any NestJS
// controller. (packages/microservices' test fixture applies the same decorators by hand
// only because it is plain JavaScript run by Node, with no compiler in between.)
import { Controller, Inject, Logger } from '@nestjs/common'
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices'
import { changesOf, createInput, envelopeOf, idOf, pageOf, rejected, type Envelope } from './envelope.js'
import { patterns } from './patterns.js'
import { MAX_PER_OWNER, ResumeStore, type Resume } from './store.js'

/**
 * The resumes API as message patterns. Every handler takes the gateway's envelope and
 * acts for `envelope.caller` only: another user's resume answers 404, exactly like a
 * missing one, so ids cannot be probed.
 */
@Controller()
export class ResumesController {
  private readonly logger = new Logger('resumes')

  constructor (@Inject(ResumeStore) private readonly store: ResumeStore) {}

  @MessagePattern(patterns.list)
  list (@Payload() data: unknown): Resume[] {
    const envelope = envelopeOf(data)
    return this.store.list(envelope.caller, pageOf(envelope))
  }

  @MessagePattern(patterns.get)
  get (@Payload() data: unknown): Resume {
    return this.owned(envelopeOf(data))
  }

  @MessagePattern(patterns.create)
  create (@Payload() data: unknown): Resume {
    const envelope = envelopeOf(data)
    const input = createInput(envelope.body)
    if (this.store.count(envelope.caller) >= MAX_PER_OWNER) throw rejected(409, `at most ${MAX_PER_OWNER} resumes per user: delete one first`)
    const resume = this.store.create(envelope.caller, input, `created by request ${envelope.requestId}`)
    this.logger.log(`resume ${resume.id} created by ${envelope.caller}`)
    return resume
  }

  @MessagePattern(patterns.update)
  update (@Payload() data: unknown): Resume {
    const envelope = envelopeOf(data)
    // Ownership before validation: someone else's id is 404 whatever the body says.
    const resume = this.owned(envelope)
    const { changes, version } = changesOf(envelope.body)
    if (version !== undefined && version !== resume.version) throw rejected(409, `the resume is at version ${resume.version}, not ${version}: read it again before changing it`)
    return this.store.update(resume, changes, `updated by request ${envelope.requestId}`)
  }

  /** Answers nothing, which the gateway turns into 204. */
  @MessagePattern(patterns.delete)
  delete (@Payload() data: unknown): void {
    const envelope = envelopeOf(data)
    const resume = this.owned(envelope)
    this.store.delete(resume)
    this.logger.log(`resume ${resume.id} deleted by ${envelope.caller}`)
  }

  /** An event has no reply to carry an error: a bad envelope is logged, a view of a resume the caller does not own is ignored. */
  @EventPattern(patterns.viewed)
  viewed (@Payload() data: unknown): void {
    let envelope: Envelope
    try {
      envelope = envelopeOf(data)
    } catch (error) {
      this.logger.warn(`resume_viewed dropped: ${JSON.stringify((error as { getError?: () => unknown }).getError?.() ?? String(error))}`)
      return
    }
    const resume = this.store.get(envelope.caller, idOf(envelope))
    if (resume !== undefined) this.store.viewed(resume)
  }

  private owned (envelope: Envelope): Resume {
    const resume = this.store.get(envelope.caller, idOf(envelope))
    if (resume === undefined) throw rejected(404, 'resume not found')
    return resume
  }
}
