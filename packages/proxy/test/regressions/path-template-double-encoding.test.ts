import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a double-encoded dot-segment param', '/api/users/%252e%252e/profile', '/internal/users/%252e%252e/profile')
