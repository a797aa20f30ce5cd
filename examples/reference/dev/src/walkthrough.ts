export interface Urls { gateway: string, auth: string, postsA: string, postsB: string, chat: string, resumes: string }

/** The copy-paste curl tour printed once everything is ready. */
export function walkthrough (urls: Urls, admin: { email: string, password: string }): string {
  const json = (field: string): string => `node -pe 'JSON.parse(require("fs").readFileSync(0)).${field}'`
  return `
Tollgate reference deployment is ready.

  gateway          ${urls.gateway}   (docs ${urls.gateway}/docs, metrics ${urls.gateway}/metrics, ready ${urls.gateway}/readyz)
  auth-service     ${urls.auth}
  posts-service    ${urls.postsA} and ${urls.postsB}
  chat-service     ${urls.chat}   (Socket.io path /api/meetings/socket.io)
  resumes-service  ${urls.resumes}   (a NestJS microservice: no HTTP, reached through /api/resumes)

Try it (bash; /api/auth allows 10 requests a minute per IP):

  G=${urls.gateway}
  curl -s -X POST $G/api/auth/register -H 'content-type: application/json' -d '{"email":"ada@example.com","password":"correct horse"}'
  TOKENS=$(curl -s -X POST $G/api/auth/login -H 'content-type: application/json' -d '{"email":"ada@example.com","password":"correct horse"}')
  ACCESS=$(echo "$TOKENS" | ${json('accessToken')}); REFRESH=$(echo "$TOKENS" | ${json('refreshToken')})

  curl -s -X POST $G/api/posts -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' -d '{"title":"Hello","body":"through the gateway"}'
  curl -si $G/api/posts -H "authorization: Bearer $ACCESS"      # run twice: x-served-by alternates between the two instances
  curl -si $G/api/posts                                          # 401: no credentials
  curl -s $G/api/posts -H 'x-api-key: example-partner-key'       # the partner API key (role partner)

  # Resumes: HTTP at the gateway, NestJS message patterns over TCP behind it; the owner is the token's user.
  RESUME=$(curl -s -X POST $G/api/resumes -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' -d '{"title":"Backend engineer","skills":["TypeScript","NestJS"]}' | ${json('id')})
  curl -s $G/api/resumes -H "authorization: Bearer $ACCESS"                  # ada's resumes only
  curl -s -X PATCH $G/api/resumes/$RESUME -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' -d '{"summary":"Node.js services"}'
  curl -s -X POST $G/api/resumes -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' -d '{"title":""}'   # 400, the service's message

  NEW=$(curl -s -X POST $G/api/auth/refresh -H 'content-type: application/json' -d "{\\"refreshToken\\":\\"$REFRESH\\"}" | ${json('refreshToken')})
  curl -s -o /dev/null -w '%{http_code}\\n' -X POST $G/api/auth/logout -H 'content-type: application/json' -d "{\\"refreshToken\\":\\"$NEW\\"}"    # 204
  curl -s -X POST $G/api/auth/refresh -H 'content-type: application/json' -d "{\\"refreshToken\\":\\"$NEW\\"}"                             # 401: logged out

The admin account (GET $G/api/admin/posts) is ${admin.email}, password ${admin.password}. Ctrl-C stops everything.
`
}
