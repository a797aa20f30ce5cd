import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a lone percent param', '/api/users/100%25/profile', '/internal/users/100%25/profile')
