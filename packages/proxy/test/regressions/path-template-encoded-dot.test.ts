import { templateInjection } from '../helpers/template-escape.js'

templateInjection('an encoded dot-segment param', '/api/users/%2e%2e/profile', null)
