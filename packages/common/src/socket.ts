import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * The response a server connection is writing now (or null): Node's own `_httpMessage`,
 * which its http server and its default clientError handler read the same way. No public
 * API tells it, and a gateway needs it to leave an answer in flight alone (a refusal must not
 * land inside its bytes, a replayed request must wait for it, a drain may still mark it).
 */
export function currentResponse (socket: Duplex): ServerResponse | null {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? null
}
